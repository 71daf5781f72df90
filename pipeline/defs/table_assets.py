"""The warehouse tables as assets: one transaction loads this run's staging into all of them."""

import time
from collections.abc import Iterator

import dagster as dg

from pipeline.defs.alert_assets import alert_sync_failed
from pipeline.defs.api_assets import run_key
from pipeline.defs.memory import release_freed_memory
from pipeline.defs.metadata import preview, settings_table
from pipeline.defs.resources import AlertsResource, ReportsResource, WarehouseResource
from pipeline.warehouse.connection import SourceMismatch
from pipeline.warehouse.load import SyncFailed, write_sync
from pipeline.warehouse.report_settings import write_report_settings
from pipeline.warehouse.schema import table_schemas
from pipeline.warehouse.sql_files import run_sql
from pipeline.warehouse.staging import StagingMissing

TABLE_DESCRIPTIONS = {
    "backups": "One row per backup id ever seen: every API field, its VM and owner, first/last seen, deleted_at.",
    "backup_versions": "A version per change of a backup's size, server, owner, VM, type or flags (valid_from/to).",
    "storage_history": "Backups and kB per backup server and per user at every loaded sync: trends and forecasts.",
    "virtual_machines": "The VMs of the last VM list and those seen before, with deleted_at; never their passwords.",
    "users": "Logins and names from the admin-only /users list (empty when the key may not read it).",
    "backup_servers": "Labels and capacities from the admin-only backup server list (empty when not readable).",
    "sync_runs": "The ledger: one row per sync with its counts and status (ok, partial, failed, superseded).",
    "sync_vm_errors": "The VMs each sync could not read, with the HTTP status and the reason.",
    "backup_rejects": "Records a sync set aside as untrustworthy, with the reason and the raw record (no secrets).",
}
TABLES = tuple(TABLE_DESCRIPTIONS)
_SCHEMAS = table_schemas(TABLES)


def _spec(name: str) -> dg.AssetSpec:
    columns = [dg.TableColumn(column, sql_type) for column, sql_type in _SCHEMAS[name]]
    return dg.AssetSpec(
        name, description=TABLE_DESCRIPTIONS[name], group_name="warehouse", kinds={"duckdb"},
        deps=["vm_list", "backup_lists"], skippable=True,
        metadata={"dagster/column_schema": dg.TableSchema(columns=columns), "dagster/table_name": name},
    )


@dg.multi_asset(name="warehouse_load", specs=[_spec(name) for name in TABLES])
def warehouse_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     reports: ReportsResource, alerts: AlertsResource) -> Iterator[dg.MaterializeResult]:
    """Loads this run's staged sync into every warehouse table in one transaction, then drops the staging."""
    started = time.monotonic()
    staging = warehouse.staging(run_key(context))
    # No Dagster pool: the writer's lock (pipeline.warehouse.publish) orders writers across runs and is
    # released by the kernel when a killed run dies; a pool slot of a killed run stays taken.
    with warehouse.open() as con:
        try:
            summary = write_sync(con, context.run_id, staging, warehouse_path=warehouse.path,
                                 max_failed_fraction=warehouse.max_failed_fraction,
                                 max_deleted_fraction=warehouse.max_deleted_fraction)
        except (SourceMismatch, StagingMissing) as error:
            # The staging stays for diagnosis; it is this run's alone, so nothing else will read it.
            raise dg.Failure(description=str(error), allow_retries=False) from None
        except SyncFailed as error:
            refused = str(error)  # its ledger row is committed: the session publishes it, then the step fails
        else:
            refused = None
            if summary.status != "superseded":
                # The views read their prices and thresholds from the warehouse: written in this session,
                # they publish with the data they apply to.
                write_report_settings(con, reports.settings(), summary.finished_at)
            counts = dict(run_sql(con, "table_row_counts.sql"))
    if refused is not None:
        alert_sync_failed(context, alerts, warehouse, refused)
        raise dg.Failure(description=refused, allow_retries=False)
    staging.remove()
    release_freed_memory()
    ledger = summary.ledger_row()
    sync = {key: (value.item() if hasattr(value, "item") else value)
            for key, value in ledger.iloc[0].items() if key not in ("started_at", "finished_at", "message")}
    sync["duration_s"] = round(time.monotonic() - started, 2)
    sync["settings"] = settings_table(warehouse.dict())
    if summary.status == "superseded":
        context.log.warning(summary.message)
        # Only the ledger changed; the other tables are not materialized, so the reports skip.
        yield dg.MaterializeResult(asset_key="sync_runs", metadata={
            **sync, "message": summary.message, "dagster/row_count": counts["sync_runs"]})
        return
    context.log.info(
        f"sync {summary.status}: {summary.backups_seen} backups seen, {summary.backups_new} new, "
        f"{summary.backups_changed} changed, {summary.backups_deleted} deleted, "
        f"{summary.vms_failed} VMs failed, {summary.rejected} records rejected"
    )
    for name in TABLES:
        metadata = {"dagster/row_count": counts[name], "warehouse": dg.MetadataValue.path(warehouse.path)}
        if name == "sync_runs":
            metadata |= sync
            metadata["preview"] = preview(ledger.T.reset_index().set_axis(["field", "value"], axis=1), rows=30)
        yield dg.MaterializeResult(asset_key=name, metadata=metadata)


table_assets = [warehouse_tables]
