"""When the sync runs: the daily job and its schedule."""

import dagster as dg

from pipeline.defs.settings import ScheduleSettings, SettingsError

SCHEDULE_NAME = "daily_backups_sync"

sync_job = dg.define_asset_job(
    "backups_sync",
    selection=dg.AssetSelection.all(),
    description="The whole sync: VM list, backup lists, warehouse, reports, and their checks.",
)


def daily_schedule(settings: ScheduleSettings) -> dg.ScheduleDefinition:
    """The daily run of the whole sync, at BACKUPS_SCHEDULE_CRON in BACKUPS_SCHEDULE_TZ.

    Raises:
        SettingsError: the cron string or the time zone is not valid (the message names both).
    """
    try:
        return dg.ScheduleDefinition(
            name=SCHEDULE_NAME,
            job=sync_job,
            cron_schedule=settings.cron,
            execution_timezone=settings.timezone,
            description="Syncs every VM's backup list into the warehouse and exports the reports.",
            # Deploying the code location is meant to sync daily; the UI can still stop it.
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    except dg.DagsterInvalidDefinitionError as error:
        reason = str(error).splitlines()[0]
        raise SettingsError(
            f"BACKUPS_SCHEDULE_CRON={settings.cron!r} / BACKUPS_SCHEDULE_TZ={settings.timezone!r}: {reason}"
        ) from None
