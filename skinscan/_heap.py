"""Keep the C heap's freed memory for the next photo in a process that analyses photo after photo.

An analysis of a 12 MP photo allocates and frees some 2 GB of large arrays (scale spaces, colour
planes, masks). glibc hands each array over 128 kB its own fresh pages from the kernel (``mmap``)
and gives them back when it is freed (``munmap``), so every photo faults ~40,000 pages in again:
on the benchmark photo 50-100 ms of kernel time in a 600 ms analysis, and 250-350 ms when the
kernel is slow to find huge pages (one photo in four or five, measured on the benchmark machine).
A worker that keeps its freed memory in the heap and reuses it faults almost no pages after its
first photo; the price is that its resident memory stays at its peak between photos (it does not
grow: the next photo reuses the same memory).

Only glibc (Linux) is tuned; elsewhere these do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform

__all__ = ["keep_freed_memory", "freed_memory_kept"]

# mallopt parameters (malloc.h) and glibc's defaults.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_MAX: 65536}
# Free memory at the top of the heap is given back only past this (mallopt takes an int).
_KEEP_BYTES = 2**31 - 1


def _libc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """From now on this process's large arrays come from the heap and stay there when freed.

    For a process that analyses photo after photo (a batch worker): each photo reuses the pages
    of the one before instead of faulting fresh ones in. Returns False where it cannot be done
    (not glibc).
    """
    libc = _libc()
    if libc is None:
        return False
    # No mmap for large blocks (they come from the heap), and no trimming of the heap's free top.
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES) == 1
    return bool(ok)


@contextlib.contextmanager
def freed_memory_kept():
    """:func:`keep_freed_memory` for the duration of a ``with`` block; then glibc's defaults
    again, and the heap's free memory given back to the system (a batch run from a notebook
    leaves the kernel's memory as it found it)."""
    kept = keep_freed_memory()
    try:
        yield kept
    finally:
        libc = _libc() if kept else None
        if libc is not None:
            # glibc's default values; its dynamic mmap threshold stays off (any mallopt turns it
            # off), so blocks over 128 kB are mmapped again, as in a fresh process.
            for param, value in _DEFAULTS.items():
                libc.mallopt(param, value)
            libc.malloc_trim(0)
