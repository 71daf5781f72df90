"""Normalize and load: a million fetched backup records staged and written (write_sync), then 1% changed."""

from __future__ import annotations

import argparse
import gc
import json
import math
import pickle
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import common

COLUMNS = ["step", "records", "runs", "wall (median)", "stage: normalize + Parquet", "write_sync",
           "RSS before the step", "peak RSS in the step", "peak − before", "rows added: backups / versions / history",
           "target"]
TARGET_S, TARGET_BYTES = 10.0, 1.5 * common.GIB
BACKUPS_PER_VM = 10
CHANGED_FRACTION = 0.01
FIRST_SYNC = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)


def dataset(records: int, cache_dir: Path, seed: int = 7) -> Path:
    """The pickled fetch of exactly `records` backups (demo cloud payloads, decoded as the client decodes them)."""
    path = (cache_dir / f"fetched-{records}-seed{seed}.pickle").resolve()
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Its own process: building a million-backup fleet takes ~3 GiB that the bench should not keep.
        common.measure([sys.executable, "-m", "bench.load", "generate", "--records", str(records),
                        "--seed", str(seed), "--out", str(path)], timeout_s=1800).result()
    return path


def run(*, records: int = 1_000_000, runs: int = 3, cache_dir: Path = common.DEFAULT_CACHE,
        profile_dir: Path | None = None) -> common.Table:
    """First load into an empty warehouse, then the same fleet with 1% changed, each in a fresh process."""
    data = dataset(records, cache_dir)
    table = common.Table("load", f"Normalize and load: {records:,} fetched backup records "
                         "(stage_in_memory + write_sync, each in a fresh process)", COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    firsts, changes = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            db = Path(tmp).resolve() / "warehouse.duckdb"
            firsts.append(_step(data, db, "first", None))
            changes.append(_step(data, db, "changed", None))
    if profile_dir is not None:
        # Runs of their own: a profiler's overhead must not reach the figures.
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            db = Path(tmp).resolve() / "warehouse.duckdb"
            _step(data, db, "first", profile_dir)
            _step(data, db, "changed", profile_dir)
    first_wall = common.median([r["wall_s"] for r in firsts])
    changed_wall = common.median([r["wall_s"] for r in changes])
    for name, results in (("first load, empty warehouse", firsts), ("same fleet, 1% changed", changes)):
        wall = common.median([r["wall_s"] for r in results])
        before = common.median([r["rss_before"] for r in results])
        peak = common.median([r["rss_peak"] for r in results])
        grown = results[-1]["grown"]
        if results is firsts:
            target = (f"< {TARGET_S:g} s: {'met' if wall < TARGET_S else 'missed'}; "
                      f"< 1.5 GiB for the step: {'met' if peak - before < TARGET_BYTES else 'missed'}")
        else:
            expected = results[-1]["expected"]
            exact = all(r["grown"] == r["expected_growth"] for r in results) and all(
                r["summary"] == expected for r in results)
            target = (f"faster than the first load: {'met' if wall < first_wall else 'missed'} "
                      f"({wall / first_wall:.2f}×); growth = changes: {'met' if exact else 'missed'}")
        table.rows.append([
            name, f"{results[-1]['records']:,}", str(runs), common.seconds(wall),
            common.seconds(common.median([r["stage_s"] for r in results])),
            common.seconds(common.median([r["write_s"] for r in results])),
            common.gib(before), common.gib(peak), common.gib(peak - before),
            f"{grown['backups']:,} / {grown['backup_versions']:,} / {grown['storage_history']:,}", target,
        ])
    expected = changes[-1]["expected"]
    table.notes.append(
        f"1% changed: {expected['backups_changed']:,} resized, {expected['backups_deleted']:,} deleted, "
        f"{expected['backups_new']:,} new. Expected growth: backups by the new ones, versions by resized + new, "
        "history by one row per backup server and per user; the ledger counted exactly these.")
    table.notes.append(
        "RSS before the step is the fetched records themselves (each VM's list of dicts, all at once: the job "
        "never holds them together, its backup_lists step stages them a part at a time) plus the interpreter and "
        "its libraries; the peak is read from VmHWM reset just before the step. The whole process peaked at "
        f"{common.gib(common.median([r['max_rss'] for r in firsts]))} (first load, getrusage).")
    table.notes.append(f"Rerun ÷ first load: {changed_wall / first_wall:.2f}×, compared within this run.")
    if profile_dir is not None:
        table.notes.append(
            f"Profiles (pyinstrument, time and peak RSS per SQL file): {common.shown(profile_dir)}/load-*.txt.")
    return table


def _counts(db: Path) -> dict[str, int]:
    import duckdb

    if not db.exists():
        return {"backups": 0, "backup_versions": 0, "storage_history": 0}
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
                for name in ("backups", "backup_versions", "storage_history")}


