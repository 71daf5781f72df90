"""Two clouds of half the fleet each against one cloud of the whole fleet, at the same latency and per-cloud concurrency."""

from __future__ import annotations

import math
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import common
from bench.materialize import COMMAND, STARTUP, Run, environment, materialize

COLUMNS = ["sync", "runs", "wall (median)", "CPU of the dagster process (median)", "fetch bound",
           "wall ÷ one cloud's", "sync in the ledger (median)", "sync ÷ one cloud's", "time by stage (median)",
           "VMs / backups loaded"]
PER_PAGE = 100
KEY_ENV = "BENCH_CLOUD_KEY"


def run(*, vms: int | tuple[int, ...] = (10_000, 20_000), backups_per_vm: int = 10, latency_ms: float = 50.0,
        concurrency: int = 16, runs: int = 3, cache_dir: Path = common.DEFAULT_CACHE,
        profile_dir: Path | None = None) -> common.Table:
    """For each fleet size, the job against one cloud of that many VMs and against two of half as many each,
    alternately, runs times each: the first size is the comparison asked for, a larger one shows the trend."""
    del profile_dir  # the time goes to waiting on the API: the latency benchmark profiles the same code
    fleets = (vms,) if isinstance(vms, int) else vms
    table = common.Table("clouds", f"Two clouds of half the VMs against one of them all: about {backups_per_vm} "
                         f"backups per VM, {latency_ms:g} ms per request, concurrency {concurrency} per cloud",
                         COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    cache_dir.mkdir(parents=True, exist_ok=True)
    for fleet in fleets:
        table.rows.extend(_compare(fleet, backups_per_vm, latency_ms, concurrency, runs, cache_dir))
    table.notes.append(
        f"Command: `{COMMAND}`. One cloud: ONAPP_API_URL at `python -m pipeline.demo --vms N --backups-per-vm "
        f"{backups_per_vm} --latency-ms {latency_ms:g}`. Two clouds: BACKUPS_CLOUDS_FILE naming two such clouds of "
        f"N / 2 VMs (seeds 1 and 2, so their ids overlap), each `max_concurrency = {concurrency}`. A fresh "
        "warehouse each run; every cloud's demo server in its own process. Each ratio is to the one cloud of the "
        "same fleet, measured in the same invocation.")
    table.notes.append(
        "Sync in the ledger: the run's sync_runs rows, from the first cloud's VM list read (started_at) to the last "
        "cloud's load commit (finished_at): the fetch and the load, without Dagster's start-up or the checks, "
        "alerts and reports after the load.")
    table.notes.append(
        f"Fetch bound: VMs × latency ÷ concurrency + VM-list pages × latency, per cloud (the two clouds are "
        f"fetched side by side): {'; '.join(_bounds(fleet, latency_ms, concurrency) for fleet in fleets)}.")
    return table


def _bound(vms: int, latency_ms: float, concurrency: int) -> float:
    return vms * latency_ms / 1000 / concurrency + math.ceil(vms / PER_PAGE) * latency_ms / 1000


def _bounds(vms: int, latency_ms: float, concurrency: int) -> str:
    return (f"{common.seconds(_bound(vms, latency_ms, concurrency))} for one cloud of {vms:,}, "
            f"{common.seconds(_bound(vms // 2, latency_ms, concurrency))} for each of two of {vms // 2:,}")


def _compare(vms: int, backups_per_vm: int, latency_ms: float, concurrency: int, runs: int,
             cache_dir: Path) -> list[list[str]]:
    """The two rows of one fleet size: one cloud of vms VMs, two clouds of vms / 2."""
    half = vms // 2
    ones: list[Run] = []
    twos: list[Run] = []
    with ExitStack() as clouds:
        one = clouds.enter_context(common.demo_cloud(vms=vms, backups_per_vm=backups_per_vm, latency_ms=latency_ms))[0]
        # Different seeds: the two clouds share their ids, as two real control panels do.
        eu, us = (clouds.enter_context(common.demo_cloud(vms=half, backups_per_vm=backups_per_vm,
                                                         latency_ms=latency_ms, seed=seed))[0] for seed in (1, 2))
        for _ in range(runs):
            # Alternating, so that whatever else the machine does weighs on both alike.
            with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                ones.append(materialize(environment(Path(tmp).resolve(), one, concurrency=concurrency)))
            with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                twos.append(materialize(_two_clouds(Path(tmp).resolve(), {"eu": eu, "us": us}, concurrency)))
    wall_one = common.median([r.wall_s for r in ones])
    sync_one = common.median([r.sync_s for r in ones])
    rows = []
    for label, results, bound, fetch_steps in (
            (f"one cloud of {vms:,} VMs (in process, the default for one cloud)", ones,
             _bound(vms, latency_ms, concurrency), ("backup_lists",)),
            (f"two clouds of {half:,} VMs (a process per step, the default for several)", twos,
             _bound(half, latency_ms, concurrency), ("eu__backup_lists", "us__backup_lists"))):
        wall = common.median([r.wall_s for r in results])
        sync = common.median([r.sync_s for r in results])
        stages = {
            STARTUP: common.median([r.seconds(STARTUP) for r in results]),
            "fetch (the slowest cloud's backup lists)": common.median(
                [max(r.seconds(step) for step in fetch_steps) for r in results]),
            "load": common.median([r.seconds("warehouse_load") for r in results]),
        }
        rows.append([
            label, str(len(results)), common.seconds(wall), common.seconds(common.median([r.cpu_s for r in results])),
            common.seconds(bound), f"{wall / wall_one:.2f}×", common.seconds(sync), f"{sync / sync_one:.2f}×",
            " · ".join(f"{name} {common.seconds(value)}" for name, value in stages.items()),
            f"{results[-1].vms:,} / {results[-1].backups:,}",
        ])
    return rows


def _two_clouds(tmp: Path, urls: dict[str, str], concurrency: int) -> dict[str, str]:
    env = environment(tmp, "", concurrency=concurrency)
    for variable in ("ONAPP_API_URL", "ONAPP_API_USER", "ONAPP_API_KEY"):
        del env[variable]
    clouds = tmp / "clouds.toml"
    clouds.write_text("".join(
        f'[clouds.{name}]\nurl = "{url}"\nuser = "demo"\nkey_env = "{KEY_ENV}"\nmax_concurrency = {concurrency}\n'
        for name, url in urls.items()), encoding="utf-8")
    return env | {"BACKUPS_CLOUDS_FILE": str(clouds), KEY_ENV: "demo-api-key"}
