"""The whole job, over real HTTP to the demo cloud, into a real DuckDB file, read back."""

from __future__ import annotations

import dataclasses
import hashlib

import pandas as pd
import pytest

from tests.conftest import SMALL_FLEET, SyncHarness, run_failure_text, served_backups

STABLE_COLUMNS = "* EXCLUDE (first_seen_at, last_seen_at)"


def current_backups(harness: SyncHarness) -> pd.DataFrame:
    return harness.query(f"SELECT {STABLE_COLUMNS} FROM backups WHERE deleted_at IS NULL ORDER BY id")


def test_sync_loads_every_served_backup_across_pages(make_cloud, tmp_path):
    # A page size far below the fleet makes the VM list span several pages.
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, default_per_page=7, page_size_cap=7))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "reports")
    result = harness.run(per_page=50)
    assert result.success, run_failure_text(result)

    served = served_backups(cloud).sort_values("id").reset_index(drop=True)
    loaded = harness.query(
        "SELECT id, backup_size, virtual_machine_id, owner_user_id FROM backups ORDER BY id"
    )
    assert len(cloud.fleet.vms) == 40 and len(served) > 40
    pd.testing.assert_frame_equal(
        loaded, served[["id", "backup_size", "virtual_machine_id", "owner_user_id"]], check_dtype=False
    )
    assert harness.query("SELECT count(*) AS n FROM virtual_machines")["n"][0] == 40


def test_json_and_xml_give_identical_tables(make_cloud, tmp_path):
    cloud = make_cloud()
    tables = []
    for fmt in ("json", "xml"):
        harness = SyncHarness(cloud, tmp_path / f"{fmt}.duckdb", tmp_path / fmt)
        assert harness.run(api_format=fmt).success
        tables.append(current_backups(harness))
    assert len(tables[0]) > 0
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_pre_4_2_payloads_load_like_modern_ones(make_cloud, tmp_path):
    # Same fleet, rendered as an old API: numbers as strings, no user_id, "days-autobackup" types.
    modern = SyncHarness(make_cloud(), tmp_path / "modern.duckdb", tmp_path / "m")
    legacy = SyncHarness(
        make_cloud(dataclasses.replace(SMALL_FLEET, legacy_api=True)), tmp_path / "legacy.duckdb", tmp_path / "l"
    )
    assert modern.run().success and legacy.run().success
    columns = "id, backup_size, backup_server_id, owner_user_id, virtual_machine_id, backup_type"
    new = modern.query(f"SELECT {columns} FROM backups ORDER BY id")
    old = legacy.query(f"SELECT {columns} FROM backups ORDER BY id")
    pd.testing.assert_frame_equal(new, old)
    assert legacy.query("SELECT count(*) AS n FROM backups WHERE user_id IS NOT NULL")["n"][0] == 0
    # The auto-backup period moved from backup_type into initiated.
    periods = legacy.query("SELECT DISTINCT initiated FROM backups WHERE initiated IS NOT NULL")["initiated"]
    assert set(periods) <= {"days", "weeks", "months", "years"} and len(periods) > 0


def test_resize_flag_is_read_from_either_spelling(harness):
    assert harness.run().success
    served = {
        int(b["id"]): b.get("allowed_resize_without_reboot", b.get("allow_resize_without_reboot"))
        for vm_id in harness.cloud.fleet.vms
        for b in harness.cloud.fleet.backups_of(vm_id)
    }
    loaded = harness.query("SELECT id, allowed_resize_without_reboot AS flag FROM backups")
    assert dict(zip(loaded["id"], loaded["flag"])) == served
    assert loaded["flag"].notna().all()


