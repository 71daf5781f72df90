"""The warehouse tables as assets: one writer session loads every cloud's staging of this run into all of them."""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dagster as dg
import duckdb
import pandas as pd

from pipeline.clouds.config import DEFAULT_CLOUD
from pipeline.defs.alert_assets import alert_sync_failed
from pipeline.defs.api_assets import run_key
from pipeline.defs.clouds import asset_prefix
from pipeline.defs.memory import release_freed_memory
from pipeline.defs.metadata import preview, settings_table
from pipeline.defs.resources import AlertsResource, ReportsResource, WarehouseResource
from pipeline.warehouse.connection import SourceMismatch
from pipeline.warehouse.load import LOADED, SyncFailed, SyncSummary, write_sync
from pipeline.warehouse.report_settings import write_report_settings
from pipeline.warehouse.schema import table_schemas
from pipeline.warehouse.sql_files import run_sql
from pipeline.warehouse.staging import StagingMissing

TABLE_DESCRIPTIONS = {
    "backups": "One row per cloud and backup id ever seen: every API field, its VM and owner, first/last seen, deleted_at.",
    "backup_versions": "A version per change of a backup's size, server, owner, VM, type or flags (valid_from/to).",
    "storage_history": "Backups and kB per backup server and per user at every loaded sync: trends and forecasts.",
    "virtual_machines": "The VMs of the last VM list and those seen before, with deleted_at; never their passwords.",
    "users": "Logins and names from the admin-only /users list (empty when the key may not read it).",
    "backup_servers": "Labels and capacities from the admin-only backup server list (empty when not readable).",
    "sync_runs": "The ledger: one row per sync and cloud with its counts and status (ok, partial, failed, superseded).",
    "sync_vm_errors": "The VMs each sync could not read, with the HTTP status and the reason.",
    "backup_rejects": "Records a sync set aside as untrustworthy, with the reason and the raw record (no secrets).",
}
TABLES = tuple(TABLE_DESCRIPTIONS)
_SCHEMAS = table_schemas(TABLES)


def _spec(name: str, fetched: Sequence[dg.AssetKey]) -> dg.AssetSpec:
    columns = [dg.TableColumn(column, sql_type) for column, sql_type in _SCHEMAS[name]]
    return dg.AssetSpec(
        name, description=TABLE_DESCRIPTIONS[name], group_name="warehouse", kinds={"duckdb"},
        deps=list(fetched), skippable=True,
        metadata={"dagster/column_schema": dg.TableSchema(columns=columns), "dagster/table_name": name},
    )


@dataclass
class _Loaded:
    """What the load did with each cloud of the run."""

    summaries: dict[str, SyncSummary] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # cloud: why nothing of it was loaded

    @property
    def wrote_data(self) -> bool:
        return any(s.status in LOADED for s in self.summaries.values())


def build_table_assets(clouds: Sequence[str] = (DEFAULT_CLOUD,)) -> list[dg.AssetsDefinition]:
    """The one-transaction load of every cloud's staging, as a multi-asset whose specs are the tables."""
    isolated = len(clouds) > 1
    fetched = [dg.AssetKey([*asset_prefix(cloud), step]) for cloud in clouds for step in ("vm_list", "backup_lists")]

    @dg.multi_asset(name="warehouse_load", specs=[_spec(name, fetched) for name in TABLES])
    def warehouse_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         reports: ReportsResource, alerts: AlertsResource) -> Iterator[dg.MaterializeResult]:
        """Loads this run's staged sync of every cloud into the warehouse tables in one transaction."""
        started = time.monotonic()
        # No Dagster pool: the writer's lock (pipeline.warehouse.publish) orders writers across runs and is
        # released by the kernel when a killed run dies; a pool slot of a killed run stays taken.
        with warehouse.open() as con:
            loaded = _load_clouds(context, con, warehouse, clouds, isolated=isolated)
            if loaded.wrote_data:
                # The views read their prices and thresholds from the warehouse: written in this session,
                # they publish with the data they apply to.
                write_report_settings(con, reports.settings(), max(s.finished_at for s in loaded.summaries.values()))
            counts = dict(run_sql(con, "table_row_counts.sql"))
        for cloud, reason in loaded.refused.items():
            alert_sync_failed(context, alerts, warehouse, reason, cloud=cloud)
        if loaded.refused and not isolated:
            raise dg.Failure(description=next(iter(loaded.refused.values())), allow_retries=False)
        for cloud in loaded.summaries:
            warehouse.staging(run_key(context), cloud).remove()
        release_freed_memory()
        yield from _results(context, loaded, counts, warehouse, time.monotonic() - started, isolated=isolated)

    return [warehouse_tables]


