"""Report assets: every report view exported from one read of the warehouse, as one folder swapped in whole."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from pipeline.defs.metadata import preview
from pipeline.defs.resources import ReportsResource, WarehouseResource
from pipeline.reports.atomic_file import FolderNotReplaceable, atomic_folder, folder_lock_path
from pipeline.reports.export import REPORTS, ExportedReport, export_set, is_export_file
from pipeline.warehouse.file_lock import LockTimeout, exclusive_lock
from pipeline.warehouse.load import LOADED
from pipeline.warehouse.sql_files import query_sql

REPORT_DESCRIPTIONS = {
    "storage_by_backup_server": "Backup storage held by each backup server, with growth and a chart against capacity.",
    "storage_by_user": "Backup storage consumed by each user, with growth and a chart of the top users.",
    "storage_by_virtual_machine": "Backup storage of each VM with current backups, the top consumers first.",
    "storage_trend": "Daily backup storage per backup server and per user, with a chart per server.",
    "capacity_forecast": "When each backup server reaches 80% and 100% of its capacity at the last 30 days' pace.",
    "reclaimable_backups": "Backups whose space could be reclaimed, and why.",
    "chargeback_by_user_month": "GiB-hours, GiB-months and the amount to bill per owner and calendar month, with a "
                                "chart of the top users' last 12 months.",
    "protection_gaps": "Current VMs without a backup, without a recent built one, or with one stuck unbuilt.",
    "backup_anomalies": "Current backups far larger or smaller than the median of their VM's other backups.",
}

# The reports with a chart (pipeline.reports.charts.CHARTS, which a test compares), named here so that
# matplotlib loads on the drawing thread, not before the first view is read.
CHARTED = ("storage_by_backup_server", "storage_by_user", "storage_trend", "chargeback_by_user_month")

# The warehouse tables each report view reads (sql/reports/<name>.sql), so the graph shows its inputs.
REPORT_TABLES = {
    "storage_by_backup_server": ["backups", "backup_servers", "storage_history"],
    "storage_by_user": ["backups", "users", "storage_history"],
    "storage_by_virtual_machine": ["backups", "virtual_machines", "users"],
    "storage_trend": ["storage_history", "backup_servers", "users"],
    "capacity_forecast": ["backups", "backup_servers", "storage_history"],
    "reclaimable_backups": ["backups", "virtual_machines"],
    # The three below also read report_settings, which each load writes beside these tables.
    "chargeback_by_user_month": ["backups", "users", "sync_runs"],
    "protection_gaps": ["backups", "virtual_machines", "users", "sync_runs"],
    "backup_anomalies": ["backups"],
}


def _spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(name, group_name="reports", deps=REPORT_TABLES[name], kinds={"duckdb", "csv"},
                        description=REPORT_DESCRIPTIONS[name])


# One step for the whole set: one read-only connection is one published warehouse, so every file shows
# the same sync, and the folder is replaced once. A selection of some reports still writes them all.
@dg.multi_asset(name="reports_export", specs=[_spec(name) for name in REPORTS], can_subset=True)
def report_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 reports: ReportsResource) -> Iterator[dg.MaterializeResult]:
    """Exports every report view into a new folder and swaps it in for BACKUPS_REPORTS_DIR whole."""
    started = time.monotonic()
    target = Path(reports.reports_dir)
    try:
        # Exports of two runs go one at a time; the second reads the warehouse after the first swapped.
        with exclusive_lock(folder_lock_path(target), warehouse.lock_timeout_s):
            with warehouse.open(read_only=True) as con, atomic_folder(target, replaceable=is_export_file) as folder:
                sync = _sync(con)
                exported = export_set(con, folder, tuple(reports.export_formats), sync=sync, draw=_draw,
                                      charted=CHARTED)
                charts = _chart_images(exported)
    except LockTimeout:
        raise dg.Failure(description=f"reports busy: {target}", allow_retries=False) from None
    except FolderNotReplaceable as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    stamp = {"sync_run_id": sync["run_id"], "sync_finished_at": sync["finished_at"]} if sync else {}
    context.log.info(f"{len(exported)} reports of sync {stamp.get('sync_run_id', '(none yet)')} in {target}")
    duration = round(time.monotonic() - started, 2)
    for key in sorted(context.selected_asset_keys):
        name = key.to_user_string()
        metadata = _metadata(exported[name], target, charts.get(name)) | stamp | {"duration_s": duration}
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _draw(name: str, frame: pd.DataFrame, folder: Path) -> Path | None:
    # matplotlib (tens of MB) is loaded here, after the load's peak, not when the code location starts, and
    # on export_set's drawing thread, while the views are read.
    from pipeline.reports.charts import write_chart

    return write_chart(name, frame, folder)


def _chart_images(exported: dict[str, ExportedReport]) -> dict[str, str]:
    from pipeline.reports.charts import markdown_image  # loaded by the drawing thread by now

    return {name: markdown_image(report.chart) for name, report in exported.items() if report.chart is not None}


def _sync(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    rows = query_sql(con, "report_set_sync.sql", {"loaded": list(LOADED)})
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {"run_id": row["run_id"], "status": row["status"], "started_at": row["started_at"].isoformat(),
            "finished_at": row["finished_at"].isoformat(), "clouds": list(row["clouds"])}


def _metadata(report: ExportedReport, target: Path, chart_markdown: str | None) -> dict[str, Any]:
    # Paths where the files live once the folder is swapped in, not where they were written.
    metadata: dict[str, Any] = {"rows": report.rows, "preview": preview(report.head)}
    metadata |= {fmt: dg.MetadataValue.path(str(target / path.name)) for fmt, path in report.files.items()}
    if report.chart is not None:
        metadata["chart"] = dg.MetadataValue.path(str(target / report.chart.name))
        metadata["chart_preview"] = dg.MetadataValue.md(chart_markdown)
    return metadata


report_assets = [report_files]
