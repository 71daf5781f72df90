"""The API side of a sync: the VM list and every VM's backup list, staged for this run as typed Parquet."""

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import requests

from pipeline.defs.alert_assets import alert_sync_failed
from pipeline.defs.memory import release_freed_memory
from pipeline.defs.metadata import preview, settings_table
from pipeline.defs.resources import AlertsResource, OnAppResource, WarehouseResource
from pipeline.defs.retry import is_last_attempt
from pipeline.defs.messages import describe_request_error
from pipeline.onapp.client import (
    ApiError,
    CredentialsRefused,
    FetchReport,
    PaginationError,
    RedirectRefused,
    ResponseTooLarge,
)
from pipeline.records.normalize import BACKUP_SERVER_FIELDS, USER_FIELDS, VM_FIELDS, normalize_backups, reference_frame
from pipeline.records.reference import vm_owners
from pipeline.warehouse.connection import SourceMismatch, check_source
from pipeline.warehouse.load import record_failed_sync
from pipeline.warehouse.staging import purge_stale

# Records normalized per staged part: large enough that per-call costs vanish, small enough that the
# dicts of one part (a few tens of MB) are all the fetch step ever holds.
RECORDS_PER_PART = 5_000

# The columns a person scans first in a preview of the staged backups.
PREVIEW_COLUMNS = ["id", "virtual_machine_id", "owner_user_id", "backup_server_id", "backup_type", "backup_size"]


def run_key(context: dg.OpExecutionContext) -> str:
    """The staging key of this run: a re-execution of a run reads what its first run staged."""
    return context.run.root_run_id or context.run_id


def vm_list(context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource,
            alerts: AlertsResource) -> dg.MaterializeResult:
    """Every VM of the cloud, all pages, with the admin-only user and backup-server lists, staged for this run."""
    listed_at = datetime.now(timezone.utc)
    staging = warehouse.staging(run_key(context))
    for folder in purge_stale(staging.root, keep=staging.run_key):
        context.log.info(f"removed the staging of a run that ended a week ago or more: {folder}")
    if onapp.is_demo:
        context.log.warning(
            "ONAPP_API_URL is not set: using the EMBEDDED DEMO CLOUD, simulated data, not a real cloud"
        )
    _check_paths(warehouse, staging.root)
    _check_source(onapp, warehouse)
    client = onapp.client()
    try:
        vms = client.list_virtual_machines()
        users = client.list_users()
        servers = client.list_backup_servers()
    except CredentialsRefused as error:
        # No ledger row: a wrong key is a configuration error, not a sync to record.
        alert_sync_failed(context, alerts, warehouse, str(error))
        raise dg.Failure(description=str(error), allow_retries=False) from None
    except (ApiError, PaginationError, requests.RequestException) as error:
        _record_unreadable_list(context, onapp, warehouse, alerts, listed_at, error)
    finally:
        client.close()
    vm_frame = reference_frame(vms, VM_FIELDS)
    staging.write_listing(
        {"listed_at": listed_at.isoformat(), "source": onapp.source, "format": onapp.api_format,
         "requests": client.requests, "retries": client.retries},
        vm_frame,
        None if users is None else reference_frame(users, USER_FIELDS),
        None if servers is None else reference_frame(servers, BACKUP_SERVER_FIELDS),
    )
    context.log.info(f"{len(vm_frame)} VMs listed from {onapp.source}")
    return dg.MaterializeResult(
        metadata={
            "rows": len(vm_frame),
            "users_readable": users is not None,
            "backup_servers_readable": servers is not None,
            "source": onapp.source,
            "requests": client.requests,
            "retries": client.retries,
            "attempt": context.retry_number + 1,
            "duration_s": round((datetime.now(timezone.utc) - listed_at).total_seconds(), 2),
            "staging": dg.MetadataValue.path(str(staging.path)),
            "settings": settings_table(onapp.shown()),
            "preview": preview(vm_frame),
        },
    )


