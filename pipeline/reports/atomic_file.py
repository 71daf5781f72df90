"""Write a report file whole or not at all: a temporary file beside it, renamed onto it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _new_file_beside(path: Path) -> Path:
    # Created like any other file of the process (0666 less the umask, or a directory's default
    # ACL), so a web server or the group can read the report; mkstemp would force 0600.
    # O_EXCL with a random name: never an existing file, nor a symlink planted in its place.
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside path, renamed onto it only if the block succeeds.

    A reader (or a spreadsheet with the file open) never sees half a file. The file gets the
    mode the process umask gives a newly created one (0644 under umask 022).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