def _load_clouds(context: dg.AssetExecutionContext, con: duckdb.DuckDBPyConnection, warehouse: WarehouseResource,
                 clouds: Sequence[str], *, isolated: bool) -> _Loaded:
    loaded = _Loaded()
    for cloud in clouds:
        staging = warehouse.staging(run_key(context), cloud)
        failure = staging.failure()
        if failure is not None:
            # The fetch step gave up on it, wrote its ledger row and fired its alert.
            context.log.warning(f"cloud '{cloud}' not loaded: {failure['message']}")
            continue
        try:
            loaded.summaries[cloud] = write_sync(
                con, context.run_id, staging, warehouse_path=warehouse.path,
                max_failed_fraction=warehouse.max_failed_fraction,
                max_deleted_fraction=warehouse.max_deleted_fraction)
        except (SourceMismatch, StagingMissing) as error:
            if not isolated:
                # The staging stays for diagnosis; it is this run's alone, so nothing else will read it.
                raise dg.Failure(description=str(error), allow_retries=False) from None
            context.log.error(f"cloud '{cloud}' not loaded: {error}")
            loaded.refused[cloud] = str(error)
        except SyncFailed as error:
            # Its ledger row is committed: the session publishes it with the other clouds' data.
            context.log.error(f"cloud '{cloud}': {error}" if isolated else str(error))
            loaded.refused[cloud] = str(error)
    return loaded


def _results(context: dg.AssetExecutionContext, loaded: _Loaded, counts: dict[str, int],
             warehouse: WarehouseResource, duration_s: float, *, isolated: bool) -> Iterator[dg.MaterializeResult]:
    ledger = pd.concat([s.ledger_row() for s in loaded.summaries.values()], ignore_index=True) \
        if loaded.summaries else pd.DataFrame()
    sync: dict[str, object] = {"clouds": ", ".join(loaded.summaries) or "none",
                               "duration_s": round(duration_s, 2),
                               "settings": settings_table(warehouse.dict())}
    if loaded.refused:
        sync["failed_clouds"] = ", ".join(loaded.refused)
    if len(loaded.summaries) == 1:
        sync |= {key: (value.item() if hasattr(value, "item") else value) for key, value in ledger.iloc[0].items()
                 if key not in ("started_at", "finished_at", "message")}
    for cloud, summary in loaded.summaries.items():
        named = f"cloud '{cloud}': " if isolated else ""  # one cloud's log reads as it always did
        if summary.status == "superseded":
            context.log.warning(f"{named}{summary.message}")
        else:
            context.log.info(
                f"{named}sync {summary.status}: {summary.backups_seen} backups seen, "
                f"{summary.backups_new} new, {summary.backups_changed} changed, {summary.backups_deleted} deleted, "
                f"{summary.vms_failed} VMs failed, {summary.rejected} records rejected"
            )
    if not loaded.wrote_data:
        # Only the ledger changed; the other tables are not materialized, so the reports skip.
        messages = "; ".join(s.message or "" for s in loaded.summaries.values() if s.status == "superseded")
        yield dg.MaterializeResult(asset_key="sync_runs", metadata={
            **sync, "message": messages, "dagster/row_count": counts["sync_runs"]})
        return
    for name in TABLES:
        metadata = {"dagster/row_count": counts[name], "warehouse": dg.MetadataValue.path(warehouse.path)}
        if name == "sync_runs":
            metadata |= sync
            metadata["preview"] = preview(_ledger_shown(ledger), rows=30)
        yield dg.MaterializeResult(asset_key=name, metadata=metadata)


def _ledger_shown(ledger: pd.DataFrame) -> pd.DataFrame:
    # One cloud: its row as field and value, readable in the UI; several: a row per cloud.
    if len(ledger) == 1:
        return ledger.T.reset_index().set_axis(["field", "value"], axis=1)
    return ledger.drop(columns=["message"])


table_assets = build_table_assets()
