"""Export the report views as CSV (and optionally Parquet) files that a spreadsheet opens safely."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipeline.reports import csv_lines
from pipeline.reports.atomic_file import atomic_path

# Each is a view created by sql/reports/<name>.sql and exported as <name>.csv.
REPORTS: tuple[str, ...] = (
    "storage_by_backup_server",
    "storage_by_user",
    "storage_by_virtual_machine",
    "storage_trend",
    "capacity_forecast",
    "reclaimable_backups",
    "chargeback_by_user_month",
    "protection_gaps",
    "backup_anomalies",
)

EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")
DEFAULT_EXPORT_FORMATS: tuple[str, ...] = ("csv",)
# Which sync the set shows, and which files it holds.
MANIFEST = "manifest.json"
# atomic_path's temporary files, left in a folder whose writer was killed; replacing the folder drops them.
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows of each report a run's metadata previews.
PREVIEW_ROWS = 10
# The connection's temporary table a report's rows are staged in while it is exported.
_STAGED = "report_rows"


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would evaluate with an apostrophe; numbers stay numbers."""
    frame = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_string_dtype(column) or column.dtype == object:
            text = column.astype("string")
            risky = text.str.startswith(_FORMULA_STARTS).fillna(False)
            frame[name] = text.where(~risky, "'" + text)
    return frame

def read_report(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """The rows of one report view, in the view's order; DECIMAL columns hold exact Decimals."""
    _known(name)
    return _read(con, name, _columns(con, name))


def _known(name: str) -> None:
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; reports are {', '.join(REPORTS)}")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    # relation is a report's name checked against REPORTS, or the staging table: identifiers cannot be ? parameters.
    return con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {relation})").fetchall()


def _read(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]],
          limit: int | None = None) -> pd.DataFrame:
    decimals = [column for column, sql_type in columns if sql_type.startswith("DECIMAL")]
    # .df() turns DECIMAL into float64, which would round an amount; read them as text, then as Decimals.
    as_text = ", ".join(f'"{column}"::VARCHAR AS "{column}"' for column in decimals)
    select = f"SELECT * REPLACE ({as_text}) FROM {relation}" if decimals else f"SELECT * FROM {relation}"
    frame = con.execute(select + (" LIMIT ?" if limit is not None else ""),
                        [limit] if limit is not None else None).df()
    for column in decimals:
        frame[column] = frame[column].map(Decimal, na_action="ignore")
    return frame

def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write RFC 4180 CSV (UTF-8, CRLF, header) via a temporary file and a rename."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        neutralize_formulas(frame).to_csv(handle, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    return path

def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write Parquet via pyarrow, atomically; values stay as the warehouse holds them.

    No formula neutralizing here: Parquet is read by data tools, which do not evaluate cells,
    and an apostrophe would corrupt the value for them.
    """
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
    return path

WRITERS: dict[str, Callable[[pd.DataFrame, Path], Path]] = {"csv": write_csv, "parquet": write_parquet}


def _write_rendered_csv(con: duckdb.DuckDBPyConnection, rendered: tuple[str, dict[str, object]],
                        columns: list[tuple[str, str]], path: Path) -> Path:
    # The same file write_csv writes of the frame (csv_lines says how), without the frame.
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow([c for c, _ in columns])
        for text in csv_lines.lines(con, *rendered):
            handle.write(text)
    return path


@dataclass(frozen=True)
class ExportedReport:
    """One report as exported: how many rows, the first ones, its files by format, its chart (None: none), and
    every row when they were asked for (a chart draws them)."""

    rows: int
    head: pd.DataFrame
    files: dict[str, Path]
    chart: Path | None = None
    frame: pd.DataFrame | None = None


def export_report(
    con: duckdb.DuckDBPyConnection,
    name: str,
    reports_dir: str | Path,
    formats: tuple[str, ...] = DEFAULT_EXPORT_FORMATS,
    *,
    with_frame: bool = False,
) -> ExportedReport:
    """Write <reports_dir>/<name>.<format> for each format from one read of the view; the frame of every row
    only with_frame (or where a format needs it).

    The view's rows are staged once in a temporary table of the connection, in the view's order; the CSV is
    rendered from there inside DuckDB, the preview's rows and any frame are read from there too.
    """
    _known(name)
    # The name is checked against the fixed list above: identifiers cannot be ? parameters.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGED} AS SELECT * FROM {name}")
    try:
        columns = _columns(con, _STAGED)
        [(rows,)] = con.execute(f"SELECT count(*) FROM {_STAGED}").fetchall()
        rendered = csv_lines.render_query(_STAGED, columns, _FORMULA_STARTS) if "csv" in formats else None
        needs_frame = with_frame or "parquet" in formats or ("csv" in formats and rendered is None)
        frame = _read(con, _STAGED, columns) if needs_frame else None
        head = frame.head(PREVIEW_ROWS) if frame is not None else _read(con, _STAGED, columns, limit=PREVIEW_ROWS)
        files = {}
        for fmt in formats:
            path = Path(reports_dir) / f"{name}.{fmt}"
            if fmt == "csv" and rendered is not None:
                files[fmt] = _write_rendered_csv(con, rendered, columns, path)
            else:
                files[fmt] = WRITERS[fmt](frame, path)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_STAGED}")
    return ExportedReport(rows=rows, head=head, files=files, frame=frame if with_frame else None)


def export_set(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    formats: tuple[str, ...],
    *,
    sync: Mapping[str, Any] | None,
    draw: Callable[[str, pd.DataFrame, Path], Path | None] | None = None,
    charted: Collection[str] = (),
) -> dict[str, ExportedReport]:
    """Write every report into folder from one connection, the chart draw makes of each report in charted,
    and the set's manifest.

    One connection reads one state of the warehouse, so every file of the set shows the same sync;
    sync (the ledger row of that sync, or None before the first) is recorded in the manifest.
    Charts are drawn on a thread of their own while the next views are read: drawing holds Python, while
    DuckDB reads and renders without it.
    """
    charted = set(charted) if draw is not None else set()
    exported, drawn = {}, {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-charts") as drawing:
        # The charted reports first, so that drawing starts early and the others are read meanwhile.
        for name in sorted(REPORTS, key=lambda name: name not in charted):
            report = export_report(con, name, folder, formats, with_frame=name in charted)
            if report.frame is not None:
                drawn[name] = drawing.submit(draw, name, report.frame, folder)
            exported[name] = report
        # In the set's order; a chart that failed raises here, as it did when drawn in turn.
        exported = {name: replace(exported[name], chart=drawn[name].result()) if name in drawn else exported[name]
                    for name in REPORTS}
    manifest = {
        "sync": dict(sync) if sync is not None else None,
        "reports": {
            name: {"rows": report.rows,
                   "files": [path.name for path in [*report.files.values(), report.chart] if path is not None]}
            for name, report in exported.items()
        },
    }
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return exported


def is_export_file(name: str) -> bool:
    """Whether a file name is one an export writes (a report, a chart, the manifest, a temporary file)."""
    stem, _, suffix = name.rpartition(".")
    return (stem in REPORTS and suffix in (*EXPORT_FORMATS, "png")) or name == MANIFEST or bool(_TEMPORARY.match(name))
