"""The job's executor: one process for one cloud, a process per step for several, either one when the run config asks."""

import dagster as dg

_EITHER = dg.multi_or_in_process_executor
# Processes at once with several clouds: each cloud's fetch is a step, and each step process holds Dagster
# and the fetch's buffers (about 200 MiB); the run config can ask for more.
MAX_PARALLEL_CLOUDS = 8
PRELOAD_MODULES = ["pipeline.definitions", "pipeline.defs.step_preload"]


def _requirements(config: dict) -> list:
    return dg.multiple_process_executor_requirements() if "multiprocess" in config else []


def default_executor(clouds: int) -> dg.ExecutorDefinition:
    """Dagster's in-process-or-multiprocess executor with the default that suits this many clouds.

    One cloud: in process, so `make run` starts in a second and keeps the embedded demo cloud on one thread.
    Several: multiprocess, so the clouds' fetch steps run side by side. Either way `-c` with
    {execution: {config: {multiprocess: {...}}}} or {in_process: {}} chooses.
    """
    default = {"in_process": {}} if clouds <= 1 else {"multiprocess": {
        "max_concurrent": min(clouds, MAX_PARALLEL_CLOUDS),
        # Each step's process forks from one that imported Dagster, the pipeline and the instance's storage
        # once: started fresh, every step paid seconds of imports, more than a small cloud's whole fetch.
        "start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}},
    }}

    @dg.executor(
        name="in_process_or_multiprocess",
        config_schema=dg.Field(_EITHER.config_schema.config_type, default_value=default),
        requirements=_requirements,
    )
    def in_process_or_multiprocess(init_context: dg.InitExecutorContext) -> dg.Executor:
        """In process or multiprocess as the run config (or the default above) selects."""
        return _EITHER.executor_creation_fn(init_context)

    return in_process_or_multiprocess
