"""The sync as Dagster assets: VM list, backup lists, normalized frame, warehouse table, reports."""


import time
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import requests

from pipeline.records.normalize import (
    BACKUP_SERVER_FIELDS,
    USER_FIELDS,
    VM_FIELDS,
    NormalizedBackups,
    normalize_backups,
    reference_frame,
)
from pipeline.onapp.client import ApiError, CredentialsRefused, FetchReport, PaginationError
from pipeline.defs.metadata import preview
from pipeline.defs.resources import OnAppResource, WarehouseResource
from pipeline.defs.schedule import API_RETRY_POLICY, is_last_attempt
from pipeline.warehouse.load import (
    VM_ERROR_COLUMNS,
    VM_STATUS_COLUMNS,
    SyncBatch,
    SyncFailed,
    record_failed_sync,
    write_sync,
)
from pipeline.warehouse.connection import SourceMismatch, check_source

WAREHOUSE_POOL = "backups_warehouse"


@dataclass
class VmList:
    """The VM list as read at the start of a sync (secrets already stripped)."""

    source_url: str
    api_format: str
    listed_at: datetime
    vms: pd.DataFrame  # pipeline.normalize.VM_FIELDS, typed (old APIs send ids as strings)
    users: list[dict] | None = None
    backup_servers: list[dict] | None = None
    requests: int = 0
    retries: int = 0


# The columns a person scans first in a preview of the backups frame.
PREVIEW_COLUMNS = ("id", "virtual_machine_id", "owner_user_id", "backup_server_id", "backup_type", "backup_size")


