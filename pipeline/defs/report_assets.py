"""Report assets: each report view of the warehouse exported (CSV, optionally Parquet, some a PNG chart) after every sync."""

import time

import dagster as dg

from pipeline.defs.metadata import preview
from pipeline.defs.table_assets import WAREHOUSE_POOL
from pipeline.defs.resources import ReportsResource, WarehouseResource
from pipeline.reports.export import REPORTS, export_report


def _report_asset(name: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reports", deps=REPORT_TABLES[name], kinds={"duckdb", "csv"},
              description=description, pool=WAREHOUSE_POOL)
    def _report(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                reports: ReportsResource) -> dg.MaterializeResult:
        started = time.monotonic()
        with warehouse.open(read_only=True) as con:
            paths, frame = export_report(con, name, reports.reports_dir, tuple(reports.export_formats))
        # matplotlib (tens of MB) is loaded by the first report step, after the load's peak, not at start.
        from pipeline.reports.charts import markdown_image, write_chart

        chart = write_chart(name, frame, reports.reports_dir)
        context.log.info(f"{len(frame)} rows -> {', '.join(str(p) for p in paths.values())}")
        metadata = {"rows": len(frame), "preview": preview(frame)}
        metadata["duration_s"] = round(time.monotonic() - started, 2)
        metadata |= {fmt: dg.MetadataValue.path(str(path)) for fmt, path in paths.items()}
        if chart is not None:
            metadata["chart"] = dg.MetadataValue.path(str(chart))
            metadata["chart_preview"] = dg.MetadataValue.md(markdown_image(chart))
        return dg.MaterializeResult(metadata=metadata)

    return _report


REPORT_DESCRIPTIONS = {
    "storage_by_backup_server": "Backup storage held by each backup server, with growth and a chart against capacity.",
    "storage_by_user": "Backup storage consumed by each user, with growth and a chart of the top users.",
    "storage_by_virtual_machine": "Backup storage of each VM with current backups, the top consumers first.",
    "storage_trend": "Daily backup storage per backup server and per user, with a chart per server.",
    "capacity_forecast": "When each backup server reaches 80% and 100% of its capacity at the last 30 days' pace.",
    "reclaimable_backups": "Backups whose space could be reclaimed, and why.",
}

# The warehouse tables each report view reads (sql/reports/<name>.sql), so the graph shows its inputs.
REPORT_TABLES = {
    "storage_by_backup_server": ["backups", "backup_servers", "storage_history"],
    "storage_by_user": ["backups", "users", "storage_history"],
    "storage_by_virtual_machine": ["backups", "virtual_machines", "users"],
    "storage_trend": ["storage_history", "backup_servers", "users"],
    "capacity_forecast": ["backups", "backup_servers", "storage_history"],
    "reclaimable_backups": ["backups", "virtual_machines"],
}

report_assets = [_report_asset(name, REPORT_DESCRIPTIONS[name]) for name in REPORTS]
