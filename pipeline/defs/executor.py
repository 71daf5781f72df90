"""The job's executor: one process by default, Dagster's multiprocess executor when the run config asks."""

import dagster as dg

_EITHER = dg.multi_or_in_process_executor


def _requirements(config: dict) -> list:
    return dg.multiple_process_executor_requirements() if "multiprocess" in config else []


# Dagster's own executor with the other default: `make run` starts in a second and keeps the embedded demo
# cloud on one thread, while `-c` with {execution: {config: {multiprocess: {...}}}} runs a process per step.
@dg.executor(
    name="in_process_or_multiprocess",
    config_schema=dg.Field(_EITHER.config_schema.config_type, default_value={"in_process": {}}),
    requirements=_requirements,
)
def in_process_or_multiprocess(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In process unless the run config selects multiprocess."""
    return _EITHER.executor_creation_fn(init_context)
