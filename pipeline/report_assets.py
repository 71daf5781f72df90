"""Report assets: each report view of the warehouse exported as a CSV after every sync."""

import dagster as dg

from pipeline.assets import WAREHOUSE_POOL, backups, preview
from pipeline.reports import REPORTS, export_report
from pipeline.resources import WarehouseResource


def _report_asset(name: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reports", deps=[backups], kinds={"duckdb", "csv"},
              description=description, pool=WAREHOUSE_POOL)
    def _report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.open() as con:
            path, frame = export_report(con, name, warehouse.reports_dir)
        context.log.info(f"{name}: {len(frame)} rows -> {path}")
        return dg.MaterializeResult(
            metadata={"rows": len(frame), "csv": dg.MetadataValue.path(str(path)), "preview": preview(frame)}
        )

    return _report


REPORT_DESCRIPTIONS = {
    "storage_by_backup_server": "Backup storage held by each backup server (a view and a CSV).",
    "storage_by_user": "Backup storage consumed by each user (a view and a CSV).",
}

report_assets = [_report_asset(name, REPORT_DESCRIPTIONS[name]) for name in REPORTS]
