"""The API side of a sync: each cloud's VM list and every VM's backup list, staged for this run as typed Parquet.

Each cloud has its own two steps, so an executor with several processes (or pods) fetches the clouds in
parallel, each within its own max_concurrency. With several clouds a cloud that cannot be read records its
failure and lets the others load (isolated); with one, its step fails as the whole sync does.
"""

import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import requests

from pipeline.clouds.config import DEFAULT_CLOUD
from pipeline.defs.alert_assets import alert_sync_failed
from pipeline.defs.clouds import asset_prefix, onapp_key
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
from pipeline.warehouse.staging import RunStaging, purge_stale

# Records normalized per staged part: large enough that per-call costs vanish, small enough that the
# dicts of one part (a few tens of MB) are all the fetch step ever holds.
RECORDS_PER_PART = 5_000

# The columns a person scans first in a preview of the staged backups.
PREVIEW_COLUMNS = ["id", "virtual_machine_id", "owner_user_id", "backup_server_id", "backup_type", "backup_size"]


def run_key(context: dg.OpExecutionContext) -> str:
    """The staging key of this run: a re-execution of a run reads what its first run staged."""
    return context.run.root_run_id or context.run_id


def vm_list(context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource,
            alerts: AlertsResource, *, isolated: bool) -> dg.MaterializeResult:
    """Every VM of the cloud, all pages, with the admin-only user and backup-server lists, staged for this run."""
    listed_at = datetime.now(timezone.utc)
    staging = warehouse.staging(run_key(context), onapp.cloud)
    for folder in purge_stale(staging.root, keep=staging.run_key):
        context.log.info(f"removed the staging of a run that ended a week ago or more: {folder}")
    if onapp.is_demo:
        context.log.warning(
            "ONAPP_API_URL is not set: using the EMBEDDED DEMO CLOUD, simulated data, not a real cloud"
        )
    _check_paths(warehouse, staging.root)
    try:
        _check_source(onapp, warehouse)
    except SourceMismatch as error:
        if not isolated:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        return _give_up(context, onapp, warehouse, alerts, staging, listed_at, str(error), isolated=True,
                        record=True)
    client = onapp.client()
    try:
        vms = client.list_virtual_machines()
        users = client.list_users()
        servers = client.list_backup_servers()
    except CredentialsRefused as error:
        # Alone, no ledger row: a wrong key is a configuration error, not a sync to record. Among several
        # clouds it is that cloud's failed sync, beside the others' loaded ones.
        return _give_up(context, onapp, warehouse, alerts, staging, listed_at, str(error), isolated=isolated,
                        record=isolated)
    except (ApiError, PaginationError, requests.RequestException) as error:
        return _unreadable_list(context, onapp, warehouse, alerts, staging, listed_at, error, isolated=isolated)
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
            "cloud": onapp.cloud,
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
    # Before the long fetch: a cloud name bound to another API must not wait for the end to say so.
    if not Path(warehouse.path).exists():
        return
    try:
        with warehouse.open(read_only=True) as con:
            if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'clouds'").fetchone()[0]:
                check_source(con, onapp.cloud, onapp.source, warehouse.path, claim=False)
    except dg.Failure as error:
        # "warehouse busy" came after BACKUPS_LOCK_TIMEOUT, the wait meant for it: no step retry on top.
        raise dg.Failure(description=error.description, allow_retries=False) from None


def _unreadable_list(context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource,
                     alerts: AlertsResource, staging: RunStaging, listed_at: datetime, error: Exception, *,
                     isolated: bool) -> dg.MaterializeResult:
    message = f"the VM list could not be read: {describe_request_error(error, onapp.api_url if not onapp.is_demo else onapp.endpoint()[0])}"
    # Paging that cannot be followed, or a certificate that is not trusted, fails the same way on every
    # attempt: no step retry.
    retryable = not isinstance(error, (PaginationError, ResponseTooLarge, RedirectRefused,
                                      requests.exceptions.SSLError))
    if retryable and not is_last_attempt(context):
        # The ledger holds one row per run and cloud: only the attempt that gives up records the failure.
        context.log.warning(f"{message} (attempt {context.retry_number + 1}; the step will retry)")
        raise dg.Failure(description=message) from None
    return _give_up(context, onapp, warehouse, alerts, staging, listed_at, message, isolated=isolated, record=True)


