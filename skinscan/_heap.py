"""Keep the C heap's freed memory for the next photo in a process that analyses photo after photo.

An analysis of a 12 MP photo allocates and frees some 2 GB of large arrays (scale spaces, colour
planes, masks). glibc hands each array over 128 kB its own fresh pages from the kernel (``mmap``)
and gives them back when it is freed (``munmap``), so every photo faults ~40,000 pages in again:
on the benchmark photo 50-100 ms of kernel time in a 600 ms analysis, and 250-350 ms when the
kernel is slow to find huge pages (one photo in four or five, measured on the benchmark machine).
A worker that keeps its freed memory in the heap and reuses it faults almost no pages after its
first photo; the price is that its resident memory stays at its peak between photos (it does not
grow: the next photo reuses the same memory).

Only glibc (Linux) is tuned; elsewhere these do nothing. The settings are the process's. glibc
serves large blocks of threads other than the main one from their own arenas, which still map
blocks over ~64 MB afresh: the full effect is on the main thread, where skinscan's workers run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading

__all__ = ["keep_freed_memory", "freed_memory_kept"]

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# Free memory at the top of the heap is given back only past this (mallopt takes an int).
_KEEP_BYTES = 2**31 - 1
# What a with-block leaves behind. Any mallopt call switches glibc's dynamic mmap threshold off for
# good, so the block sets the values that threshold settles at once a process has freed its first
# large arrays (32 MB, and twice that for trimming): blocks of up to 32 MB are reused from the
# heap, larger ones mapped afresh, and the heap's free top given back past 64 MB.
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20}

_lock = threading.Lock()
_depth = 0  # with-blocks open: only the last to close restores the heap


@functools.lru_cache(maxsize=1)
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
    (not glibc). It overrides ``MALLOC_MMAP_MAX_`` and ``MALLOC_TRIM_THRESHOLD_`` from the
    environment.
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
    """:func:`keep_freed_memory` for the duration of a ``with`` block (blocks may nest or overlap
    across threads: the last to close ends it). Then large blocks are mapped afresh again past
    32 MB, as in a process whose dynamic threshold has settled, and the heap's free memory is given
    back to the system, so a batch run from a notebook does not leave its peak resident."""
    global _depth
    with _lock:
        kept = keep_freed_memory()
        _depth += 1
    try:
        yield kept
    finally:
        with _lock:
            _depth -= 1
            libc = _libc() if kept and _depth == 0 else None
            if libc is not None:
                for param, value in _AFTER.items():
                    libc.mallopt(param, value)
                libc.malloc_trim(0)
