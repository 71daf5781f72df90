"""The DuckDB warehouse: opening it (one writer at a time), migrating it, and knowing its source."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipeline.warehouse.sql_files import SQL_DIR, read_sql, run_sql

DEFAULT_DB = "data/backups.duckdb"
DEFAULT_LOCK_TIMEOUT_S = 60.0


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file."""


class SourceMismatch(RuntimeError):
    """The warehouse was filled from another API than the one this sync reads."""


def _is_lock_error(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


def connect_warehouse(
    path: str | os.PathLike, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse, migrated, waiting up to lock_timeout_s while another process holds it.

    Raises:
        WarehouseBusy: the file stayed locked for the whole wait.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as error:
            # DuckDB lets one process open a file for writing; others get a lock error at once.
            if not _is_lock_error(error):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"warehouse busy: {path}") from None
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)) * random.uniform(0.5, 1))
            delay = min(delay * 2, 2.0)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            migrate(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_warehouse(
    path: str | os.PathLike, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse connection for a with-block (see connect_warehouse), closed at its end."""
    con = connect_warehouse(path, lock_timeout_s=lock_timeout_s, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def migration_files() -> list[str]:
    """Versioned migrations, applied once each in file-name order."""
    return sorted(f"migrations/{p.name}" for p in (SQL_DIR / "migrations").glob("*.sql"))


def view_files() -> list[str]:
    """Report views, re-applied whenever their definition changes."""
    return sorted(f"reports/{p.name}" for p in (SQL_DIR / "reports").glob("*.sql"))


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the warehouse to the current schema in one transaction; return what was applied."""
    applied_now: list[str] = []
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "migrations/001_create_schema_version.sql")
        known = dict(con.execute("SELECT name, checksum FROM schema_version").fetchall())
        for name in migration_files() + view_files():
            text = read_sql(name)
            checksum = _checksum(text)
            if known.get(name) == checksum or (name.startswith("migrations/") and name in known):
                continue
            run_sql(con, name)
            con.execute(
                "INSERT OR REPLACE INTO schema_version VALUES (?, ?, ?, ?)",
                [name, "migration" if name.startswith("migrations/") else "view", checksum, _now()],
            )
            applied_now.append(name)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return applied_now


def _now() -> datetime:
    return datetime.now(timezone.utc)


def check_source(
    con: duckdb.DuckDBPyConnection, source: str, path: str | os.PathLike, *, claim: bool = True
) -> None:
    """Refuse to mix two clouds in one warehouse; the first sync that loads data claims it.

    Raises:
        SourceMismatch: the warehouse holds another source's data.
    """
    rows = con.execute("SELECT value FROM warehouse_meta WHERE key = 'source_url'").fetchall()
    row = rows[0] if rows else None
    if row is None and claim:
        con.execute("INSERT INTO warehouse_meta VALUES ('source_url', ?)", [source])
    elif row is not None and row[0] != source:
        raise SourceMismatch(
            f"the warehouse {path} holds backups synced from {row[0]}; this sync reads {source}. "
            "Point BACKUPS_DB at another file to sync a different cloud."
        )
