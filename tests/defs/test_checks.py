"""The asset checks, run by Dagster against warehouses filled by real syncs of the demo cloud."""

from __future__ import annotations

import dataclasses
from collections import Counter

import dagster as dg
import duckdb
import pytest

from pipeline.defs.checks import (
    backup_ids_unique,
    backup_sizes_not_negative,
    failed_vms_under_threshold,
    last_sync_fresh,
    no_backup_anomalies,
    no_protection_gaps,
    storage_swing_per_backup_server,
)
from tests.conftest import SyncHarness, check_results, materialize_with_checks, run_failure_text
from tests.defs.alerting_cloud import make_trouble, tidy
from tests.reports import two_clouds
from tests.reports.history import history, utc


def metadata(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {key: value.value for key, value in evaluation.metadata.items()}


def cells(markdown: str) -> set[str]:
    """The cell values of a markdown table."""
    return {cell.strip() for line in markdown.splitlines() for cell in line.split("|")}


def tamper(harness: SyncHarness, *statements: tuple[str, list]) -> None:
    """Write into the warehouse behind the sync's back, as a bug or another tool could."""
    with duckdb.connect(str(harness.db_path)) as con:
        for sql, params in statements:
            con.execute(sql, params)


def run_check(harness: SyncHarness, check: dg.AssetCheckKey, **kwargs) -> dg.AssetCheckEvaluation:
    result = materialize_with_checks(harness, selection=dg.AssetSelection.checks(check), **kwargs)
    assert result.get_asset_materialization_events() == []  # the check alone: no sync ran
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_two_clean_syncs_pass_every_check(harness):
    tidy(harness.cloud)  # the demo fleet's backups are old and of any size: gaps and anomalies everywhere
    first = materialize_with_checks(harness)
    second = materialize_with_checks(harness)
    assert first.success and second.success, run_failure_text(second)
    results = check_results(second)
    assert set(results) == {
        "backup_ids_unique", "backup_sizes_not_negative", "failed_vms_under_threshold",
        "no_rejected_records", "storage_swing_per_backup_server", "last_sync_fresh",
        "no_protection_gaps", "no_backup_anomalies",
    }
    assert all(evaluation.passed for evaluation in results.values())
    # The second sync had a previous one to compare with, server by server.
    assert metadata(results["storage_swing_per_backup_server"])["backup_servers"] == len(
        {b["backup_server_id"] for vm in harness.cloud.fleet.vms for b in harness.cloud.fleet.backups_of(vm)}
    )


def test_a_negative_size_fails_the_blocking_check_and_holds_back_the_reports(harness):
    cloud = harness.cloud
    assert harness.run().success
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    backup_id = cloud.fleet.backups_of(vm_id)[0]["id"]
    tamper(harness, ("UPDATE backups SET backup_size = -1 WHERE id = ?", [backup_id]))
    # The VM's list cannot be read, so the sync keeps its rows as they are, bad size included.
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset({vm_id}))

    result = materialize_with_checks(harness)
    assert not result.success
    check = check_results(result)["backup_sizes_not_negative"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert metadata(check)["negative_sizes"] == 1 and str(backup_id) in cells(metadata(check)["backups"])
    assert "backups" in materialized(result)
    assert not {"storage_by_user", "storage_by_backup_server", "alerts"} & materialized(result)

    # Once the VM answers again, the sync overwrites the bad row and everything runs.
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset())
    repaired = materialize_with_checks(harness)
    assert repaired.success, run_failure_text(repaired)
    assert check_results(repaired)["backup_sizes_not_negative"].passed
    assert {"storage_by_user", "storage_by_backup_server", "alerts"} <= materialized(repaired)