def _give_up(context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource,
             alerts: AlertsResource, staging: RunStaging, listed_at: datetime, message: str, *, isolated: bool,
             record: bool) -> dg.MaterializeResult:
    """The cloud cannot be read this run: its failed ledger row (when recorded) and alert; then either the
    step fails (the only cloud) or the other clouds go on and the load names this one (isolated)."""
    if record:
        with warehouse.open() as con:
            record_failed_sync(
                con, run_id=context.run_id, cloud=onapp.cloud, started_at=listed_at, source_url=onapp.source,
                format=onapp.api_format, message=message,
            )
    alert_sync_failed(context, alerts, warehouse, message, cloud=onapp.cloud)
    if not isolated:
        raise dg.Failure(description=message, allow_retries=False)
    staging.write_failure({"message": message, "source": onapp.source})
    context.log.error(f"cloud '{onapp.cloud}': {message}; the other clouds go on")
    return dg.MaterializeResult(metadata={"cloud": onapp.cloud, "failed": message,
                                          "attempt": context.retry_number + 1})


def backup_lists(
    context: dg.AssetExecutionContext, onapp: OnAppResource, warehouse: WarehouseResource, alerts: AlertsResource,
    *, isolated: bool,
) -> dg.MaterializeResult:
    """Each listed VM's backup list, fetched concurrently and normalized into typed parts as it arrives."""
    started = time.monotonic()
    staging = warehouse.staging(run_key(context), onapp.cloud)
    failure = staging.failure()
    if failure is not None:
        context.log.warning(f"cloud '{onapp.cloud}' not fetched: {failure['message']}")
        return dg.MaterializeResult(metadata={"cloud": onapp.cloud, "failed": failure["message"]})
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
        listed_at = datetime.fromisoformat(staging.listing_meta()["listed_at"])
        return _give_up(context, onapp, warehouse, alerts, staging, listed_at, str(error), isolated=isolated,
                        record=isolated)
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
            "cloud": onapp.cloud,
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


def build_api_assets(retry_policy: dg.RetryPolicy, clouds: Sequence[str] = (DEFAULT_CLOUD,)
                     ) -> list[dg.AssetsDefinition]:
    """The two API steps of each cloud, with the step retry policy the environment sets (pipeline.defs.settings).

    The cloud 'default' keeps the keys vm_list and backup_lists; any other cloud's are prefixed with its name
    (eu/vm_list), and each reads its own OnApp resource (pipeline.defs.clouds).
    """
    isolated = len(clouds) > 1
    return [asset for cloud in clouds for asset in _cloud_assets(cloud, retry_policy, isolated=isolated)]


def _cloud_assets(cloud: str, retry_policy: dg.RetryPolicy, *, isolated: bool) -> list[dg.AssetsDefinition]:
    key, prefix = onapp_key(cloud), asset_prefix(cloud)
    shared = {"key_prefix": prefix, "group_name": "onapp", "kinds": {"python", "parquet"},
              "retry_policy": retry_policy, "required_resource_keys": {key, "warehouse", "alerts"}}

    @dg.asset(name="vm_list", description=_first_line(vm_list), **shared)
    def listed(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        return vm_list(context, getattr(resources, key), resources.warehouse, resources.alerts, isolated=isolated)

    @dg.asset(name="backup_lists", description=_first_line(backup_lists), deps=[listed], **shared)
    def fetched(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        return backup_lists(context, getattr(resources, key), resources.warehouse, resources.alerts,
                            isolated=isolated)

    return [listed, fetched]


def _first_line(function: object) -> str:
    return (function.__doc__ or "").strip().splitlines()[0]
