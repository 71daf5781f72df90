"""Hand memory a step freed back to the OS, so the next step of the same process starts from a low peak."""

import atexit
import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Collect garbage, then ask glibc to return free heap pages (a no-op where malloc_trim is missing).

    The fetch frees a part's dicts as soon as they are staged, but glibc keeps freed heap pages for reuse;
    with the in-process executor the load and the reports would then stack their peaks on top of them.
    """
    gc.collect()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)


def skip_collection_at_exit() -> None:
    """Freeze every object when the process exits, so that the interpreter's last collections pass them by.

    Those collections walk everything Dagster, pandas, DuckDB and matplotlib made (about a second after a
    sync, whatever its size) only to free memory the OS takes back anyway. Nothing a run does changes: atexit
    handlers run after the last step, and objects that are not in a cycle are still released one by one.
    """
    atexit.register(gc.freeze)
