"""A report's CSV rows rendered inside DuckDB, byte for byte what pandas' to_csv writes of the same frame.

The export used to read each view into a frame and write it with pandas; formatting timestamps there took
most of the time. DuckDB renders each cell as that writer did instead, and Python only writes the lines:
- integers as digits, doubles as numpy's shortest text ('2.0', '1e-05', 'inf'; NaN as empty), which DuckDB's
  own cast produces;
- DECIMALs as their exact text ('2.60'; the frame held Decimals, whose str is that text up to 6 places);
- TIMESTAMPTZ as pandas prints a column of UTC Timestamps ('2026-03-01 02:00:00+00:00'): with 6 digits of
  fraction on every row of a chunk where one has microseconds, with 3 where one has milliseconds only;
  DATE as '2026-03-01';
- text and DECIMALs neutralized (export.neutralize_formulas: a leading = + - @ tab or CR gets an apostrophe),
  then quoted as Python's csv module quotes (QUOTE_MINIMAL: a field with a comma, a quote, CR or LF is
  quoted, its quotes doubled);
- NULL as an empty field, every row ending in CRLF.
A column of any other type has no rendering here (render_query gives None) and the caller writes the frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import duckdb

# DuckDB's integer types, which the frame held as int64 (or Int64 with NULLs): their digits either way.
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
# DECIMAL(width, scale): str of a Decimal switches to exponents below 1E-6, so only scales up to 6 read alike.
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")
_MAX_DECIMAL_SCALE = 6
# The characters that make Python's csv module quote a field (QUOTE_MINIMAL, delimiter ',', lineterminator CRLF).
_NEEDS_QUOTES = '[,"\r\n]'
_BATCH_ROWS = 50_000
_PANDAS_CHUNK_CELLS = 100_000


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    # Neutralized like export.neutralize_formulas, then quoted like csv.writer; NULL is an empty field.
    neutral = f"CASE WHEN list_contains($formula_starts, left({value}, 1)) THEN '''' || {value} ELSE {value} END"
    return (f"CASE WHEN {value} IS NULL THEN '' WHEN regexp_matches({neutral}, $needs_quotes) "
            f"THEN '\"' || replace({neutral}, '\"', '\"\"') || '\"' ELSE {neutral} END")


def _resolution(value: str) -> str:
    # 2: some microseconds, 1: milliseconds only, 0: whole seconds (NULL for NULL, which max() skips).
    return (f"CASE WHEN microsecond({value}) % 1000 <> 0 THEN 2 "
            f"WHEN microsecond({value}) % 1000000 <> 0 THEN 1 ELSE 0 END")


def _timestamp(value: str, resolution: str) -> str:
    # pandas prints a chunk of a UTC column in one format: the finest any of its values needs.
    utc = f"timezone('UTC', {value})"
    return (f"CASE WHEN {value} IS NULL THEN '' "
            f"WHEN {resolution} = 2 THEN strftime({utc}, '%Y-%m-%d %H:%M:%S.%f+00:00') "
            f"WHEN {resolution} = 1 THEN strftime({utc}, '%Y-%m-%d %H:%M:%S.%g+00:00') "
            f"ELSE strftime({utc}, '%Y-%m-%d %H:%M:%S+00:00') END")


def _cell(value: str, sql_type: str) -> str | None:
    if sql_type in _INTEGERS:
        return f"coalesce({value}::VARCHAR, '')"
    if sql_type == "DOUBLE":
        return f"CASE WHEN {value} IS NULL OR isnan({value}) THEN '' ELSE {value}::VARCHAR END"
    if sql_type == "VARCHAR":
        return _text(value)
    if (decimal := _DECIMAL.match(sql_type)) and int(decimal.group(2)) <= _MAX_DECIMAL_SCALE:
        return _text(f"{value}::VARCHAR")
    if sql_type == "DATE":
        return f"coalesce(strftime({value}, '%Y-%m-%d'), '')"
    return None


def render_query(table: str, columns: Sequence[tuple[str, str]],
                 formula_starts: Sequence[str]) -> tuple[str, dict[str, object]] | None:
    """A query of one column, line: each row of table as its CSV line with CRLF, in the table's order (its
    rowid: the table is written once, in order), and the values it binds; None when a column's type has no
    rendering here. columns: (name, DuckDB type) in the table's order; formula_starts: what a text cell
    that a spreadsheet would run starts with."""
    # One column would need csv's special case (an empty field alone on its line is written as "").
    if len(columns) < 2:
        return None
    cells, resolutions = [], []
    for index, (name, sql_type) in enumerate(columns):
        value = f"r.{_identifier(name)}"
        if sql_type == "TIMESTAMP WITH TIME ZONE":
            resolutions.append(f"max({_resolution(_identifier(name))}) OVER (PARTITION BY rowid // $chunk_rows) "
                               f'AS "csv resolution {index}"')
            cells.append(_timestamp(value, f'r."csv resolution {index}"'))
        else:
            cells.append(_cell(value, sql_type))
    if any(cell is None for cell in cells):
        return None
    extra = ", ".join([*resolutions, 'rowid AS "csv row"'])
    query = (f"SELECT concat_ws(',', {', '.join(cells)}) || chr(13) || chr(10) AS line "
             f'FROM (SELECT *, {extra} FROM {_identifier(table)}) AS r ORDER BY r."csv row"')
    values: dict[str, object] = {"formula_starts": list(formula_starts), "needs_quotes": _NEEDS_QUOTES}
    if resolutions:
        # pandas' to_csv formats its rows in chunks of 100,000 cells (pandas.io.formats.csvs).
        values["chunk_rows"] = max(_PANDAS_CHUNK_CELLS // len(columns), 1)
    # DuckDB refuses a value for a parameter the query does not use.
    return query, {key: value for key, value in values.items() if f"${key}" in query}


def lines(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, object]) -> Iterator[str]:
    """The text of render_query's lines, in batches (each a run of whole lines), so no batch holds the table."""
    relation = con.sql(query, params=params)
    reader = relation.to_arrow_reader(_BATCH_ROWS)
    for batch in reader:
        yield "".join(batch.column(0).to_pylist())
