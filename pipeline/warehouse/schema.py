"""The warehouse tables' columns as the migrations define them, read from a scratch in-memory database."""

from functools import cache

import duckdb

from pipeline.warehouse.connection import migration_files
from pipeline.warehouse.sql_files import run_sql


@cache
def table_schemas(tables: tuple[str, ...]) -> dict[str, list[tuple[str, str]]]:
    """Each table's (column, SQL type) pairs in table order, from the migrations themselves."""
    with duckdb.connect(":memory:") as con:
        # The migrations alone: the report views on top (most of a full migrate's time) add no table.
        for name in migration_files():
            run_sql(con, name)
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE table_name IN (SELECT unnest($tables::VARCHAR[])) ORDER BY table_name, column_index",
            {"tables": list(tables)},
        ).fetchall()
    schemas: dict[str, list[tuple[str, str]]] = {name: [] for name in tables}
    for table, column, sql_type in rows:
        schemas[table].append((column, sql_type))
    return schemas
