"""What the API steps' materializations tell: counts, retries, duration, previews, and which VM failed why."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import SMALL_FLEET, SyncHarness, materialized_metadata, run_failure_text


metadata = materialized_metadata


def cells(markdown: str) -> set[str]:
    return {cell.strip() for line in markdown.splitlines() for cell in line.split("|")}


@pytest.fixture
def troubled(make_cloud, tmp_path):
    """A sync where one VM answers 500 and some VMs answer 404 (deleted meanwhile)."""
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, vanish_fraction=0.1))
    failing = next(vm for vm in sorted(cloud.fleet.vms) if vm not in cloud.vanished_vm_ids())
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset({failing}))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run()
    assert result.success, run_failure_text(result)
    return cloud, failing, result


def test_the_vm_list_materialization_carries_counts_duration_and_a_preview(troubled):
    cloud, _, result = troubled
    found = metadata(result, "vm_list")
    assert found["rows"] == len(cloud.fleet.vms)
    assert found["requests"] >= 1 and found["retries"] == 0 and found["attempt"] == 1
    assert isinstance(found["duration_s"], float)
    some_vm = cloud.fleet.vms[min(cloud.fleet.vms)]
    assert {str(some_vm["id"]), some_vm["label"]} <= cells(found["preview"])


def test_the_backup_lists_materialization_names_each_failed_vm_and_its_reason(troubled):
    cloud, failing, result = troubled
    vanished = cloud.vanished_vm_ids()
    found = metadata(result, "backup_lists")
    assert vanished and failing not in vanished
    assert (found["vms"], found["failed"], found["vanished"]) == (len(cloud.fleet.vms), 1, len(vanished))
    assert found["fetched"] == len(cloud.fleet.vms) - 1 - len(vanished)
    fetched = set(cloud.fleet.vms) - vanished - {failing}
    assert found["rows"] == sum(len(cloud.fleet.backups_of(vm)) for vm in fetched)
    # The harness's client retries each request 4 times: the failing VM used them all.
    assert found["retries"] >= 4
    assert isinstance(found["duration_s"], float)
    failed_rows = [line for line in found["failed_vms"].splitlines() if f" {failing} " in f" {line} "]
    assert len(failed_rows) == 1 and "500" in failed_rows[0] and "http_500" in failed_rows[0]
    # The preview leads with the VMs that did not answer.
    preview_rows = [line.split("|")[1:3] for line in found["preview"].splitlines()[2:]]
    assert len(preview_rows) == 10
    leading = {(int(vm), status.strip()) for vm, status in preview_rows[: 1 + len(vanished)]}
    assert leading == {(failing, "failed")} | {(vm, "vanished") for vm in vanished}


def test_the_metadata_carries_no_secret(troubled):
    cloud, _, result = troubled
    secrets = cloud.fleet.secrets() | {cloud.config.api_key}
    assets = ("vm_list", "backup_lists", "sync_runs", "backups")
    text = "\n".join(str(metadata(result, asset)) for asset in assets)
    assert [secret for secret in secrets if secret in text] == []
    # The effective settings are shown, the key is not.
    settings = metadata(result, "vm_list")["settings"]
    assert "max_concurrency" in settings and "api_key" not in settings


def test_the_frame_the_table_and_the_reports_carry_rows_duration_and_a_preview(troubled):
    cloud, failing, result = troubled
    vanished = cloud.vanished_vm_ids()
    fetched = set(cloud.fleet.vms) - vanished - {failing}
    loaded = sum(len(cloud.fleet.backups_of(vm)) for vm in fetched)

    frame = metadata(result, "backup_lists")
    assert frame["rows"] == loaded and frame["rejected"] == 0
    # The preview shows staged rows: ten of the backups that were fetched, ids ascending.
    served = {b["id"] for vm in fetched for b in cloud.fleet.backups_of(vm)}
    shown = [int(line.split("|")[1]) for line in frame["backups_preview"].splitlines()[2:]]
    assert len(shown) == min(10, loaded) and set(shown) <= served and shown == sorted(shown)

    assert metadata(result, "backups")["dagster/row_count"] == loaded
    table = metadata(result, "sync_runs")
    assert (table["dagster/row_count"], table["backups_seen"]) == (1, loaded)
    assert (table["vms_fetched"], table["vms_failed"], table["vms_vanished"]) == (len(fetched), 1, len(vanished))
    assert table["status"] == "partial" and table["retries"] >= 4
    assert {"status", "partial", "vms_failed"} <= cells(table["preview"])

    assert isinstance(frame["duration_s"], float) and isinstance(table["duration_s"], float)
    report = metadata(result, "storage_by_user")
    assert isinstance(report["duration_s"], float) and report["rows"] > 0 and "user_id" in report["preview"]
