"""Where a batch's photos are analysed: this process, a pool of worker processes (or Dask, in ``distributed``).

Every executor does the same four things for the batch's one loop (:func:`skinscan.batch.run_batch`):
:meth:`~Executor.start` its workers for a batch, take photos (:meth:`~Executor.submit`) up to its
:meth:`~Executor.capacity`, hand back each photo's :class:`~skinscan.worker.Outcome` as it is done
(:meth:`~Executor.next_outcome`), and :meth:`~Executor.close`. Each takes ``analyse``, what analyses
one photo, so that a caller can wrap the analysis (a test injecting a fault) without touching skinscan.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2

from ._heap import keep_freed_memory
from ._process import die_with_parent, end_pool, ignore_interrupts
from ._write import atomic_write, remove_stale_temporaries
from .analysis import analyse_photo
from .discover import Discovery, PhotoEntry
from .worker import AnalyseFn, Outcome, Worker, find_references, single_threaded

__all__ = ["REFERENCES_PREFIX", "WORKER_LOST", "BatchWork", "Executor", "PoolExecutor", "SerialExecutor"]

#: The reason stored for a photo whose pool worker died (killed, out of memory, a crash in native code).
WORKER_LOST = ("the worker process analysing this photo stopped unexpectedly; run skinscan again to retry it "
               "(with --jobs 1 if it happens again)")
#: Name start of the file through which a pool's workers get the references: then the batch's pid.
REFERENCES_PREFIX = ".skinscan-references-"


@dataclass(frozen=True)
class BatchWork:
    """What an executor needs to know of a batch to start its workers.

    Attributes
    ----------
    out_dir : Path
        The output folder (its ``regions/`` and ``canonical/`` exist).
    disc : Discovery
        The batch's photos, from which each subject's reference is found.
    hashes : dict
        Content hash of each photo path (None: the file could not be read).
    subjects : frozenset of str
        The subjects with photos to analyse: only they need a reference.
    model_path : path or None
        The face landmarker model (None: the default).
    overlays : bool
        Write each photo's region overlay and canonical images.
    """

    out_dir: Path
    disc: Discovery
    hashes: dict
    subjects: frozenset
    model_path: str | os.PathLike | None = None
    overlays: bool = True


@runtime_checkable
class Executor(Protocol):
    """Analyses a batch's photos somewhere, handing back each one's outcome as it is done.

    The batch calls :meth:`start` once, then :meth:`submit` while fewer than :meth:`capacity`
    photos are in hand and :meth:`next_outcome` once per photo submitted, and :meth:`close` in
    every case (also after :meth:`start` failed half way).
    """

    def start(self, work: BatchWork) -> None:
        """Start the workers for ``work``'s batch (references, landmarkers).

        Parameters
        ----------
        work : BatchWork
            The batch to start.
        """

    def capacity(self) -> int:
        """Photos to have in hand at most: enough to keep every worker busy, few enough that an
        interrupt or a failed store leaves little queued."""

    def submit(self, entry: PhotoEntry, content_hash: str) -> None:
        """Hand out one photo.

        Parameters
        ----------
        entry : PhotoEntry
            The photo (path, subject, session).
        content_hash : str
            SHA-256 of its bytes (:func:`skinscan.batch.file_hash`), its identity in the store.
        """

    def next_outcome(self) -> Outcome:
        """Wait for one photo handed out to be done and return its outcome (a worker lost on it
        is the photo's skipped outcome, to be retried)."""

    def close(self, *, cancel: bool) -> None:
        """End the batch's workers.

        Parameters
        ----------
        cancel : bool
            The batch failed or was interrupted: the photos still in hand are not waited for.
        """


class SerialExecutor:
    """Analyses the photos in this process, one at a time, with one landmarker.

    Leaves this process as it found it (OpenCV's threads, the heap: the command keeps the freed
    memory of its own process, :func:`skinscan._heap.freed_memory_kept`, a notebook's is left alone).

    Parameters
    ----------
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`).
    """

    def __init__(self, *, analyse: AnalyseFn = analyse_photo):
        self._analyse = analyse
        self._worker: Worker | None = None
        self._landmarker = None
        self._threads: int | None = None
        self._queue: deque = deque()

    def start(self, work: BatchWork) -> None:
        """Load a landmarker and find the references with it (the photos use the same one).

        Parameters
        ----------
        work : BatchWork
            The batch to start.
        """
        from .landmarks import FaceLandmarker

        self._landmarker = FaceLandmarker(work.model_path)
        self._threads = single_threaded()
        refs = find_references(work.disc, work.hashes, work.subjects, landmarker=self._landmarker,
                               analyse=self._analyse)
        self._worker = Worker(refs, out_dir=work.out_dir, overlays=work.overlays, landmarker=self._landmarker,
                              analyse=self._analyse)

    def capacity(self) -> int:
        """One: each photo is checked against the store just before it is analysed."""
        return 1

    def submit(self, entry: PhotoEntry, content_hash: str) -> None:
        """Queue one photo; it is analysed by :meth:`next_outcome`.

        Parameters
        ----------
        entry : PhotoEntry
            The photo (path, subject, session).
        content_hash : str
            SHA-256 of its bytes (:func:`skinscan.batch.file_hash`), its identity in the store.
        """
        self._queue.append((entry, content_hash))

    def next_outcome(self) -> Outcome:
        """Analyse the photo queued first."""
        return self._worker.analyse(*self._queue.popleft())

    def close(self, *, cancel: bool) -> None:
        """Drop the references, close the landmarker, give OpenCV its threads back.

        Parameters
        ----------
        cancel : bool
            The batch failed or was interrupted (not used: a queued photo is dropped either way).
        """
        self._queue.clear()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._threads is not None:
            cv2.setNumThreads(self._threads)
            self._threads = None
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


# A pool worker process's one Worker, set by the pool's initializer. ProcessPoolExecutor runs tasks
# as module functions, so a process's state has no other home; only processes the pool started set it.
_pool_worker: Worker | None = None


def _start_pool_worker(parent_pid: int, references, out_dir: str, model_path, overlays: bool,
                       analyse: AnalyseFn) -> None:
    """A pool worker's setup: bound to the batch process first, then its heap and its Worker.

    The bond comes before anything slow (the landmarker takes about a second): a worker whose batch
    was killed (SIGKILL, out of memory) would otherwise wait forever on the task queue its siblings
    keep open, holding the terminal's pipes and its memory. Interrupts are the batch process's to
    handle. A worker keeps its freed memory for its next photo (:func:`skinscan._heap.keep_freed_memory`):
    the process is the pool's, and ends with the batch.
    """
    global _pool_worker
    die_with_parent(parent_pid)
    ignore_interrupts()
    keep_freed_memory()
    _pool_worker = Worker(references, out_dir=out_dir, overlays=overlays, model_path=model_path, analyse=analyse)


def _pool_analyse(entry: PhotoEntry, content_hash: str) -> Outcome:
    return _pool_worker.analyse(entry, content_hash)


def _pool_references(disc: Discovery, hashes: dict, subjects) -> dict:
    return _pool_worker.find_references(disc, hashes, subjects)


class PoolExecutor:
    """Analyses the photos in ``jobs`` worker processes, each with its own landmarker.

    The workers start on the first photos at once, while the first of them free finds the
    subjects' references (this process finds them itself if that worker dies): a worker needs its
    photo's reference only after the metrics (for the difference checks and the alignment). The
    references reach the workers through a pickle in the output folder (written whole, then
    renamed into place; removed at the end), which a worker waits for then.

    A worker that dies (killed, out of memory, a crash in native code) costs the photos it and its
    siblings had in hand, each the skipped outcome :data:`WORKER_LOST`; a new pool takes the rest.
    Workers end with the batch process, even when it is killed outright
    (:func:`skinscan._process.die_with_parent`).

    Parameters
    ----------
    jobs : int
        Worker processes.
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`); the workers are forked,
        so it need not be importable by name.
    """

    def __init__(self, jobs: int, *, analyse: AnalyseFn = analyse_photo):
        self.jobs = max(int(jobs), 1)
        self._analyse = analyse
        self._work: BatchWork | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._initargs: tuple = ()
        self._threads: int | None = None
        self._refs_file: Path | None = None
        self._from_worker = None
        self._running: dict = {}
        self._done: list = []

    def start(self, work: BatchWork) -> None:
        """Fork the pool, and ask its first worker free for the references.

        Parameters
        ----------
        work : BatchWork
            The batch to start.
        """
        self._work = work
        # Workers inherit one OpenCV thread from this process (set here, before they are forked:
        # changing it in a forked child can deadlock on the parent's thread pool).
        self._threads = single_threaded()
        _remove_stale_references(work.out_dir)
        self._refs_file = work.out_dir / f"{REFERENCES_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.pkl"
        self._initargs = (os.getpid(), str(self._refs_file), str(work.out_dir), work.model_path, work.overlays,
                          self._analyse)
        # Forked now, before this process holds a landmarker of its own (MediaPipe's threads).
        self._pool = self._new_pool()
        # The references are found by the first worker free, with its landmarker, before its first
        # photo: this process then loads none (a third landmarker, ~0.35 s of CPU and ~100 MB,
        # that competed with the workers' start on a machine with as many cores as workers).
        self._from_worker = self._pool.submit(_pool_references, work.disc, work.hashes, work.subjects)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, initializer=_start_pool_worker, initargs=self._initargs)

    def capacity(self) -> int:
        """Two photos per worker: one analysed, one waiting."""
        return 2 * self.jobs

    def submit(self, entry: PhotoEntry, content_hash: str) -> None:
        """Hand out one photo; a pool broken by a dead worker is replaced first.

        Parameters
        ----------
        entry : PhotoEntry
            The photo (path, subject, session).
        content_hash : str
            SHA-256 of its bytes (:func:`skinscan.batch.file_hash`), its identity in the store.
        """
        try:
            fut = self._pool.submit(_pool_analyse, entry, content_hash)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False)
            self._pool = self._new_pool()
            fut = self._pool.submit(_pool_analyse, entry, content_hash)
        self._running[fut] = (entry, content_hash)

    def next_outcome(self) -> Outcome:
        """The next photo done; the first call publishes the references (the workers analyse the
        first photos meanwhile, and wait for the references only at the end of each)."""
        if self._from_worker is not None:
            self._publish_references()
        if not self._done:
            done, _ = wait(self._running, return_when=FIRST_COMPLETED)
            self._done.extend(done)
        fut = self._done.pop()
        entry, content_hash = self._running.pop(fut)
        try:
            return fut.result()
        except BrokenProcessPool:
            return Outcome.skipped(entry, content_hash, WORKER_LOST, retry=True)
        except Exception as exc:  # noqa: BLE001 (e.g. a result that cannot be sent back from the worker)
            return Outcome.failed(entry, content_hash, exc)

    def _publish_references(self) -> None:
        """Write the references the worker found (or, that worker dead, found here) for the workers."""
        from .landmarks import FaceLandmarker

        work, from_worker, self._from_worker = self._work, self._from_worker, None
        try:
            refs = from_worker.result()
        except BrokenProcessPool:  # that worker died: find them here
            with FaceLandmarker(work.model_path) as lm:
                refs = find_references(work.disc, work.hashes, work.subjects, landmarker=lm, analyse=self._analyse)
        data = pickle.dumps(refs, protocol=pickle.HIGHEST_PROTOCOL)
        # Whole, then renamed: a worker never reads half a file.
        atomic_write(self._refs_file, lambda tmp: tmp.write_bytes(data), what="reference photos for the workers")

    def close(self, *, cancel: bool) -> None:
        """Shut the pool down, remove the references and any image a stopped worker left half written.

        Cancelled (an interrupt, a full disk, a failed store), or with the references never
        published, the photos in hand are not waited for (a worker may be waiting for references
        that will never come): the workers are terminated, and the next run analyses their photos.

        Parameters
        ----------
        cancel : bool
            The batch failed or was interrupted: terminate the workers instead of waiting for
            their photos.
        """
        try:
            if self._pool is not None:
                if cancel or self._from_worker is not None:
                    end_pool(self._pool, cancel_futures=True)
                else:
                    self._pool.shutdown(wait=True)
        finally:
            self._pool, self._from_worker = None, None
            self._running.clear()
            self._done.clear()
            if self._threads is not None:
                cv2.setNumThreads(self._threads)
                self._threads = None
            if self._refs_file is not None:
                self._refs_file.unlink(missing_ok=True)
            if self._work is not None:
                for sub in ("", "regions", "canonical"):  # a worker stopped while writing an image left its part
                    remove_stale_temporaries(self._work.out_dir / sub)


def _remove_stale_references(out: Path) -> None:
    """Remove references files (``.pkl``, ``.tmp``) left in ``out`` by a batch that was killed (its
    process is gone); another batch running on the same ``out`` keeps its own."""
    for f in out.glob(f"{REFERENCES_PREFIX}*"):
        try:
            os.kill(int(f.name[len(REFERENCES_PREFIX):].split("-")[0]), 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, OSError):  # not our name, or a process of another user: leave it
            continue
