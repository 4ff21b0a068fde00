"""Run a batch's photo analyses on a Dask distributed cluster instead of local worker processes.

Each Dask worker holds one landmarker and the batch's reference analyses, set up by a
:class:`BatchPlugin` when the batch starts and closed when it ends; a task analyses one photo
with :func:`skinscan.batch._analyse_entry` and returns plain data, stored by the client as it
arrives, exactly as :func:`skinscan.batch.run_batch` does with local processes.

Workers read the photos from their paths, and the model from ``--model``'s path when one is
given, so every worker must see the same files under the same paths (a shared drive); the
default model ships inside the package. The region overlays and canonical faces are sent back
to the client and written into its output folder, like everything else a batch writes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

from .analysis import PIPELINE_VERSION
from .batch import (_analyse_entry, _init_worker, _internal_error_reason, _record, _single_threaded, BatchResult,
                    write_files)
from .discover import PhotoEntry
from .errors import SkinscanError
from .progress import Progress
from .store import ResultStore

try:
    import distributed
    from distributed import WorkerPlugin
except ImportError as exc:  # the extra is not installed; check_scheduler says so in one line
    distributed, WorkerPlugin, _IMPORT_ERROR = None, object, exc
else:
    _IMPORT_ERROR = None

__all__ = ["run_dask", "check_scheduler", "BatchPlugin", "MISSING_DASK", "CONNECT_TIMEOUT"]

MISSING_DASK = "the Dask executor needs the distributed extra: pip install 'skinscan[distributed]'"
#: Seconds to wait for a scheduler given by its address.
CONNECT_TIMEOUT = 10.0
_LOST_WORKER = ("the Dask worker analysing this photo stopped unexpectedly; run skinscan again to retry it "
                "(with --jobs 1 on one computer if it happens again)")


def check_scheduler(scheduler) -> None:
    """Raise a one-line :class:`~skinscan.errors.SkinscanError` if ``scheduler`` cannot be used.

    Checks that Dask is installed and that ``scheduler`` is ``"local"``, a ``distributed.Client``
    or an address with a known scheme, a port and a host name that resolves; whether the
    scheduler answers is found when connecting.

    Parameters
    ----------
    scheduler : str or distributed.Client
        As for :func:`run_dask`.

    Raises
    ------
    SkinscanError
        Dask is missing (:data:`MISSING_DASK`) or ``scheduler`` is not one of the above.
    """
    if distributed is None:
        broken = not (isinstance(_IMPORT_ERROR, ModuleNotFoundError)
                      and (_IMPORT_ERROR.name or "").split(".")[0] in ("distributed", "dask"))
        raise SkinscanError(MISSING_DASK + (f" (importing it failed: {_IMPORT_ERROR})" if broken else ""))
    if isinstance(scheduler, distributed.Client) or scheduler == "local":
        return
    if not isinstance(scheduler, str):
        raise SkinscanError(f"scheduler must be 'local', an address such as tcp://HOST:PORT or a "
                            f"distributed.Client, not {type(scheduler).__name__}")
    from distributed.comm import resolve_address

    try:  # a malformed address makes Client print a traceback when it is collected: refuse it first
        resolve_address(scheduler)
    except ValueError as e:
        raise SkinscanError(f"{scheduler!r} is not a Dask scheduler address ({e}); use tcp://HOST:PORT") from None
    except OSError as e:
        raise SkinscanError(f"cannot reach the Dask scheduler at {scheduler} ({e.strerror or e}); check the "
                            "address") from None


class BatchPlugin(WorkerPlugin):
    """One batch's state on a Dask worker: a landmarker, the references and a scratch folder.

    Registered under a name unique to the batch, so batches sharing a cluster never see each
    other's references or landmarker. :meth:`setup` runs on every worker of the cluster, also on
    one that joins or is restarted during the batch; :meth:`teardown` runs when the batch ends.

    Parameters
    ----------
    initargs : tuple
        ``(references, out_dir, model_path, overlays)`` as for :func:`skinscan.batch._init_worker`;
        ``out_dir`` is the client's and is not used on the worker.
    pipeline_version : str
        The client's pipeline version; a worker running another skinscan refuses to start.
    """

    def __init__(self, initargs: tuple, pipeline_version: str = PIPELINE_VERSION):
        self.initargs = tuple(initargs)
        self.pipeline_version = pipeline_version
        self.state: dict | None = None

    def setup(self, worker) -> None:
        """Create the worker's landmarker."""
        if self.pipeline_version != PIPELINE_VERSION:
            raise SkinscanError(f"this Dask worker runs skinscan pipeline {PIPELINE_VERSION}, the batch "
                                f"{self.pipeline_version}; install the same skinscan on every worker")
        self._busy, self._running = threading.Condition(), 0
        references, out_dir, model_path, overlays = self.initargs
        state: dict = {"return_files": True}  # the client writes every file
        _single_threaded()  # the cluster's parallelism is its workers, as with --jobs
        _init_worker(references, out_dir, model_path, overlays, state=state)
        self.state = state

    def analyse(self, entry: PhotoEntry, content_hash: str) -> dict:
        """Analyse one photo on this worker; its images come back as bytes under ``"files"``."""
        with self._busy:
            state = self.state  # teardown clears it at once, then waits for this photo to finish
            if state is None:
                raise RuntimeError("this worker's skinscan batch has ended")
            self._running += 1
        try:
            return _analyse_entry(entry, content_hash, state=state)
        finally:
            with self._busy:
                self._running -= 1
                self._busy.notify_all()

    async def teardown(self, worker) -> None:
        """Close the landmarker once the tasks still running (a cancelled batch's) are done."""
        if self.state is not None:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._busy:
            state, self.state = self.state, None
            self._busy.wait_for(lambda: self._running == 0)
        state["landmarker"].close()

    def __getstate__(self) -> dict:  # only the arguments travel, never a worker's state
        return {"initargs": self.initargs, "pipeline_version": self.pipeline_version, "state": None}


