"""Run a batch's photo analyses on a Dask distributed cluster instead of local worker processes.

:class:`DaskExecutor` is the batch's executor on Dask (see :mod:`skinscan.executors`). Each Dask
worker holds one :class:`~skinscan.worker.Worker` (a landmarker and the batch's reference analyses),
set up by a :class:`BatchPlugin` when the batch starts and closed when it ends; a task analyses one
photo and returns its :class:`~skinscan.worker.Outcome`, stored by the client as it arrives, exactly
as with local processes.

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

from .analysis import PIPELINE_VERSION, analyse_photo
from .discover import PhotoEntry
from .errors import SkinscanError
from .executors import BatchWork
from .worker import (
    AnalyseFn,
    Outcome,
    Worker,
    find_references,
    internal_error_reason,
    single_threaded,
)

try:
    import distributed
    from distributed import WorkerPlugin
except ImportError as exc:  # the extra is not installed; check_scheduler says so in one line
    distributed, WorkerPlugin, _IMPORT_ERROR = None, object, exc
else:
    _IMPORT_ERROR = None

__all__ = ["CONNECT_TIMEOUT", "LOST_WORKER", "MISSING_DASK", "BatchPlugin", "DaskExecutor", "check_scheduler"]

MISSING_DASK = "the Dask executor needs the distributed extra: pip install 'skinscan[distributed]'"
#: Seconds to wait for a scheduler given by its address.
CONNECT_TIMEOUT = 10.0
#: The reason stored for a photo whose Dask worker died on it (every time it was tried).
LOST_WORKER = ("the Dask worker analysing this photo stopped unexpectedly; run skinscan again to retry it "
               "(with --jobs 1 on one computer if it happens again)")


def check_scheduler(scheduler) -> None:
    """Raise a one-line :class:`~skinscan.errors.SkinscanError` if ``scheduler`` cannot be used.

    Checks that Dask is installed and that ``scheduler`` is ``"local"``, a ``distributed.Client``
    or an address with a known scheme, a port and a host name that resolves; whether the
    scheduler answers is found when connecting.

    Parameters
    ----------
    scheduler : str or distributed.Client
        As for :class:`DaskExecutor`.

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
    """One batch's state on a Dask worker: a :class:`~skinscan.worker.Worker` (landmarker, references).

    Registered under a name unique to the batch, so batches sharing a cluster never see each
    other's references or landmarker. :meth:`setup` runs on every worker of the cluster, also on
    one that joins or is restarted during the batch; :meth:`teardown` runs when the batch ends.
    The worker's heap is left as Dask keeps it: a Dask worker is a shared process whose memory
    Dask watches, and its tasks run on threads, where keeping freed memory helps little.

    Parameters
    ----------
    references : dict
        The subjects' reference analyses (:func:`skinscan.worker.find_references`).
    model_path : path, optional
        The face landmarker model; it must exist on every worker (default: the shipped one).
    overlays : bool
        Make each photo's images; they travel back in the outcome's ``files``.
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`); pickled to the workers.
    pipeline_version : str
        The client's pipeline version; a worker running another skinscan refuses to start.
    """

    def __init__(self, references: dict, *, model_path=None, overlays: bool = True,
                 analyse: AnalyseFn = analyse_photo, pipeline_version: str = PIPELINE_VERSION):
        self.references = references
        self.model_path = model_path
        self.overlays = overlays
        self.analyse_fn = analyse
        self.pipeline_version = pipeline_version
        self.worker: Worker | None = None

    def setup(self, worker) -> None:
        """Create the worker's landmarker.

        Parameters
        ----------
        worker : distributed.Worker
            The Dask worker this plugin is set up on (not used).

        Raises
        ------
        SkinscanError
            The worker runs another pipeline version than the client.
        """
        if self.pipeline_version != PIPELINE_VERSION:
            raise SkinscanError(f"this Dask worker runs skinscan pipeline {PIPELINE_VERSION}, the batch "
                                f"{self.pipeline_version}; install the same skinscan on every worker")
        self._busy, self._running = threading.Condition(), 0
        single_threaded()  # the cluster's parallelism is its workers, as with --jobs
        # The client writes every file: its output folder need not be reachable from here.
        self.worker = Worker(self.references, out_dir=".", overlays=self.overlays, model_path=self.model_path,
                             analyse=self.analyse_fn, return_files=True)

    def analyse(self, entry: PhotoEntry, content_hash: str) -> Outcome:
        """Analyse one photo on this worker; its images come back as bytes in the outcome's ``files``.

        Parameters
        ----------
        entry : PhotoEntry
            The photo (path, subject, session).
        content_hash : str
            SHA-256 of its bytes (:func:`skinscan.batch.file_hash`), its identity in the store.

        Returns
        -------
        Outcome

        Raises
        ------
        RuntimeError
            The batch has ended on this worker (:meth:`teardown` ran).
        """
        with self._busy:
            worker = self.worker  # teardown clears it at once, then waits for this photo to finish
            if worker is None:
                raise RuntimeError("this worker's skinscan batch has ended")
            self._running += 1
        try:
            return worker.analyse(entry, content_hash)
        finally:
            with self._busy:
                self._running -= 1
                self._busy.notify_all()

    async def teardown(self, worker) -> None:
        """Close the landmarker once the tasks still running (a cancelled batch's) are done.

        Parameters
        ----------
        worker : distributed.Worker
            The Dask worker (not used).
        """
        if self.worker is not None:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._busy:
            worker, self.worker = self.worker, None
            self._busy.wait_for(lambda: self._running == 0)
        worker.close()

    def __getstate__(self) -> dict:  # only the arguments travel, never a worker's state
        return {"references": self.references, "model_path": self.model_path, "overlays": self.overlays,
                "analyse_fn": self.analyse_fn, "pipeline_version": self.pipeline_version, "worker": None}


