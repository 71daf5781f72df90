"""One `dagster asset materialize --select '*'` against a demo cloud at a URL: wall, peak RSS, and each step's share."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import common, profiles
from bench.sampler import Sample

COMMAND = "dagster asset materialize -m pipeline.definitions --select '*'"
SYNC_STEPS = ("vm_list", "backup_lists", "warehouse_load")
OTHER_STEPS = "alerts, reports and checks"
STARTUP = "start-up"  # from the command's start to its first step: Python, Dagster, the code location
BETWEEN = "between steps and at exit"  # Dagster's own bookkeeping outside every step
SAMPLE_S = 0.05
_EVENT = re.compile(r" - (STEP_START|STEP_SUCCESS|STEP_FAILURE) - .*?step \"([^\"]+)\"(?: in ([0-9.hms]+)\.)?")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)s)?(?:([\d.]+)ms)?$")


@dataclass
class Step:
    """One step of a run: when it started and ended (seconds since the command started) and its peak RSS."""

    start: float
    end: float | None = None
    seconds: float | None = None  # Dagster's own figure for the step
    peak_rss: int = 0


@dataclass
class Run:
    """A finished materialization: the command's wall time and peak RSS, its steps, and what it loaded."""

    wall_s: float
    max_rss: int
    cpu_s: float  # user + system of the dagster process
    steps: dict[str, Step]
    samples: list[Sample] = field(default_factory=list)
    vms: int = 0
    backups: int = 0
    # The sync as sync_runs times it: from the first cloud's VM list read (started_at) to the last cloud's
    # load commit (finished_at), without Dagster's start-up or the steps after the load.
    sync_s: float = 0.0

    def seconds(self, group: str) -> float:
        """Time of one sync step, of every other step together, of the start-up, or outside every step."""
        if group == STARTUP:
            return min((s.start for s in self.steps.values()), default=self.wall_s)
        if group == BETWEEN:
            return self.wall_s - self.seconds(STARTUP) - sum(_seconds(s) for s in self.steps.values())
        if group == OTHER_STEPS:
            return sum(_seconds(s) for name, s in self.steps.items() if name not in SYNC_STEPS)
        return _seconds(self.steps[group]) if group in self.steps else 0.0

    def peak(self, group: str) -> int:
        """Peak RSS while one sync step ran, while any other step ran, or during the start-up."""
        if group == STARTUP:
            return _peak(self.samples, 0.0, self.seconds(STARTUP))
        if group == BETWEEN:
            return 0  # interleaved with the steps: not told apart
        if group == OTHER_STEPS:
            return max((s.peak_rss for name, s in self.steps.items() if name not in SYNC_STEPS), default=0)
        return self.steps[group].peak_rss if group in self.steps else 0

    def peak_phase(self) -> str:
        """Where the high-water mark was reached: a step's name, the start-up, or between steps."""
        if not self.samples:
            return "—"
        top = max(s.hwm for s in self.samples)
        at = next(s.t for s in self.samples if s.hwm == top)
        for name, step in self.steps.items():
            if step.start <= at <= (step.end if step.end is not None else self.wall_s) + SAMPLE_S:
                return name
        return STARTUP if at < self.seconds(STARTUP) else "between steps"


