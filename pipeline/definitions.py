"""The Dagster code location: every asset of the sync and its reports, their checks, the daily schedule.

The environment is read here, once; a bad value stops the code location from loading with one line that
names the variable (pipeline.defs.settings).
"""

import os

import dagster as dg

from pipeline.defs.alert_assets import alert_assets
from pipeline.defs.api_assets import build_api_assets
from pipeline.defs.checks import asset_checks
from pipeline.defs.executor import in_process_or_multiprocess
from pipeline.defs.memory import freeze_long_lived_objects
from pipeline.defs.report_assets import report_assets
from pipeline.defs.retry import step_retry_policy
from pipeline.defs.schedule import daily_schedule, sync_job
from pipeline.defs.settings import build_resources, schedule_settings
from pipeline.defs.table_assets import table_assets

_schedule = schedule_settings(os.environ)

defs = dg.Definitions(
    assets=[*build_api_assets(step_retry_policy(_schedule)), *table_assets, *report_assets, *alert_assets],
    asset_checks=asset_checks,
    jobs=[sync_job],
    schedules=[daily_schedule(_schedule)],
    resources=build_resources(os.environ),
    # Every step reads and writes only its run's staging and the warehouse: any executor runs the job.
    executor=in_process_or_multiprocess,
)

# Loaded for good: no collection walks these objects again, nor all of them at exit.
freeze_long_lived_objects()
