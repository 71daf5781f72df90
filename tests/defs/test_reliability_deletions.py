"""A sync that would mark too many backups deleted loads nothing, until BACKUPS_MAX_DELETED_FRACTION allows it."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.defs.resources import WarehouseResource
from pipeline.defs.settings import build_resources
from tests.conftest import ALL_ASSETS, NO_STEP_RETRIES, SyncHarness, run_failure_text, served_backups, table_contents


def sync(harness: SyncHarness, **warehouse: object) -> dg.ExecuteInProcessResult:
    """One run of every asset, with the warehouse's settings as given (the rest as the harness has them)."""
    resources = harness.resources()
    resources["warehouse"] = WarehouseResource(path=str(harness.db_path), **warehouse)
    return dg.materialize(ALL_ASSETS, resources=resources, run_config=NO_STEP_RETRIES, raise_on_error=False)


def current_ids(harness: SyncHarness) -> list[int]:
    return harness.query("SELECT id FROM backups WHERE deleted_at IS NULL ORDER BY id")["id"].tolist()


def test_a_cloud_that_suddenly_lists_a_fraction_loads_nothing_until_allowed(harness):
    cloud = harness.cloud
    assert sync(harness).success
    listed = current_ids(harness)
    before = table_contents(harness.db_path)
    # The API now lists a quarter of the VMs: three quarters of the backups would be marked deleted.
    vm_ids = sorted(cloud.fleet.vms)
    for vm_id in vm_ids[: len(vm_ids) * 3 // 4]:
        cloud.fleet.delete_vm(vm_id)
    gone = len(listed) - len(served_backups(cloud))
    assert gone / len(listed) > 0.3

    refused = sync(harness)
    assert not refused.success
    failure = run_failure_text(refused)
    assert f"{gone} of {len(listed)} current backups would be marked deleted" in failure
    assert "BACKUPS_MAX_DELETED_FRACTION" in failure
    ledger = harness.query("SELECT status, message, backups_deleted FROM sync_runs ORDER BY started_at")
    assert ledger["status"].tolist() == ["ok", "failed"] and ledger["backups_deleted"][1] == 0
    assert f"{gone} of {len(listed)}" in ledger["message"][1] and "BACKUPS_MAX_DELETED_FRACTION" in ledger["message"][1]
    after = table_contents(harness.db_path)
    for table in ("backups", "backup_versions", "storage_history", "virtual_machines", "users", "backup_servers"):
        assert after[table].equals(before[table]), table

    # The deletion is real: one run with the guard at 1 accepts it.
    accepted = sync(harness, max_deleted_fraction=1.0)
    assert accepted.success, run_failure_text(accepted)
    assert current_ids(harness) == sorted(served_backups(cloud)["id"].tolist())
    last = harness.query("SELECT status, backups_deleted FROM sync_runs ORDER BY started_at DESC LIMIT 1")
    assert (last["status"][0], last["backups_deleted"][0]) == ("ok", gone)


def test_deletions_within_the_limit_load(harness):
    cloud = harness.cloud
    assert sync(harness).success
    listed = current_ids(harness)
    vm_ids = sorted(cloud.fleet.vms)
    for vm_id in vm_ids[: len(vm_ids) // 5]:
        cloud.fleet.delete_vm(vm_id)
    assert (len(listed) - len(served_backups(cloud))) / len(listed) <= 0.3
    result = sync(harness)
    assert result.success, run_failure_text(result)
    assert current_ids(harness) == sorted(served_backups(cloud)["id"].tolist())


def test_the_variable_is_a_bounded_fraction_with_a_default_of_0_3():
    resources = build_resources({"ONAPP_API_URL": "https://cp.example.com"})
    assert resources["warehouse"].max_deleted_fraction == 0.3
    assert build_resources({"ONAPP_API_URL": "https://cp.example.com", "BACKUPS_MAX_DELETED_FRACTION": "1"}
                           )["warehouse"].max_deleted_fraction == 1.0
    for bad in ("1.5", "-0.1", "most"):
        with pytest.raises(ValueError, match="BACKUPS_MAX_DELETED_FRACTION"):
            build_resources({"ONAPP_API_URL": "https://cp.example.com", "BACKUPS_MAX_DELETED_FRACTION": bad})
