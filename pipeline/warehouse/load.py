"""Write one sync into the warehouse: backups, deletions, history and ledger, in one transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from pipeline.warehouse.sql_files import run_sql
from pipeline.warehouse.connection import check_source

DEFAULT_MAX_FAILED_FRACTION = 0.5

VM_STATUS_COLUMNS = ["id", "identifier", "label", "hostname", "user_id", "status"]
VM_ERROR_COLUMNS = ["virtual_machine_id", "http_status", "error_kind", "message"]


class SyncFailed(RuntimeError):
    """The sync wrote nothing but its ledger row: the source looked down, not empty."""


@dataclass
class SyncBatch:
    """Everything one sync read from the API, normalized, ready to write."""

    run_id: str
    started_at: datetime
    source_url: str
    format: str
    vms: pd.DataFrame  # VM_STATUS_COLUMNS; status: ok | vanished | failed
    backups: pd.DataFrame  # the normalized frame (pipeline.records.schema)
    rejects: pd.DataFrame  # pipeline.normalize.REJECT_COLUMNS
    vm_errors: pd.DataFrame  # VM_ERROR_COLUMNS
    users: pd.DataFrame | None = None  # None: the key may not read /users
    backup_servers: pd.DataFrame | None = None
    requests: int = 0
    retries: int = 0


@dataclass
class SyncSummary:
    """The ledger row of a sync."""

    run_id: str
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
    status: str = "ok"
    message: str | None = None

    def ledger_row(self) -> pd.DataFrame:
        """This summary as the one-row frame that sql/insert_sync_run.sql inserts."""
        return pd.DataFrame([asdict(self)])


def _now() -> datetime:
    return datetime.now(timezone.utc)


def write_sync(
    con: duckdb.DuckDBPyConnection,
    batch: SyncBatch,
    *,
    warehouse_path: str,
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION,
) -> SyncSummary:
    """Apply a sync to the warehouse atomically and return its ledger row.

    Raises:
        SyncFailed: more than max_failed_fraction of the VMs failed; only the ledger row was written.
        SourceMismatch: the warehouse belongs to another API.
    """
    status = batch.vms["status"]
    summary = SyncSummary(
        run_id=batch.run_id,
        started_at=batch.started_at,
        finished_at=batch.started_at,
        source_url=batch.source_url,
        format=batch.format,
        vms_listed=len(batch.vms),
        vms_fetched=int((status == "ok").sum()),
        vms_failed=int((status == "failed").sum()),
        vms_vanished=int((status == "vanished").sum()),
        backups_seen=len(batch.backups),
        rejected=len(batch.rejects),
        requests=batch.requests,
        retries=batch.retries,
    )
    failed_fraction = summary.vms_failed / summary.vms_listed if summary.vms_listed else 0.0
    too_many_failed = failed_fraction > max_failed_fraction

    con.execute("BEGIN TRANSACTION")
    try:
        check_source(con, batch.source_url, warehouse_path)
        if too_many_failed:
            summary.status = "failed"
            summary.message = (
                f"{summary.vms_failed} of {summary.vms_listed} VMs failed "
                f"({failed_fraction:.0%} > {max_failed_fraction:.0%}): nothing loaded"
            )
        else:
            _write_data(con, batch, summary)
            summary.status = "partial" if summary.vms_failed or summary.rejected else "ok"
        summary.finished_at = _now()
        _write_ledger(con, batch, summary)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if too_many_failed:
        raise SyncFailed(summary.message)
    return summary


def _write_data(con: duckdb.DuckDBPyConnection, batch: SyncBatch, summary: SyncSummary) -> None:
    params = {"synced_at": batch.started_at, "run_id": batch.run_id}
    con.register("staged_frame", batch.backups)
    con.register("listed_vms", batch.vms)
    rejected_ids = pd.DataFrame(
        {"id": pd.to_numeric(batch.rejects["backup_id"], errors="coerce").dropna().astype("int64")}
    )
    con.register("rejected_ids", rejected_ids)

    run_sql(con, "stage_backups.sql")
    [(new, changed)] = run_sql(con, "count_backup_changes.sql")
    summary.backups_new, summary.backups_changed = int(new), int(changed)
    [(summary.backups_seen,)] = con.execute("SELECT count(*) FROM staged").fetchall()
    run_sql(con, "record_backup_versions.sql", params)
    run_sql(con, "upsert_backups.sql", params)
    run_sql(con, "mark_deleted_backups.sql", params)
    [(summary.backups_deleted,)] = con.execute("SELECT count(*) FROM deleted_now").fetchall()
    run_sql(con, "upsert_virtual_machines.sql", params)
    if batch.users is not None:
        con.register("users_frame", batch.users)
        run_sql(con, "upsert_users.sql", params)
    if batch.backup_servers is not None:
        con.register("backup_servers_frame", batch.backup_servers)
        run_sql(con, "upsert_backup_servers.sql", params)
    run_sql(con, "record_storage_history.sql", params)


def _write_ledger(con: duckdb.DuckDBPyConnection, batch: SyncBatch, summary: SyncSummary) -> None:
    params = {"run_id": batch.run_id}
    con.register("sync_run_frame", summary.ledger_row())
    run_sql(con, "insert_sync_run.sql")
    con.register("vm_errors_frame", batch.vm_errors.reindex(columns=VM_ERROR_COLUMNS))
    run_sql(con, "insert_sync_vm_errors.sql", params)
    con.register("rejects_frame", batch.rejects)
    run_sql(con, "insert_backup_rejects.sql", params)


def record_failed_sync(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    started_at: datetime,
    source_url: str,
    format: str,
    message: str,
    warehouse_path: str,
) -> SyncSummary:
    """Write only a ledger row with status 'failed' (the VM list could not be read)."""
    summary = SyncSummary(
        run_id=run_id, started_at=started_at, finished_at=_now(), source_url=source_url,
        format=format, status="failed", message=message,
    )
    con.execute("BEGIN TRANSACTION")
    try:
        check_source(con, source_url, warehouse_path, claim=False)
        con.register("sync_run_frame", summary.ledger_row())
        run_sql(con, "insert_sync_run.sql")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return summary