def test_deleted_backups_and_vms_are_soft_deleted(harness):
    cloud = harness.cloud
    assert harness.run().success
    vm_ids = sorted(vm for vm in cloud.fleet.vms if cloud.fleet.backups_of(vm))
    gone_backup = cloud.fleet.backups_of(vm_ids[0])[0]["id"]
    gone_vm = vm_ids[1]
    gone_vm_backups = {b["id"] for b in cloud.fleet.backups_of(gone_vm)}
    cloud.fleet.delete_backup(gone_backup)
    cloud.fleet.delete_vm(gone_vm)
    before = harness.query("SELECT count(*) AS n FROM backups")["n"][0]

    assert harness.run().success
    deleted = set(harness.query("SELECT id FROM backups WHERE deleted_at IS NOT NULL")["id"])
    assert deleted == {gone_backup} | gone_vm_backups
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] == before  # rows stay
    report = harness.csv("storage_by_backup_server")
    assert report["backups"].astype(int).sum() == len(served_backups(cloud))


def test_vm_that_answers_404_has_its_backups_deleted(make_cloud, tmp_path):
    cloud = make_cloud()
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    assert harness.run().success
    cloud.config = dataclasses.replace(cloud.config, vanish_fraction=0.2)
    vanished = cloud.vanished_vm_ids()
    assert vanished
    assert harness.run().success
    still = harness.query(
        "SELECT count(*) AS n FROM backups WHERE deleted_at IS NULL AND virtual_machine_id IN "
        "(SELECT unnest(?::BIGINT[]))", [sorted(vanished)]
    )["n"][0]
    assert still == 0
    runs = harness.query("SELECT vms_vanished FROM sync_runs ORDER BY started_at")
    assert list(runs["vms_vanished"]) == [0, len(vanished)]


def test_failing_vm_keeps_its_rows_and_the_rest_loads(harness):
    cloud = harness.cloud
    assert harness.run().success
    failing = max(vm for vm in cloud.fleet.vms if len(cloud.fleet.backups_of(vm)) >= 2)
    other = min(vm for vm in cloud.fleet.vms if cloud.fleet.backups_of(vm) and vm != failing)
    kept_before = harness.query("SELECT * FROM backups WHERE virtual_machine_id = ? ORDER BY id", [failing])
    # Changes on both VMs: only the readable one may show them.
    cloud.fleet.delete_backup(cloud.fleet.backups_of(failing)[0]["id"])
    new_backup = cloud.fleet.add_backup(other)
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset({failing}))

    result = harness.run()
    assert result.success, run_failure_text(result)
    kept_after = harness.query("SELECT * FROM backups WHERE virtual_machine_id = ? ORDER BY id", [failing])
    pd.testing.assert_frame_equal(kept_before, kept_after)
    assert harness.query("SELECT count(*) AS n FROM backups WHERE id = ?", [new_backup["id"]])["n"][0] == 1
    errors = harness.query("SELECT virtual_machine_id, http_status FROM sync_vm_errors")
    assert errors.to_dict("records") == [{"virtual_machine_id": failing, "http_status": 500}]
    last = harness.query("SELECT status, vms_failed FROM sync_runs ORDER BY started_at DESC LIMIT 1")
    assert last.to_dict("records") == [{"status": "partial", "vms_failed": 1}]


def test_rerun_with_nothing_changed_changes_nothing(harness):
    assert harness.run().success
    first = harness.query(f"SELECT {STABLE_COLUMNS} FROM backups ORDER BY id")
    versions = harness.query("SELECT * FROM backup_versions ORDER BY backup_id")
    assert harness.run().success
    pd.testing.assert_frame_equal(first, harness.query(f"SELECT {STABLE_COLUMNS} FROM backups ORDER BY id"))
    pd.testing.assert_frame_equal(versions, harness.query("SELECT * FROM backup_versions ORDER BY backup_id"))
    runs = harness.query("SELECT backups_new, backups_changed, backups_deleted FROM sync_runs ORDER BY started_at")
    assert runs.iloc[1].tolist() == [0, 0, 0]


def _file_digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("api_format", ["json", "xml"])
def test_refused_credentials_fail_at_once_and_touch_nothing(harness, api_format):
    assert harness.run().success
    digest = _file_digest(harness.db_path)
    requests_before = harness.cloud.stats["requests"]
    result = harness.run(api_format=api_format, api_key="wrong-key-123")
    assert not result.success
    message = run_failure_text(result)
    assert "credentials refused" in message and "'demo'" in message and harness.cloud.url in message
    assert "wrong-key-123" not in message
    assert _file_digest(harness.db_path) == digest
    # At once: one request for the first VM page, no retries, no backup lists.
    assert harness.cloud.stats["requests"] - requests_before == 1


