"""Fetch: every VM's backup list from the demo cloud in its own process, against VMs × latency ÷ concurrency."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import common, profiles

COLUMNS = ["concurrency", "VMs fetched", "runs", "wall (median)", "bound = VMs × latency ÷ concurrency",
           "wall ÷ bound", "requests/s", "client CPU", "demo cloud CPU", "target"]
TARGET_CONCURRENCY, TARGET_RATIO = 16, 1.2


def run(*, vms: int = 10_000, backups_per_vm: int = 10, latency_ms: float = 50.0,
        concurrencies: tuple[int, ...] = (1, 8, 16, 32), serial_vms: int = 1_000, runs: int = 3,
        profile_dir: Path | None = None) -> common.Table:
    """Fetch the fleet at each concurrency (concurrency 1 on the first serial_vms VMs only)."""
    table = common.Table("fetch", f"Fetch: {vms:,} VMs, about {backups_per_vm} backups each, "
                         f"{latency_ms:g} ms latency per request", COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    with common.demo_cloud(vms=vms, backups_per_vm=backups_per_vm, latency_ms=latency_ms) as (url, server_pid):
        for concurrency in concurrencies:
            count = min(serial_vms, vms) if concurrency == 1 else vms
            bound = count * latency_ms / 1000 / concurrency
            results = [_fetch(url, server_pid, concurrency, count, bound) for _ in range(runs)]
            wall = common.median([r["wall_s"] for r in results])
            ratio = wall / bound if bound else float("nan")
            target = "—"
            if concurrency == TARGET_CONCURRENCY and bound:
                target = f"≤ {TARGET_RATIO}×: {'met' if ratio <= TARGET_RATIO else 'missed'}"
            label = f"{concurrency} ({count:,}-VM subset)" if count < vms else str(concurrency)
            table.rows.append([
                label, f"{count:,}", str(runs), common.seconds(wall), common.seconds(bound), f"{ratio:.2f}×",
                f"{common.median([r['requests'] / r['wall_s'] for r in results]):.0f}",
                f"{common.median([r['cpu_s'] / r['wall_s'] for r in results]):.0%}",
                f"{common.median([r['server_cpu_s'] / r['wall_s'] for r in results]):.0%}",
                target,
            ])
        if profile_dir is not None:
            _profile(url, server_pid, max(concurrencies), vms, profile_dir)
            table.notes.append(f"Profiles of client and demo cloud at concurrency {max(concurrencies)}: "
                               f"{common.shown(profile_dir)}/fetch-*.txt.")
    if serial_vms < vms and 1 in concurrencies:
        table.notes.append(
            f"Concurrency 1 over all {vms:,} VMs would take at least {vms * latency_ms / 1000:.0f} s: it is measured "
            f"on the first {min(serial_vms, vms):,} VMs, and its bound is {min(serial_vms, vms):,} × "
            f"{latency_ms:g} ms.")
    table.notes.append("CPU columns: CPU seconds ÷ wall seconds of one process (100% = one core busy); the demo "
                       "cloud well below 100% means the server is not what limits the client.")
    return table


def _fetch(url: str, server_pid: int, concurrency: int, count: int, bound: float) -> dict:
    before = common.cpu_seconds(server_pid)
    measured = common.measure(_client_cmd(url, concurrency, count), timeout_s=3 * bound + 120)
    result = measured.result()
    result["server_cpu_s"] = common.cpu_seconds(server_pid) - before
    if result["failed"] or result["vms"] != count:
        raise RuntimeError(f"fetch at concurrency {concurrency}: {result}")
    return result


def _client_cmd(url: str, concurrency: int, count: int) -> list[str]:
    return [sys.executable, "-m", "bench.fetch", "--url", url, "--concurrency", str(concurrency), "--vms", str(count)]


def _profile(url: str, server_pid: int, concurrency: int, count: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    client_raw, server_raw = out / "fetch-client.raw", out / "fetch-server.raw"
    server = profiles.attach(server_raw, server_pid)
    try:
        time.sleep(1)  # py-spy attaches before the first request
        common.measure(profiles.record_cmd(client_raw, _client_cmd(url, concurrency, count)),
                       timeout_s=count * 0.05 / concurrency * 5 + 120)
    finally:
        profiles.stop(server)
    for raw, name in ((client_raw, "client"), (server_raw, "server")):
        text = "\n".join(profiles.summarize(raw)) if raw.exists() else "(py-spy wrote nothing)"
        (out / f"fetch-{name}.txt").write_text(f"fetch at concurrency {concurrency}, {name}\n{text}\n")


def _client(url: str, concurrency: int, count: int) -> dict:
    """One fetch of count VMs' backup lists, timed around fetch_backups alone."""
    from pipeline.onapp.client import ClientSettings, OnAppClient

    settings = ClientSettings(api_url=url, user="demo", api_key="demo-api-key", per_page=1000,
                              max_concurrency=concurrency, progress_seconds=3600)
    lister = OnAppClient(settings)
    try:
        ids = [vm["id"] for vm in lister.list_virtual_machines()][:count]
    finally:
        lister.close()
    client = OnAppClient(settings)
    try:
        cpu, started = time.process_time(), time.perf_counter()
        report = client.fetch_backups(ids)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        client.close()
    backups = sum(len(o.backups) for o in report.outcomes.values())
    return {"wall_s": wall, "cpu_s": cpu, "requests": report.requests, "failed": report.failed,
            "vms": len(report.outcomes), "backups": backups}


def main(argv: list[str] | None = None) -> int:
    """One measured fetch; its result as a JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.fetch", description="One measured fetch (a bench child).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--vms", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(_client(args.url, args.concurrency, args.vms)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