@dg.asset(group_name="onapp", kinds={"python"}, retry_policy=API_RETRY_POLICY)
def virtual_machines(
    context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every VM of the cloud, all pages, with the admin-only user and backup-server lists when readable."""
    listed_at = datetime.now(timezone.utc)
    if onapp.is_demo:
        context.log.warning(
            "ONAPP_API_URL is not set: using the EMBEDDED DEMO CLOUD, simulated data, not a real cloud"
        )
    client = onapp.client()
    try:
        vms = client.list_virtual_machines()
        users = client.list_users()
        servers = client.list_backup_servers()
    except CredentialsRefused as error:
        # Nothing is written: a wrong key is a configuration error, not a sync to record.
        raise dg.Failure(description=str(error), allow_retries=False) from None
    except (ApiError, PaginationError, requests.RequestException) as error:
        message = f"the VM list could not be read: {error}"
        # Paging that cannot be followed, or a certificate that is not trusted, fails the same way
        # on every attempt: no step retry.
        retryable = not isinstance(error, (PaginationError, requests.exceptions.SSLError))
        if retryable and not is_last_attempt(context):
            # The ledger holds one row per run: only the attempt that gives up records the failure.
            context.log.warning(f"{message} (attempt {context.retry_number + 1}; the step will retry)")
            raise dg.Failure(description=message) from None
        with warehouse.open() as con:
            record_failed_sync(
                con, run_id=context.run_id, started_at=listed_at, source_url=onapp.source,
                format=onapp.api_format, message=message, warehouse_path=warehouse.path,
            )
        raise dg.Failure(description=message, allow_retries=False) from None
    finally:
        client.close()
    try:
        with warehouse.open() as con:
            # Before the long fetch: a warehouse of another cloud must not wait for the end to say so.
            try:
                check_source(con, onapp.source, warehouse.path, claim=False)
            except SourceMismatch as error:
                raise dg.Failure(description=str(error), allow_retries=False) from None
    except dg.Failure as error:
        # "warehouse busy" came after BACKUPS_LOCK_TIMEOUT, the wait meant for it: as in the writer,
        # no step retry on top (the retry policy is for the API).
        raise dg.Failure(description=error.description, allow_retries=False) from None
    context.log.info(f"{len(vms)} VMs listed from {onapp.source}")
    value = VmList(
        source_url=onapp.source, api_format=onapp.api_format, listed_at=listed_at,
        vms=reference_frame(vms, VM_FIELDS),
        users=users, backup_servers=servers, requests=client.requests, retries=client.retries,
    )
    return dg.MaterializeResult(
        value=value,
        metadata={
            "rows": len(vms),
            "vms": len(vms),
            "users_readable": users is not None,
            "backup_servers_readable": servers is not None,
            "source": onapp.source,
            "requests": client.requests,
            "retries": client.retries,
            "attempt": context.retry_number + 1,
            "duration_s": round((datetime.now(timezone.utc) - listed_at).total_seconds(), 2),
            "preview": preview(value.vms),
        },
    )


@dg.asset(group_name="onapp", kinds={"python"}, retry_policy=API_RETRY_POLICY)
def backup_listings(
    context: dg.AssetExecutionContext, onapp: OnAppResource, virtual_machines: VmList
) -> dg.MaterializeResult:
    """Each listed VM's backup list, fetched concurrently with retries; failures kept per VM."""
    client = onapp.client()
    try:
        report = client.fetch_backups(virtual_machines.vms["id"].astype(int).tolist(), log=context.log)
    except CredentialsRefused as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    finally:
        client.close()
    for outcome in report.outcomes.values():
        if outcome.status == "failed":
            context.log.warning(f"VM {outcome.vm_id}: backups not read ({outcome.error_kind}): {outcome.message}")
    return dg.MaterializeResult(
        value=report,
        metadata={
            "rows": sum(len(o.backups) for o in report.outcomes.values() if o.status == "ok"),
            "vms": len(report.outcomes),
            "fetched": sum(o.status == "ok" for o in report.outcomes.values()),
            "failed": report.failed,
            "vanished": report.vanished,
            "requests": report.requests,
            "retries": report.retries,
            "attempt": context.retry_number + 1,
            "duration_s": round(report.seconds, 2),
            "failed_vms": preview(
                pd.DataFrame(
                    [(o.vm_id, o.http_status, o.error_kind, o.message)
                     for o in sorted(report.outcomes.values(), key=lambda o: o.vm_id) if o.status == "failed"],
                    columns=["vm_id", "http_status", "error_kind", "reason"],
                ),
                rows=50,
            ),
            "preview": preview(
                pd.DataFrame(
                    # VMs that did not answer lead: they are what a reader looks for.
                    [(o.vm_id, o.status, len(o.backups))
                     for o in sorted(report.outcomes.values(), key=lambda o: (o.status == "ok", o.vm_id))],
                    columns=["vm_id", "status", "backups"],
                )
            ),
        },
    )


@dg.asset(group_name="warehouse", kinds={"pandas"})
def normalized_backups(
    virtual_machines: VmList, backup_listings: FetchReport
) -> dg.MaterializeResult:
    """All listed backups in one frame of the declared schema; untrustworthy records set aside."""
    started = time.monotonic()
    vms = virtual_machines.vms
    owners = dict(zip(vms["id"].astype(int), vms["user_id"].astype(object).where(vms["user_id"].notna(), None)))
    listings = {
        vm_id: outcome.backups
        for vm_id, outcome in backup_listings.outcomes.items()
        if outcome.status == "ok"
    }
    result = normalize_backups(listings, owners)
    return dg.MaterializeResult(
        value=result,
        metadata={
            "rows": len(result.frame),
            "rejected": len(result.rejects),
            "duration_s": round(time.monotonic() - started, 2),
            "preview": preview(result.frame[list(PREVIEW_COLUMNS)]),
            "rejects_preview": preview(result.rejects[["virtual_machine_id", "backup_id", "reason"]]),
        },
    )


def _vm_frame(vm_list: VmList, report: FetchReport) -> pd.DataFrame:
    frame = vm_list.vms.copy()
    status = {vm_id: outcome.status for vm_id, outcome in report.outcomes.items()}
    frame["status"] = frame["id"].map(lambda vm_id: status.get(int(vm_id), "failed")).astype("string")
    return frame[VM_STATUS_COLUMNS]


def _vm_errors(report: FetchReport) -> pd.DataFrame:
    rows = [
        {"virtual_machine_id": o.vm_id, "http_status": o.http_status, "error_kind": o.error_kind or "error",
         "message": o.message}
        for o in report.outcomes.values()
        if o.status == "failed"
    ]
    return pd.DataFrame(rows, columns=VM_ERROR_COLUMNS).astype(
        {"virtual_machine_id": "Int64", "http_status": "Int64", "error_kind": "string", "message": "string"}
    )


@dg.asset(group_name="warehouse", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def backups(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    virtual_machines: VmList,
    backup_listings: FetchReport,
    normalized_backups: NormalizedBackups,
) -> dg.MaterializeResult:
    """The warehouse table of every backup ever seen, with deletions, history and the sync ledger."""
    started = time.monotonic()
    batch = SyncBatch(
        run_id=context.run_id,
        started_at=virtual_machines.listed_at,
        source_url=virtual_machines.source_url,
        format=virtual_machines.api_format,
        vms=_vm_frame(virtual_machines, backup_listings),
        backups=normalized_backups.frame,
        rejects=normalized_backups.rejects,
        vm_errors=_vm_errors(backup_listings),
        users=None if virtual_machines.users is None else reference_frame(virtual_machines.users, USER_FIELDS),
        backup_servers=None
        if virtual_machines.backup_servers is None
        else reference_frame(virtual_machines.backup_servers, BACKUP_SERVER_FIELDS),
        requests=virtual_machines.requests + backup_listings.requests,
        retries=virtual_machines.retries + backup_listings.retries,
    )
    with warehouse.open() as con:
        try:
            summary = write_sync(
                con, batch, warehouse_path=warehouse.path, max_failed_fraction=warehouse.max_failed_fraction
            )
        except (SyncFailed, SourceMismatch) as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        [(rows,)] = con.execute("SELECT count(*) FROM backups").fetchall()
    context.log.info(
        f"sync {summary.status}: {summary.backups_seen} backups seen, {summary.backups_new} new, "
        f"{summary.backups_changed} changed, {summary.backups_deleted} deleted, "
        f"{summary.vms_failed} VMs failed, {summary.rejected} records rejected"
    )
    ledger = summary.ledger_row()
    metadata = {key: value for key, value in ledger.iloc[0].items() if key not in (
        "started_at", "finished_at", "message")}
    metadata = {k: (v.item() if hasattr(v, "item") else v) for k, v in metadata.items()}
    metadata["rows"] = rows
    metadata["warehouse"] = dg.MetadataValue.path(warehouse.path)
    metadata["duration_s"] = round(time.monotonic() - started, 2)
    metadata["sync_duration_s"] = round((summary.finished_at - summary.started_at).total_seconds(), 2)
    metadata["preview"] = preview(ledger.T.reset_index().set_axis(["field", "value"], axis=1), rows=30)
    return dg.MaterializeResult(metadata=metadata)


sync_assets = [virtual_machines, backup_listings, normalized_backups, backups]
