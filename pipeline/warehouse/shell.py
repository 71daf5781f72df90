"""`python -m pipeline.warehouse.shell`: a read-only SQL shell on the warehouse, for `make sql`.

DuckDB's own CLI is not a dependency: the one on PyPI (duckdb-cli) trails the duckdb release the
pipeline writes with and cannot open its files, so this shell runs on the pipeline's own duckdb.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable

import duckdb

from pipeline.warehouse.connection import (
    DEFAULT_DB,
    DEFAULT_LOCK_TIMEOUT_S,
    WarehouseBusy,
    connect_warehouse,
)

PROMPT = "backups> "
MORE = "...> ".rjust(len(PROMPT))
BANNER = "Read-only SQL on {path}. End each statement with ';'. SHOW TABLES; lists the tables, .quit leaves."
QUIT = {".quit", ".exit", ".q"}


def run_text(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """Run every statement of a SQL text, printing each result as a table; False at the first error."""
    try:
        parsed = con.extract_statements(text)
        for statement in parsed:
            relation = con.sql(statement)
            # SET, BEGIN and the like answer with a placeholder table; there is nothing to show.
            if relation is not None and duckdb.ExpectedResultType.QUERY_RESULT in statement.expected_result_type:
                relation.show(max_width=shutil.get_terminal_size().columns)
    except duckdb.Error as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return False
    sys.stdout.flush()
    return True


def _complete(text: str) -> bool:
    # A ';' at the end of a line may sit inside an open string, identifier or /* comment: DuckDB's
    # parser then says "unterminated" and the statement goes on. Any other parser error is the
    # user's to see, so the text counts as complete and runs into it.
    if not text.rstrip().endswith(";"):
        return False
    try:
        duckdb.extract_statements(text)
    except duckdb.ParserException as error:
        return "unterminated" not in str(error)
    return True


def interact(con: duckdb.DuckDBPyConnection, read_line: Callable[[str], str] = input) -> None:
    """Read statements line by line until .quit or end of input, running each once its ';' is typed."""
    buffer: list[str] = []
    while True:
        try:
            line = read_line(MORE if buffer else PROMPT)
        except EOFError:
            break
        except KeyboardInterrupt:
            print()
            buffer.clear()
            continue
        if not buffer and line.strip().lower() in QUIT:
            break
        buffer.append(line)
        text = "\n".join(buffer)
        if _complete(text):
            run_text(con, text)
            buffer.clear()
    if buffer and "".join(buffer).strip():
        run_text(con, "\n".join(buffer))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.warehouse.shell", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("BACKUPS_DB") or DEFAULT_DB,
                        help=f"the warehouse file (env BACKUPS_DB, default {DEFAULT_DB})")
    parser.add_argument("-c", "--command", help="run these statements and exit, instead of reading them")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Open the warehouse read-only and run -c's statements, piped-in ones, or an interactive session."""
    args = _arguments(argv)
    if not os.path.exists(args.db):
        print(f"No warehouse at {args.db}: run `make run` first, or set BACKUPS_DB.", file=sys.stderr)
        return 1
    timeout = float(os.environ.get("BACKUPS_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT_S)
    try:
        con = connect_warehouse(args.db, read_only=True, lock_timeout_s=timeout)
    except WarehouseBusy:
        # A sync never holds the file (it publishes a copy); only a process writing it in place does.
        print(f"{args.db} is open for writing in another process; try again when it has closed it.", file=sys.stderr)
        return 1
    with con:
        if args.command is not None:
            return 0 if run_text(con, args.command) else 1
        if not sys.stdin.isatty():
            return 0 if run_text(con, sys.stdin.read()) else 1
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        print(BANNER.format(path=args.db))
        interact(con)
    return 0


if __name__ == "__main__":
    sys.exit(main())
