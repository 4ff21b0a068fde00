"""Worker processes that end with the process that started them, and signals that end a run like Ctrl-C."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import signal
import threading
import time

__all__ = ["die_with_parent", "ignore_interrupts", "terminate", "end_pool"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid``, the process that forked it, is gone.

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), also while
    this process is busy in native code or still loading its model; if the parent died before the
    call, this process ends at once. Elsewhere a daemon thread watches the parent twice a second.
    Without this, a batch killed with SIGKILL left its workers alive under PID 1, holding hundreds
    of MB and the terminal's pipes, waiting for work that never came.
    """
    if platform.system() == "Linux":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the kernel was told to watch it
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="skinscan-parent-watch", daemon=True).start()


def ignore_interrupts() -> None:
    """In a worker: Ctrl-C is the batch process's to handle (it reaches the whole process group in a
    terminal), and SIGTERM ends the worker at once (a forked worker inherits the batch's handlers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def terminate(processes, *, grace_s: float = 2.0) -> None:
    """SIGTERM to each of ``processes`` (``multiprocessing.Process``), then SIGKILL to those still
    alive after ``grace_s`` seconds in all."""
    processes = [p for p in processes if p.is_alive()]
    for p in processes:
        try:
            p.terminate()
        except (OSError, ValueError):
            continue
    deadline = time.monotonic() + grace_s
    for p in processes:
        p.join(max(deadline - time.monotonic(), 0.0))
        if p.is_alive():
            try:
                p.kill()
                p.join(1.0)
            except (OSError, ValueError):
                continue


def end_pool(pool, *, cancel_futures: bool = False) -> None:
    """End a ``concurrent.futures.ProcessPoolExecutor`` now: its workers are terminated (see
    :func:`terminate`) rather than waited for with the work queued to them, then the pool is shut down.

    ``cancel_futures`` also cancels the futures not yet sent. Without it the broken pool fails them
    itself, which is what futures of one's own need; futures already cancelled (by an
    ``Executor.map`` iterator dropped on an interrupt) it would fail again, with a traceback.
    """
    terminate(list(getattr(pool, "_processes", {}).values()))
    pool.shutdown(wait=True, cancel_futures=cancel_futures)
