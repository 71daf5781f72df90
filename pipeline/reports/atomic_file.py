"""Write a report file, or a whole folder of them, whole or not at all: made beside its place, then renamed onto it."""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# A folder being written, or one just swapped out: .<target name>.<random>.partial beside the target.
PARTIAL_SUFFIX = ".partial"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class FolderNotReplaceable(RuntimeError):
    """The target folder holds something the export did not write, or is not a folder: replacing it would lose it."""


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


def folder_lock_path(target: Path) -> Path:
    """The lock file that writers of the target folder hold (beside it: the folder itself is replaced)."""
    target = _named(target)
    return target.parent / f".{target.name}.lock"


def _named(target: Path) -> Path:
    # "reports/", "./out/.." and the like: the folder by its own name, as a sibling is named after it.
    target = Path(os.path.abspath(target))
    if not target.name:
        raise FolderNotReplaceable(f"{target} cannot be replaced by another folder; give the reports one of their own")
    return target


@contextmanager
def atomic_folder(target: Path, *, replaceable: Callable[[str], bool]) -> Iterator[Path]:
    """A new empty folder beside target, swapped in for it whole if the block succeeds, removed otherwise.

    A reader sees the old folder or the new one, never a mix. The caller holds folder_lock_path(target):
    whatever a killed writer left beside the target is removed here. replaceable(name) says whether an
    entry of the current folder is one the export wrote; anything else stops the swap before any work.

    Raises:
        FolderNotReplaceable: target is not a folder, or holds an entry replaceable refuses.
    """
    target = _named(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(target, replaceable)
    for leftover in _partial_folders(target):
        shutil.rmtree(leftover, ignore_errors=True)
    folder = _new_folder_beside(target)
    try:
        yield folder
        _check_replaceable(target, replaceable)
        _swap_in(folder, target)
    finally:
        # After a swap this name holds the previous folder; after a failure, the unfinished one.
        shutil.rmtree(folder, ignore_errors=True)


def _partial_folders(target: Path) -> list[Path]:
    prefix = f".{target.name}."
    return [entry for entry in target.parent.iterdir()
            if entry.name.startswith(prefix) and entry.name.endswith(PARTIAL_SUFFIX)]


def _new_folder_beside(target: Path) -> Path:
    # os.mkdir gives the umask's mode (0755 under 022): a web server or the group can list the reports.
    for _ in range(100):
        folder = target.parent / f".{target.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"no free folder name beside {target}")


def _check_replaceable(target: Path, replaceable: Callable[[str], bool]) -> None:
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise FolderNotReplaceable(f"{target} is not a folder; the reports replace a folder of their own there")
    foreign = sorted(entry.name for entry in target.iterdir() if not replaceable(entry.name))
    if foreign:
        raise FolderNotReplaceable(
            f"{target} holds files the report export did not write ({', '.join(foreign[:5])}); each export "
            "replaces the whole folder: move them, or give the reports a folder of their own"
        )


def _swap_in(folder: Path, target: Path) -> None:
    try:
        if not os.path.lexists(target):
            os.rename(folder, target)
        elif not _exchange(folder, target):
            _swap_by_two_renames(folder, target)
    except OSError as error:
        if error.errno not in (errno.EBUSY, errno.EXDEV):
            raise
        raise FolderNotReplaceable(
            f"{target} cannot be replaced ({error.strerror}): is it a mount point? Mount the folder above it, "
            "and keep the reports in a folder inside"
        ) from None


def _swap_by_two_renames(folder: Path, target: Path) -> None:
    # No atomic exchange on this system: two renames, with a moment in which the folder is missing
    # (never one in which it mixes two sets).
    aside = target.parent / f".{target.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"
    os.rename(target, aside)
    os.rename(folder, target)
    os.rename(aside, folder)  # where the caller removes the previous folder


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without exchange
        return False
    raise OSError(code, os.strerror(code), str(second))
