"""Each run stages its own data: overlapping runs, stale runs, any executor, nothing fleet-sized in DAGSTER_HOME."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipeline.defs.table_assets import TABLES
from tests.conftest import (
    DAGSTER,
    ROOT,
    SMALL_FLEET,
    SyncHarness,
    cli_environment,
    kill_sync_when,
    dagster_cli,
    run_failure_text,
    served_backups,
    table_contents,
    wait_for,
)

def staging_root(db: Path) -> Path:
    return db.parent / "staging"


def test_a_loaded_run_removes_its_staging(harness):
    result = harness.run()
    assert result.success, run_failure_text(result)
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] == len(served_backups(harness.cloud))
    assert list(staging_root(harness.db_path).iterdir()) == []


def test_a_failed_load_keeps_its_staging_for_diagnosis_and_no_secret(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, failing_vm_ids=frozenset({1, 2, 3})))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "reports")
    result = harness.run(max_failed_fraction=0.0, retries=0)
    assert not result.success
    [kept] = staging_root(harness.db_path).iterdir()
    assert kept.name == result.run_id
    staged = b"".join(path.read_bytes() for path in kept.rglob("*") if path.is_file())
    assert b"backup_size" in staged  # the parts are there to read
    leaked = [secret for secret in cloud.fleet.secrets() if secret.encode() in staged]
    assert leaked == []
    assert harness.query("SELECT status FROM sync_runs")["status"].tolist() == ["failed"]


def test_the_tables_are_assets_with_their_schema_and_row_count(harness):
    result = harness.run()
    assert result.success, run_failure_text(result)
    materialized = {event.asset_key.path[-1]: event.materialization
                    for event in result.get_asset_materialization_events()}
    assert set(TABLES) <= set(materialized)
    for table in TABLES:
        count = harness.query(f"SELECT count(*) AS n FROM {table}")["n"][0]  # noqa: S608
        assert materialized[table].metadata["dagster/row_count"].value == count
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    backups = graph.get(dg_key("backups"))
    columns = [c.name for c in backups.metadata["dagster/column_schema"].columns]
    assert columns[:4] == ["cloud", "id", "identifier", "backup_size"] and "deleted_at" in columns
    # The reports hang off the tables they read, not off a step.
    assert dg_key("storage_history") in graph.get(dg_key("capacity_forecast")).parent_keys


def dg_key(name: str):
    import dagster as dg

    return dg.AssetKey(name)


@pytest.mark.slow
def test_the_asset_list_shows_the_tables(tmp_path, cloud):
    listed = dagster_cli(["asset", "list", "-m", "pipeline.definitions"], tmp_path, cloud)
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = set(listed.stdout.split())
    assert set(TABLES) | {"vm_list", "backup_lists"} <= names
    assert "normalized_backups" not in names


@pytest.mark.slow
def test_overlapping_runs_end_in_the_later_state_and_the_stale_run_is_superseded(make_cloud, tmp_path):
    # Run A reads its VM list, then fetches slowly (one request at a time); meanwhile the cloud
    # changes and run B syncs it whole. A must not put its older view over B's.
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, latency_ms=100))
    db = tmp_path / "backups.duckdb"
    slow = subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-m", "pipeline.definitions", "--select", "*"],
        cwd=ROOT, env=cli_environment(tmp_path, cloud, ONAPP_MAX_CONCURRENCY="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        listed = wait_for(lambda: list(staging_root(db).glob("*/default/listing/meta.json")), timeout_s=120)
        assert listed, "run A never staged its VM list"
        vm_ids = sorted(vm for vm in cloud.fleet.vms if len(cloud.fleet.backups_of(vm)) >= 2)
        resized = cloud.fleet.backups_of(vm_ids[-1])[0]
        cloud.fleet.update_backup(resized["id"], backup_size=resized["backup_size"] + 4096)
        cloud.fleet.delete_backup(cloud.fleet.backups_of(vm_ids[-2])[0]["id"])
        added = cloud.fleet.add_backup(vm_ids[-3])
        fast = SyncHarness(cloud, db, tmp_path / "reports").run(max_concurrency=16)
        assert fast.success, run_failure_text(fast)
        output, _ = slow.communicate(timeout=300)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 0, output[-3000:]

    harness = SyncHarness(cloud, db, tmp_path / "reports")
    ledger = harness.query("SELECT run_id, status, message FROM sync_runs ORDER BY started_at")
    assert ledger["status"].tolist() == ["superseded", "ok"]
    assert ledger["run_id"].iloc[1] == fast.run_id
    assert "superseded" in ledger["message"].iloc[0] and fast.run_id in ledger["message"].iloc[0]
    current = harness.query(
        "SELECT id, backup_size, virtual_machine_id, owner_user_id FROM backups WHERE deleted_at IS NULL ORDER BY id")
    served = served_backups(cloud).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        current, served[["id", "backup_size", "virtual_machine_id", "owner_user_id"]], check_dtype=False)
    assert added["id"] in set(current["id"])
    assert list(staging_root(db).iterdir()) == []  # the superseded run cleaned up too


@pytest.mark.slow
def test_the_multiprocess_executor_loads_what_the_in_process_one_does(make_cloud, tmp_path):
    cloud = make_cloud()
    in_process = SyncHarness(cloud, tmp_path / "in_process" / "backups.duckdb", tmp_path / "in_process" / "r")
    in_process.db_path.parent.mkdir()
    assert in_process.run().success
    multi = tmp_path / "multi"
    multi.mkdir()
    (multi / "run.yaml").write_text("execution:\n  config:\n    multiprocess:\n      max_concurrent: 4\n")
    run = dagster_cli(["asset", "materialize", "-m", "pipeline.definitions", "--select", "*",
                       "-c", str(multi / "run.yaml")], multi, cloud)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    output = run.stdout + run.stderr
    assert "Executing steps using multiprocess executor" in output and "Launching subprocess for \"backup_lists\"" in output
    expected, got = table_contents(in_process.db_path), table_contents(multi / "backups.duckdb")
    for table in TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table], obj=table)
    assert len(expected["backups"]) > 0


@pytest.mark.slow
def test_dagster_home_holds_no_payload_after_a_run(cloud, tmp_path):
    marker = "PAYLOAD-MARKER-7f3a"
    for vm_id in list(cloud.fleet.vms):
        for backup in cloud.fleet.backups_of(vm_id):
            cloud.fleet.update_backup(backup["id"], note=f"{marker} {backup['id']}")
    run = dagster_cli(["asset", "materialize", "-m", "pipeline.definitions", "--select", "*"], tmp_path, cloud)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    # The notes reached the warehouse, and nowhere under DAGSTER_HOME: no pickles, no staged parts.
    harness = SyncHarness(cloud, tmp_path / "backups.duckdb", tmp_path / "reports")
    assert harness.query("SELECT count(*) AS n FROM backups WHERE note LIKE ?", [f"{marker}%"])["n"][0] > 0
    home = tmp_path / "dagster_home"
    holding = [path for path in home.rglob("*") if path.is_file() and marker.encode() in path.read_bytes()]
    assert holding == []
    assert not (home / "storage" / "backup_lists").exists()
    assert list(staging_root(tmp_path / "backups.duckdb").iterdir()) == []


@pytest.mark.slow
def test_a_run_killed_while_fetching_leaves_nothing_the_next_run_reads(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, latency_ms=100))
    db = tmp_path / "backups.duckdb"
    assert dagster_cli(["asset", "materialize", "-m", "pipeline.definitions", "--select", "*"],
                       tmp_path, cloud).returncode == 0
    before = table_contents(db)
    kill_sync_when(lambda: list(staging_root(db).glob("*/default/backups")), tmp_path, cloud, ONAPP_MAX_CONCURRENCY="1")
    # The warehouse is as the last commit left it, and the next run loads only what it fetched itself.
    assert table_contents(db)["backups"].equals(before["backups"])
    cloud.fleet.delete_backup(next(b["id"] for vm in sorted(cloud.fleet.vms) for b in cloud.fleet.backups_of(vm)))
    run = dagster_cli(["asset", "materialize", "-m", "pipeline.definitions", "--select", "*"], tmp_path, cloud)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    harness = SyncHarness(cloud, db, tmp_path / "reports")
    current = harness.query("SELECT id FROM backups WHERE deleted_at IS NULL ORDER BY id")["id"].tolist()
    assert current == sorted(served_backups(cloud)["id"].tolist())
    assert harness.query("SELECT status FROM sync_runs ORDER BY started_at")["status"].tolist() == ["ok", "ok"]
    # The killed run's folder is its own and stays until it is a week old; nobody loaded it.
    assert len(list(staging_root(db).iterdir())) == 1