@pytest.mark.parametrize(
    ("copy_deleted", "passes"),
    [
        # Two current rows with one id: the reports would count that backup twice.
        (False, False),
        # A deleted copy is history, not a second backup: only current rows count.
        (True, True),
    ],
)
def test_duplicate_backup_ids_fail_the_check(harness, copy_deleted, passes):
    assert harness.run().success
    [(backup_id,)] = harness.query("SELECT min(id) FROM backups").itertuples(index=False)
    # DuckDB's primary key forbids duplicates; a warehouse without enforced keys (DuckLake) does not.
    tamper(
        harness,
        ("CREATE TABLE backups_without_key AS SELECT * FROM backups", []),
        ("DROP TABLE backups", []),
        ("ALTER TABLE backups_without_key RENAME TO backups", []),
        ("INSERT INTO backups SELECT * REPLACE (CASE WHEN ? THEN now() END AS deleted_at) FROM backups "
         "WHERE id = ?", [copy_deleted, backup_id]),
    )
    check = run_check(harness, backup_ids_unique)
    assert check.passed is passes
    assert metadata(check)["duplicate_ids"] == (0 if passes else 1)
    if not passes:
        assert str(backup_id) in cells(metadata(check)["duplicates"])


def test_many_failed_vms_fail_the_check_at_the_configured_threshold(harness):
    cloud = harness.cloud
    assert harness.run().success
    failing = sorted(cloud.fleet.vms)[:10]  # a quarter of the fleet
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset(failing))

    result = materialize_with_checks(harness, max_failed_fraction=0.5)
    assert result.success, run_failure_text(result)
    assert check_results(result)["failed_vms_under_threshold"].passed

    strict = run_check(harness, failed_vms_under_threshold, max_failed_fraction=0.2)
    assert not strict.passed and strict.severity == dg.AssetCheckSeverity.ERROR
    found = metadata(strict)
    assert (found["vms_listed"], found["vms_failed"], found["failed_fraction"]) == (40, 10, 0.25)
    assert found["max_failed_fraction"] == 0.2
    assert {str(vm_id) for vm_id in failing} <= cells(found["failed_vms"])


def test_a_sync_where_every_vm_failed_fails_the_check(harness):
    cloud = harness.cloud
    assert harness.run().success
    cloud.config = dataclasses.replace(cloud.config, failing_vm_ids=frozenset(cloud.fleet.vms))
    assert not harness.run(retries=0).success  # the writer refused to load it

    check = run_check(harness, failed_vms_under_threshold)
    assert not check.passed
    assert metadata(check)["status"] == "failed" and metadata(check)["failed_fraction"] == 1.0


