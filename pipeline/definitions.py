"""The Dagster code location: every asset of the sync and its reports, their checks, the daily schedule.

The environment is read here, once; a bad value stops the code location from loading with one line that
names the variable (pipeline.defs.settings). Each cloud of BACKUPS_CLOUDS_FILE (or the one cloud of
ONAPP_API_URL) gets its own fetch steps (pipeline.defs.api_assets).
"""

import os
from collections.abc import Mapping

import dagster as dg

from pipeline.defs.alert_assets import alert_assets
from pipeline.defs.api_assets import build_api_assets
from pipeline.defs.checks import asset_checks
from pipeline.defs.cloud_checks import build_cloud_checks
from pipeline.defs.clouds import cloud_names
from pipeline.defs.executor import default_executor
from pipeline.defs.memory import freeze_long_lived_objects
from pipeline.defs.report_assets import report_assets
from pipeline.defs.retry import step_retry_policy
from pipeline.defs.schedule import daily_schedule, sync_job
from pipeline.defs.settings import build_resources, schedule_settings
from pipeline.defs.table_assets import build_table_assets


def build_definitions(environ: Mapping[str, str], executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """The code location for an environment: its clouds' fetch steps, the load, reports, alerts and checks.

    executor: another executor for every job (e.g. dagster-k8s's k8s_job_executor, a pod per step; see
    docs/scaling.md); by default one process for one cloud, a process per step for several.
    """
    schedule = schedule_settings(environ)
    resources = build_resources(environ)
    clouds = cloud_names(resources)
    return dg.Definitions(
        assets=[*build_api_assets(step_retry_policy(schedule), clouds), *build_table_assets(clouds),
                *report_assets, *alert_assets],
        asset_checks=[*asset_checks, *build_cloud_checks(clouds)],
        jobs=[sync_job],
        schedules=[daily_schedule(schedule)],
        resources=resources,
        # Every step reads and writes only its run's staging and the warehouse: any executor runs the job.
        executor=executor or default_executor(len(clouds)),
    )


defs = build_definitions(os.environ)

# Loaded for good: no collection walks these objects again, nor all of them at exit.
freeze_long_lived_objects()
