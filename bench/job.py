"""The whole job's memory: dagster asset materialize against a separate demo cloud of 10,000 and 100,000 VMs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import common, profiles
from bench.materialize import (
    BETWEEN, COMMAND, OTHER_STEPS, SAMPLE_S, STARTUP, SYNC_STEPS, Run, environment, materialize, write_timeline,
)

COLUMNS = ["fleet", "runs", "wall (median)", "CPU (median)", "peak RSS (median)", "bound", "peak ÷ bound", "target",
           "peak reached in", "VMs / backups loaded"]
# Fleet size and the bound on the dagster process's peak RSS there; None: no bound (the floor).
FLEETS: tuple[tuple[int, int | None], ...] = ((100, None), (10_000, 400 * common.MIB), (100_000, common.GIB))
BACKUPS_PER_VM = 10
CONCURRENCY = 16
GROUPS = (STARTUP, *SYNC_STEPS, OTHER_STEPS)


def run(*, fleets: tuple[tuple[int, int | None], ...] = FLEETS, backups_per_vm: int = BACKUPS_PER_VM,
        runs: int = 3, cache_dir: Path = common.DEFAULT_CACHE, profile_dir: Path | None = None) -> list[common.Table]:
    """Materialize every asset into a fresh warehouse runs times per fleet; each fleet's cloud serves all its runs."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    table = common.Table("job", f"The whole job's memory: {COMMAND}, demo cloud of about {backups_per_vm} backups "
                         "per VM in its own process, no added latency", COLUMNS)
    steps = common.Table("job-steps", "The whole job, step by step: median time and peak RSS of the dagster "
                         "process while each step ran", ["step", *(f"{label} at {vms:,} VMs" for vms, _ in fleets
                                                                   for label in ("time", "peak RSS"))])
    table.notes.append(f"Machine: {common.machine()}.")
    results: dict[int, list[Run]] = {}
    for vms, _ in fleets:
        with common.demo_cloud(vms=vms, backups_per_vm=backups_per_vm, latency_ms=0) as (url, _pid):
            results[vms] = []
            for _ in range(runs):
                with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                    results[vms].append(materialize(environment(Path(tmp).resolve(), url, concurrency=CONCURRENCY)))
            # The run whose peak is the median one shows the shape of the others.
            typical = sorted(results[vms], key=lambda r: r.max_rss)[len(results[vms]) // 2]
            write_timeline(typical, cache_dir / "profiles" / f"job-rss-{vms}.csv")
            if profile_dir is not None and vms == 10_000:
                # A run of its own: py-spy's overhead must not reach the figures.
                with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                    materialize(environment(Path(tmp).resolve(), url, concurrency=CONCURRENCY),
                                profile_raw=profile_dir.resolve() / "job.raw")
                text = "\n".join(profiles.summarize(profile_dir / "job.raw", top=25))
                (profile_dir / "job.txt").write_text(f"{COMMAND}, {vms:,} VMs\n{text}\n")
    peaks = {vms: common.median([r.max_rss for r in results[vms]]) for vms, _ in fleets}
    for vms, bound in fleets:
        rs = results[vms]
        peak = peaks[vms]
        phases = sorted({r.peak_phase() for r in rs})
        table.rows.append([
            f"{vms:,} VMs" + (" (the floor: Dagster and its libraries)" if bound is None else ""), str(len(rs)),
            common.seconds(common.median([r.wall_s for r in rs])),
            common.seconds(common.median([r.cpu_s for r in rs])), common.mib(peak),
            common.mib(bound) if bound else "—", f"{peak / bound:.2f}×" if bound else "—",
            (f"≤ {common.mib(bound)}: {'met' if peak <= bound else 'missed'}") if bound else "—",
            ", ".join(phases), f"{rs[-1].vms:,} / {rs[-1].backups:,}",
        ])
    bounded = [vms for vms, bound in fleets if bound]
    floor = next((vms for vms, bound in fleets if bound is None), None)
    if len(bounded) >= 2:
        small, large = bounded[0], bounded[-1]
        fleet_ratio = large / small
        ratio = peaks[large] / peaks[small]
        cells = [f"**{large:,} ÷ {small:,} VMs**", "", "", "", f"{ratio:.2f}×", "", "",
                 f"sub-linear, < {fleet_ratio:g}×: {'met' if ratio < fleet_ratio else 'missed'}", "", ""]
        table.rows.append(cells)
        if floor is not None:
            small_above, large_above = peaks[small] - peaks[floor], peaks[large] - peaks[floor]
            # Below the floor's own peak, a fleet's data is not what sets the peak: no ratio to give.
            share = (f"{large_above / small_above:.2f}× the memory for {fleet_ratio:g}× the fleet"
                     if small_above > 0 else f"the {small:,}-VM run peaked no higher than the floor")
            table.notes.append(
                f"Above the floor of {common.mib(peaks[floor])} (a {floor:,}-VM fleet), {large:,} VMs take "
                f"{common.mib(large_above)} and {small:,} VMs {common.mib(small_above)}: {share}.")
    for group in (*GROUPS, BETWEEN, "whole command"):
        cells = [group]
        for vms, _ in fleets:
            rs = results[vms]
            if group == BETWEEN:
                cells += [common.seconds(common.median([r.seconds(group) for r in rs])), ""]
            elif group == "whole command":
                cells += [common.seconds(common.median([r.wall_s for r in rs])), common.mib(peaks[vms])]
            else:
                cells += [common.seconds(common.median([r.seconds(group) for r in rs])),
                          common.mib(common.median([r.peak(group) for r in rs]))]
        steps.rows.append(cells)
    table.notes.append(
        f"Each run: `{COMMAND}` with ONAPP_API_URL at a demo cloud of its own process "
        f"(`python -m pipeline.demo --port 0 --vms N --backups-per-vm {backups_per_vm}`), "
        f"ONAPP_MAX_CONCURRENCY={CONCURRENCY}, the default in-process executor, and a fresh BACKUPS_DB, "
        "BACKUPS_REPORTS_DIR and DAGSTER_HOME. Peak RSS: getrusage of the dagster process (wait4), Dagster's "
        "start-up included; the cloud's memory is not in it.")
    table.notes.append(
        f"\"Peak reached in\": the step during which the process's VmHWM (/proc/<pid>/status, read every "
        f"{int(1000 * SAMPLE_S)} ms) reached its final value. The samples of the median run are in "
        f"{common.shown(cache_dir / 'profiles')}/job-rss-<VMs>.csv.")
    if profile_dir is not None:
        table.notes.append(
            f"Profile of a 10,000-VM run (py-spy, the GIL's holder): {common.shown(profile_dir)}/job.txt.")
    steps.notes.append(
        "Times: Dagster's \"Finished execution of step\" figures; start-up is from the command's start to its first "
        f"step. Peak RSS: the highest VmRSS sampled while the step ran, or the exact VmHWM when the process's "
        f"high-water mark rose during the step. \"{OTHER_STEPS}\": the alerts step, the report export step and the asset checks.")
    return [table, steps]
