"""dlt's rest_api source syncing the demo cloud into DuckDB, the job's peer (a bench child)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import common


def installed() -> bool:
    """Tell whether dlt can be imported here (the bench extra installs it)."""
    import importlib.util

    return importlib.util.find_spec("dlt") is not None


def _header_total_paginator(per_page: int) -> Any:
    """Page numbers from 1, stopping at the page X-Total and X-Limit say is the last (no empty page asked for)."""
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

    class HeaderTotalPaginator(PageNumberPaginator):
        def __init__(self) -> None:
            super().__init__(base_page=1, page_param="page", total_path=None, stop_after_empty_page=True)

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            super().update_state(response, data)
            total, limit = response.headers.get("X-Total"), response.headers.get("X-Limit")
            if total is not None and self.current_value > math.ceil(int(total) / int(limit or per_page)):
                self._has_next_page = False

    return HeaderTotalPaginator()


def sync(url: str, *, concurrency: int, workdir: Path, per_page: int = 100) -> dict[str, Any]:
    """Run the pipeline once into workdir/dlt.duckdb; return each stage's seconds and the rows loaded."""
    # Before dlt is imported: its settings are read from the environment once.
    os.environ.update({
        "EXTRACT__WORKERS": str(concurrency),
        # The futures dlt keeps queued beside its workers, like the job's window of 4 per worker.
        "EXTRACT__MAX_PARALLEL_ITEMS": str(4 * concurrency),
        "RUNTIME__DLTHUB_TELEMETRY": "false",  # no traffic but to the demo cloud
        "RUNTIME__LOG_LEVEL": "WARNING",
    })
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": url.rstrip("/") + "/",
            "auth": {"type": "http_basic", "username": "demo", "password": "demo-api-key"},
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "virtual_machines",
                "endpoint": {
                    "path": "virtual_machines.json",
                    "params": {"per_page": per_page},
                    "paginator": _header_total_paginator(per_page),
                    "data_selector": "$[*].virtual_machine",
                },
            },
            {
                "name": "backups",
                "endpoint": {
                    "path": "virtual_machines/{resources.virtual_machines.id}/backups/images.json",
                    "paginator": "single_page",
                    "data_selector": "$[*].backup",
                },
                # Each VM's request is a deferred item that dlt's extract workers run concurrently.
                "parallelized": True,
            },
        ],
    })
    db = workdir / "dlt.duckdb"
    pipeline = dlt.pipeline(pipeline_name="onapp_backups", pipelines_dir=str(workdir / "pipelines"),
                            destination=dlt.destinations.duckdb(str(db)), dataset_name="onapp")
    times: dict[str, float] = {}
    # The process's high-water mark after each stage: the stage where it rose is where dlt peaks.
    peaks: dict[str, int] = {}
    for stage, step in (("extract", lambda: pipeline.extract(source)), ("normalize", pipeline.normalize),
                        ("load", lambda: pipeline.load().raise_on_failed_jobs())):
        began = time.perf_counter()
        step()
        times[f"{stage}_s"] = time.perf_counter() - began
        peaks[stage] = common.status_bytes("VmHWM")
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        [(vms,)] = con.execute("SELECT count(*) FROM onapp.virtual_machines").fetchall()
        [(backups,)] = con.execute("SELECT count(*) FROM onapp.backups").fetchall()
        tables = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'onapp' "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY 1").fetchall()]
    return {**times, "hwm_after": peaks, "vms": vms, "backups": backups, "tables": tables,
            "version": dlt.__version__}


def main(argv: list[str] | None = None) -> int:
    """One dlt sync; its result as a JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.dlt_sync", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(sync(args.url, concurrency=args.concurrency, workdir=args.workdir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
