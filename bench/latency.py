"""The whole job at 50 ms a request against the bound the fetch allows, and dlt's rest_api beside it."""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from bench import common, dlt_sync
from bench.materialize import BETWEEN, COMMAND, OTHER_STEPS, STARTUP, SYNC_STEPS, environment, materialize

COLUMNS = ["sync", "runs", "wall (median)", "CPU (median)", "bound", "wall ÷ bound", "target", "peak RSS (median)",
           "wall ÷ the job's", "peak RSS ÷ the job's", "time by stage (median)", "VMs / backups loaded"]
TARGET_RATIO = 1.15
PER_PAGE = 100  # the job's default ONAPP_PER_PAGE, set explicitly so that dlt asks for the same pages
ADMIN_LISTS = 2  # users and backup servers: one request each


def run(*, vms: int = 10_000, backups_per_vm: int = 10, latency_ms: float = 50.0, concurrency: int = 16,
        runs: int = 3, cache_dir: Path = common.DEFAULT_CACHE, with_dlt: bool = True,
        profile_dir: Path | None = None) -> common.Table:
    """The job and (when installed) dlt, alternately, runs times each against one demo cloud with latency."""
    del profile_dir  # the job's profile is taken by the memory benchmark; latency adds only waiting to it
    latency = latency_ms / 1000
    pages = math.ceil(vms / PER_PAGE)
    fetch_bound = vms * latency / concurrency + pages * latency
    job_bound = fetch_bound + ADMIN_LISTS * latency
    table = common.Table("latency", f"The whole job against the fetch bound: {vms:,} VMs, about {backups_per_vm} "
                         f"backups each, {latency_ms:g} ms per request, concurrency {concurrency}", COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    dlt_here = with_dlt and dlt_sync.installed()
    jobs, dlts = [], []
    cache_dir.mkdir(parents=True, exist_ok=True)
    with common.demo_cloud(vms=vms, backups_per_vm=backups_per_vm, latency_ms=latency_ms) as (url, _pid):
        for _ in range(runs):
            # Alternating, so that whatever else the machine does weighs on both alike.
            with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                env = environment(Path(tmp).resolve(), url, concurrency=concurrency)
                env["ONAPP_PER_PAGE"] = str(PER_PAGE)
                jobs.append(materialize(env, timeout_s=20 * job_bound + 300))
            if dlt_here:
                dlts.append(_dlt(url, concurrency, cache_dir, timeout_s=20 * job_bound + 300))
    wall = common.median([r.wall_s for r in jobs])
    peak = common.median([r.max_rss for r in jobs])
    ratio = wall / job_bound
    stages = " · ".join(f"{group} {common.seconds(common.median([r.seconds(group) for r in jobs]))}"
                        for group in (STARTUP, *SYNC_STEPS, OTHER_STEPS, BETWEEN))
    table.rows.append([
        f"this job: `{COMMAND}`", str(len(jobs)), common.seconds(wall),
        common.seconds(common.median([r.cpu_s for r in jobs])), common.seconds(job_bound), f"{ratio:.2f}×",
        f"≤ {TARGET_RATIO}×: {'met' if ratio <= TARGET_RATIO else 'missed'}", common.mib(peak), "1.00×", "1.00×",
        stages, f"{jobs[-1].vms:,} / {jobs[-1].backups:,}",
    ])
    if dlts:
        dlt_wall = common.median([r["wall_s"] for r in dlts])
        dlt_peak = common.median([r["max_rss"] for r in dlts])
        dlt_stages = " · ".join(
            f"{name} {common.seconds(common.median([r[key] for r in dlts]))}"
            for name, key in (("start-up and the end", "other_s"), ("extract", "extract_s"),
                              ("normalize", "normalize_s"), ("load", "load_s")))
        table.rows.append([
            f"dlt {dlts[-1]['version']} `rest_api` → DuckDB (`python -m bench.dlt_sync`)", str(len(dlts)),
            common.seconds(dlt_wall), common.seconds(common.median([r["cpu_s"] for r in dlts])),
            common.seconds(fetch_bound), f"{dlt_wall / fetch_bound:.2f}×", "—",
            common.mib(dlt_peak), f"{dlt_wall / wall:.2f}×", f"{dlt_peak / peak:.2f}×", dlt_stages,
            f"{dlts[-1]['vms']:,} / {dlts[-1]['backups']:,}",
        ])
    table.notes.append(
        f"Bound: VMs × latency ÷ concurrency + VM-list pages × latency (+ the {ADMIN_LISTS} admin lists for the "
        f"job) = {vms:,} × {latency_ms:g} ms ÷ {concurrency} + {pages} × {latency_ms:g} ms"
        f" (+ {ADMIN_LISTS} × {latency_ms:g} ms) = {common.seconds(fetch_bound)} (job: {common.seconds(job_bound)}); "
        "the requests alone, nothing for start-up, loading or reports.")
    table.notes.append(
        f"The job: `{COMMAND}` with ONAPP_API_URL at `python -m pipeline.demo --port 0 --vms {vms} --backups-per-vm "
        f"{backups_per_vm} --latency-ms {latency_ms:g}` (its own process), ONAPP_MAX_CONCURRENCY={concurrency}, "
        f"ONAPP_PER_PAGE={PER_PAGE} (the default), the default in-process executor, a fresh warehouse each run. "
        "Wall time of the whole command, Python start-up and every step included; peak RSS from getrusage of "
        "the dagster process.")
    if dlts:
        table.notes.append(
            f"dlt: the `rest_api` source over the same cloud in the same invocation, runs alternating with the job's: "
            f"`virtual_machines.json?page=N&per_page={PER_PAGE}` (a page-number paginator that stops at the page "
            "X-Total and X-Limit name, so no extra empty page), items selected with `$[*].virtual_machine`; "
            "`virtual_machines/{resources.virtual_machines.id}/backups/images.json` as a child resource, "
            "`parallelized`, items `$[*].backup`; both `write_disposition: merge` on `id`, into a fresh DuckDB "
            f"file; EXTRACT__WORKERS={concurrency} (max_parallel_items {4 * concurrency}). dlt reads neither "
            "admin list, and keeps records as they come (no secret stripping, no versions or history, no "
            "reports): less work than the job after the fetch.")
        after = {stage: common.median([r["hwm_after"][stage] for r in dlts]) for stage in dlts[-1]["hwm_after"]}
        table.notes.append(
            "dlt's memory, the high-water mark of its process after each stage (median): "
            + ", ".join(f"{stage} {common.mib(value)}" for stage, value in after.items())
            + f"; tables loaded: {', '.join(dlts[-1]['tables'])}.")
    elif with_dlt:
        table.notes.append("dlt is not installed here, so its row is left out: `pip install -e '.[bench]'` adds it.")
    return table


def _dlt(url: str, concurrency: int, cache_dir: Path, *, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [sys.executable, "-m", "bench.dlt_sync", "--url", url, "--concurrency", str(concurrency),
               "--workdir", str(Path(tmp).resolve())]
        measured = common.measure(cmd, timeout_s=timeout_s)
        result = measured.result()
    result.update(wall_s=measured.wall_s, max_rss=measured.max_rss, cpu_s=measured.cpu_s)
    result["other_s"] = measured.wall_s - result["extract_s"] - result["normalize_s"] - result["load_s"]
    return result