def _analyse_task(entry: PhotoEntry, content_hash: str, plugin_name: str) -> dict:
    """A Dask task: one photo, analysed with the batch's plugin on the worker that runs it."""
    plugin = distributed.get_worker().plugins.get(plugin_name)
    if plugin is None or plugin.state is None:
        raise RuntimeError("skinscan could not start on this Dask worker; see the worker's log")
    return plugin.analyse(entry, content_hash)


def _connect(scheduler, jobs: int):
    """``(client, cluster)`` for ``scheduler``; each is None where the caller owns it."""
    if isinstance(scheduler, distributed.Client):
        return scheduler, None
    if scheduler == "local":
        with _workers_ignore_ctrl_c():  # and errors only: a cancelled photo is no news on the terminal
            cluster = distributed.LocalCluster(n_workers=max(int(jobs), 1), threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
        try:
            return distributed.Client(cluster, set_as_default=False), cluster
        except BaseException:
            cluster.close()
            raise
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False), None
    except OSError:
        raise SkinscanError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT:g} s; check "
                            "the address and that the scheduler is running") from None


@contextmanager
def _workers_ignore_ctrl_c():
    """Start processes that ignore SIGINT (they inherit it): Ctrl-C in a terminal reaches the whole
    process group, and the local cluster's workers would each print a traceback; skinscan, which
    handles it, closes them instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _write_overlays(out_dir: Path, res: dict) -> dict:
    """Write a result's images into ``out_dir``; one that cannot be written (a full disk) stops the
    batch, as it does with local processes."""
    write_files(out_dir, res.pop("files", {}) or {})
    return res


def run_dask(store: ResultStore, todo: list[PhotoEntry], hashes: dict, initargs: tuple, result: BatchResult,
             bar: Progress, scheduler, jobs: int = 1) -> None:
    """Analyse ``todo`` on a Dask cluster, storing each result as it arrives.

    The counterpart of :func:`skinscan.batch._run_pool`: at most two photos per worker thread
    are handed out at a time, each after checking that no other skinscan writing the same store
    has stored it meanwhile. A photo whose worker died (on it, or every time it was retried) is
    stored as to be retried; the others are analysed by the remaining or restarted workers. An
    interrupt or error cancels the photos handed out, and whatever this function started (the
    batch's worker plugin, a client, a local cluster) is closed.

    Parameters
    ----------
    store : ResultStore
        The batch's store; results are written from this (the client's) process only.
    todo : list of PhotoEntry
        The photos to analyse; workers read them from these paths.
    hashes : dict
        Content hash of each photo path.
    initargs : tuple
        ``(references, out_dir, model_path, overlays)`` as for :func:`skinscan.batch._init_worker`.
        The overlays are written into ``out_dir`` here; a ``model_path`` must exist on every worker.
    result : BatchResult
        Counts and failures, updated in place.
    bar : Progress
        Stepped once per photo.
    scheduler : str or distributed.Client
        ``"tcp://HOST:PORT"``: connect to that scheduler (within :data:`CONNECT_TIMEOUT` seconds);
        ``"local"``: start a local cluster of ``jobs`` single-threaded worker processes, closed at
        the end; a ``Client``: use it, and leave it open.
    jobs : int
        Workers of the ``"local"`` cluster; otherwise unused (the cluster's threads set the pace).

    Raises
    ------
    SkinscanError
        The scheduler cannot be reached, a worker cannot set up (e.g. ``model_path`` missing
        there, another skinscan version), or the connection to the scheduler is lost.
    """
    check_scheduler(scheduler)
    out_dir = Path(initargs[1])
    client, cluster = _connect(scheduler, jobs)
    name = f"skinscan-batch-{uuid.uuid4().hex}"
    running: dict = {}
    try:
        try:
            client.register_plugin(BatchPlugin(initargs, PIPELINE_VERSION), name=name)
        except Exception as e:
            why = e.reason if isinstance(e, SkinscanError) else f"{type(e).__name__}: {e}"
            raise SkinscanError(f"a Dask worker could not start skinscan: {' '.join(why.split())}") from None
        queue = iter(todo)
        done = distributed.as_completed(loop=client.loop)  # client.loop: ours need not be the default client

        def hand_out() -> None:
            try:
                limit = 2 * max(sum(client.nthreads().values()), 1)
            except OSError:  # CommClosedError and the like: the scheduler is gone
                raise _lost(client) from None
            while len(running) < limit:
                e = next(queue, None)
                if e is None:
                    return
                if store.is_done(hashes[e.path], PIPELINE_VERSION, e.subject, e.session, path=e.path):
                    result.n_cached += 1  # another skinscan writing this store got there first
                    bar.step(e.path.name)
                else:
                    fut = client.submit(_analyse_task, e, hashes[e.path], name, pure=False)
                    running[fut] = e
                    done.add(fut)

        hand_out()
        for fut in done:
            e = running.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:
                if client.status != "running":  # not the photo's fault: the whole cluster is out of reach
                    raise _lost(client) from None
                lost = isinstance(exc, (distributed.KilledWorker, distributed.comm.CommClosedError))
                # otherwise e.g. a result that cannot be sent back, or a worker that could not set up
                res = {"entry": e, "content_hash": hashes[e.path], "status": "skipped", "retry": True,
                       "error": _LOST_WORKER if lost else _internal_error_reason(exc)}
            _record(store, _write_overlays(out_dir, res), result)
            bar.step(e.path.name)
            hand_out()
    finally:
        _close(client, name, running, own_client=client is not scheduler, cluster=cluster)


def _lost(client) -> SkinscanError:
    try:
        where = f" at {client.scheduler.address}"
    except Exception:
        where = ""
    return SkinscanError(f"lost the connection to the Dask scheduler{where}; the photos stored so far are kept: "
                         "run skinscan again to continue")


def _close(client, plugin_name: str, running: dict, *, own_client: bool, cluster) -> None:
    """Cancel what is still handed out, end the batch on the workers, close what this batch started."""
    try:
        if running:
            client.cancel(list(running))
        client.unregister_worker_plugin(plugin_name)
    except Exception:  # a lost scheduler: nothing left to tidy there, and the real error is on its way
        pass
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