def test_rejected_records_warn_without_stopping_the_reports(harness):
    cloud = harness.cloud
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    cloud.fleet.update_backup(cloud.fleet.backups_of(vm_id)[0]["id"], backup_size="lots")

    result = materialize_with_checks(harness)
    assert result.success, run_failure_text(result)
    check = check_results(result)["no_rejected_records"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert metadata(check)["rejected"] == 1
    assert "backup_size is not a valid int" in metadata(check)["rejects"]
    assert {"storage_by_user", "storage_by_backup_server"} <= materialized(result)


def test_protection_gaps_and_anomalies_warn_naming_the_vms_and_backups(harness):
    tidy(harness.cloud)
    trouble = make_trouble(harness.cloud)
    result = materialize_with_checks(harness)
    assert result.success, run_failure_text(result)  # warnings: the reports still run
    assert {"protection_gaps", "backup_anomalies"} <= materialized(result)
    results = check_results(result)

    gaps = results["no_protection_gaps"]
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    vm = trouble.vm_without_backups
    assert gaps.description.startswith(f"1 VM not protected: {vm} (") and gaps.description.endswith(": no backups)")
    found = metadata(gaps)
    assert (found["vms"], found["virtual_machine_ids"]) == (1, str(vm)) and str(vm) in cells(found["gaps"])

    odd = results["no_backup_anomalies"]
    assert not odd.passed and odd.severity == dg.AssetCheckSeverity.WARN
    assert odd.description == (f"1 backup far from the VM's usual size: backup {trouble.huge_backup} of VM "
                               f"{trouble.vm_with_huge_backup} (50.0 times the median)")
    found = metadata(odd)
    assert (found["backups"], found["backup_ids"], found["virtual_machine_ids"]) == (
        1, str(trouble.huge_backup), str(trouble.vm_with_huge_backup))
    assert str(trouble.huge_backup) in cells(found["anomalies"])


def test_many_gaps_are_named_in_part_and_counted_in_full(harness):
    # The demo fleet as it comes: every VM's newest backup is months old.
    result = materialize_with_checks(harness)
    gaps = check_results(result)["no_protection_gaps"]
    vms = len(harness.cloud.fleet.vms)
    assert not gaps.passed and metadata(gaps)["vms"] == vms
    assert gaps.description.startswith(f"{vms} VMs not protected: 1 (") and gaps.description.endswith(
        f" and {vms - 10} more")
    assert metadata(gaps)["virtual_machine_ids"] == ", ".join(str(vm) for vm in sorted(harness.cloud.fleet.vms))


def _busiest_server(cloud) -> int:
    servers = Counter(
        b["backup_server_id"] for vm in cloud.fleet.vms for b in cloud.fleet.backups_of(vm)
        if b["backup_server_id"] is not None
    )
    return servers.most_common(1)[0][0]


@pytest.mark.parametrize(
    ("factor", "max_swing_pct", "passes"),
    [
        # Ordinary growth stays under the default 30 %.
        (1.1, None, True),
        # Twice the storage since yesterday: a swing worth a look.
        (2.0, None, False),
        # Half of it gone (a purge, a lost server): a swing the other way.
        (0.5, None, False),
        # The same doubling passes once BACKUPS_MAX_SWING_PCT allows it.
        (2.0, 150.0, True),
    ],
)
def test_a_storage_swing_on_one_backup_server_warns(harness, factor, max_swing_pct, passes):
    cloud = harness.cloud
    assert harness.run().success
    server = _busiest_server(cloud)
    for vm_id in cloud.fleet.vms:
        for backup in cloud.fleet.backups_of(vm_id):
            if backup["backup_server_id"] == server:
                cloud.fleet.update_backup(backup["id"], backup_size=int(int(backup["backup_size"]) * factor))

    result = materialize_with_checks(harness, **({} if max_swing_pct is None else {"max_swing_pct": max_swing_pct}))
    assert result.success, run_failure_text(result)
    check = check_results(result)["storage_swing_per_backup_server"]
    assert check.passed is passes and check.severity == dg.AssetCheckSeverity.WARN
    found = metadata(check)
    assert found["swung"] == (0 if passes else 1)
    if not passes:
        assert str(server) in cells(found["swings"])


def test_a_stale_warehouse_fails_the_freshness_check(harness):
    assert harness.run().success
    tamper(harness, (
        "UPDATE sync_runs SET started_at = started_at - INTERVAL 30 HOUR, "
        "finished_at = finished_at - INTERVAL 30 HOUR", [],
    ))
    stale = run_check(harness, last_sync_fresh)
    assert not stale.passed and metadata(stale)["max_age_hours"] == 26.0

    # A newer sync that loaded nothing does not make the data fresh.
    harness.cloud.config = dataclasses.replace(harness.cloud.config, failing_vm_ids=frozenset(harness.cloud.fleet.vms))
    assert not harness.run(retries=0).success
    assert not run_check(harness, last_sync_fresh).passed

    assert run_check(harness, last_sync_fresh, max_age_hours=48.0).passed


def test_a_warehouse_without_a_loaded_sync_is_not_fresh(harness):
    harness.cloud.config = dataclasses.replace(harness.cloud.config, failing_vm_ids=frozenset(harness.cloud.fleet.vms))
    assert not harness.run(retries=0).success
    check = run_check(harness, last_sync_fresh)
    assert not check.passed and metadata(check)["last_loaded_sync"] == "none"


def test_a_check_before_any_sync_names_the_missing_warehouse(harness):
    result = materialize_with_checks(harness, selection=dg.AssetSelection.checks(backup_ids_unique))
    assert not result.success
    assert f"no warehouse at {harness.db_path}" in run_failure_text(result)
    assert not harness.db_path.exists()  # a read-only check creates nothing


# --- several clouds: ids repeat across clouds, and each cloud syncs on its own -------------------


def _two_clouds(harness: SyncHarness) -> None:
    """The warehouse of tests/reports/two_clouds.py at the harness's path: eu and us both have a backup 6117,
    a VM 12, a user 1 and a backup server 1."""
    with history(harness.db_path) as h:
        two_clouds.fill(h)


def _ledger(harness: SyncHarness, *rows: tuple) -> None:
    """Ledger rows (cloud, run_id, finished_at, status, vms_listed, vms_failed) written behind the sync's back."""
    tamper(harness, *((
        "INSERT INTO sync_runs (cloud, run_id, started_at, finished_at, source_url, format, status, vms_listed, "
        "vms_failed) VALUES (?, ?, CAST(? AS TIMESTAMPTZ) - INTERVAL 5 MINUTE, ?, 's', 'json', ?, ?, ?)",
        [cloud, run_id, finished_at, finished_at, status, listed, failed],
    ) for cloud, run_id, finished_at, status, listed, failed in rows))


def test_the_same_backup_id_in_two_clouds_is_no_duplicate_but_twice_in_one_is(harness):
    _two_clouds(harness)
    assert run_check(harness, backup_ids_unique).passed
    tamper(
        harness,
        ("CREATE TABLE backups_without_key AS SELECT * FROM backups", []),
        ("DROP TABLE backups", []),
        ("ALTER TABLE backups_without_key RENAME TO backups", []),
        ("INSERT INTO backups SELECT * FROM backups WHERE cloud = 'us' AND id = 6117", []),
    )
    check = run_check(harness, backup_ids_unique)
    assert not check.passed and check.description == "1 backup id appearing twice: us: 6117"
    assert metadata(check)["duplicate_ids"] == 1 and {"us", "6117"} <= cells(metadata(check)["duplicates"])


def test_a_negative_size_is_named_with_its_cloud(harness):
    _two_clouds(harness)
    tamper(harness, ("UPDATE backups SET backup_size = -1 WHERE cloud = 'eu' AND id = 6118", []))
    check = run_check(harness, backup_sizes_not_negative)
    assert not check.passed and check.description == "1 backup with a negative size: eu: 6118"


def test_failed_vms_are_counted_in_every_cloud_of_the_last_run(harness):
    _two_clouds(harness)
    # The last run: eu finished last and fine; us, a moment before, lost half its VMs.
    _ledger(harness, ("us", "r9", "2030-01-01 02:00:00+00", "partial", 40, 20),
            ("eu", "r9", "2030-01-01 02:10:00+00", "ok", 40, 2))
    check = run_check(harness, failed_vms_under_threshold, max_failed_fraction=0.4)
    assert not check.passed and check.description == "over 0.4: us: 20 of 40 VMs failed"
    found = metadata(check)
    assert (found["run_id"], found["cloud"], found["vms_listed"], found["vms_failed"], found["failed_fraction"]) == (
        "r9", "us", 40, 20, 0.5)
    assert {"eu", "us", "0.05", "0.5"} <= cells(found["clouds"])
    assert run_check(harness, failed_vms_under_threshold, max_failed_fraction=0.5).passed


def test_a_cloud_that_failed_alone_is_left_to_every_cloud_synced_and_a_run_that_loaded_none_fails(harness):
    _two_clouds(harness)
    # us failed outright beside eu's loaded sync: its rows are as they were, and eu's reports must go out.
    _ledger(harness, ("eu", "r9", "2030-01-01 02:10:00+00", "ok", 40, 0),
            ("us", "r9", "2030-01-01 02:00:00+00", "failed", None, None))
    check = run_check(harness, failed_vms_under_threshold)
    assert check.passed and metadata(check)["cloud"] == "eu"
    assert {"us", "failed"} <= cells(metadata(check)["clouds"])
    # A run where no cloud loaded is judged whole, as one cloud's failed sync always was.
    _ledger(harness, ("eu", "r10", "2030-01-02 02:10:00+00", "failed", 40, 40),
            ("us", "r10", "2030-01-02 02:00:00+00", "failed", None, None))
    check = run_check(harness, failed_vms_under_threshold)
    assert not check.passed and check.description == "over 0.5: eu: 40 of 40 VMs failed, us: no VM listed (failed)"
    assert (metadata(check)["cloud"], metadata(check)["status"], metadata(check)["failed_fraction"]) == (
        "eu", "failed", 1.0)


def test_the_storage_swing_compares_each_server_with_its_own_cloud_previous_sync(harness):
    _two_clouds(harness)
    check = run_check(harness, storage_swing_per_backup_server, max_swing_pct=150.0)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    # eu's bs-1: 5 -> 13 GiB; us's: 60 -> 120 GiB, under 150%; us's backups on no server are new.
    assert check.description == ("2 backup servers moved more than 150.0%: eu: backup server 1 (+160.0%), "
                                 "us: no backup server (+inf%)")
    assert metadata(check)["backup_servers"] == 3 and metadata(check)["swung"] == 2


def test_a_cloud_with_one_loaded_sync_is_not_compared_but_the_others_are(harness):
    with history(harness.db_path) as h:
        for cloud, syncs in (("eu", 2), ("us", 1)):
            c = h.in_cloud(cloud)
            for k in range(syncs):
                c.snapshot(utc(2030, 1, 1 + k), "backup_server", 1, 100 * (k + 1), run_id=c.sync(utc(2030, 1, 1 + k)))
    check = run_check(harness, storage_swing_per_backup_server)
    assert not check.passed and check.description == "1 backup server moved more than 30.0%: eu: backup server 1 (+100.0%)"
    assert metadata(check)["backup_servers"] == 1


def _loaded_hours_ago(harness: SyncHarness, rows: tuple[tuple[str, str, int, str], ...]) -> None:
    tamper(harness, ("DELETE FROM sync_runs", []))
    tamper(harness, *((
        "INSERT INTO sync_runs (cloud, run_id, started_at, finished_at, source_url, format, status) "
        "VALUES (?, ?, now() - to_hours(?) - INTERVAL 5 MINUTE, now() - to_hours(?), 's', 'json', ?)",
        [cloud, run_id, hours, hours, status],
    ) for cloud, run_id, hours, status in rows))


def test_freshness_asks_every_cloud_for_its_latest_loaded_sync(harness):
    _two_clouds(harness)
    _loaded_hours_ago(harness, (
        ("eu", "r1", 1, "ok"),       # fresh
        ("us", "r0", 30, "ok"),      # loaded long ago...
        ("us", "r1", 1, "failed"),   # ... and not since
        ("ap", "r1", 1, "failed"),   # never loaded
    ))
    check = run_check(harness, last_sync_fresh)
    assert not check.passed
    assert check.description.startswith("not fresh: ap: no loaded sync, us: last loaded sync 30.")
    assert "eu" not in check.description
    assert metadata(check)["last_loaded_sync"] == "none"
    assert {"ap", "eu", "us"} <= cells(metadata(check)["clouds"])


def test_freshness_judges_the_configured_clouds_and_only_names_one_taken_out_of_the_file(harness):
    _two_clouds(harness)
    _loaded_hours_ago(harness, (("eu", "r1", 1, "ok"), ("us", "r0", 300, "ok")))
    # us was taken out of the clouds file: it is synced no more, and no longer stale.
    check = run_check(harness, last_sync_fresh, clouds=("eu",))
    assert check.passed
    assert metadata(check)["not_configured"] == "us: last loaded sync 300.0 hours ago"
    assert "us" not in cells(metadata(check)["clouds"])
    # Judged when configured, as before.
    assert not run_check(harness, last_sync_fresh, clouds=("eu", "us")).passed


def test_a_configured_cloud_the_ledger_has_never_seen_is_not_fresh(harness):
    _two_clouds(harness)
    _loaded_hours_ago(harness, (("eu", "r1", 1, "ok"),))
    check = run_check(harness, last_sync_fresh, clouds=("eu", "ap"))
    assert not check.passed and check.description == "not fresh: ap: no loaded sync"
    assert metadata(check)["last_loaded_sync"] == "none"


def test_gaps_and_anomalies_are_named_with_their_cloud(harness):
    _two_clouds(harness)
    gaps = run_check(harness, no_protection_gaps)
    assert gaps.description == "2 VMs not protected: eu: 13 (bare: no backups), us: 12 (app: no recent backup)"
    assert metadata(gaps)["virtual_machine_ids"] == "eu: 13, us: 12"
    odd = run_check(harness, no_backup_anomalies)
    assert odd.description == "1 backup far from the VM's usual size: eu: backup 6117 of VM 12 (10.0 times the median)"
    assert (metadata(odd)["backup_ids"], metadata(odd)["virtual_machine_ids"]) == ("eu: 6117", "eu: 12")
