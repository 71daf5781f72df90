"""The writer's session: one writer at a time works on a private copy, which then replaces the published file whole.

Readers only ever open the published file, read-only. A reader that keeps it open reads the version it
opened (its inode) however many publishes follow; a connection opened later reads the newest. The
writer only reads the published file, to copy it, so no reader makes it wait and it makes no reader wait.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from pipeline.warehouse.connection import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MEMORY_LIMIT,
    WarehouseBusy,
    connect_warehouse,
    fold_wal,
)
from pipeline.warehouse.file_lock import LockTimeout, exclusive_lock, wait_for_read_lock

PRIVATE_SUFFIX = ".writing"
LOCK_SUFFIX = ".lock"
COPY_CHUNK = 16 * 2**20


def private_path(published: str | os.PathLike) -> Path:
    """The writer's copy of the warehouse: beside it, so that publishing is a rename on one file system."""
    return Path(f"{published}{PRIVATE_SUFFIX}")


def lock_path(published: str | os.PathLike) -> Path:
    """The file whose lock the writer holds for its whole session."""
    return Path(f"{published}{LOCK_SUFFIX}")


@contextmanager
def writing_session(
    published: str | os.PathLike, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated connection to a private copy of the warehouse, published onto it if the block ends without error.

    A block that raises publishes nothing, whatever it committed. A killed session leaves the published file as
    the last publish left it, and a private copy that the next session deletes before it copies.

    Raises:
        WarehouseBusy: another writer held the lock for lock_timeout_s.
        ValueError: published names a MotherDuck database, not a file.
    """
    if str(published).startswith(("md:", "motherduck:")):
        # A database served by MotherDuck is no file to copy and rename; this would make a local file by its name.
        raise ValueError(f"{published}: the sync publishes a local DuckDB file; a MotherDuck database is not one")
    published = Path(published)
    published.parent.mkdir(parents=True, exist_ok=True)
    private = private_path(published)
    with ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(lock_path(published), lock_timeout_s))
        except LockTimeout:
            raise WarehouseBusy(f"warehouse busy: {published}") from None
        try:
            _copy_published(published, private, lock_timeout_s=lock_timeout_s, memory_limit=memory_limit)
            con = connect_warehouse(private, lock_timeout_s=lock_timeout_s, memory_limit=memory_limit, threads=threads)
            try:
                yield con
                _checkpoint(con, private)
            finally:
                con.close()
            _publish(private, published)
        finally:
            _remove_private(private)


def _copy_published(published: Path, private: Path, *, lock_timeout_s: float, memory_limit: str) -> None:
    # Whatever a killed session left is never used: its log beside a fresh copy would be replayed onto it.
    _remove_private(private)
    if not published.exists():
        return  # the first sync: DuckDB creates the private file
    fold_wal(published, lock_timeout_s=lock_timeout_s, memory_limit=memory_limit)
    with open(published, "rb") as source:
        # A tool that opened the file in place for writing holds DuckDB's write lock: wait for it, so that
        # the copy is never torn.
        try:
            wait_for_read_lock(source.fileno(), published, lock_timeout_s)
        except LockTimeout:
            raise WarehouseBusy(f"warehouse busy: {published}") from None
        with open(private, "wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)
    shutil.copymode(published, private)  # a warehouse made group-readable stays so


def _checkpoint(con: duckdb.DuckDBPyConnection, private: Path) -> None:
    con.execute("CHECKPOINT")
    con.close()
    # Without its log the file must hold every commit; published beside no log, it must need none.
    if Path(f"{private}.wal").exists():
        raise RuntimeError(f"{private}: DuckDB left a write-ahead log after its checkpoint; not published")


def _publish(private: Path, published: Path) -> None:
    _fsync(private)
    os.replace(private, published)
    # The rename itself lives in the folder: without this a power cut could bring back the old name.
    _fsync(published.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_private(private: Path) -> None:
    for leftover in (private, Path(f"{private}.wal")):
        leftover.unlink(missing_ok=True)
    # DuckDB spills a large load to <file>.tmp/ and empties it on close; a killed session leaves it full.
    shutil.rmtree(f"{private}.tmp", ignore_errors=True)
