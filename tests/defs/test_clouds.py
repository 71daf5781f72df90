"""Several control panels in one warehouse: two demo clouds whose ids overlap, through real HTTP."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from pipeline.defs.settings import SettingsError, build_resources
from pipeline.definitions import build_definitions
from pipeline.demo.config import DemoCloudConfig
from pipeline.warehouse.connection import connect_warehouse
from pipeline.warehouse.sql_files import read_sql, run_sql
from pipeline.defs.table_assets import TABLES
from tests.conftest import DAGSTER, MATERIALIZE, ROOT, check_results, served_backups, table_contents

EU = DemoCloudConfig(vms=12, backups_per_vm=3, users=4, backup_servers=2, seed=1)
US = DemoCloudConfig(vms=9, backups_per_vm=2, users=3, backup_servers=2, seed=2)
NO_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}


def clouds_file(tmp_path: Path, clouds: dict) -> Path:
    path = tmp_path / "clouds.toml"
    path.write_text("".join(
        f'[clouds.{name}]\nurl = "{cloud.url}"\nuser = "{cloud.config.user}"\nkey_env = "{key_variable(name)}"\n'
        for name, cloud in clouds.items()), encoding="utf-8")
    return path


def key_variable(cloud: str) -> str:
    return "KEY_" + cloud.upper().replace("-", "_")


def environment(tmp_path: Path, clouds: dict, **keys: str) -> dict[str, str]:
    env = {"BACKUPS_CLOUDS_FILE": str(clouds_file(tmp_path, clouds)), "BACKUPS_DB": str(tmp_path / "w.duckdb"),
           "BACKUPS_REPORTS_DIR": str(tmp_path / "reports"), "ONAPP_BACKOFF_FACTOR": "0.001"}
    env |= {key_variable(name): keys.get(name, cloud.config.api_key) for name, cloud in clouds.items()}
    return env


def sync(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dg.ExecuteInProcessResult:
    # The keys are EnvVars, read from the process environment when the run starts.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job = build_definitions(env).resolve_job_def("backups_sync")
    return job.execute_in_process(run_config=NO_RETRIES, raise_on_error=False)


def warehouse(tmp_path: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).df()


def backups_of(tmp_path: Path, cloud: str) -> pd.DataFrame:
    return warehouse(tmp_path, "SELECT id, backup_size, virtual_machine_id, owner_user_id FROM backups "
                               "WHERE cloud = ? AND deleted_at IS NULL ORDER BY id", [cloud])


def served(cloud) -> pd.DataFrame:
    frame = served_backups(cloud)[["id", "backup_size", "virtual_machine_id", "owner_user_id"]]
    return frame.sort_values("id").reset_index(drop=True)


def test_two_clouds_with_the_same_ids_load_side_by_side(make_cloud, tmp_path, monkeypatch):
    eu, us = make_cloud(EU), make_cloud(US)
    shared = set(served(eu)["id"]) & set(served(us)["id"])
    assert shared, "the two demo clouds must share backup ids for this test to mean anything"
    result = sync(environment(tmp_path, {"eu": eu, "us": us}), monkeypatch)
    assert result.success, result.all_events
    for name, cloud in (("eu", eu), ("us", us)):
        pd.testing.assert_frame_equal(backups_of(tmp_path, name), served(cloud), check_dtype=False)
        vms = warehouse(tmp_path, "SELECT id FROM virtual_machines WHERE cloud = ? ORDER BY id", [name])
        assert vms["id"].tolist() == sorted(cloud.fleet.vms)
    ledger = warehouse(tmp_path, "SELECT cloud, status, source_url FROM sync_runs ORDER BY cloud")
    assert ledger.values.tolist() == [["eu", "ok", eu.url], ["us", "ok", us.url]]
    assert warehouse(tmp_path, "SELECT cloud, source_url FROM clouds ORDER BY cloud").values.tolist() == [
        ["eu", eu.url], ["us", us.url]]
    history = warehouse(tmp_path, "SELECT cloud, sum(storage_kb) AS kb FROM storage_history "
                                  "WHERE dimension = 'backup_server' GROUP BY cloud ORDER BY cloud")
    assert history["kb"].tolist() == [served(eu)["backup_size"].sum(), served(us)["backup_size"].sum()]
    assert check_results(result)["every_cloud_synced"].passed
    # The storage reports: one row per cloud and key, each cloud's figures its own.
    servers = pd.read_csv(tmp_path / "reports" / "storage_by_backup_server.csv")
    assert servers.columns[0] == "cloud" and not servers.duplicated(["cloud", "backup_server_id"]).any()
    for name, cloud in (("eu", eu), ("us", us)):
        # Backups on no dedicated server are a row of their own (an empty id).
        served_here = served_backups(cloud).fillna({"backup_server_id": -1})
        expected = served_here.groupby("backup_server_id")["backup_size"].sum()
        got = servers[servers["cloud"] == name].fillna({"backup_server_id": -1}).set_index("backup_server_id")[
            "storage_kb"]
        assert got.to_dict() == expected.to_dict(), name
    users = pd.read_csv(tmp_path / "reports" / "storage_by_user.csv")
    assert not users.duplicated(["cloud", "user_id"]).any()
    assert set(users[users["cloud"] == "eu"]["user_id"]) & set(users[users["cloud"] == "us"]["user_id"])
    vms = pd.read_csv(tmp_path / "reports" / "storage_by_virtual_machine.csv")
    assert len(vms) == len(eu.fleet.vms) + len(us.fleet.vms) - sum(
        1 for c in (eu, us) for vm in c.fleet.vms if not c.fleet.backups_of(vm))


def test_a_cloud_with_a_refused_key_fails_alone_and_keeps_its_rows(make_cloud, tmp_path, monkeypatch):
    eu, us = make_cloud(EU), make_cloud(US)
    first = sync(environment(tmp_path, {"eu": eu, "us": us}), monkeypatch)
    assert first.success
    us_before = warehouse(tmp_path, "SELECT * FROM backups WHERE cloud = 'us' ORDER BY id")

    second = sync(environment(tmp_path, {"eu": eu, "us": us}, us="wrong-key"), monkeypatch)

    assert not second.success
    failures = [e for e in second.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["sync_runs_every_cloud_synced"]
    assert "cloud 'us' failed" in failures[0].step_failure_data.error.message
    assert "wrong-key" not in str(second.all_events)
    ledger = warehouse(tmp_path, "SELECT cloud, status, message FROM sync_runs WHERE run_id = ? ORDER BY cloud",
                       [second.run_id])
    assert ledger[["cloud", "status"]].values.tolist() == [["eu", "ok"], ["us", "failed"]]
    assert "401" in ledger["message"][1] or "refused" in ledger["message"][1]
    pd.testing.assert_frame_equal(
        warehouse(tmp_path, "SELECT * FROM backups WHERE cloud = 'us' ORDER BY id"), us_before)
    # The reports were still written, from both clouds' rows.
    assert second.asset_materializations_for_node("storage_by_backup_server") or \
        (tmp_path / "reports" / "storage_by_backup_server.csv").exists()


def test_a_cloud_name_stays_bound_to_its_url(make_cloud, tmp_path, monkeypatch):
    eu, us, other = make_cloud(EU), make_cloud(US), make_cloud(US)
    assert sync(environment(tmp_path, {"eu": eu, "us": us}), monkeypatch).success
    moved = sync(environment(tmp_path, {"eu": eu, "us": other}), monkeypatch)
    assert not moved.success
    ledger = warehouse(tmp_path, "SELECT cloud, status, message FROM sync_runs WHERE run_id = ? ORDER BY cloud",
                       [moved.run_id])
    assert ledger[["cloud", "status"]].values.tolist() == [["eu", "ok"], ["us", "failed"]]
    assert us.url in ledger["message"][1] and other.url in ledger["message"][1]
    assert warehouse(tmp_path, "SELECT source_url FROM clouds WHERE cloud = 'us'")["source_url"][0] == us.url


def test_each_cloud_is_fetched_by_its_own_steps(make_cloud, tmp_path, monkeypatch):
    eu, us = make_cloud(EU), make_cloud(US)
    env = environment(tmp_path, {"eu": eu, "us-west": us})
    defs = build_definitions(env)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"eu/vm_list", "eu/backup_lists", "us_west/vm_list", "us_west/backup_lists"} <= keys
    assert not {"vm_list", "backup_lists"} & keys
    resources = build_resources(env)
    assert resources["onapp_eu"].max_concurrency == 8 and resources["onapp_us_west"].cloud == "us-west"
    # The freshness check judges the clouds of the file (and only names others the warehouse holds).
    assert resources["checks"].clouds == ["eu", "us-west"]
    assert build_resources({"ONAPP_API_URL": eu.url})["checks"].clouds == ["default"]
    # The key is read when a run starts, from the variable the file names: it is not in the definitions.
    assert eu.config.api_key not in repr(defs.get_repository_def().get_top_level_resources())
    executor = defs.resolve_job_def("backups_sync").executor_def
    assert executor.config_schema.default_value["multiprocess"]["max_concurrent"] == 2
    single = build_definitions({"ONAPP_API_URL": eu.url, "BACKUPS_DB": env["BACKUPS_DB"]})
    assert single.resolve_job_def("backups_sync").executor_def.config_schema.default_value == {"in_process": {}}


def test_the_clouds_file_and_onapp_api_url_are_not_mixed(make_cloud, tmp_path):
    eu = make_cloud(EU)
    env = environment(tmp_path, {"eu": eu}) | {"ONAPP_API_URL": eu.url}
    with pytest.raises(SettingsError, match="ONAPP_API_URL would be ignored"):
        build_definitions(env)


def test_a_missing_key_variable_stops_the_code_location_naming_the_cloud(make_cloud, tmp_path):
    eu = make_cloud(EU)
    env = environment(tmp_path, {"eu": eu})
    del env["KEY_EU"]
    with pytest.raises(SettingsError, match=r"cloud 'eu': key_env: KEY_EU is not set"):
        build_definitions(env)


def test_a_single_cloud_warehouse_upgrades_in_place(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        # The schema as the single-cloud version left it: every migration before the clouds.
        for name in ("001_create_schema_version", "002_create_warehouse_meta", "003_create_backups",
                     "004_create_virtual_machines", "005_create_users_and_backup_servers",
                     "006_create_sync_ledger", "007_create_history", "008_create_report_settings",
                     "009_create_alerts"):
            run_sql(con, f"migrations/{name}.sql")
            con.execute("INSERT INTO schema_version VALUES (?, 'migration', 'x', now())", [f"migrations/{name}.sql"])
        con.execute("INSERT INTO warehouse_meta VALUES ('source_url', 'https://cp.example.com')")
        con.execute("INSERT INTO backups (id, backup_size, virtual_machine_id, first_seen_at, last_seen_at) "
                    "VALUES (6117, 42, 3, now(), now())")
        con.execute("INSERT INTO backup_versions (backup_id, valid_from, run_id, backup_size) VALUES (6117, now(), 'r', 42)")
        con.execute("INSERT INTO virtual_machines (id, first_seen_at, last_seen_at) VALUES (3, now(), now())")
        con.execute("INSERT INTO users (id, login, synced_at) VALUES (1, 'alice', now())")
        con.execute("INSERT INTO backup_servers (id, label, synced_at) VALUES (2, 'bs', now())")
        con.execute("INSERT INTO sync_runs (run_id, started_at, finished_at, source_url, format, status) "
                    "VALUES ('r', now(), now(), 'https://cp.example.com', 'json', 'ok')")
        con.execute("INSERT INTO sync_vm_errors VALUES ('r', 4, 500, 'http', 'boom')")
        con.execute("INSERT INTO backup_rejects VALUES ('r', 4, 'x', 'no id', '{}')")
        con.execute("INSERT INTO storage_history VALUES ('r', now(), 'user', 1, 1, 42)")
        con.execute("INSERT INTO alerts VALUES ('protection_gap', '3', 'firing', 'm', now(), 'r', NULL, NULL)")
        before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES_WITH_CLOUD}

    con = connect_warehouse(db)
    try:
        for table, rows in before.items():
            assert con.execute(f"SELECT count(*), count(*) FILTER (WHERE cloud = 'default') FROM {table}"
                               ).fetchone() == (rows, rows), table
        assert con.execute("SELECT cloud, source_url FROM clouds").fetchall() == [
            ("default", "https://cp.example.com")]
        assert con.execute("SELECT count(*) FROM warehouse_meta WHERE key = 'source_url'").fetchone() == (0,)
        # The keys are (cloud, id) now: the same backup id in another cloud is a row of its own.
        con.execute("INSERT INTO backups (cloud, id, virtual_machine_id, first_seen_at, last_seen_at) "
                    "VALUES ('eu', 6117, 3, now(), now())")
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO backups (cloud, id, virtual_machine_id, first_seen_at, last_seen_at) "
                        "VALUES ('default', 6117, 3, now(), now())")
    finally:
        con.close()


TABLES_WITH_CLOUD = ("backups", "backup_versions", "virtual_machines", "users", "backup_servers", "sync_runs",
                     "sync_vm_errors", "backup_rejects", "storage_history", "alerts")


def test_the_migration_names_every_table_of_api_data():
    text = read_sql("migrations/010_add_cloud.sql")
    for table in TABLES_WITH_CLOUD:
        assert f"CREATE TABLE {table}_by_cloud (\n    cloud " in text, table


@pytest.mark.slow
def test_two_clouds_by_the_cli_run_a_process_per_step_and_load_what_one_process_does(make_cloud, tmp_path,
                                                                                     monkeypatch):
    eu, us = make_cloud(EU), make_cloud(US)
    in_process = tmp_path / "in_process"
    in_process.mkdir()
    assert sync(environment(in_process, {"eu": eu, "us": us}), monkeypatch).success
    cli = tmp_path / "cli"
    (cli / "home").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", cli / "home" / "dagster.yaml")
    env = {**os.environ, **environment(cli, {"eu": eu, "us": us}), "DAGSTER_HOME": str(cli / "home")}
    run = subprocess.run([DAGSTER, *MATERIALIZE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    # The default with several clouds: each cloud's fetch in a process of its own, side by side.
    assert "Executing steps using multiprocess executor" in output
    assert 'Launching subprocess for "eu__backup_lists"' in output
    assert 'Launching subprocess for "us__backup_lists"' in output
    expected, got = table_contents(in_process / "w.duckdb"), table_contents(cli / "w.duckdb")
    for table in TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table], obj=table)
    assert set(got["backups"]["cloud"]) == {"eu", "us"}


def test_a_cloud_takes_its_concurrency_from_the_file_and_the_rest_from_the_environment(make_cloud, tmp_path):
    eu, us = make_cloud(EU), make_cloud(US)
    env = environment(tmp_path, {"eu": eu, "us": us}) | {"ONAPP_MAX_CONCURRENCY": "3", "ONAPP_RETRIES": "2"}
    path = Path(env["BACKUPS_CLOUDS_FILE"])
    path.write_text(path.read_text().replace('key_env = "KEY_EU"\n', 'key_env = "KEY_EU"\nmax_concurrency = 12\n'
                                                                       'format = "XML"\n'))
    resources = build_resources(env)
    eu_api, us_api = resources["onapp_eu"], resources["onapp_us"]
    assert (eu_api.max_concurrency, eu_api.api_format, eu_api.retries) == (12, "xml", 2)
    assert (us_api.max_concurrency, us_api.api_format, us_api.retries) == (3, "json", 2)
    assert (eu_api.api_url, us_api.api_url) == (eu.url, us.url)
    assert "onapp" not in resources  # no cloud 'default' without ONAPP_API_URL's


@pytest.mark.parametrize("trouble", ["down", "too many failed VMs"])
def test_a_cloud_that_is_down_or_failing_fails_alone(make_cloud, tmp_path, monkeypatch, trouble):
    eu = make_cloud(EU)
    us = make_cloud(US if trouble == "down" else
                    dataclasses.replace(US, failing_vm_ids=frozenset(range(1, 8))))  # 7 of its 9 VMs
    env = environment(tmp_path, {"eu": eu, "us": us}) | {"ONAPP_RETRIES": "0"}
    if trouble == "down":
        us.stop()  # nothing listens on its port any more
    result = sync(env, monkeypatch)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["sync_runs_every_cloud_synced"]
    ledger = warehouse(tmp_path, "SELECT cloud, status, message FROM sync_runs ORDER BY cloud")
    assert ledger[["cloud", "status"]].values.tolist() == [["eu", "ok"], ["us", "failed"]]
    reason = "could not be read" if trouble == "down" else "VMs failed"
    assert reason in ledger["message"][1] and reason in failures[0].step_failure_data.user_failure_data.description
    pd.testing.assert_frame_equal(backups_of(tmp_path, "eu"), served(eu), check_dtype=False)
    assert warehouse(tmp_path, "SELECT count(*) AS n FROM backups WHERE cloud = 'us'")["n"][0] == 0
    # The reports were written from the cloud that loaded.
    assert set(pd.read_csv(tmp_path / "reports" / "storage_by_backup_server.csv")["cloud"]) == {"eu"}