class DaskExecutor:
    """Analyses a batch's photos on a Dask cluster.

    The client (this process) finds the subjects' references, then registers a :class:`BatchPlugin`
    on every worker. At most two photos per worker thread are handed out at a time. A photo whose
    worker died (on it, or every time it was retried) is the skipped outcome :data:`LOST_WORKER`,
    to be retried; the others are analysed by the remaining or restarted workers. Closing cancels
    the photos handed out and closes whatever this executor started (the batch's worker plugin, a
    client, a local cluster).

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"tcp://HOST:PORT"``: connect to that scheduler (within :data:`CONNECT_TIMEOUT` seconds);
        ``"local"``: start a local cluster of ``jobs`` single-threaded worker processes, closed at
        the end; a ``Client``: use it, and leave it open.
    jobs : int
        Workers of the ``"local"`` cluster; otherwise unused (the cluster's threads set the pace).
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`); pickled to the workers.

    Raises
    ------
    SkinscanError
        At once, if ``scheduler`` cannot be used (:func:`check_scheduler`); when the batch starts,
        if the scheduler cannot be reached or a worker cannot set up (e.g. ``model_path`` missing
        there, another skinscan version); during the batch, if the connection to the scheduler
        is lost.
    """

    def __init__(self, scheduler="local", jobs: int = 1, *, analyse: AnalyseFn = analyse_photo):
        check_scheduler(scheduler)
        self.scheduler = scheduler
        self.jobs = jobs
        self._analyse = analyse
        self._client = self._cluster = self._plugin_name = self._done = None
        self._running: dict = {}

    def plugin(self, work: BatchWork, references: dict) -> BatchPlugin:
        """The worker plugin this executor registers for the batch ``work``, with its ``references``.

        Parameters
        ----------
        work : BatchWork
            The batch (its ``model_path`` and ``overlays`` are used).
        references : dict
            The subjects' reference analyses (:func:`skinscan.worker.find_references`).

        Returns
        -------
        BatchPlugin
        """
        return BatchPlugin(references, model_path=work.model_path, overlays=work.overlays, analyse=self._analyse)

    def start(self, work: BatchWork) -> None:
        """Find the references here, connect, and set every worker up for the batch.

        Parameters
        ----------
        work : BatchWork
            The batch to start.

        Raises
        ------
        SkinscanError
            The scheduler cannot be reached, or a worker could not set up.
        """
        from .landmarks import FaceLandmarker

        with FaceLandmarker(work.model_path) as lm:
            refs = find_references(work.disc, work.hashes, work.subjects, landmarker=lm, analyse=self._analyse)
        self._client, self._cluster = _connect(self.scheduler, self.jobs)
        self._plugin_name = f"skinscan-batch-{uuid.uuid4().hex}"
        try:
            self._client.register_plugin(self.plugin(work, refs), name=self._plugin_name)
        except Exception as e:  # noqa: BLE001 (whatever a worker raised setting up, said in one line)
            why = e.reason if isinstance(e, SkinscanError) else f"{type(e).__name__}: {e}"
            raise SkinscanError(f"a Dask worker could not start skinscan: {' '.join(why.split())}") from None
        # client.loop: this client need not be the default one.
        self._done = distributed.as_completed(loop=self._client.loop)

    def capacity(self) -> int:
        """Two photos per worker thread of the cluster as it is now (workers come and go)."""
        try:
            return 2 * max(sum(self._client.nthreads().values()), 1)
        except OSError:  # CommClosedError and the like: the scheduler is gone
            raise _lost(self._client) from None

    def submit(self, entry: PhotoEntry, content_hash: str) -> None:
        """Hand one photo out to the cluster.

        Parameters
        ----------
        entry : PhotoEntry
            The photo (path, subject, session).
        content_hash : str
            SHA-256 of its bytes (:func:`skinscan.batch.file_hash`), its identity in the store.
        """
        fut = self._client.submit(_analyse_task, entry, content_hash, self._plugin_name, pure=False)
        self._running[fut] = (entry, content_hash)
        self._done.add(fut)

    def next_outcome(self) -> Outcome:
        """The next photo done; a lost scheduler stops the batch, a lost worker costs its photo."""
        fut = next(self._done)
        entry, content_hash = self._running.pop(fut)
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001 (whatever a task raised is its photo's outcome)
            if self._client.status != "running":  # not the photo's fault: the whole cluster is out of reach
                raise _lost(self._client) from None
            # Otherwise e.g. a result that cannot be sent back, or a worker that could not set up.
            lost = isinstance(exc, (distributed.KilledWorker, distributed.comm.CommClosedError))
            return Outcome.skipped(entry, content_hash, LOST_WORKER if lost else internal_error_reason(exc),
                                   retry=True)

    def close(self, *, cancel: bool) -> None:
        """Cancel what is still handed out, end the batch on the workers, close what this executor started.

        Parameters
        ----------
        cancel : bool
            The batch failed or was interrupted (not used: the photos still handed out are cancelled
            either way).
        """
        client, self._client, self._done = self._client, None, None
        if client is None:
            return
        try:
            _close(client, self._plugin_name, self._running, own_client=client is not self.scheduler,
                   cluster=self._cluster)
        finally:
            self._cluster, self._running = None, {}


def _analyse_task(entry: PhotoEntry, content_hash: str, plugin_name: str) -> Outcome:
    """A Dask task: one photo, analysed with the batch's plugin on the worker that runs it."""
    plugin = distributed.get_worker().plugins.get(plugin_name)
    if plugin is None or plugin.worker is None:
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


def _lost(client) -> SkinscanError:
    try:
        where = f" at {client.scheduler.address}"
    except Exception:  # noqa: BLE001 (the address is a nicety of the message)
        where = ""
    return SkinscanError(f"lost the connection to the Dask scheduler{where}; the photos stored so far are kept: "
                         "run skinscan again to continue")


def _close(client, plugin_name: str, running: dict, *, own_client: bool, cluster) -> None:
    """Cancel what is still handed out, end the batch on the workers, close what this batch started."""
    try:
        if running:
            client.cancel(list(running))
        client.unregister_worker_plugin(plugin_name)
    except Exception:  # noqa: BLE001, S110 (a lost scheduler: nothing left to tidy there, and the real error is on its way)
        pass
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
