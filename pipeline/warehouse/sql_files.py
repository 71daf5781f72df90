"""Read the project's SQL files and run them with bound parameters."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@cache
def read_sql(name: str) -> str:
    """The text of sql/<name>, e.g. 'upsert_backups.sql' or 'reports/storage_by_user.sql'."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def statements(text: str) -> list[str]:
    """Split a file into statements: each ends with ';' at the end of a line."""
    parts = re.split(r";[ \t]*(?:\n|$)", text)
    return [part.strip() for part in parts if _has_code(part)]


def _has_code(part: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())


def run_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> list[tuple]:
    """Run every statement of sql/<name>; each gets the named $parameters it uses.

    Returns:
        The rows of the last statement (results are always read to the end, as DuckDB requires).
    """
    params = params or {}
    rows: list[tuple] = []
    for statement in statements(read_sql(name)):
        used = {key: params[key] for key in _PARAMETER.findall(statement)}
        rows = con.execute(statement, used or None).fetchall()
    return rows


def query_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The rows of the one query in sql/<name>, as a frame; it gets the named $parameters it uses."""
    [statement] = statements(read_sql(name))
    used = {key: (params or {})[key] for key in _PARAMETER.findall(statement)}
    return con.execute(statement, used or None).df()
