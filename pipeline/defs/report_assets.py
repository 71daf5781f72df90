"""Report assets: each report view of the warehouse exported (CSV, optionally Parquet, some a PNG chart) after every sync."""

import time

import dagster as dg

from pipeline.defs.metadata import preview
from pipeline.defs.sync_assets import WAREHOUSE_POOL, backups
from pipeline.reports.charts import markdown_image, write_chart
from pipeline.reports.export import REPORTS, export_formats, export_report
from pipeline.defs.resources import WarehouseResource


def _report_asset(name: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reports", deps=[backups], kinds={"duckdb", "csv"},
              description=description, pool=WAREHOUSE_POOL)
    def _report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        started = time.monotonic()
        try:
            formats = export_formats()
        except ValueError as error:
            # A configuration mistake: retrying cannot help, and no file is written.
            raise dg.Failure(description=str(error), allow_retries=False) from None
        with warehouse.open() as con:
            paths, frame = export_report(con, name, warehouse.reports_dir, formats)
        chart = write_chart(name, frame, warehouse.reports_dir)
        context.log.info(f"{name}: {len(frame)} rows -> {', '.join(str(p) for p in paths.values())}")
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

report_assets = [_report_asset(name, REPORT_DESCRIPTIONS[name]) for name in REPORTS]