def environment(tmp: Path, url: str, *, concurrency: int) -> dict[str, str]:
    """The job's variables for a run against url, with a warehouse, reports and DAGSTER_HOME under tmp."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(common.ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ONAPP_", "DEMO_CLOUD_", "BACKUPS_"))}
    env.update({
        "ONAPP_API_URL": url, "ONAPP_API_USER": "demo", "ONAPP_API_KEY": "demo-api-key",
        "ONAPP_MAX_CONCURRENCY": str(concurrency),
        "BACKUPS_DB": str(tmp / "warehouse.duckdb"), "BACKUPS_REPORTS_DIR": str(tmp / "reports"),
        "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore",
    })
    return env


def materialize(env: dict[str, str], *, timeout_s: float = 3600, profile_raw: Path | None = None) -> Run:
    """Run the whole job once, sampling its memory; RuntimeError unless the sync ended 'ok'."""
    cmd = [str(Path(sys.executable).with_name("dagster")), *COMMAND.split()[1:]]
    cmd[-1] = "*"  # the shell's quotes are not the process's
    if profile_raw is not None:
        profile_raw.parent.mkdir(parents=True, exist_ok=True)
        cmd = profiles.record_cmd(profile_raw, cmd, rate=100)
    measured = common.measure(cmd, env=env, timeout_s=timeout_s, sample_s=None if profile_raw else SAMPLE_S)
    if measured.returncode != 0:
        raise RuntimeError(f"{COMMAND} failed ({measured.returncode}):\n{measured.stderr[-3000:]}")
    steps = _steps(measured.stderr_lines, measured.wall_s)
    run = Run(measured.wall_s, measured.max_rss, measured.cpu_s, steps, measured.samples)
    for step in run.steps.values():
        step.peak_rss = _peak(run.samples, step.start, step.end if step.end is not None else run.wall_s)
    run.vms, run.backups, run.sync_s = loaded(Path(env["BACKUPS_DB"]))
    return run


def write_timeline(run: Run, path: Path) -> None:
    """The run's memory samples as CSV (seconds, RSS MiB, high-water MiB, step), for a look at where it peaks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["t_s,rss_mib,hwm_mib,step"]
    for sample in run.samples:
        phase = next((name for name, s in run.steps.items()
                      if s.start <= sample.t <= (s.end if s.end is not None else run.wall_s)), "")
        lines.append(f"{sample.t:.2f},{sample.rss / common.MIB:.0f},{sample.hwm / common.MIB:.0f},{phase}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def loaded(db: Path) -> tuple[int, int, float]:
    """VMs fetched in the last run (every cloud of it), current backups, and the run's sync in seconds as its
    ledger rows time it; RuntimeError unless it ended 'ok'."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        [(statuses, vms, backups, sync_s)] = con.execute(
            "SELECT list(DISTINCT status), sum(vms_fetched), (SELECT count(*) FROM backups WHERE deleted_at IS NULL), "
            "epoch(max(finished_at)) - epoch(min(started_at)) "
            "FROM sync_runs WHERE run_id = (SELECT run_id FROM sync_runs ORDER BY started_at DESC LIMIT 1)"
        ).fetchall()
    if statuses != ["ok"]:
        raise RuntimeError(f"the sync ended {', '.join(map(repr, statuses))}")
    return int(vms), backups, float(sync_s)


def _steps(lines: list[tuple[float, str]], wall_s: float) -> dict[str, Step]:
    steps: dict[str, Step] = {}
    for at, line in lines:
        match = _EVENT.search(line)
        if not match:
            continue
        event, name, duration = match.groups()
        if event == "STEP_START":
            steps[name] = Step(start=at)
        elif name in steps:
            steps[name].end = at
            steps[name].seconds = _duration(duration) if duration else None
    return steps


def _duration(text: str) -> float | None:
    # Dagster's format_duration: 0.83ms, 533ms, 5.6s, 4m52s, 1h4m.
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, secs, millis = match.groups()
    return (int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0) + float(millis or 0) / 1000)


def _seconds(step: Step) -> float:
    if step.seconds is not None:
        return step.seconds
    return (step.end - step.start) if step.end is not None else 0.0


def _peak(samples: list[Sample], start: float, end: float) -> int:
    # The high-water mark grows only at a new peak: when it grew inside the window, the window holds
    # the exact peak, even one that fell between two samples.
    inside = [s for s in samples if start <= s.t <= end]
    if not inside:
        return 0
    before = max((s.hwm for s in samples if s.t < start), default=0)
    top = max(s.rss for s in inside)
    return max(top, inside[-1].hwm) if inside[-1].hwm > before else top
