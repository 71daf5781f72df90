"""Write one run's staged sync into the warehouse: backups, deletions, history and ledger, in one transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from pipeline.warehouse.clock import utc_now
from pipeline.warehouse.connection import check_source
from pipeline.warehouse.sql_files import run_sql
from pipeline.warehouse.staging import RunStaging
from pipeline.warehouse.transaction import transaction

# The sync statuses that wrote data (a failed or superseded sync wrote only its ledger row).
LOADED = ("ok", "partial")
DEFAULT_MAX_FAILED_FRACTION = 0.5
# A cloud seldom loses a third of its backups overnight; an API that lists only part of them does it at once.
DEFAULT_MAX_DELETED_FRACTION = 0.3


class SyncFailed(RuntimeError):
    """The sync wrote nothing but its ledger row: the source looked down, or its answer too small to trust."""


@dataclass
class SyncSummary:
    """The ledger row of a sync."""

    run_id: str
    cloud: str
    started_at: datetime
    finished_at: datetime
    source_url: str
    format: str
    vms_listed: int = 0
    vms_fetched: int = 0
    vms_failed: int = 0
    vms_vanished: int = 0
    backups_seen: int = 0
    backups_new: int = 0
    backups_changed: int = 0
    backups_deleted: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    status: str = "ok"  # ok | partial | failed | superseded
    message: str | None = None

    def ledger_row(self) -> pd.DataFrame:
        """This summary as the one-row frame that sql/insert_sync_run.sql inserts."""
        return pd.DataFrame([asdict(self)])


def write_sync(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    staging: RunStaging,
    *,
    warehouse_path: str,
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION,
    max_deleted_fraction: float = DEFAULT_MAX_DELETED_FRACTION,
) -> SyncSummary:
    """Apply the run's staged sync of one cloud (the staging's) to the warehouse atomically and return its
    ledger row.

    Only the cloud's own rows are read and written. A sync whose VM list was read before that of a sync of
    the same cloud already loaded is 'superseded': only its ledger row is written, so a slow run never puts
    older data over newer.

    Raises:
        SyncFailed: more than max_failed_fraction of the VMs failed, or the sync would mark more than
            max_deleted_fraction of the current backups deleted; only the ledger row was written.
        SourceMismatch: the cloud's name is bound to another API in this warehouse.
        StagingMissing: the run has no complete staging of its own.
    """
    cloud = staging.cloud
    listing, fetched = staging.listing_meta(), staging.backups_done()
    summary = SyncSummary(
        run_id=run_id,
        cloud=cloud,
        started_at=datetime.fromisoformat(listing["listed_at"]),
        finished_at=utc_now(),
        source_url=listing["source"],
        format=listing["format"],
        requests=int(listing["requests"]) + int(fetched["requests"]),
        retries=int(listing["retries"]) + int(fetched["retries"]),
        rejected=int(fetched["rejected"]),
    )
    files = {
        "vms_file": str(staging.path / "listing" / "vms.parquet"),
        "vm_status_file": staging.vm_status_file(),
    }
    with transaction(con):
        check_source(con, cloud, summary.source_url, warehouse_path)
        newer = run_sql(con, "newer_loaded_sync.sql", {"cloud": cloud, "started_at": summary.started_at})
        if newer:
            newer_run, newer_at = newer[0]
            summary.status = "superseded"
            summary.message = (
                f"superseded: sync {newer_run} read its VM list at {newer_at.isoformat()}, after this one "
                f"({summary.started_at.isoformat()}); nothing loaded"
            )
        else:
            run_sql(con, "stage_listing.sql", files)
            if staging.reject_files():
                run_sql(con, "stage_rejects.sql", {"reject_files": staging.reject_files()})
            _count_vms(con, summary)
            failed_fraction = summary.vms_failed / summary.vms_listed if summary.vms_listed else 0.0
            if failed_fraction > max_failed_fraction:
                summary.status = "failed"
                summary.message = (
                    f"{summary.vms_failed} of {summary.vms_listed} VMs failed "
                    f"({failed_fraction:.0%} > {max_failed_fraction:.0%}): nothing loaded"
                )
            else:
                params = {"cloud": cloud, "synced_at": summary.started_at, "run_id": run_id,
                          "backup_files": staging.backup_files(), **files}
                deleted, current = _stage_backups(con, summary, params)
                summary.message = _too_many_deleted(deleted, current, max_deleted_fraction)
                if summary.message:
                    summary.status = "failed"
                else:
                    _write_data(con, staging, summary, params)
                    summary.status = "partial" if summary.vms_failed or summary.rejected else "ok"
        summary.finished_at = utc_now()
        _write_ledger(con, run_id, staging, summary, files)
    if summary.status == "failed":
        raise SyncFailed(summary.message)
    return summary


def _count_vms(con: duckdb.DuckDBPyConnection, summary: SyncSummary) -> None:
    [(listed, fetched, failed, vanished)] = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'failed'), "
        "count(*) FILTER (WHERE status = 'vanished') FROM listed_vms"
    ).fetchall()
    summary.vms_listed, summary.vms_fetched, summary.vms_failed, summary.vms_vanished = listed, fetched, failed, vanished


def _stage_backups(con: duckdb.DuckDBPyConnection, summary: SyncSummary, params: dict[str, Any]) -> tuple[int, int]:
    """Stage the run's backups; return (how many current backups it would delete, how many are current)."""
    run_sql(con, "stage_backups.sql", params)
    [(summary.backups_seen,)] = con.execute("SELECT count(*) FROM staged").fetchall()
    [(deleted, current)] = run_sql(con, "find_deleted_backups.sql", params)
    return int(deleted), int(current)


