"""Reports: refreshing every report (view read, exported, charted) over a million backups and a year of history."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from bench import common, load

COLUMNS = ["report", "rows", "runs", "query and export (median)", "chart (median)", "total (median)"]
TARGET_S = 3.0
HISTORY_SQL = Path(__file__).resolve().parent / "sql" / "year_of_history.sql"


def run(*, records: int = 1_000_000, days: int = 365, runs: int = 5, cache_dir: Path = common.DEFAULT_CACHE,
        profile_dir: Path | None = None) -> common.Table:
    """Build the warehouse once (the real first load, then a synthetic year), then refresh the reports runs times."""
    data = load.dataset(records, cache_dir)
    table = common.Table("reports", f"Reports: every report refreshed over {records:,} current backups and "
                         f"{days} days of daily history", COLUMNS)
    table.notes.append(f"Machine: {common.machine()}.")
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        db, out = Path(tmp).resolve() / "warehouse.duckdb", Path(tmp).resolve() / "reports"
        load._step(data, db, "first", None)
        contents = _add_history(db, records, days)
        results = [_refresh(db, out, None) for _ in range(runs)]
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            _refresh(db, out, profile_dir / "reports.txt")
            table.notes.append(f"Profile (pyinstrument): {common.shown(profile_dir)}/reports.txt.")
    names = list(results[0]["reports"])
    for name in names:
        export = common.median([r["reports"][name]["export_s"] for r in results])
        chart = common.median([r["reports"][name]["chart_s"] for r in results])
        charted = any(r["reports"][name]["charted"] for r in results)
        table.rows.append([name, f"{results[0]['reports'][name]['rows']:,}", str(runs), common.seconds(export),
                           common.seconds(chart) if charted else "no chart", common.seconds(export + chart)])
    total = common.median([r["total_s"] for r in results])
    table.rows.append([f"**all {len(names)} reports** (target < {TARGET_S:g} s: "
                       f"{'met' if total < TARGET_S else 'missed'})", "", str(runs), "", "", common.seconds(total)])
    table.notes.append(
        f"Warehouse: {contents['current']:,} current and {contents['deleted']:,} deleted backups, "
        f"{contents['versions']:,} backup versions, {contents['history']:,} storage_history rows over "
        f"{contents['syncs']:,} syncs. The first day is the real first load; the year before it is synthetic "
        "(bench/sql/year_of_history.sql: a quarter's growth, 1,000 backups deleted and 2,000 resized a day).")
    table.notes.append("Each report as its asset does it: open the warehouse, read the view, write the CSV, then "
                       "draw its chart where it has one; the total includes the opens.")
    return table


def _add_history(db: Path, records: int, days: int) -> dict[str, int]:
    from pipeline.warehouse.sql_files import statements
    from pipeline.warehouse.connection import open_warehouse

    with open_warehouse(db) as con:
        [(id_base, now)] = con.execute("SELECT max(id), max(last_seen_at) FROM backups").fetchall()
        params = {"run_id": "bench-first", "now": now, "days": days, "id_base": id_base,
                  "deleted": min(records, 1_000 * days), "resized": min(records, 2_000 * days)}
        for statement in statements(HISTORY_SQL.read_text(encoding="utf-8")):
            used = {key: params[key] for key in re.findall(r"\$([a-z_]+)", statement)}
            con.execute(statement, used or None).fetchall()
        [(current, deleted, versions, history, syncs)] = con.execute(
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL), "
            "(SELECT count(*) FROM backup_versions), (SELECT count(*) FROM storage_history), "
            "(SELECT count(*) FROM sync_runs) FROM backups").fetchall()
    return {"current": current, "deleted": deleted, "versions": versions, "history": history, "syncs": syncs}


def _refresh(db: Path, out: Path, profile: Path | None) -> dict:
    cmd = [sys.executable, "-m", "bench.reports", "--db", str(db), "--out", str(out)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    return common.measure(cmd, timeout_s=600).result()


def _refresh_all(db: Path, out: Path, profile: Path | None) -> dict:
    """Every report as its asset refreshes it, timed; imports (matplotlib among them) happen before the clock."""
    from pipeline.reports.charts import CHARTS, write_chart
    from pipeline.reports.export import REPORTS, export_report
    from pipeline.warehouse.connection import open_warehouse

    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    reports = {}
    started = time.perf_counter()
    for name in REPORTS:
        began = time.perf_counter()
        with open_warehouse(db) as con:
            report = export_report(con, name, out, with_frame=name in CHARTS)
        exported = time.perf_counter()
        chart = write_chart(name, report.frame, out) if report.frame is not None else None
        reports[name] = {"rows": report.rows, "export_s": exported - began,
                         "chart_s": time.perf_counter() - exported, "charted": chart is not None}
    total = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {"reports": reports, "total_s": total}


def main(argv: list[str] | None = None) -> int:
    """One timed refresh of every report; its result as a JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description="One timed refresh (a bench child).")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(_refresh_all(args.db, args.out, args.profile)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
