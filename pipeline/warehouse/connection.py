"""The DuckDB warehouse file: opening it, migrating it, and knowing its source."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipeline.clouds.config import DEFAULT_CLOUD
from pipeline.warehouse.clock import utc_now
from pipeline.warehouse.sql_files import read_sql, run_sql, sql_names
from pipeline.warehouse.transaction import transaction

DEFAULT_DB = "data/backups.duckdb"
DEFAULT_LOCK_TIMEOUT_S = 60.0
# Enough for a load of several million backups (a million needed about 128MB), and a bound on the
# nightly job's memory, which DuckDB's default (80% of RAM, kept as cache) is not.
DEFAULT_MEMORY_LIMIT = "512MB"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse (its file, or the writer's lock) for the whole wait."""


class SourceMismatch(RuntimeError):
    """The warehouse was filled from another API than the one this sync reads."""


def _is_lock_error(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


def connect_warehouse(
    path: str | os.PathLike, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, read_only: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to a warehouse file in place, migrated unless read-only; wait up to lock_timeout_s for another holder.

    The sync never writes the published file in place: it writes a private copy and publishes it whole
    (pipeline.warehouse.publish). Writing in place is for tools and tests.
    memory_limit caps DuckDB's buffers (it spills to disk beyond them); DuckDB's own default is 80% of RAM.
    threads: DuckDB's worker threads (None: one per core); each holds buffers of its own.

    Raises:
        WarehouseBusy: the file stayed locked for the whole wait.
    """
    con = _connect(Path(path), read_only=read_only, lock_timeout_s=lock_timeout_s, memory_limit=memory_limit,
                   threads=threads)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            migrate(con)
    except BaseException:
        con.close()
        raise
    return con


def fold_wal(path: str | os.PathLike, *, lock_timeout_s: float, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> None:
    """Checkpoint a warehouse file that has a write-ahead log beside it, so that the file alone holds its state.

    Only a process that opened the file in place and died before its checkpoint leaves such a log; a copy of
    the file without it would lose that process's commits, and a new file beside the old log cannot be opened.

    Raises:
        WarehouseBusy: another process held the file for the whole wait.
    """
    path = Path(path)
    if not Path(f"{path}.wal").exists():
        return
    con = _connect(path, read_only=False, lock_timeout_s=lock_timeout_s, memory_limit=memory_limit)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _connect(path: Path, *, read_only: bool, lock_timeout_s: float, memory_limit: str,
             threads: int | None = None) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    config: dict[str, str | int] = {"memory_limit": memory_limit}
    if threads is not None:
        config["threads"] = threads
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as error:
            # DuckDB lets one process open a file for writing; others get a lock error at once.
            if not _is_lock_error(error):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"warehouse busy: {path}") from None
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)) * random.uniform(0.5, 1))
            delay = min(delay * 2, 2.0)


@contextmanager
def open_warehouse(
    path: str | os.PathLike, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, read_only: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse connection for a with-block (see connect_warehouse), closed at its end."""
    con = connect_warehouse(path, lock_timeout_s=lock_timeout_s, read_only=read_only, memory_limit=memory_limit)
    try:
        yield con
    finally:
        con.close()


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def migration_files() -> list[str]:
    """Versioned migrations, applied once each in file-name order."""
    return sql_names("migrations")


def view_files() -> list[str]:
    """Report views, re-applied whenever their definition changes."""
    return sql_names("reports")


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the warehouse to the current schema in one transaction; return what was applied."""
    applied_now: list[str] = []
    with transaction(con):
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
                [name, "migration" if name.startswith("migrations/") else "view", checksum, utc_now()],
            )
            applied_now.append(name)
    return applied_now


def check_source(
    con: duckdb.DuckDBPyConnection, cloud: str, source: str, path: str | os.PathLike, *, claim: bool = True
) -> None:
    """Refuse to mix two APIs under one cloud name; the cloud's first sync that loads data claims the name.

    Raises:
        SourceMismatch: the cloud's name is bound to another API in this warehouse.
    """
    rows = con.execute("SELECT source_url FROM clouds WHERE cloud = ?", [cloud]).fetchall()
    row = rows[0] if rows else None
    if row is None and claim:
        con.execute("INSERT INTO clouds VALUES (?, ?, ?)", [cloud, source, utc_now()])
    elif row is not None and row[0] != source:
        raise SourceMismatch(
            f"the warehouse {path} holds the cloud '{cloud}' synced from {row[0]}; this sync reads {source} "
            f"under that name. {_rename_hint(cloud)}"
        )


def _rename_hint(cloud: str) -> str:
    if cloud == DEFAULT_CLOUD:
        return "Point BACKUPS_DB at another file, or name each cloud in BACKUPS_CLOUDS_FILE."
    return "Give the new API another cloud name in BACKUPS_CLOUDS_FILE."
