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


def freeze_long_lived_objects() -> None:
    """Keep the garbage collector off the objects that live as long as the process: those loaded with the code
    location (now), and every object once the process exits.

    A full collection walks every tracked object. The quarter of a million that loading Dagster, pandas and
    the definitions makes took most of the two collections of release_freed_memory (0.3 s at 10,000 VMs),
    and the interpreter's last collections at exit took about a second, whatever the sync's size, only to
    free memory the OS takes back anyway. Frozen objects are skipped; those outside reference cycles are
    still freed as usual, and only cycles among objects alive at load (the modules') are never collected.
    """
    gc.freeze()
    atexit.register(gc.freeze)
