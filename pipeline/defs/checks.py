"""The asset checks as two steps, one read-only connection each: the checks on the loaded backups, and the
checks on what the reports show (pipeline.defs.check_rules says what each finds)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from pipeline.defs.check_rules import (
    CheckSettings,
    check_backup_ids_unique,
    check_backup_sizes_not_negative,
    check_failed_vms_under_threshold,
    check_last_sync_fresh,
    check_no_backup_anomalies,
    check_no_protection_gaps,
    check_no_rejected_records,
    check_storage_swing_per_backup_server,
)
from pipeline.defs.resources import ChecksResource, WarehouseResource

BACKUPS = dg.AssetKey("backups")
STORAGE_BY_BACKUP_SERVER = dg.AssetKey("storage_by_backup_server")
PROTECTION_GAPS = dg.AssetKey("protection_gaps")
BACKUP_ANOMALIES = dg.AssetKey("backup_anomalies")


@contextmanager
def _reading(warehouse: WarehouseResource) -> Iterator[duckdb.DuckDBPyConnection]:
    # Read-only, on the published file: a check never waits for a sync, nor makes one wait.
    try:
        with warehouse.open(read_only=True) as con:
            yield con
    except duckdb.IOException as error:
        if "does not exist" not in str(error):
            raise
        raise dg.Failure(description=f"no warehouse at {warehouse.path}: materialize backups first") from None


Check = Callable[[duckdb.DuckDBPyConnection, CheckSettings], dg.AssetCheckResult]


def _spec(check: Check, asset: dg.AssetKey, *, blocking: bool = False) -> tuple[dg.AssetCheckSpec, Check]:
    # The check is named after its function (check_<name>) and described by its docstring, as @asset_check does.
    name = check.__name__.removeprefix("check_")
    return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=check.__doc__), check


def _evaluate(context: dg.AssetCheckExecutionContext, checks: list[tuple[dg.AssetCheckSpec, Check]],
              settings: CheckSettings) -> Iterator[dg.AssetCheckResult]:
    selected = context.selected_asset_check_keys
    chosen = [(spec, check) for spec, check in checks if spec.key in selected]
    error: BaseException | None = None
    # One connection for the step: every check reads the same published state, and it is opened once.
    with _reading(settings.warehouse) as con:
        for spec, check in chosen:
            try:
                result = check(con, settings)
            except Exception as failure:  # noqa: BLE001 - the others still report; the first error fails the step
                error = error or failure
                continue
            yield result._replace(asset_key=spec.asset_key, check_name=spec.name)
    if error is not None:
        raise error


# Each group is one step. The checks on backups run right after the load, and the blocking ones among them
# hold back the reports and the alerts when they fail; the checks on reports run once those are written.
# Within a group they run in the order the steps of single checks ran (by step key), so the run reports
# their results in the same order.
_ON_BACKUPS = [
    _spec(check_backup_ids_unique, BACKUPS, blocking=True),
    _spec(check_backup_sizes_not_negative, BACKUPS, blocking=True),
    _spec(check_failed_vms_under_threshold, BACKUPS, blocking=True),
    _spec(check_last_sync_fresh, BACKUPS),
    _spec(check_no_rejected_records, BACKUPS),
]
_ON_REPORTS = [
    _spec(check_no_backup_anomalies, BACKUP_ANOMALIES),
    _spec(check_no_protection_gaps, PROTECTION_GAPS),
    _spec(check_storage_swing_per_backup_server, STORAGE_BY_BACKUP_SERVER),
]


@dg.multi_asset_check(name="backups_checks", specs=[spec for spec, _ in _ON_BACKUPS], can_subset=True)
def backups_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                   checks: ChecksResource) -> Iterator[dg.AssetCheckResult]:
    """Checks the loaded backups: unique ids, sizes, the last sync's failures and rejects, freshness."""
    yield from _evaluate(context, _ON_BACKUPS, CheckSettings(warehouse, checks))


@dg.multi_asset_check(name="report_checks", specs=[spec for spec, _ in _ON_REPORTS], can_subset=True)
def report_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                  checks: ChecksResource) -> Iterator[dg.AssetCheckResult]:
    """Checks what the reports show: storage swings per backup server, protection gaps, size anomalies."""
    yield from _evaluate(context, _ON_REPORTS, CheckSettings(warehouse, checks))


# The checks' keys by name, e.g. to select one: dg.AssetSelection.checks(backup_ids_unique).
backup_ids_unique, backup_sizes_not_negative, failed_vms_under_threshold, last_sync_fresh, no_rejected_records = (
    spec.key for spec, _ in _ON_BACKUPS)
no_backup_anomalies, no_protection_gaps, storage_swing_per_backup_server = (spec.key for spec, _ in _ON_REPORTS)

asset_checks = [backups_checks, report_checks]
