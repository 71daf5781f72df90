"""Read the project's SQL files and run them with bound parameters."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import duckdb
import pandas as pd

# The top-level sql/ folder, installed as this package (see pyproject.toml).
SQL_PACKAGE = "pipeline.sql"


def sql_root() -> Traversable:
    """The folder of the SQL files, wherever the package is installed."""
    return files(SQL_PACKAGE)


def sql_names(folder: str) -> list[str]:
    """The .sql files of one folder, e.g. 'migrations', as sorted names for read_sql."""
    entries = (sql_root() / folder).iterdir()
    return sorted(f"{folder}/{entry.name}" for entry in entries if entry.name.endswith(".sql"))


@cache
def read_sql(name: str) -> str:
    """The text of sql/<name>, e.g. 'upsert_backups.sql' or 'reports/storage_by_user.sql'."""
    return sql_root().joinpath(*name.split("/")).read_text(encoding="utf-8")


def statements(text: str) -> list[str]:
    """The statements of a SQL text, split by DuckDB's parser (empty and comment-only ones dropped)."""
    return [statement.query.strip() for statement in duckdb.extract_statements(text)]


def _bound(statement: duckdb.Statement, params: dict[str, Any], name: str) -> dict[str, Any] | None:
    # DuckDB rejects values for parameters a statement does not use, so each gets only its own.
    missing = statement.named_parameters - params.keys()
    if missing:
        wanted = ", ".join(sorted(f"${key}" for key in missing))
        raise KeyError(f"sql/{name} uses {wanted}, which were not given")
    return {key: params[key] for key in statement.named_parameters} or None


def run_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> list[tuple]:
    """Run every statement of sql/<name>; each gets the named $parameters it uses.

    Returns:
        The rows of the last statement (results are always read to the end, as DuckDB requires).
    """
    rows: list[tuple] = []
    for statement in con.extract_statements(read_sql(name)):
        rows = con.execute(statement, _bound(statement, params or {}, name)).fetchall()
    return rows


def stage_sql(
    con: duckdb.DuckDBPyConnection, table: str, name: str, params: dict[str, Any] | None = None
) -> None:
    """The rows of the one query in sql/<name>, in its order, as the connection's temporary table <table> (replaced).

    Temporary tables live in the connection's memory, so a read-only connection stages too; what follows reads
    the rows in DuckDB instead of a frame of them. table is a name of the code's, never a value.
    """
    [statement] = con.extract_statements(read_sql(name))
    # The query's own text: a file that changes its columns changes the table's with it.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {statement.query}", _bound(statement, params or {}, name))


def query_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The rows of the one query in sql/<name>, as a frame; it gets the named $parameters it uses."""
    [statement] = con.extract_statements(read_sql(name))
    return con.execute(statement, _bound(statement, params or {}, name)).df()
