"""Asset checks on the warehouse: keys, sizes, the last sync's failures and rejects, storage swings, freshness,
protection gaps and size anomalies."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import duckdb
import pandas as pd

from pipeline.defs.metadata import preview
from pipeline.defs.resources import ChecksResource, WarehouseResource
from pipeline.warehouse.sql_files import query_sql

BACKUPS = dg.AssetKey("backups")
STORAGE_BY_BACKUP_SERVER = dg.AssetKey("storage_by_backup_server")
PROTECTION_GAPS = dg.AssetKey("protection_gaps")
BACKUP_ANOMALIES = dg.AssetKey("backup_anomalies")
LOADED = ("ok", "partial")  # the sync statuses that wrote data
# Items a warning's description names; the metadata lists more ids and previews the rows.
NAMED = 10
LISTED = 500


@dataclass(frozen=True)
class _Settings:
    """What a check may read besides the warehouse: the resources' thresholds."""

    warehouse: WarehouseResource
    checks: ChecksResource


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


def _read(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> pd.DataFrame:
    return query_sql(con, f"checks/{name}", params)


def _last_sync(con: duckdb.DuckDBPyConnection) -> pd.Series | None:
    frame = _read(con, "last_sync.sql")
    return None if frame.empty else frame.iloc[0]


def _count(value: object) -> int:
    return 0 if pd.isna(value) else int(value)


def _none_found(offending: pd.DataFrame, *, count: str, rows: str) -> dg.AssetCheckResult:
    """Passed when the query found no offending rows; the metadata counts and shows them."""
    return dg.AssetCheckResult(
        passed=offending.empty, metadata={count: len(offending), rows: preview(offending, rows=20)}
    )


def _no_sync_yet() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"last_sync": "none yet"})


