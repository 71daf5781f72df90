"""The warehouse as a record: migrations, atomic syncs, history, one writer at a time."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.clouds.config import DEFAULT_CLOUD
from pipeline.records.normalize import VM_FIELDS, reference_frame
from pipeline.warehouse.sql_files import run_sql
from pipeline.warehouse.load import write_sync
from pipeline.warehouse.staging import RunStaging, stage_in_memory
from pipeline.warehouse.connection import (
    WarehouseBusy, migrate, migration_files, open_warehouse, view_files,
)
from tests.conftest import SyncHarness, run_failure_text

ROOT = Path(__file__).resolve().parents[2]


def test_a_warehouse_of_the_previous_version_upgrades_in_place(tmp_path, harness):
    # Build the warehouse as the release before the newest migration made it, with data in it.
    assert harness.run().success
    previous = tmp_path / "previous.duckdb"
    *older, newest = migration_files()
    with duckdb.connect(str(previous)) as con:
        for name in older:
            run_sql(con, name)
            con.execute(
                "INSERT INTO schema_version VALUES (?, 'migration', 'older-release', now())", [name]
            ).fetchall()
        con.execute("ATTACH ? AS current (READ_ONLY)", [str(harness.db_path)]).fetchall()
        # The release before kept one cloud: its rows had no cloud, and the file named its source.
        con.execute("INSERT INTO backups SELECT * EXCLUDE (cloud) FROM current.backups").fetchall()
        con.execute("INSERT INTO warehouse_meta SELECT 'source_url', source_url FROM current.clouds").fetchall()
    with duckdb.connect(str(previous), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        kept = con.execute("SELECT * FROM backups ORDER BY id").df()
    assert len(kept) > 0

    with open_warehouse(previous) as con:
        applied = con.execute("SELECT name FROM schema_version ORDER BY name").fetchall()
        assert (newest,) in applied and all((v,) in applied for v in view_files())
        pd.testing.assert_frame_equal(kept, con.execute("SELECT * EXCLUDE (cloud) FROM backups ORDER BY id").df())
        assert con.execute("SELECT DISTINCT cloud FROM backups").fetchall() == [("default",)]
        assert con.execute("SELECT cloud, source_url FROM clouds").fetchall() == [
            ("default", harness.cloud.url.rstrip("/"))]
        assert migrate(con) == []  # a second open applies nothing
    # Older migrations were recorded with another checksum: they are never re-run.
    with duckdb.connect(str(previous), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_version WHERE checksum = 'older-release'").fetchall() == [
            (len(older),)
        ]


def test_a_changed_report_view_is_reapplied(tmp_path):
    db = tmp_path / "w.duckdb"
    with open_warehouse(db):
        pass
    name = view_files()[0]
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE schema_version SET checksum = 'stale' WHERE name = ?", [name]).fetchall()
        con.execute("DROP VIEW " + Path(name).stem).fetchall()
    with open_warehouse(db) as con:
        assert con.execute("SELECT count(*) FROM " + Path(name).stem).fetchall() == [(0,)]


def _staged(root: Path, run_id: str, listings: dict, owners: dict) -> RunStaging:
    staging = RunStaging(root, run_id, DEFAULT_CLOUD)
    vms = reference_frame([{"id": vm, "user_id": owners[vm]} for vm in listings], VM_FIELDS)
    stage_in_memory(staging, listed_at=datetime.now(timezone.utc), source="test", api_format="json",
                    vms=vms, listings=listings)
    return staging


@pytest.mark.parametrize("order", [(1, 2), (2, 1)])
def test_an_id_listed_under_two_vms_resolves_to_one_row_deterministically(tmp_path, order):
    # The same backup id in two VMs' lists, with different sizes; listing order must not matter.
    listings = {1: [{"id": 7, "backup_size": 100}], 2: [{"id": 7, "backup_size": 200}, {"id": 8, "backup_size": 1}]}
    listings = {vm: listings[vm] for vm in order}
    with open_warehouse(tmp_path / "w.duckdb") as con:
        for run in ("a", "b"):
            staging = _staged(tmp_path / "staging", run, listings, {1: 11, 2: 22})
            summary = write_sync(con, run, staging, warehouse_path="w")
            rows = con.execute("SELECT id, virtual_machine_id, backup_size, owner_user_id FROM backups ORDER BY id")
            assert rows.fetchall() == [(7, 1, 100, 11), (8, 2, 1, 22)]
        assert summary.backups_seen == 2 and summary.backups_changed == 0


def test_a_backup_that_reappears_is_current_again(harness):
    cloud = harness.cloud
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    backup = cloud.fleet.backups_of(vm_id)[0]
    assert harness.run().success
    cloud.fleet.delete_backup(backup["id"])
    assert harness.run().success
    cloud.fleet.add_backup(vm_id, **backup)
    assert harness.run().success
    row = harness.query("SELECT deleted_at, first_seen_at < last_seen_at AS kept FROM backups WHERE id = ?",
                        [backup["id"]])
    assert row["deleted_at"].isna().all() and row["kept"].all()
    versions = harness.query("SELECT valid_to IS NULL AS open FROM backup_versions WHERE backup_id = ? "
                             "ORDER BY valid_from", [backup["id"]])
    assert list(versions["open"]) == [False, True]
    changed = harness.query("SELECT backups_changed, backups_deleted FROM sync_runs ORDER BY started_at")
    assert changed.values.tolist() == [[0, 0], [0, 1], [1, 0]]


def test_history_grows_with_change_not_with_syncs(harness):
    cloud = harness.cloud
    vm_ids = sorted(vm for vm in cloud.fleet.vms if cloud.fleet.backups_of(vm))
    assert harness.run().success
    initial = harness.query("SELECT count(*) AS n FROM backup_versions")["n"][0]
    resized: list[int] = []
    for step in range(9):
        # Each sync between changes one backup's size, or nothing (odd steps).
        if step % 2 == 0:
            backup = cloud.fleet.backups_of(vm_ids[step])[0]
            cloud.fleet.update_backup(backup["id"], backup_size=backup["backup_size"] + 1000)
            resized.append(backup["id"])
        assert harness.run().success
    versions = harness.query("SELECT backup_id, valid_to FROM backup_versions")
    assert len(versions) == initial + len(resized)
    closed = versions.loc[versions["valid_to"].notna(), "backup_id"]
    assert sorted(closed) == sorted(resized)

    history = harness.query(
        "SELECT run_id, sum(storage_kb) AS kb FROM storage_history WHERE dimension = 'backup_server' "
        "GROUP BY run_id ORDER BY min(synced_at)"
    )
    assert len(history) == 10
    growth = history["kb"].diff().dropna().tolist()
    assert growth == [1000 if step % 2 == 0 else 0 for step in range(9)]
    served = sum(b["backup_size"] for vm in cloud.fleet.vms for b in cloud.fleet.backups_of(vm))
    assert history["kb"].iloc[-1] == served
    per_user = harness.query(
        "SELECT sum(storage_kb) AS kb FROM storage_history WHERE dimension = 'user' GROUP BY run_id "
        "ORDER BY min(synced_at)"
    )
    assert per_user["kb"].tolist() == history["kb"].tolist()


_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from pathlib import Path
    from pipeline.records.normalize import VM_FIELDS, reference_frame
    from pipeline.warehouse.load import write_sync
    from pipeline.warehouse.connection import open_warehouse
    from pipeline.warehouse.staging import RunStaging, stage_in_memory

    db, vms, per_vm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    listings = {vm: [{"id": 10_000_000 + vm * per_vm + i, "backup_size": 5, "note": "x" * 200}
                     for i in range(per_vm)] for vm in range(1, vms + 1)}
    staging = RunStaging(Path(db).parent / "staging", sys.argv[4], "default")
    stage_in_memory(staging, listed_at=datetime.now(timezone.utc), source="bulk", api_format="json",
                    vms=reference_frame([{"id": vm, "user_id": 1} for vm in listings], VM_FIELDS),
                    listings=listings)
    with open_warehouse(db) as con:
        print("writing", flush=True)
        write_sync(con, sys.argv[4], staging, warehouse_path=db)
    print("done", flush=True)
    """
)