def test_secrets_are_never_stored_logged_or_exported(harness, caplog):
    result = harness.run()
    assert result.success
    secrets = harness.cloud.fleet.secrets() | {harness.cloud.config.api_key}
    assert len(secrets) > 40
    with open(harness.db_path, "rb") as handle:
        raw_db = handle.read()
    dumps = [raw_db.decode("latin-1")]
    for table in harness.query("SELECT table_name FROM information_schema.tables")["table_name"]:
        dumps.append(harness.query(f'SELECT * FROM "{table}"').to_csv())
    dumps += [p.read_text() for p in harness.reports_dir.glob("*.csv")]
    dumps.append(caplog.text)
    dumps += [str(event) for event in result.all_events]
    text = "\n".join(dumps)
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []
    assert "password" not in harness.query("SELECT * FROM virtual_machines").columns.str.cat()


def test_report_totals_equal_sums_of_what_was_served(harness):
    assert harness.run().success
    served = served_backups(harness.cloud)
    by_server = served.groupby(served["backup_server_id"].astype("Int64"), dropna=False)["backup_size"].agg(
        ["count", "sum"]
    )
    report = harness.csv("storage_by_backup_server")
    got = {
        (int(r.backup_server_id) if r.backup_server_id else None): (int(r.backups), int(r.storage_kb),
                                                                    float(r.storage_gib))
        for r in report.itertuples()
    }
    want = {
        (None if pd.isna(k) else int(k)): (int(v["count"]), int(v["sum"]), v["sum"] / 1024**2)
        for k, v in by_server.iterrows()
    }
    assert got.keys() == want.keys() and None in got  # some backups sit on no backup server
    for key, (count, kb, gib) in want.items():
        assert got[key][:2] == (count, kb)
        assert got[key][2] == pytest.approx(gib, abs=0.0005)  # rounded to 3 decimals

    by_user = served.groupby("owner_user_id")["backup_size"].agg(["count", "sum"])
    users = harness.csv("storage_by_user").set_index("user_id")
    assert {int(k): (int(r.backups), int(r.storage_kb)) for k, r in users.iterrows()} == {
        int(k): (int(v["count"]), int(v["sum"])) for k, v in by_user.iterrows()
    }
    logins = {int(u["id"]): u["login"] for u in harness.cloud.fleet.users.values()}
    for user_id, row in users.iterrows():
        assert row["user_login"].lstrip("'") == logins[int(user_id)]
    labels = harness.csv("storage_by_backup_server")
    assert labels.loc[labels["backup_server_id"] != "", "backup_server_label"].str.len().min() > 0


def test_reports_stay_unlabelled_when_admin_lists_are_refused(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, admin_refused=True))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    assert harness.run().success
    assert set(harness.csv("storage_by_user")["user_login"]) == {""}
    assert set(harness.csv("storage_by_backup_server")["backup_server_label"]) == {""}
    assert harness.csv("storage_by_user")["backups"].astype(int).sum() == len(served_backups(cloud))


def test_csv_cells_that_look_like_formulas_are_neutralized(harness):
    cloud = harness.cloud
    user = next(iter(cloud.fleet.users.values()))
    user["login"] = "=HYPERLINK(\"http://evil\")"
    server = next(iter(cloud.fleet.backup_servers.values()))
    server["label"] = "@SUM(A1)"
    assert harness.run().success
    text = (harness.reports_dir / "storage_by_user.csv").read_text()
    server_text = (harness.reports_dir / "storage_by_backup_server.csv").read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text
    assert "'@SUM(A1)" in server_text
    # The warehouse keeps the value as the API sent it; only the export is neutralized.
    assert harness.query("SELECT login FROM users WHERE id = ?", [user["id"]])["login"][0] == user["login"]


