"""A whole sync through a hostile VM list: an unusable list fails clearly, loads nothing; unusable ids are left out."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tests.conftest import SMALL_FLEET, SyncHarness, run_failure_text, served_backups
from tests.onapp.hostile_api import Crafted, HostileApi, json_list

VM_LIST = "/virtual_machines.json"


@pytest.fixture
def hostile_cloud(make_cloud):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, vms=12))
    api = HostileApi(cloud).start()
    yield cloud, api
    api.stop()


def first_page_only(records: list[dict], headers: dict[str, str] | None = None):
    def answer(query: dict) -> Crafted:
        body = json_list("virtual_machine", records if query.get("page", ["1"])[0] == "1" else [])
        return Crafted(headers={"Content-Type": "application/json", **(headers or {})}, body=body)
    return answer


@pytest.mark.parametrize(("answer", "told"), [
    (Crafted(body=json_list("virtual_machine", [{"id": 1, "label": "x" * 2 * 2**20}])), "response too large"),
    (first_page_only([{"id": 1}], {"X-Total": "abc"}), "malformed X-Total header at http://"),
    (Crafted(body=b"[" * 100_000 + b"]" * 100_000), "nested deeper than 32 levels"),
])
def test_an_unusable_vm_list_fails_the_sync_clearly_and_loads_nothing(hostile_cloud, tmp_path, answer, told):
    cloud, api = hostile_cloud
    api.answers[VM_LIST] = answer
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run(url=api.url, max_response_mb=1, retries=0)
    assert not result.success and told in run_failure_text(result)
    ledger = harness.query("SELECT status, message FROM sync_runs")
    assert ledger["status"].tolist() == ["failed"] and told in ledger["message"][0]
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] == 0
    assert not [path for path in api.seen if path.startswith("/virtual_machines/")]


def test_vm_entries_with_unusable_ids_are_left_out_and_never_asked_for(hostile_cloud, tmp_path):
    cloud, api = hostile_cloud
    listed = [dict(vm) for vm in cloud.fleet.vms.values()]
    unusable = [{**listed[0], "id": True}, {**listed[1], "id": 2**70}, {**listed[2], "id": "7; DROP"},
                {**listed[3], "id": -4}, {**listed[4], "id": None}]
    api.answers[VM_LIST] = first_page_only(listed + unusable)
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run(url=api.url)
    assert result.success, run_failure_text(result)
    assert harness.query("SELECT id FROM virtual_machines ORDER BY id")["id"].tolist() == sorted(cloud.fleet.vms)
    asked = {path for path in api.seen if path.startswith("/virtual_machines/")}
    assert asked == {f"/virtual_machines/{vm_id}/backups/images.json" for vm_id in cloud.fleet.vms}
    served = served_backups(cloud).sort_values("id").reset_index(drop=True)
    loaded = harness.query("SELECT id, backup_size FROM backups WHERE deleted_at IS NULL ORDER BY id")
    pd.testing.assert_frame_equal(loaded, served[["id", "backup_size"]], check_dtype=False)
