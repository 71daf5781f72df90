"""The whole job from the command line (dagster asset materialize), on the embedded demo cloud of 10,000 VMs."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from bench import common, profiles

COLUMNS = ["sync", "runs", "wall (median)", "peak RSS (median)", "virtual_machines", "backup_listings",
           "normalized_backups", "backups", "reports and checks", "VMs / backups loaded"]
SYNC_STEPS = ("virtual_machines", "backup_listings", "normalized_backups", "backups")
_STEP = re.compile(r'Finished execution of step "(\w+)" in ([\d.]+)(ms|s)\b')


def run(*, vms: int = 10_000, backups_per_vm: int = 10, runs: int = 3, rerun: bool = True,
        cache_dir: Path = common.DEFAULT_CACHE, profile_dir: Path | None = None) -> common.Table:
    """Materialize every asset into a fresh warehouse runs times (and once more into each, unchanged)."""
    table = common.Table("job", f"The whole job: dagster asset materialize --select '*', embedded demo cloud of "
                         f"{vms:,} VMs, about {backups_per_vm} backups each", COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    phases: dict[str, list[dict]] = {"first sync, empty warehouse": [], "second sync, nothing changed": []}
    cache_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(runs):
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            env = _environment(Path(tmp).resolve(), vms, backups_per_vm)
            phases["first sync, empty warehouse"].append(_materialize(env))
            if rerun:
                phases["second sync, nothing changed"].append(_materialize(env))
    if profile_dir is not None:
        # A run of its own: py-spy's overhead must not reach the figures.
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            _materialize(_environment(Path(tmp).resolve(), vms, backups_per_vm), profile_dir)
    for name, results in phases.items():
        if not results:
            continue
        steps = {step: common.median([r["steps"].get(step, 0.0) for r in results]) for step in SYNC_STEPS}
        others = common.median([sum(s for k, s in r["steps"].items() if k not in SYNC_STEPS) for r in results])
        table.rows.append([
            name, str(len(results)), common.seconds(common.median([r["wall_s"] for r in results])),
            common.gib(common.median([r["max_rss"] for r in results])),
            *(common.seconds(steps[step]) for step in SYNC_STEPS), common.seconds(others),
            f"{results[-1]['vms']:,} / {results[-1]['backups']:,}",
        ])
    table.notes.append(
        "Wall time of the whole command, Python start-up and Dagster's own work included; step times are "
        "Dagster's \"Finished execution of step\" figures. Peak RSS from getrusage of the command (one process: "
        "the in-process executor, the embedded demo cloud on a thread of it).")
    if profile_dir is not None:
        table.notes.append(
            f"Profile of a first sync (py-spy, the GIL's holder): {common.shown(profile_dir)}/job.txt.")
    return table


def _environment(tmp: Path, vms: int, backups_per_vm: int) -> dict[str, str]:
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(common.ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ONAPP_", "DEMO_CLOUD_", "BACKUPS_"))}
    env.update({
        "DEMO_CLOUD_VMS": str(vms), "DEMO_CLOUD_BACKUPS_PER_VM": str(backups_per_vm),
        "BACKUPS_DB": str(tmp / "warehouse.duckdb"), "BACKUPS_REPORTS_DIR": str(tmp / "reports"),
        "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore",
    })
    return env


def _materialize(env: dict[str, str], profile_dir: Path | None = None) -> dict:
    cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipeline.definitions",
           "--select", "*"]
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        cmd = profiles.record_cmd(profile_dir.resolve() / "job.raw", cmd, rate=100)
    measured = common.measure(cmd, env=env, timeout_s=1800)
    if measured.returncode != 0:
        raise RuntimeError(f"dagster asset materialize failed ({measured.returncode}):\n{measured.stderr[-3000:]}")
    if profile_dir is not None:
        (profile_dir / "job.txt").write_text("\n".join(profiles.summarize(profile_dir / "job.raw", top=25)) + "\n")
    steps: dict[str, float] = {}
    for name, value, unit in _STEP.findall(measured.stdout + measured.stderr):
        steps[name] = float(value) / (1000 if unit == "ms" else 1)
    vms, backups = _loaded(Path(env["BACKUPS_DB"]))
    return {"wall_s": measured.wall_s, "max_rss": measured.max_rss, "steps": steps, "vms": vms, "backups": backups}


def _loaded(db: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        [(status, vms, backups)] = con.execute(
            "SELECT status, vms_fetched, (SELECT count(*) FROM backups WHERE deleted_at IS NULL) "
            "FROM sync_runs ORDER BY started_at DESC LIMIT 1").fetchall()
    if status != "ok":
        raise RuntimeError(f"the sync ended {status!r}")
    return vms, backups
