"""Export the report views as CSV files that a spreadsheet opens safely."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

# Each is a view created by sql/reports/<name>.sql and exported as <name>.csv.
REPORTS: tuple[str, ...] = ("storage_by_backup_server", "storage_by_user")

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
    """The rows of one report view, in the view's order."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; reports are {', '.join(REPORTS)}")
    # The name is checked against the fixed list above: identifiers cannot be ? parameters.
    return con.execute(f"SELECT * FROM {name}").df()


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write RFC 4180 CSV (UTF-8, CRLF, header) via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            neutralize_formulas(frame).to_csv(
                handle, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_report(con: duckdb.DuckDBPyConnection, name: str, reports_dir: str | Path) -> tuple[Path, pd.DataFrame]:
    """Write <reports_dir>/<name>.csv from its view; return the path and the rows."""
    frame = read_report(con, name)
    return write_csv(frame, Path(reports_dir) / f"{name}.csv"), frame
