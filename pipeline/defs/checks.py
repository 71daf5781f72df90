"""Asset checks on the warehouse: keys, sizes, the last sync's failures and rejects, storage swings, freshness,
protection gaps and size anomalies."""

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

def _read(warehouse: WarehouseResource, name: str, params: dict | None = None) -> pd.DataFrame:
    # Read-only, on the published file: a check never waits for a sync, nor makes one wait.
    try:
        with warehouse.open(read_only=True) as con:
            return query_sql(con, f"checks/{name}", params)
    except duckdb.IOException as error:
        if "does not exist" not in str(error):
            raise
        raise dg.Failure(description=f"no warehouse at {warehouse.path}: materialize backups first") from None


def _last_sync(warehouse: WarehouseResource) -> pd.Series | None:
    frame = _read(warehouse, "last_sync.sql")
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


@dg.asset_check(asset=BACKUPS, blocking=True)
def backup_ids_unique(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No backup id appears twice among the current (not deleted) rows."""
    # DuckDB's primary key forbids it; DuckLake has no primary keys, and a rewrite of the upsert may slip.
    return _none_found(_read(warehouse, "duplicate_backup_ids.sql"), count="duplicate_ids", rows="duplicates")


@dg.asset_check(asset=BACKUPS, blocking=True)
def backup_sizes_not_negative(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No current backup has a negative size."""
    return _none_found(_read(warehouse, "negative_backup_sizes.sql"), count="negative_sizes", rows="backups")


@dg.asset_check(asset=BACKUPS, blocking=True)
def failed_vms_under_threshold(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The share of VMs whose backups could not be read in the last sync is at most max_failed_fraction."""
    last = _last_sync(warehouse)
    if last is None:
        return _no_sync_yet()
    listed, failed = _count(last["vms_listed"]), _count(last["vms_failed"])
    # A sync that failed before listing any VM read nothing: count it as all failed.
    fraction = failed / listed if listed else (1.0 if last["status"] == "failed" else 0.0)
    errors = _read(warehouse, "vm_errors_of_run.sql", {"run_id": last["run_id"]})
    return dg.AssetCheckResult(
        passed=fraction <= warehouse.max_failed_fraction,
        metadata={
            "run_id": last["run_id"],
            "status": last["status"],
            "vms_listed": listed,
            "vms_failed": failed,
            "failed_fraction": round(fraction, 4),
            "max_failed_fraction": warehouse.max_failed_fraction,
            "failed_vms": preview(errors, rows=20),
        },
    )


@dg.asset_check(asset=BACKUPS)
def no_rejected_records(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The last sync set no backup record aside as untrustworthy (a warning: the rest loaded)."""
    last = _last_sync(warehouse)
    if last is None:
        return _no_sync_yet()
    rejects = _read(warehouse, "rejects_of_run.sql", {"run_id": last["run_id"]})
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


@dg.asset_check(asset=STORAGE_BY_BACKUP_SERVER)
def storage_swing_per_backup_server(warehouse: WarehouseResource, checks: ChecksResource) -> dg.AssetCheckResult:
    """No backup server's total storage moved by more than BACKUPS_MAX_SWING_PCT since the previous sync."""
    max_swing = checks.max_swing_pct
    totals = _read(warehouse, "storage_swing.sql", {"loaded": list(LOADED)})
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


@dg.asset_check(asset=BACKUPS)
def last_sync_fresh(warehouse: WarehouseResource, checks: ChecksResource) -> dg.AssetCheckResult:
    """The last sync that loaded data (ok or partial) finished less than BACKUPS_MAX_AGE_HOURS ago."""
    max_age = checks.max_age_hours
    [row] = _read(warehouse, "last_loaded_sync.sql", {"loaded": list(LOADED)}).itertuples()
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


def _named(items: list[str], limit: int) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


@dg.asset_check(asset=PROTECTION_GAPS)
def no_protection_gaps(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every current VM has a built backup newer than BACKUPS_PROTECTION_DAYS and none stuck unbuilt (a warning)."""
    gaps = _read(warehouse, "protection_gaps.sql")
    named = [f"{row.virtual_machine_id} ({row.label}: {row.reason})" for row in gaps.itertuples()]
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{_counted(len(gaps), 'VM')} not protected: {_named(named, NAMED)}" if named else None,
        metadata={
            "vms": len(gaps),
            "virtual_machine_ids": _named([str(vm_id) for vm_id in gaps["virtual_machine_id"]], LISTED),
            "gaps": preview(gaps, rows=20),
        },
    )


@dg.asset_check(asset=BACKUP_ANOMALIES)
def no_backup_anomalies(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No current backup is BACKUPS_ANOMALY_FACTOR times larger or smaller than its VM's usual (a warning)."""
    found = _read(warehouse, "backup_anomalies.sql")
    named = [f"backup {row.backup_id} of VM {row.virtual_machine_id} ({row.ratio} times the median)"
             for row in found.itertuples()]
    return dg.AssetCheckResult(
        passed=found.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{_counted(len(found), 'backup')} far from the VM's usual size: {_named(named, NAMED)}"
                     if named else None),
        metadata={
            "backups": len(found),
            "backup_ids": _named([str(backup_id) for backup_id in found["backup_id"]], LISTED),
            "virtual_machine_ids": _named([str(vm_id) for vm_id in found["virtual_machine_id"].unique()], LISTED),
            "anomalies": preview(found, rows=20),
        },
    )


asset_checks = [
    backup_ids_unique,
    backup_sizes_not_negative,
    failed_vms_under_threshold,
    no_rejected_records,
    storage_swing_per_backup_server,
    last_sync_fresh,
    no_protection_gaps,
    no_backup_anomalies,
]
