"""Batch work on photo folders: bring the results store in line with them, analyse the photos left, export the tables.

What ``skinscan analyse`` does before its charts and reports (:mod:`skinscan.outputs`), as a function
a notebook can call. Where the photos are analysed is an executor's business (:mod:`skinscan.executors`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._version import __version__
from ._write import remove_stale_temporaries
from .analysis import PIPELINE_VERSION
from .discover import Discovery, PhotoEntry, discover
from .errors import OutputError
from .executors import BatchWork, Executor, PoolExecutor, SerialExecutor
from .metrics import METRIC_UNITS
from .outputs import UNSORTED_SUBJECT, export_tables
from .progress import Progress
from .store import STORE_NAME, ResultStore
from .worker import Outcome, overlay_files, write_files

__all__ = [
    "STORE_NAME",
    "UNDATED_FLAG",
    "BatchResult",
    "file_hash",
    "make_executor",
    "overlay_files",
    "run_batch",
    "write_files",
]

_UNSORTED = (UNSORTED_SUBJECT, "(none)")
#: Stored instead of the content hash for outcomes worth retrying (an internal error, memory, a lost
#: worker): such a row never counts as done, so the next run analyses the photo again and replaces it.
_RETRY = "retry:"


@dataclass
class BatchResult:
    """What a batch did: counts, the files it could not analyse with the reason, and notes.

    Attributes
    ----------
    n_photos : int
        Files and folders found (photos, and everything skipped).
    n_analysed, n_cached : int
        Photos analysed by this run; photos whose stored result still holds.
    n_flagged : int
        Of those, photos with a failed quality check (warnings included) or no date.
    flag_counts : dict of str to int
        Of those, the photos with each flag (a quality check's name, or ``undated``).
    n_undated : int
        Of those, loose photos with no capture date (on no timeline).
    n_duplicates : int
        Files with the same content as another of their session (listed, counted once).
    n_removed : int
        Stored photos removed because their file is gone from the folders scanned.
    failures : list of (str, str)
        Files (and folders) skipped, with the reason.
    notes : list of str
        What the user should know that is not a failure (a folder whose stored photos were kept...).
    """

    out_dir: Path
    n_photos: int = 0
    n_analysed: int = 0
    n_cached: int = 0
    n_flagged: int = 0
    flag_counts: dict[str, int] = field(default_factory=dict)
    n_undated: int = 0
    n_duplicates: int = 0
    n_removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def flags_text(self) -> str:
        """The quality flags counted, most frequent first (``expression 12, sharpness 2``); ``undated``
        is left to :meth:`summary`, which says what it means."""
        return ", ".join(f"{name} {n}" for name, n in sorted(self.flag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
                         if name != UNDATED_FLAG)

    def count_flags(self, flags: str, undated: bool) -> None:
        """Count one analysed photo's flags (``;``-joined names, as stored): in ``n_flagged`` when it
        has any, and each in ``flag_counts``."""
        names = {f for f in (flags or "").split(";") if f} | ({UNDATED_FLAG} if undated else set())
        self.n_flagged += bool(names)
        for name in names:
            self.flag_counts[name] = self.flag_counts.get(name, 0) + 1

    @property
    def ok(self) -> bool:
        """Every file found was analysed (and there was one)."""
        return not self.failures and self.n_photos > 0

    def summary(self) -> str:
        """One line for the terminal."""
        extra = "".join(f", {n} {what}" for n, what in ((self.n_undated, "undated (on no timeline)"),)
                        if n)
        tail = "".join(f", {n} {what}" for n, what in ((self.n_duplicates, "duplicates counted once"),
                                                        (self.n_removed, "gone from disk and removed from the store"))
                       if n)
        return (f"{self.n_analysed + self.n_cached} of {self.n_photos} photos analysed "
                f"({self.n_cached} already in the store, {self.n_flagged} with quality flags{extra}), "
                f"{len(self.failures)} skipped{tail}; results in {self.out_dir}")


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the store's identity of a photo).

    Parameters
    ----------
    path : Path
        The file, read in 1 MiB chunks.

    Returns
    -------
    str
        The digest as 64 lowercase hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: The flag of a loose photo with no capture date: analysed and listed, placed on no timeline.
UNDATED_FLAG = "undated"


def _store_outcome(store: ResultStore, o: Outcome) -> None:
    e = o.entry
    key = _RETRY + o.content_hash if o.retry else o.content_hash
    entry = {**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": key}
    record = o.record or {"photo": str(e.path), "capture_time": e.capture_time.isoformat() if e.capture_time else ""}
    record = {**record, "skinscan_version": __version__}
    if e.undated and o.status == "analysed":
        record = {**record, "quality_flags": ";".join(filter(None, [record.get("quality_flags", ""), UNDATED_FLAG]))}
    store.add_photo(entry, record=record, metrics=o.metrics, quality=o.quality, status=o.status, error=o.error,
                    units=METRIC_UNITS, detections=o.detections, se=o.se)


def _record(store: ResultStore, o: Outcome, result: BatchResult) -> None:
    """Store one photo's outcome and count it; an output folder that cannot be written stops the batch."""
    if o.fatal:
        raise OutputError(o.fatal)
    _store_outcome(store, o)
    if o.status == "analysed":
        undated = o.entry.undated
        result.n_analysed += 1
        result.count_flags((o.record or {}).get("quality_flags", ""), undated)
        result.n_undated += undated
    else:
        result.failures.append((str(o.entry.path), o.error))


def make_executor(jobs: int = 1, scheduler=None) -> Executor:
    """The executor for ``jobs`` and ``scheduler``, as :func:`run_batch` chooses it.

    Parameters
    ----------
    jobs : int
        Worker processes (with ``scheduler="local"``: Dask workers); 1: this process.
    scheduler : str or distributed.Client, optional
        Analyse on Dask (:class:`skinscan.distributed.DaskExecutor`).

    Returns
    -------
    Executor
        :class:`~skinscan.executors.SerialExecutor`, :class:`~skinscan.executors.PoolExecutor` or
        :class:`~skinscan.distributed.DaskExecutor`.

    Raises
    ------
    SkinscanError
        ``scheduler`` cannot be used (Dask missing, a malformed or unknown address).
    """
    if scheduler is not None:
        # The optional extra, imported only when asked for.
        from .distributed import DaskExecutor

        return DaskExecutor(scheduler, jobs)
    return SerialExecutor() if jobs <= 1 else PoolExecutor(jobs)


def run_batch(paths, out_dir, *, jobs: int = 1, allow_file_time: bool = False, model_path=None,
              progress: bool = True, overlays: bool = True, busy_timeout: float = 30.0,
              scheduler=None, executor: Executor | None = None) -> BatchResult:
    """Analyse every photo under ``paths`` into ``out_dir/skinscan.db``.

    Photos already in the store with the same content hash and pipeline version are skipped, so
    an interrupted batch resumes where it stopped; each photo is written in its own transaction,
    so a batch killed at any moment loses at most the photos being analysed. Several batches may
    write the same store at once: each checks before every photo whether another has stored it.
    A photo that cannot be analysed, for any reason, is stored as ``skipped`` with a one-line
    reason; only a failure of the store or of the output folder (a full disk) stops the batch.

    The store follows the folders: photos stored from below a folder this run scanned that are no
    longer there (deleted, renamed, moved to another session) are removed; a renamed file keeps
    its result. Folders not scanned are untouched, and so is a folder given that is missing or
    holds no photo at all (an unmounted drive), with a note saying so. A second file with the same
    content as another of its session is listed as its ``duplicate`` and counted once.

    Parameters
    ----------
    paths : path or list of paths
        Photo files or folders (``photos/<subject>/<session>/*`` or flat folders; see
        :func:`skinscan.discover.discover`).
    out_dir : path
        Output folder (created).
    jobs : int
        Worker processes, each with its own landmarker (with ``scheduler="local"``: Dask workers);
        1: in this process, which is left as it was (OpenCV's threads; its C heap is never tuned
        here: the ``skinscan`` command keeps its own process's freed memory itself).
    allow_file_time : bool
        Date loose photos without EXIF capture time by their file time (else they are analysed
        as undated: listed, on no timeline).
    model_path : path, optional
        The face landmarker model (default: ``$SKINSCAN_MODEL``, then the shipped copy).
    progress : bool
        Show a progress bar on stderr.
    overlays : bool
        Write the region overlay and the canonical-frame image of every photo.
    busy_timeout : float
        Seconds to wait for another process writing the same store before giving up with
        :class:`~skinscan.store.StoreBusyError`.
    scheduler : str or distributed.Client, optional
        Analyse the photos on a Dask cluster instead of local processes: a scheduler address
        (``"tcp://HOST:PORT"``), ``"local"`` (a local cluster of ``jobs`` workers) or a connected
        ``Client``; see :class:`skinscan.distributed.DaskExecutor`. Needs ``skinscan[distributed]``.
    executor : Executor, optional
        Where to analyse the photos, instead of the one ``jobs`` and ``scheduler`` choose
        (:func:`make_executor`): a :class:`~skinscan.executors.SerialExecutor`,
        :class:`~skinscan.executors.PoolExecutor` or :class:`~skinscan.distributed.DaskExecutor`,
        e.g. one given an ``analyse`` of the caller's (a test injecting a fault).

    Returns
    -------
    BatchResult

    Raises
    ------
    TypeError
        ``executor`` is not an :class:`~skinscan.executors.Executor`.
    SkinscanError
        The store or the output folder failed (:class:`~skinscan.errors.OutputError` for a file
        that cannot be written, e.g. a full disk); what was stored is kept.
    KeyboardInterrupt
        Interrupted (Ctrl-C, or SIGTERM under the command): the photos stored are kept, and the
        exception carries the :class:`BatchResult` so far as ``batch_result``.
    """
    if executor is None:  # before any work: a missing extra or a wrong scheduler is one line, at once
        executor = make_executor(jobs, scheduler)
    elif not isinstance(executor, Executor):
        raise TypeError(f"executor must be a skinscan executor (start, capacity, submit, next_outcome, close), "
                        f"not {type(executor).__name__}")
    out = Path(out_dir)
    for sub in ("", "regions", "canonical"):
        try:
            (out / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder ({e.strerror or e}); choose another --out",
                              out / sub) from None
    for sub in ("", "regions", "canonical"):  # left by a skinscan killed while writing
        remove_stale_temporaries(out / sub)
    disc = discover(paths, allow_file_time=allow_file_time)
    result = BatchResult(out, n_photos=len(disc.entries) + len(disc.skipped))
    if not result.n_photos:
        result.notes.append("no photos found in " + ", ".join(map(str, disc.scanned or paths)) + ": skinscan looks "
                            "for JPEG, PNG, TIFF, WebP, BMP, HEIC and GIF files in PHOTOS/<subject>/<session>/ or "
                            "in flat folders")
    try:
        with ResultStore(out / STORE_NAME, busy_timeout=busy_timeout) as store:
            hashes, todo = _plan(store, disc, paths, result)
            if todo:
                work = BatchWork(out, disc, hashes, frozenset(e.subject for e in todo), model_path, overlays)
                _analyse(store, executor, work, todo, result, progress=progress)
            export_tables(store, out)
    except KeyboardInterrupt as exc:
        exc.batch_result = result
        raise
    if result.flags_text():
        result.notes.append(f"quality flags: {result.flags_text()} (see photos.csv)")
    return result


def _plan(store: ResultStore, disc: Discovery, paths, result: BatchResult) -> tuple[dict, list[PhotoEntry]]:
    """Bring the store in line with the folders, and return the content hashes and the photos to analyse.

    Records what discovery skipped, lists duplicates, counts the photos whose result holds (a
    renamed file's row follows it), removes the rows of files gone from the folders scanned, and
    stores the sessions' order and dates and the subjects' treatment calendars.
    """
    present = {str(e.path) for e in disc.entries} | {str(p) for p, _ in disc.skipped}
    missing = {str(p) for p in _given(paths) if not p.exists()}  # said, not stored: nothing of it is known
    for path, reason in disc.skipped:
        result.failures.append((str(path), reason))
        if str(path) in missing:
            continue
        store.add_photo({"subject": _UNSORTED[0], "session": _UNSORTED[1], "session_index": 0, "date": None,
                         "path": str(path), "pipeline_version": PIPELINE_VERSION, "content_hash": _path_key(path)},
                        record={"photo": str(path)}, status="skipped", error=reason)
    hashes, todo = {}, []
    for e in disc.entries:
        try:
            hashes[e.path] = file_hash(e.path)
        except OSError as exc:
            hashes[e.path] = None
            reason = ("permission denied: the file cannot be read; make it readable (chmod a+r) or copy it"
                      if isinstance(exc, PermissionError) else
                      f"cannot read the file ({exc.strerror or exc}); check the disk or copy the file again")
            store.add_photo({**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": _path_key(e.path)},
                            record={"photo": str(e.path)}, status="skipped", error=reason)
            result.failures.append((str(e.path), reason))
    originals = _originals(disc.entries, hashes)
    for e in disc.entries:
        h = hashes[e.path]
        if h is None:
            continue
        original = originals[e.subject, e.session, h]
        if original != e.path:
            store.add_photo({**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": h},
                            record={"photo": str(e.path), "duplicate_of": str(original)}, status="duplicate",
                            error=f"same content as {original.name} in this session: counted once")
            result.n_duplicates += 1
            continue
        rows = store.stored(h, PIPELINE_VERSION, e.subject, e.session)
        flags = next((f for p, f in rows if p == str(e.path)), None)
        if flags is None:
            moved = next(((p, f) for p, f in rows if p not in present), None)  # renamed within its session
            if moved is not None:
                store.move(moved[0], e.path)
                flags = moved[1]
        if flags is None:
            todo.append(e)
        else:
            result.n_cached += 1
            result.count_flags(flags, e.undated)
            result.n_undated += e.undated
    _forget_missing(store, disc, paths, present, result)
    store.update_sessions([e.as_dict() for e in disc.entries])
    for subject in disc.subjects:
        store.set_treatments(subject, [vars(r) | {"session": r.label} for r in disc.sessions_csv.get(subject, [])])
    return hashes, todo


def _originals(entries: list[PhotoEntry], hashes: dict) -> dict[tuple, Path]:
    """Of the files with the same content in one session, the one that is the photo: the oldest by
    modification time (a copy is newer), then the first in series order; the others are its duplicates."""
    best: dict[tuple, tuple] = {}
    for i, e in enumerate(entries):
        if hashes.get(e.path) is None:
            continue
        try:
            mtime = e.path.stat().st_mtime
        except OSError:
            mtime = float("inf")
        key = (e.subject, e.session, hashes[e.path])
        if key not in best or (mtime, i) < best[key][0]:
            best[key] = ((mtime, i), e.path)
    return {k: v[1] for k, v in best.items()}


def _forget_missing(store: ResultStore, disc: Discovery, paths, present: set, result: BatchResult) -> None:
    """Remove the rows of files gone from the folders scanned; keep, and say so, what was stored
    from a folder given that is missing or holds nothing (a drive that is not mounted)."""
    for p in _given(paths):
        if not p.exists() and (n := store.count_below(p)):
            result.notes.append(f"{p} not found: the {n} photos stored from it are kept (is the drive mounted?)")
    found = [str(e.path) for e in disc.entries]
    scanned = []
    for root in disc.scanned:
        prefix = os.path.join(str(root), "")
        if any(f.startswith(prefix) for f in found):
            scanned.append(root)
        elif n := store.count_below(root):
            result.notes.append(f"no photos found in {root}: the {n} photos stored from it are kept "
                                "(is the drive mounted?)")
    result.n_removed = len(store.forget_missing(scanned, present, unscanned=disc.unscanned))


def _given(paths) -> list[Path]:
    """The paths a batch was given, absolute."""
    return [Path(os.path.abspath(p)) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]


def _analyse(store: ResultStore, executor: Executor, work: BatchWork, todo: list[PhotoEntry],
             result: BatchResult, *, progress: bool) -> None:
    """The batch's one loop: hand ``todo`` out to ``executor`` and store each photo as it comes back.

    Photos are handed out up to the executor's capacity, each after checking that no other
    skinscan writing the same store has stored it meanwhile, so a failure of the store or an
    interrupt leaves little queued. An outcome's images not yet written (a Dask worker's) are
    written here; one that cannot be (a full disk) stops the batch, as it does in a worker. On
    any exception the executor is closed cancelling what it still has in hand: those photos'
    rows are not written, and the next run analyses them.
    """
    bar = Progress(todo, "analysing", enabled=progress)
    queue, in_hand, cancel = iter(todo), 0, True
    try:
        executor.start(work)
        while True:
            capacity = executor.capacity()
            while in_hand < capacity and (e := next(queue, None)) is not None:
                if store.is_done(work.hashes[e.path], PIPELINE_VERSION, e.subject, e.session, path=e.path):
                    result.n_cached += 1  # another skinscan writing this store got there first
                    bar.step(e.path.name)
                else:
                    executor.submit(e, work.hashes[e.path])
                    in_hand += 1
            if not in_hand:
                break
            outcome = executor.next_outcome()
            in_hand -= 1
            write_files(work.out_dir, outcome.files)
            _record(store, outcome, result)
            bar.step(outcome.entry.path.name)
        cancel = False
    finally:
        executor.close(cancel=cancel)
    bar.close()


def _path_key(path) -> str:
    """Store key of a file that could not be read: never a content hash, so it is retried every run."""
    return "path:" + hashlib.sha256(os.fsencode(str(path))).hexdigest()


