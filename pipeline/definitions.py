"""The Dagster code location: every asset of the sync and its reports, their checks, the daily schedule."""

import dagster as dg

from pipeline.defs.sync_assets import sync_assets
from pipeline.defs.checks import asset_checks
from pipeline.defs.report_assets import report_assets
from pipeline.defs.resources import OnAppResource, WarehouseResource
from pipeline.defs.schedule import daily_schedule, sync_job

defs = dg.Definitions(
    assets=[*sync_assets, *report_assets],
    asset_checks=asset_checks,
    jobs=[sync_job],
    schedules=[daily_schedule()],
    resources={"onapp": OnAppResource.from_env(), "warehouse": WarehouseResource.from_env()},
    # One process per run: the steps hand each other frames in memory-sized pickles, and the
    # embedded demo cloud lives for the whole run.
    executor=dg.in_process_executor,
)
