"""A whole sync through a hostile API: each hostile backup list is its VM's problem; the sync loads the rest."""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
import pandas as pd
import pytest

from tests.conftest import ALL_ASSETS, NO_STEP_RETRIES, SMALL_FLEET, SyncHarness, run_failure_text, served_backups
from tests.onapp.hostile_api import Crafted, HostileApi, gzip_bomb, json_list

ABOVE_FLOAT = 2**53
SECRETS = {"apiKey": "sekrit-1", "privateKey": "sekrit-2", "passphrase": "sekrit-3", "pwd": "sekrit-4",
           "pass": "sekrit-5", "ssh_keys": ["sekrit-6"], "otp_seed": "sekrit-7", "initial_root_password": "sekrit-8",
           "remote_access_password": "sekrit-9"}


def path(vm_id: int, fmt: str = "json") -> str:
    return f"/virtual_machines/{vm_id}/backups/images.{fmt}"


def nested(depth: int) -> bytes:
    return b'[{"backup":{"id":9000001,"backup_size":1,"x":' + b"[" * depth + b"]" * depth + b"}}]"


@pytest.fixture
def hostile_cloud(make_cloud):
    cloud = make_cloud(SMALL_FLEET)
    api = HostileApi(cloud).start()
    yield cloud, api
    api.stop()


def sync(harness: SyncHarness, api: HostileApi, **options: object) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """Materialize every asset through the hostile API; also return every log line of the run."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(ALL_ASSETS, resources=harness.resources(url=api.url, **options),
                                run_config=NO_STEP_RETRIES, raise_on_error=False, instance=instance)
        lines = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, lines


def every_text(db_path) -> str:
    """Every value of every table of the warehouse, as text."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return "\n".join(con.execute(f'SELECT * FROM "{table}"').df().astype(str).to_csv() for table in tables)


def test_hostile_backup_lists_fail_their_vm_and_the_night_goes_on(hostile_cloud, tmp_path):
    cloud, api = hostile_cloud
    api.answers.update({
        path(3): Crafted(body=json_list("backup", [{"id": 9000003, "backup_size": 1, "note": "x" * 3 * 2**20}])),
        path(4): Crafted(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                         body=gzip_bomb(2 * 2**30)),
        path(5): Crafted(body=nested(900)),
        path(6): Crafted(body=nested(100_000)),
        path(7): Crafted(body=b'{"backup": {"id": 9000007, "backup_size": 1}}'),
        path(8): Crafted(body=json_list("backup", [{"id": 9000008, "backup_size": 1}]), trickle=1.0),
        path(9): Crafted(status=302, headers={"Location": f"{cloud.url}{path(9)}"}, body=b""),
        path(10): Crafted(status=500, body=b'{"error": "boom\n2026-01-01 INFO sync ok \x1b[2J", "password": 12345678}'),
        path(11): Crafted(body=json_list("backup", [{"id": 9000011, "backup_size": 1, "note": "a\ud800"},
                                                    {"id": 9000012, "backup_size": 5, "note": "fine"}])),
        path(12): Crafted(body=json_list("backup", [
            {"id": ABOVE_FLOAT + 1, "backup_size": 1}, {"id": ABOVE_FLOAT + 2, "backup_size": 2},
            {"id": 2**70, "backup_size": 3}, {"id": True, "backup_size": 4}])),
        path(13): Crafted(body=json_list("backup", [
            {"id": 9000013, "backup_size": 1, "monkey": "kept", **SECRETS, "meta": {"deeper": [dict(SECRETS)]}},
            {"id": 9000014, "backup_size": "many", **SECRETS}])),
    })
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result, lines = sync(harness, api, max_response_mb=1, request_deadline=1.0, read_timeout=5.0, retries=1)
    assert result.success, run_failure_text(result)

    errors = harness.query("SELECT virtual_machine_id AS vm, http_status, error_kind, message FROM sync_vm_errors "
                           "ORDER BY vm").set_index("vm")
    assert errors["error_kind"].to_dict() == {
        3: "too_large", 4: "too_large", 5: "bad_payload", 6: "bad_payload", 7: "bad_payload", 8: "timeout",
        9: "redirect", 10: "http_500"}
    messages = errors["message"].to_dict()
    assert messages[3].startswith("response too large") and messages[4].startswith("response too large")
    assert "nested deeper than 32 levels" in messages[5] and "nested deeper than 32 levels" in messages[6]
    assert "expected a JSON array" in messages[7] and "request deadline" in messages[8]
    assert messages[9].startswith("redirect to another origin")
    assert "12345678" not in messages[10] and "[redacted]" in messages[10]
    assert "\n" not in messages[10] and "\x1b" not in messages[10] and "boom\\n2026-01-01" in messages[10]

    # Every other VM is loaded exactly as served.
    hostile_vms = set(range(3, 14))
    served = served_backups(cloud)
    served = served[~served["virtual_machine_id"].isin(hostile_vms)].sort_values("id").reset_index(drop=True)
    loaded = harness.query("SELECT id, backup_size FROM backups WHERE deleted_at IS NULL AND virtual_machine_id "
                           "NOT IN (3,4,5,6,7,8,9,10,11,12,13) ORDER BY id")
    pd.testing.assert_frame_equal(loaded, served[["id", "backup_size"]], check_dtype=False)

    # Records that cannot be trusted are set aside with their reason; their VM's other records load.
    kept = harness.query("SELECT id, virtual_machine_id AS vm, extra FROM backups WHERE virtual_machine_id IN "
                         "(11, 12, 13) ORDER BY id")
    assert kept["id"].tolist() == [9000012, 9000013, ABOVE_FLOAT + 1, ABOVE_FLOAT + 2]
    rejects = harness.query("SELECT virtual_machine_id AS vm, backup_id, reason, raw_record FROM backup_rejects "
                            "ORDER BY vm, reason")
    assert rejects[["vm", "reason"]].values.tolist() == [
        [11, "note is not valid text (lone surrogate)"], [12, "id is not a valid int"],
        [12, "id is out of range (BIGINT)"], [13, "backup_size is not a valid int"]]

    # No secret by any spelling is stored anywhere, logged, or told.
    assert "kept" in kept.loc[kept["id"] == 9000013, "extra"].iloc[0]
    assert "sekrit" not in every_text(harness.db_path)
    assert not [line for line in lines if "sekrit" in line or "12345678" in line]
    told = [line for line in lines if line.startswith("VM 10:")]
    assert told and all("\n" not in line and "\x1b" not in line for line in told)


def test_xml_nested_5000_deep_fails_its_vm_and_the_rest_loads(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, vms=12))
    api = HostileApi(cloud).start()
    try:
        deep = b"<x>" * 5000 + b"</x>" * 5000
        api.answers[path(2, "xml")] = Crafted(
            headers={"Content-Type": "application/xml"},
            body=b'<backups type="array"><backup><id type="integer">9000002</id>' + deep + b"</backup></backups>")
        harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
        result, _ = sync(harness, api, api_format="xml", retries=1)
    finally:
        api.stop()
    assert result.success, run_failure_text(result)
    errors = harness.query("SELECT virtual_machine_id, error_kind, message FROM sync_vm_errors")
    assert errors[["virtual_machine_id", "error_kind"]].values.tolist() == [[2, "bad_payload"]]
    assert "nested deeper than 32 levels" in errors["message"][0]
    served = served_backups(cloud)
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] == (served["virtual_machine_id"] != 2).sum()