def _check_paths(warehouse: WarehouseResource, staging_root: Path) -> None:
    # Before any request: a path that cannot be written fails the same way on every attempt.
    for variable, folder in (("BACKUPS_DB", Path(warehouse.path).parent), ("BACKUPS_STAGING_DIR", staging_root)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as error:
            shown = warehouse.path if variable == "BACKUPS_DB" else str(staging_root)
            raise dg.Failure(
                description=f"{variable}={shown}: cannot write in {folder} ({error.strerror or error})",
                allow_retries=False,
            ) from None


def _check_source(onapp: OnAppResource, warehouse: WarehouseResource) -> None:
    # Before the long fetch: a warehouse of another cloud must not wait for the end to say so.
    if not Path(warehouse.path).exists():
        return
    try:
        with warehouse.open(read_only=True) as con:
            check_source(con, onapp.source, warehouse.path, claim=False)
    except SourceMismatch as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    except dg.Failure as error:
        # "warehouse busy" came after BACKUPS_LOCK_TIMEOUT, the wait meant for it: no step retry on top.
        raise dg.Failure(description=error.description, allow_retries=False) from None


def _record_unreadable_list(context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource,
                            alerts: AlertsResource, listed_at: datetime, error: Exception) -> None:
    message = f"the VM list could not be read: {describe_request_error(error, onapp.api_url if not onapp.is_demo else onapp.endpoint()[0])}"
    # Paging that cannot be followed, or a certificate that is not trusted, fails the same way on every
    # attempt: no step retry.
    retryable = not isinstance(error, (PaginationError, ResponseTooLarge, RedirectRefused,
                                      requests.exceptions.SSLError))
    if retryable and not is_last_attempt(context):
        # The ledger holds one row per run: only the attempt that gives up records the failure.
        context.log.warning(f"{message} (attempt {context.retry_number + 1}; the step will retry)")
        raise dg.Failure(description=message) from None
    with warehouse.open() as con:
        record_failed_sync(
            con, run_id=context.run_id, started_at=listed_at, source_url=onapp.source,
            format=onapp.api_format, message=message, warehouse_path=warehouse.path,
        )
    alert_sync_failed(context, alerts, warehouse, message)
    raise dg.Failure(description=message, allow_retries=False) from None


def backup_lists(
    context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource, alerts: AlertsResource
) -> dg.MaterializeResult:
    """Each listed VM's backup list, fetched concurrently and normalized into typed parts as it arrives."""
    started = time.monotonic()
    staging = warehouse.staging(run_key(context))
    vms = staging.vms()
    owners = vm_owners(vms)
    writer = staging.start_backups()
    pending: dict[int, list[dict]] = {}
    pending_records = 0
    first_part: pd.DataFrame | None = None

    def flush() -> None:
        nonlocal pending_records, first_part
        result = normalize_backups(pending, owners)
        writer.write_part(result.frame, result.rejects)
        if first_part is None:
            # The part's lowest ids: responses arrive in any order, the preview should not.
            first_part = result.frame[PREVIEW_COLUMNS].sort_values("id").head(10)
        pending.clear()
        pending_records = 0

    def on_listing(vm_id: int, records: list[dict]) -> None:
        nonlocal pending_records
        if records:
            pending[vm_id] = records
            pending_records += len(records)
        if pending_records >= RECORDS_PER_PART:
            flush()

    client = onapp.client()
    try:
        report = client.fetch_backups(vms["id"].astype(int).tolist(), log=context.log, on_listing=on_listing)
    except CredentialsRefused as error:
        alert_sync_failed(context, alerts, warehouse, str(error))
        raise dg.Failure(description=str(error), allow_retries=False) from None
    finally:
        client.close()
    if pending:
        flush()
    writer.finish(
        [(o.vm_id, o.status, o.http_status, o.error_kind, o.message) for o in report.outcomes.values()],
        {"requests": report.requests, "retries": report.retries},
    )
    release_freed_memory()
    failed = _failed_vms(report)
    for row in failed.itertuples():
        context.log.warning(f"VM {row.vm_id}: backups not read ({row.error_kind}): {row.reason}")
    return dg.MaterializeResult(
        metadata={
            "rows": writer.rows,
            "rejected": writer.rejected,
            "parts": writer.parts,
            "vms": len(report.outcomes),
            "fetched": sum(o.status == "ok" for o in report.outcomes.values()),
            "failed": report.failed,
            "vanished": report.vanished,
            "requests": report.requests,
            "retries": report.retries,
            "attempt": context.retry_number + 1,
            "duration_s": round(time.monotonic() - started, 2),
            "staging": dg.MetadataValue.path(str(staging.path)),
            "failed_vms": preview(failed, rows=50),
            "preview": preview(_vm_outcomes(report)),
            "backups_preview": preview(first_part if first_part is not None else pd.DataFrame()),
        },
    )


def _vm_outcomes(report: FetchReport) -> pd.DataFrame:
    # VMs that did not answer lead: they are what a reader looks for.
    leading = sorted(report.outcomes.values(), key=lambda o: (o.status == "ok", o.vm_id))[:10]
    return pd.DataFrame([(o.vm_id, o.status) for o in leading], columns=["vm_id", "status"])


def _failed_vms(report: FetchReport) -> pd.DataFrame:
    return pd.DataFrame(
        [(o.vm_id, o.http_status, o.error_kind, o.message)
         for o in sorted(report.outcomes.values(), key=lambda o: o.vm_id) if o.status == "failed"],
        columns=["vm_id", "http_status", "error_kind", "reason"],
    )


def build_api_assets(retry_policy: dg.RetryPolicy) -> list[dg.AssetsDefinition]:
    """The two API steps, with the step retry policy the environment sets (see pipeline.defs.settings)."""
    return [
        dg.asset(name="vm_list", group_name="onapp", kinds={"python", "parquet"}, retry_policy=retry_policy)(vm_list),
        dg.asset(name="backup_lists", group_name="onapp", kinds={"python", "parquet"}, retry_policy=retry_policy,
                 deps=["vm_list"])(backup_lists),
    ]
