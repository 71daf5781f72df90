"""Export the report views as CSV (and optionally Parquet) files that a spreadsheet opens safely."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

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
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; reports are {', '.join(REPORTS)}")
    # The name is checked against the fixed list above: identifiers cannot be ? parameters.
    types = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall()
    decimals = [column for column, sql_type in types if sql_type.startswith("DECIMAL")]
    if not decimals:
        return con.execute(f"SELECT * FROM {name}").df()
    # .df() turns DECIMAL into float64, which would round an amount; read them as text, then as Decimals.
    as_text = ", ".join(f'"{column}"::VARCHAR AS "{column}"' for column in decimals)
    frame = con.execute(f"SELECT * REPLACE ({as_text}) FROM {name}").df()
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

def export_report(
    con: duckdb.DuckDBPyConnection,
    name: str,
    reports_dir: str | Path,
    formats: tuple[str, ...] = DEFAULT_EXPORT_FORMATS,
) -> tuple[dict[str, Path], pd.DataFrame]:
    """Write <reports_dir>/<name>.<format> for each format from the view; return the paths and the rows."""
    frame = read_report(con, name)
    paths = {fmt: WRITERS[fmt](frame, Path(reports_dir) / f"{name}.{fmt}") for fmt in formats}
    return paths, frame


@dataclass(frozen=True)
class ExportedReport:
    """One report of a set: its rows, its files by format, and its chart (None: the report has none)."""

    frame: pd.DataFrame
    files: dict[str, Path]
    chart: Path | None


def export_set(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    formats: tuple[str, ...],
    *,
    sync: Mapping[str, Any] | None,
    draw: Callable[[str, pd.DataFrame, Path], Path | None] | None = None,
) -> dict[str, ExportedReport]:
    """Write every report into folder from one connection, each chart draw makes, and the set's manifest.

    One connection reads one state of the warehouse, so every file of the set shows the same sync;
    sync (the ledger row of that sync, or None before the first) is recorded in the manifest.
    """
    exported = {}
    for name in REPORTS:
        files, frame = export_report(con, name, folder, formats)
        exported[name] = ExportedReport(frame, files, draw(name, frame, folder) if draw else None)
    manifest = {
        "sync": dict(sync) if sync is not None else None,
        "reports": {
            name: {"rows": len(report.frame),
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