def check_backup_ids_unique(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """No backup id appears twice among the current (not deleted) rows."""
    # DuckDB's primary key forbids it; DuckLake has no primary keys, and a rewrite of the upsert may slip.
    return _none_found(_read(con, "duplicate_backup_ids.sql"), count="duplicate_ids", rows="duplicates")


def check_backup_sizes_not_negative(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """No current backup has a negative size."""
    return _none_found(_read(con, "negative_backup_sizes.sql"), count="negative_sizes", rows="backups")


def check_failed_vms_under_threshold(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """The share of VMs whose backups could not be read in the last sync is at most max_failed_fraction."""
    last = _last_sync(con)
    if last is None:
        return _no_sync_yet()
    listed, failed = _count(last["vms_listed"]), _count(last["vms_failed"])
    # A sync that failed before listing any VM read nothing: count it as all failed.
    fraction = failed / listed if listed else (1.0 if last["status"] == "failed" else 0.0)
    errors = _read(con, "vm_errors_of_run.sql", {"run_id": last["run_id"]})
    max_failed_fraction = settings.warehouse.max_failed_fraction
    return dg.AssetCheckResult(
        passed=fraction <= max_failed_fraction,
        metadata={
            "run_id": last["run_id"],
            "status": last["status"],
            "vms_listed": listed,
            "vms_failed": failed,
            "failed_fraction": round(fraction, 4),
            "max_failed_fraction": max_failed_fraction,
            "failed_vms": preview(errors, rows=20),
        },
    )


def check_no_rejected_records(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """The last sync set no backup record aside as untrustworthy (a warning: the rest loaded)."""
    last = _last_sync(con)
    if last is None:
        return _no_sync_yet()
    rejects = _read(con, "rejects_of_run.sql", {"run_id": last["run_id"]})
    return dg.AssetCheckResult(
        passed=rejects.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"run_id": last["run_id"], "rejected": len(rejects), "rejects": preview(rejects, rows=20)},
    )


def _swing_pct(previous_kb: int, current_kb: int) -> float:
    if previous_kb:
        return 100.0 * (current_kb - previous_kb) / previous_kb
    # A server that appears with data has no base to compare with: an unbounded swing.
    return float("inf") if current_kb else 0.0


def check_storage_swing_per_backup_server(con: duckdb.DuckDBPyConnection,
                                          settings: _Settings) -> dg.AssetCheckResult:
    """No backup server's total storage moved by more than BACKUPS_MAX_SWING_PCT since the previous sync."""
    max_swing = settings.checks.max_swing_pct
    totals = _read(con, "storage_swing.sql", {"loaded": list(LOADED)})
    if totals.empty or int(totals["syncs"].iloc[0]) < 2:
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.WARN,
            metadata={"compared": "fewer than two loaded syncs", "max_swing_pct": max_swing},
        )
    totals["swing_pct"] = [
        round(_swing_pct(int(p), int(c)), 2) for p, c in zip(totals["previous_kb"], totals["current_kb"])
    ]
    swung = totals[totals["swing_pct"].abs() > max_swing].drop(columns="syncs")
    return dg.AssetCheckResult(
        passed=swung.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_swing_pct": max_swing,
            "backup_servers": len(totals),
            "swung": len(swung),
            "swings": preview(swung, rows=20),
        },
    )


def check_last_sync_fresh(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """The last sync that loaded data (ok or partial) finished less than BACKUPS_MAX_AGE_HOURS ago."""
    max_age = settings.checks.max_age_hours
    [row] = _read(con, "last_loaded_sync.sql", {"loaded": list(LOADED)}).itertuples()
    if pd.isna(row.finished_at):
        return dg.AssetCheckResult(
            passed=False, metadata={"last_loaded_sync": "none", "max_age_hours": max_age}
        )
    return dg.AssetCheckResult(
        passed=row.age_hours < max_age,
        metadata={
            "last_loaded_sync": row.finished_at.isoformat(),
            "age_hours": round(float(row.age_hours), 2),
            "max_age_hours": max_age,
        },
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _named(first: list[str], total: int) -> str:
    # The first items of total, and how many more there are: only those named are formatted.
    more = total - len(first)
    return ", ".join(first) + (f" and {more} more" if more > 0 else "")


def check_no_protection_gaps(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """Every current VM has a built backup newer than BACKUPS_PROTECTION_DAYS and none stuck unbuilt (a warning)."""
    gaps = _read(con, "protection_gaps.sql")
    named = [f"{row.virtual_machine_id} ({row.label}: {row.reason})" for row in gaps.head(NAMED).itertuples()]
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{_counted(len(gaps), 'VM')} not protected: {_named(named, len(gaps))}" if named else None,
        metadata={
            "vms": len(gaps),
            "virtual_machine_ids": _named([str(vm_id) for vm_id in gaps["virtual_machine_id"].head(LISTED)],
                                          len(gaps)),
            "gaps": preview(gaps, rows=20),
        },
    )


def check_no_backup_anomalies(con: duckdb.DuckDBPyConnection, settings: _Settings) -> dg.AssetCheckResult:
    """No current backup is BACKUPS_ANOMALY_FACTOR times larger or smaller than its VM's usual (a warning)."""
    found = _read(con, "backup_anomalies.sql")
    named = [f"backup {row.backup_id} of VM {row.virtual_machine_id} ({row.ratio} times the median)"
             for row in found.head(NAMED).itertuples()]
    vm_ids = found["virtual_machine_id"].unique()
    return dg.AssetCheckResult(
        passed=found.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{_counted(len(found), 'backup')} far from the VM's usual size: {_named(named, len(found))}"
                     if named else None),
        metadata={
            "backups": len(found),
            "backup_ids": _named([str(backup_id) for backup_id in found["backup_id"].head(LISTED)], len(found)),
            "virtual_machine_ids": _named([str(vm_id) for vm_id in vm_ids[:LISTED]], len(vm_ids)),
            "anomalies": preview(found, rows=20),
        },
    )


Check = Callable[[duckdb.DuckDBPyConnection, _Settings], dg.AssetCheckResult]


def _spec(check: Check, asset: dg.AssetKey, *, blocking: bool = False) -> tuple[dg.AssetCheckSpec, Check]:
    # The check is named after its function (check_<name>) and described by its docstring, as @asset_check does.
    name = check.__name__.removeprefix("check_")
    return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=check.__doc__), check


def _evaluate(context: dg.AssetCheckExecutionContext, checks: list[tuple[dg.AssetCheckSpec, Check]],
              settings: _Settings) -> Iterator[dg.AssetCheckResult]:
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
    yield from _evaluate(context, _ON_BACKUPS, _Settings(warehouse, checks))


@dg.multi_asset_check(name="report_checks", specs=[spec for spec, _ in _ON_REPORTS], can_subset=True)
def report_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                  checks: ChecksResource) -> Iterator[dg.AssetCheckResult]:
    """Checks what the reports show: storage swings per backup server, protection gaps, size anomalies."""
    yield from _evaluate(context, _ON_REPORTS, _Settings(warehouse, checks))


# The checks' keys by name, e.g. to select one: dg.AssetSelection.checks(backup_ids_unique).
backup_ids_unique, backup_sizes_not_negative, failed_vms_under_threshold, last_sync_fresh, no_rejected_records = (
    spec.key for spec, _ in _ON_BACKUPS)
no_backup_anomalies, no_protection_gaps, storage_swing_per_backup_server = (spec.key for spec, _ in _ON_REPORTS)

asset_checks = [backups_checks, report_checks]
