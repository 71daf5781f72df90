"""An exclusive lock on a file for a with-block, which the kernel releases when its holder dies, however it dies."""

from __future__ import annotations

import fcntl
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class LockTimeout(TimeoutError):
    """Another process held the lock for the whole wait."""


@contextmanager
def exclusive_lock(path: str | os.PathLike, timeout_s: float) -> Iterator[None]:
    """Hold flock(LOCK_EX) on path (created, with its folder, if missing) for the block; wait up to timeout_s.

    The lock file is never deleted: removing it while another process waits on it would let two
    processes hold "the" lock on two different files. It holds the holder's pid, for a person.

    Raises:
        LockTimeout: another process held the lock for timeout_s.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        _acquire(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), path, timeout_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # Closing the descriptor releases the lock; so does the death of the process.
        os.close(fd)


def wait_for_read_lock(fd: int, path: str | os.PathLike, timeout_s: float) -> None:
    """Take a POSIX read lock on an open file, the kind DuckDB takes, waiting up to timeout_s while a writer holds it.

    The lock lasts until the descriptor is closed: a process that opened the file for writing (DuckDB's
    write lock) cannot change it meanwhile.

    Raises:
        LockTimeout: a writer held the file for timeout_s.
    """
    _acquire(lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB), Path(path), timeout_s)


def _acquire(attempt: Callable[[], None], path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            attempt()
            return
        except (BlockingIOError, PermissionError):  # lockf answers EACCES or EAGAIN
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout(str(path)) from None
            # Jittered: waiters that started together do not poll in step.
            time.sleep(min(delay, left) * random.uniform(0.5, 1))
            delay = min(delay * 2, 0.5)