def _step(data: Path, db: Path, phase: str, profile_dir: Path | None) -> dict:
    """One measured step in a fresh process."""
    before = _counts(db)
    cmd = [sys.executable, "-m", "bench.load", "step", "--data", str(data), "--db", str(db), "--phase", phase]
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--profile", str(profile_dir.resolve() / f"load-{phase}.txt")]
    measured = common.measure(cmd, timeout_s=1800)
    result = measured.result()
    after = _counts(db)
    result["max_rss"] = measured.max_rss
    result["grown"] = {name: after[name] - before[name] for name in after}
    if phase == "first":
        result["expected_growth"] = result["grown"]
    else:
        expected = result["expected"]
        result["expected_growth"] = {
            "backups": expected["backups_new"],
            "backup_versions": expected["backups_new"] + expected["backups_changed"],
            "storage_history": result["history_rows"],
        }
    return result


def _generate(records: int, seed: int, out: Path) -> dict:
    """Build the fleet, and decode each VM's list the way the client decodes a response body."""
    from pipeline.demo.config import DemoCloudConfig
    from pipeline.demo.fleet import Fleet
    from pipeline.demo.render import render_json
    from pipeline.onapp.session import decode_list

    vms = math.ceil(records / BACKUPS_PER_VM * 1.02) + 10
    fleet = Fleet(DemoCloudConfig(vms=vms, backups_per_vm=BACKUPS_PER_VM, seed=seed))
    listings: dict[int, list[dict]] = {}
    total = 0
    for vm_id in sorted(fleet.vms):
        if total >= records:
            break
        backups = fleet.backups_of(vm_id)[: records - total]
        listings[vm_id] = decode_list(render_json("backup", backups), "json", "backup")
        total += len(backups)
    if total < records:
        raise RuntimeError(f"the fleet holds {total} backups, fewer than {records}")

    def decoded(items: list[dict], wrapper: str) -> list[dict]:
        return decode_list(render_json(wrapper, items), "json", wrapper)

    payload = {
        "listings": listings,
        "vms": decoded([fleet.vms[vm_id] for vm_id in listings], "virtual_machine"),
        "users": decoded([fleet.users[i] for i in sorted(fleet.users)], "user"),
        "servers": decoded([fleet.backup_servers[i] for i in sorted(fleet.backup_servers)], "backup_server"),
    }
    with open(out.with_suffix(".partial"), "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    out.with_suffix(".partial").replace(out)
    return {"records": total, "vms": len(listings)}


def _change(listings: dict[int, list[dict]], seed: int) -> dict[str, int]:
    """Resize half of 1% of the backups, delete a quarter, add a quarter as new ones; return the counts."""
    rng = random.Random(seed)
    places = [(vm_id, index) for vm_id, records in listings.items() for index in range(len(records))]
    chosen = rng.sample(places, max(4, int(len(places) * CHANGED_FRACTION)))
    resized, deleted, added = chosen[: len(chosen) // 2], chosen[len(chosen) // 2: 3 * len(chosen) // 4], \
        chosen[3 * len(chosen) // 4:]
    next_id = max(record["id"] for records in listings.values() for record in records) + 1
    for vm_id, index in resized:
        record = listings[vm_id][index]
        listings[vm_id][index] = {**record, "backup_size": record["backup_size"] + 1024}
    for offset, (vm_id, index) in enumerate(added):
        listings[vm_id].append({**listings[vm_id][index], "id": next_id + offset})
    gone = set(deleted)
    for vm_id in {vm_id for vm_id, _ in deleted}:
        listings[vm_id] = [r for i, r in enumerate(listings[vm_id]) if (vm_id, i) not in gone]
    return {"backups_new": len(added), "backups_changed": len(resized), "backups_deleted": len(deleted)}


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _measure_step(data: Path, db: Path, phase: str, profile: Path | None) -> dict:
    """One sync staged and written, timed and with its memory: the job's steps in one process."""
    import pyarrow.parquet as pq

    from pipeline.records.normalize import BACKUP_SERVER_FIELDS, USER_FIELDS, VM_FIELDS, reference_frame
    from pipeline.warehouse import load as sync
    from pipeline.warehouse.connection import DEFAULT_CLOUD, open_warehouse
    from pipeline.warehouse.load import write_sync
    from pipeline.warehouse.staging import RunStaging, stage_in_memory

    with open(data, "rb") as handle:
        payload = pickle.load(handle)
    listings = payload["listings"]
    expected = _change(listings, seed=11) if phase == "changed" else None
    vms = reference_frame(payload["vms"], VM_FIELDS)
    users = reference_frame(payload["users"], USER_FIELDS)
    servers = reference_frame(payload["servers"], BACKUP_SERVER_FIELDS)
    del payload
    records = sum(len(r) for r in listings.values())
    run_id = f"bench-{phase}"
    staging = RunStaging(db.parent / "staging", run_id, DEFAULT_CLOUD)
    sql_times: dict[str, float] = {}
    sql_peaks: dict[str, int] = {}
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        original = sync.run_sql

        def timed(con, name, params=None):
            # Peak per file as well: VmHWM reset before each (this run's own figures are not reported).
            _reset_peak()
            started = time.perf_counter()
            try:
                return original(con, name, params)
            finally:
                sql_times[name] = sql_times.get(name, 0.0) + time.perf_counter() - started
                sql_peaks[name] = max(sql_peaks.get(name, 0), common.status_bytes("VmHWM"))

        sync.run_sql = timed
        profiler = Profiler(interval=0.002)
    gc.collect()
    exact_peak = _reset_peak()
    rss_before = common.status_bytes("VmRSS")
    if profiler:
        profiler.start()
    started = time.perf_counter()
    stage_in_memory(staging, listed_at=FIRST_SYNC + timedelta(days=1 if phase == "changed" else 0),
                    source="bench", api_format="json", vms=vms, listings=listings, users=users,
                    backup_servers=servers)
    staged_at = time.perf_counter()
    rss_staged, peak_staged = common.status_bytes("VmRSS"), common.status_bytes("VmHWM")
    with open_warehouse(db) as con:
        summary = write_sync(con, run_id, staging, warehouse_path=str(db))
    finished = time.perf_counter()
    if profiler:
        profiler.stop()
        lines = [f"{name:32} {seconds:6.2f} s  peak RSS {sql_peaks[name] / common.MIB:6,.0f} MiB"
                 for name, seconds in sql_times.items()]
        head = (f"{phase}: {records:,} records; RSS {rss_before / common.MIB:,.0f} MiB before staging, "
                f"{rss_staged / common.MIB:,.0f} MiB after it (peak {peak_staged / common.MIB:,.0f} MiB)\n")
        profile.write_text(head + "SQL files:\n" + "\n".join(lines) + "\n\n"
                           + profiler.output_text(unicode=False, color=False, show_all=False))
    rss_peak = common.status_bytes("VmHWM") if exact_peak else 0
    staged = pq.read_table(staging.backup_files(), columns=["backup_server_id", "owner_user_id"]).to_pandas()
    rejected = staging.backups_done()["rejected"]
    staging.remove()
    return {
        "records": records, "wall_s": finished - started, "stage_s": staged_at - started,
        "write_s": finished - staged_at, "rss_before": rss_before, "rss_peak": rss_peak, "rejected": rejected,
        # One history row per backup server and per owner holding current backups (NULL is a key too).
        "history_rows": int(staged["backup_server_id"].nunique(dropna=False)
                            + staged["owner_user_id"].nunique(dropna=False)),
        "summary": {"backups_new": summary.backups_new, "backups_changed": summary.backups_changed,
                    "backups_deleted": summary.backups_deleted},
        "expected": expected,
    }


def main(argv: list[str] | None = None) -> int:
    """Generate the data set or measure one step; the result as a JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description="Bench children: data and one step.")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate")
    generate.add_argument("--records", type=int, required=True)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--out", type=Path, required=True)
    step = commands.add_parser("step")
    step.add_argument("--data", type=Path, required=True)
    step.add_argument("--db", type=Path, required=True)
    step.add_argument("--phase", choices=("first", "changed"), required=True)
    step.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    if args.command == "generate":
        result = _generate(args.records, args.seed, args.out)
    else:
        result = _measure_step(args.data, args.db, args.phase, args.profile)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