def test_vm_list_that_cannot_be_read_records_a_failed_sync(harness):
    assert harness.run().success
    before = current_backups(harness)
    harness.cloud.config = dataclasses.replace(harness.cloud.config, fail_5xx_fraction=1.0)
    result = harness.run(retries=1)
    assert not result.success
    assert "VM list could not be read" in run_failure_text(result)
    pd.testing.assert_frame_equal(before, current_backups(harness))
    runs = harness.query("SELECT status FROM sync_runs ORDER BY started_at")
    assert list(runs["status"]) == ["ok", "failed"]


def test_too_many_failing_vms_load_nothing(harness):
    assert harness.run().success
    before = current_backups(harness)
    all_vms = frozenset(harness.cloud.fleet.vms)
    harness.cloud.fleet.delete_backup(before["id"][0])
    harness.cloud.config = dataclasses.replace(harness.cloud.config, failing_vm_ids=all_vms)
    result = harness.run(retries=0)
    assert not result.success
    pd.testing.assert_frame_equal(before, current_backups(harness))
    last = harness.query("SELECT status, vms_failed, message FROM sync_runs ORDER BY started_at DESC LIMIT 1")
    assert last["status"][0] == "failed" and last["vms_failed"][0] == len(all_vms)
    assert "nothing loaded" in last["message"][0]


def test_a_warehouse_refuses_a_second_source(make_cloud, tmp_path):
    first, second = make_cloud(), make_cloud()
    harness = SyncHarness(first, tmp_path / "w.duckdb", tmp_path / "r")
    assert harness.run().success
    result = harness.run(url=second.url)
    assert not result.success
    message = run_failure_text(result)
    assert first.url in message and second.url in message and "BACKUPS_DB" in message
    # The VM list, users and backup servers pages; no backup list was fetched.
    assert second.stats["requests"] <= 3


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        # Each is a record that cannot be trusted; the rest of the sync must still load.
        ({"backup_size": "lots"}, "backup_size is not a valid int"),
        ({"backup_size": -5}, "negative backup_size"),
        ({"created_at": "yesterday-ish"}, "created_at is not a valid timestamp"),
        ({"id": None}, "no id"),
        ({"id": "abc"}, "id is not a valid int"),
    ],
)
def test_untrustworthy_records_are_set_aside_with_their_reason(harness, fields, reason):
    cloud = harness.cloud
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    cloud.fleet.update_backup(cloud.fleet.backups_of(vm_id)[0]["id"], **fields)
    result = harness.run()
    assert result.success, run_failure_text(result)
    rejects = harness.query("SELECT virtual_machine_id, reason, raw_record FROM backup_rejects")
    assert rejects[["virtual_machine_id", "reason"]].to_dict("records") == [
        {"virtual_machine_id": vm_id, "reason": reason}
    ]
    loaded = harness.query("SELECT count(*) AS n FROM backups")["n"][0]
    assert loaded == len(served_backups_safe(cloud)) - 1
    assert harness.query("SELECT status, rejected FROM sync_runs")[["status", "rejected"]].iloc[0].tolist() == [
        "partial", 1
    ]


def served_backups_safe(cloud) -> list:
    return [b for vm in cloud.fleet.vms for b in cloud.fleet.backups_of(vm)]


@pytest.mark.parametrize("api_format", ["json", "xml"])
def test_fields_the_schema_does_not_name_are_kept_in_extra(harness, api_format):
    cloud = harness.cloud
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    backup_id = cloud.fleet.backups_of(vm_id)[0]["id"]
    # A field from an API version newer than the schema.
    cloud.fleet.update_backup(backup_id, storage_policy="gold")
    assert harness.run(api_format=api_format).success
    extra = harness.query("SELECT id, extra->>'storage_policy' AS policy, extra->>'compatible' AS compatible "
                          "FROM backups").set_index("id")
    assert extra.loc[backup_id, "policy"] == "gold"
    compatible = {b["id"] for vm in cloud.fleet.vms for b in cloud.fleet.backups_of(vm) if "compatible" in b}
    assert compatible and set(extra.index[extra["compatible"].notna()]) == compatible
    assert extra.loc[list(set(extra.index) - compatible - {backup_id}), "policy"].isna().all()
