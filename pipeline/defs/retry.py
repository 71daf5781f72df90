"""How the API steps retry: Dagster's step retry policy, and whether an attempt is the last one."""

from collections.abc import Mapping

import dagster as dg

from pipeline.defs.settings import ScheduleSettings


def step_retry_policy(settings: ScheduleSettings) -> dg.RetryPolicy:
    """The retry policy of the steps that call the API (BACKUPS_STEP_RETRIES, BACKUPS_STEP_RETRY_DELAY).

    The client already retries single requests within seconds; a step retry is the second line, for an
    API that is down for a minute or so (a restart, a failover) at the hour of the scheduled sync.
    """
    return dg.RetryPolicy(max_retries=settings.step_retries, delay=settings.step_retry_delay_s)


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
