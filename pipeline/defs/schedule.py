"""When the sync runs and how its API steps retry: the daily job, its schedule, the step retry policy."""

import math
import os
from collections.abc import Mapping

import dagster as dg

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_STEP_RETRIES = 2
DEFAULT_STEP_RETRY_DELAY_S = 30.0
SCHEDULE_NAME = "daily_backups_sync"


def env_number(name: str, default: float, environ: Mapping[str, str] = os.environ) -> float:
    """A non-negative number from the environment; unset or empty gives the default.

    Raises:
        ValueError: the value is not a non-negative number (the message names the variable).
    """
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {raw!r}")
    return value


def step_retry_policy(environ: Mapping[str, str] = os.environ) -> dg.RetryPolicy:
    """The retry policy of the steps that call the API (BACKUPS_STEP_RETRIES, BACKUPS_STEP_RETRY_DELAY).

    The client already retries single requests within seconds; a step retry is the second line,
    for an API that is down for a minute or so (a restart, a failover) at the hour of the sync.
    """
    return dg.RetryPolicy(
        max_retries=int(env_number("BACKUPS_STEP_RETRIES", DEFAULT_STEP_RETRIES, environ)),
        delay=env_number("BACKUPS_STEP_RETRY_DELAY", DEFAULT_STEP_RETRY_DELAY_S, environ),
    )


API_RETRY_POLICY = step_retry_policy()


def _retries_disabled(config: object) -> bool:
    # The executor's run config can switch step retries off: {"retries": {"disabled": {}}},
    # directly or under the executor's name ("in_process", "multiprocess").
    if not isinstance(config, Mapping):
        return False
    retries = config.get("retries")
    if isinstance(retries, Mapping) and "disabled" in retries:
        return True
    return any(_retries_disabled(value) for value in config.values())


def is_last_attempt(context: dg.AssetExecutionContext) -> bool:
    """Whether no retry of this step will follow: no policy, the policy spent, or retries switched off."""
    policy = context.op_def.retry_policy
    return (
        policy is None
        or context.retry_number >= policy.max_retries
        or _retries_disabled(context.run_config.get("execution"))
    )


sync_job = dg.define_asset_job(
    "backups_sync",
    selection=dg.AssetSelection.all(),
    description="The whole sync: VM list, backup lists, warehouse, reports, and their checks.",
)


def daily_schedule(environ: Mapping[str, str] = os.environ) -> dg.ScheduleDefinition:
    """The daily run of the whole sync, at BACKUPS_SCHEDULE_CRON in BACKUPS_SCHEDULE_TZ.

    Raises:
        ValueError: the cron string or the time zone is not valid.
    """
    cron = (environ.get("BACKUPS_SCHEDULE_CRON") or "").strip() or DEFAULT_CRON
    zone = (environ.get("BACKUPS_SCHEDULE_TZ") or "").strip() or DEFAULT_TIMEZONE
    try:
        return dg.ScheduleDefinition(
            name=SCHEDULE_NAME,
            job=sync_job,
            cron_schedule=cron,
            execution_timezone=zone,
            description="Syncs every VM's backup list into the warehouse and exports the reports.",
            # Deploying the code location is meant to sync daily; the UI can still stop it.
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(
            f"BACKUPS_SCHEDULE_CRON={cron!r} / BACKUPS_SCHEDULE_TZ={zone!r}: {error}"
        ) from None
