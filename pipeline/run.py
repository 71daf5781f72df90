"""`make run`: one sync in this process with a short, readable log that ends with the outcome or its cause.

Dagster's own log (every event, at DEBUG) stays in the instance's event log under DAGSTER_HOME, and on the
terminal with -v. Step retries are off here: they are for the scheduled runs, where an API that is down
for a minute at 2 a.m. deserves another attempt; a person at a terminal wants the cause now.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from pipeline.defs.settings import SettingsError

def main(argv: Sequence[str] | None = None) -> int:
    """Run every asset and check once; 0 when the run succeeded, 1 when it failed, 2 on a bad setting."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.run", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="Dagster's full log, tracebacks included")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stdout)
    # Each retry is counted in the run's metadata and the ledger; a line per retry would drown the log.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        from pipeline.definitions import defs
    except SettingsError as error:
        print(f"error: {error}", flush=True)
        return 2
    job = defs.resolve_implicit_global_asset_job_def()
    loggers = {"console": {"config": {"log_level": "DEBUG"}}} if args.verbose else {"concise": {}}
    run_config = {"execution": {"config": {"in_process": {"retries": {"disabled": {}}}}}, "loggers": loggers}
    with dg.DagsterInstance.get() as instance:
        job = job.with_logger_defs({**job.loggers, "concise": concise_logger})
        result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    return _report(result, defs)


@dg.logger(description="One line per message of the job's own code; engine events only when they warn.")
def concise_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """A logger that prints what the steps say, not Dagster's bookkeeping."""
    logger = logging.getLogger("pipeline.run.concise")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_ConciseFormatter())
    handler.addFilter(_user_messages)
    logger.handlers = [handler]
    return logger


def _user_messages(record: logging.LogRecord) -> bool:
    # Engine events (step started, output handled, failures with their tracebacks) stay in the event log;
    # the failure's cause is printed once, at the end.
    meta = getattr(record, "dagster_meta", {}) or {}
    return meta.get("dagster_event") is None


class _ConciseFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", {}) or {}
        text = meta.get("orig_message") or record.getMessage()
        prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        step = meta.get("step_key")
        return f"{step}: {prefix}{text}" if step else f"{prefix}{text}"


def _report(result: dg.ExecuteInProcessResult, defs: dg.Definitions) -> int:
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = [c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
    passed = len(checks) - len(failed) - len(warned)
    if checks:
        parts = [f"{passed} checks passed"] + ([f"{len(warned)} warned ({', '.join(warned)})"] if warned else []) \
            + ([f"{len(failed)} failed ({', '.join(failed)})"] if failed else [])
        print("checks: " + ", ".join(parts))
    if result.success:
        warehouse, reports = defs.resources["warehouse"], defs.resources["reports"]
        print(f"warehouse: {Path(warehouse.path).resolve()}")
        written = sorted(p.name for p in Path(reports.reports_dir).glob("*") if p.is_file())
        print(f"reports:   {Path(reports.reports_dir).resolve()}/ ({', '.join(written)})")
        return 0
    print("(one attempt per step here; step retries are for the scheduled runs. Full log: RUN_ARGS=-v)")
    print(f"error: {first_cause(result)}", flush=True)
    return 1


def first_cause(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step and what it said, in one line."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                cause = data.user_failure_data.description
            else:
                cause = data.error.message.strip().splitlines()[-1] if data.error else "failed"
            return f"{event.step_key}: {' '.join(cause.split())}"
    return "the run failed (see the event log: make dev, or run again with -v)"


if __name__ == "__main__":
    sys.exit(main())