def _bulk_sync(db: Path, vms: int, per_vm: int, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), str(vms), str(per_vm), run_id],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )


def _state(db: Path) -> tuple:
    with duckdb.connect(str(db), read_only=True) as con:
        return (
            con.execute("SELECT count(*), sum(backup_size), max(last_seen_at) FROM backups").fetchall(),
            con.execute("SELECT run_id, status FROM sync_runs ORDER BY started_at").fetchall(),
            con.execute("SELECT count(*) FROM backup_versions").fetchall(),
            con.execute("SELECT count(*) FROM storage_history").fetchall(),
        )


def test_a_killed_sync_leaves_the_previous_state_and_the_next_completes(tmp_path):
    db = tmp_path / "w.duckdb"
    first = _bulk_sync(db, 100, 10, "first")
    assert first.wait(timeout=120) == 0
    before = _state(db)

    # A large load, killed while it writes.
    victim = _bulk_sync(db, 6000, 100, "killed")
    assert victim.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL  # it really died mid-write
    assert _state(db) == before

    after = _bulk_sync(db, 6000, 100, "next")
    assert after.wait(timeout=300) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM backups WHERE deleted_at IS NULL").fetchall() == [(600_000,)]
        assert con.execute("SELECT run_id FROM sync_runs ORDER BY started_at").fetchall() == [("first",), ("next",)]


_HOLDER = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


@pytest.fixture
def locked_db(tmp_path):
    """A warehouse file held open for writing by another process."""
    db = tmp_path / "w.duckdb"
    with open_warehouse(db):
        pass
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    yield db
    holder.kill()
    holder.wait()


def test_a_second_writer_waits_then_reports_warehouse_busy(locked_db):
    with pytest.raises(WarehouseBusy, match=f"^warehouse busy: {locked_db}$"):
        with open_warehouse(locked_db, lock_timeout_s=0.5):
            pass


def test_a_sync_against_a_busy_warehouse_fails_with_warehouse_busy(make_cloud, locked_db, tmp_path):
    harness = SyncHarness(make_cloud(), locked_db, tmp_path / "r")
    harness_run = harness.run(lock_timeout_s=0.3)
    assert not harness_run.success
    assert f"warehouse busy: {locked_db}" in run_failure_text(harness_run)
