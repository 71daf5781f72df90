"""python -m bench: run the benchmarks, print their tables, and write them into BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import clouds, common, fetch, job, latency, load, reports

BENCHMARKS = {"fetch": fetch.run, "load": load.run, "reports": reports.run, "job": job.run,
              "latency": latency.run, "clouds": clouds.run}


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmarks (all by default) and print or write their tables."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"which benchmarks: {', '.join(BENCHMARKS)} (all by default)")
    parser.add_argument("--runs", type=int, help="runs per figure (default: 3, reports 5)")
    parser.add_argument("--write", type=Path, help="replace the tables' sections in this file (BENCHMARKS.md)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile each benchmark once, outside the measured runs")
    parser.add_argument("--cache-dir", type=Path, default=common.DEFAULT_CACHE,
                        help="generated data, temporary warehouses and profiles")
    args = parser.parse_args(argv)
    if args.runs is not None and not 1 <= args.runs <= 20:
        parser.error("--runs must be between 1 and 20")
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.names = args.names or list(BENCHMARKS)
    for name in args.names:
        options: dict = {} if args.runs is None else {"runs": args.runs}
        if args.profile:
            options["profile_dir"] = args.cache_dir / "profiles"
        if name != "fetch":
            options["cache_dir"] = args.cache_dir
        started = time.monotonic()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        result = BENCHMARKS[name](**options)
        for table in result if isinstance(result, list) else [result]:
            _report(table, args.write)
        print(f"== {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return 0


def _report(table: common.Table, path: Path | None) -> None:
    # Other work on the machine moves every figure: the load at both ends says whether there was any.
    table.notes.insert(1, "Load average at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + ".")
    print(table.markdown() + "\n", flush=True)
    if path is not None:
        common.write_tables(path, [table])  # each as it finishes: a later failure keeps the others


if __name__ == "__main__":
    sys.exit(main())