def _too_many_deleted(deleted: int, current: int, max_deleted_fraction: float) -> str | None:
    """The refusal of a sync that would delete more than max_deleted_fraction of the current backups, or None."""
    share = deleted / current if current else 0.0
    if share <= max_deleted_fraction:
        return None
    return (
        f"{deleted} of {current} current backups would be marked deleted ({share:.1%}, more than "
        f"BACKUPS_MAX_DELETED_FRACTION={max_deleted_fraction:g}): nothing loaded. If they are really gone, "
        "run once with BACKUPS_MAX_DELETED_FRACTION=1"
    )


def _write_data(con: duckdb.DuckDBPyConnection, staging: RunStaging, summary: SyncSummary,
                params: dict[str, Any]) -> None:
    [(new, changed)] = run_sql(con, "count_backup_changes.sql", params)
    summary.backups_new, summary.backups_changed = int(new), int(changed)
    run_sql(con, "record_backup_versions.sql", params)
    run_sql(con, "upsert_backups.sql", params)
    run_sql(con, "mark_deleted_backups.sql", params)
    [(summary.backups_deleted,)] = con.execute("SELECT count(*) FROM deleted_now").fetchall()
    run_sql(con, "upsert_virtual_machines.sql", params)
    for name in ("users", "backup_servers"):
        path = staging.path / "listing" / f"{name}.parquet"
        if path.exists():  # absent: the key may not read this admin-only list
            run_sql(con, f"upsert_{name}.sql", {**params, f"{name}_file": str(path)})
    run_sql(con, "record_storage_history.sql", params)


def _write_ledger(con: duckdb.DuckDBPyConnection, run_id: str, staging: RunStaging, summary: SyncSummary,
                  files: dict[str, Any]) -> None:
    con.register("sync_run_frame", summary.ledger_row())
    run_sql(con, "insert_sync_run.sql")
    con.unregister("sync_run_frame")
    if summary.status == "superseded":
        return  # its VM errors and rejects describe data that was never loaded
    run_sql(con, "insert_sync_vm_errors.sql", {"cloud": summary.cloud, "run_id": run_id, **files})
    if staging.reject_files():
        run_sql(con, "insert_backup_rejects.sql", {"cloud": summary.cloud, "run_id": run_id})


def record_failed_sync(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    cloud: str,
    started_at: datetime,
    source_url: str,
    format: str,
    message: str,
) -> SyncSummary:
    """Write only a ledger row with status 'failed' for one cloud (it could not be read).

    The row touches no data, so it is written even under a cloud name bound to another API: it says what
    was tried and why it failed.
    """
    summary = SyncSummary(
        run_id=run_id, cloud=cloud, started_at=started_at, finished_at=utc_now(), source_url=source_url,
        format=format, status="failed", message=message,
    )
    with transaction(con):
        con.register("sync_run_frame", summary.ledger_row())
        run_sql(con, "insert_sync_run.sql")
        con.unregister("sync_run_frame")
    return summary
