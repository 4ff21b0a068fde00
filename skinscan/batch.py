"""Batch work on photo folders: analyse every photo into the results store, then write tables, charts and reports.

What the ``skinscan analyse``, ``chart`` and ``report`` commands do, as functions a notebook can call.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ._heap import freed_memory_kept, keep_freed_memory
from ._version import __version__
from ._process import die_with_parent, ignore_interrupts, terminate
from ._write import atomic_write, remove_stale_temporaries, write_bytes
from .analysis import PIPELINE_VERSION, PhotoAnalysis, analyse_photo
from .discover import Discovery, PhotoEntry, discover, safe_name
from .errors import CalibrationError, NoFaceError, OutputError, SkinscanError
from .metrics import METRIC_UNITS
from .progress import Progress
from .outputs import CANONICAL_MAPS, CANONICAL_PX_PER_MM, MAPS_PX_PER_MM, UNSORTED_SUBJECT, export_tables
from .store import STORE_NAME, ResultStore

__all__ = ["BatchResult", "run_batch", "STORE_NAME", "file_hash", "overlay_files", "write_files"]

_UNSORTED = (UNSORTED_SUBJECT, "(none)")
#: Stored instead of the content hash for outcomes worth retrying (an internal error, memory, a lost
#: worker): such a row never counts as done, so the next run analyses the photo again and replaces it.
_RETRY = "retry:"
#: What to do, appended to the reasons of errors whose message says only what went wrong.
_ADVICE = {
    NoFaceError: "use a photo with the whole face in the frame, facing the camera, in even light",
    CalibrationError: "retake it facing the camera with the eyes open, without glasses, close enough",
}


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
    n_undated: int = 0
    n_duplicates: int = 0
    n_removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
    """SHA-256 of a file's bytes (the store's identity of a photo)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _slim_reference(a: PhotoAnalysis) -> PhotoAnalysis:
    """A reference analysis with only what alignment and the difference checks need (cheap to ship to workers)."""
    return PhotoAnalysis(a.path, a.content_hash, a.capture_time, a.image_shape, a.crop_box, a.rgb, a.face, a.scale,
                         {"face": a.masks["face"]}, {}, a.light, a.quality, gains=a.gains, light_source=a.light_source)


def _stem(entry: PhotoEntry) -> str:
    return "__".join(safe_name(x) for x in (entry.subject, entry.session, entry.path.stem))


# ---------------------------------------------------------------------------------- workers
_W: dict = {}


def _init_worker(references, out_dir: str, model_path, overlays: bool, *, state: dict | None = None,
                 landmarker=None) -> None:
    """Fill a worker's state (``_W``, or ``state``: one per batch when batches share a Dask worker).

    ``references`` is the subjects' reference analyses, or the path of a pickle of them that the
    worker reads when its first photo comes (so that a pool can start, and load its landmarkers,
    while the batch process is still analysing the references).
    """
    from .landmarks import FaceLandmarker

    (_W if state is None else state).update(references=references, out_dir=Path(out_dir), overlays=overlays,
                                            landmarker=landmarker or FaceLandmarker(model_path))


def _references(w: dict) -> dict:
    """The subjects' references; from a pickle file, the batch process may still be writing it:
    wait for it to appear (it is written whole, then renamed into place). A batch that fails
    before it appears terminates its workers, so the wait cannot outlive the batch."""
    refs = w["references"]
    if isinstance(refs, (str, os.PathLike)):
        while not os.path.exists(refs):
            time.sleep(0.01)
        with open(refs, "rb") as fh:
            refs = w["references"] = pickle.load(fh)
    return refs


def _references_in_worker(disc: Discovery, hashes: dict, subjects: set) -> dict[str, PhotoAnalysis]:
    """:func:`_find_references` in a pool worker, with its landmarker."""
    return _find_references(disc, hashes, _W["landmarker"], subjects)


def _single_threaded() -> int:
    """One OpenCV thread in this process (returns the previous count).

    A batch's parallelism is its worker processes, one photo each: OpenCV's own threads would
    only fight them for the cores (``--jobs N`` runs N single-threaded workers).
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return threads


def _init_pool_worker(parent_pid: int, *initargs) -> None:
    """A pool worker's setup: bound to the batch process first, then its state.

    The bond comes before anything slow (the landmarker takes about a second): a worker whose batch
    was killed (SIGKILL, out of memory) would otherwise wait forever on the task queue its siblings
    keep open, holding the terminal's pipes and its memory. Interrupts are the batch process's to
    handle. A worker keeps its freed memory for its next photo (:func:`skinscan._heap.keep_freed_memory`).
    """
    die_with_parent(parent_pid)
    ignore_interrupts()
    keep_freed_memory()
    _init_worker(*initargs)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _reason(exc: SkinscanError) -> str:
    """The error's reason with what to do about it, on one line."""
    reason = _one_line(exc.reason)
    advice = next((a for kind, a in _ADVICE.items() if isinstance(exc, kind)), None)
    return f"{reason}; {advice}" if advice else reason


def _internal_error_reason(exc: BaseException) -> str:
    """The one-line reason recorded for an exception skinscan did not expect."""
    return f"internal error ({type(exc).__name__}): {_one_line(exc)} — please report"


def overlay_files(a: PhotoAnalysis, stem: str) -> dict[str, bytes]:
    """A photo's images for the output folder, by path within it: its region overlay
    (``regions/<stem>.jpg``), its face in the canonical frame (``canonical/<stem>.jpg``), and that
    frame's valid skin with the redness and texture maps (``canonical/<stem>.npz``), from which a
    report draws its before/after without analysing the photos again."""
    from .align import canonical_frame, warp_to_canonical
    from .io import encode_jpeg

    frame = canonical_frame(CANONICAL_PX_PER_MM)
    rgb, valid = warp_to_canonical(a.rgb, a.face, mm_per_px=a.scale.mm_per_px, frame=frame)
    skin, _ = warp_to_canonical(a.masks["face"].view(np.uint8), a.face, mm_per_px=a.scale.mm_per_px, frame=frame,
                                interpolation=0)
    keep = {"valid": np.packbits(valid & skin.astype(bool)), "shape": np.array(frame.shape)}
    small = (max(round(frame.shape[1] * MAPS_PX_PER_MM / CANONICAL_PX_PER_MM), 1),
             max(round(frame.shape[0] * MAPS_PX_PER_MM / CANONICAL_PX_PER_MM), 1))
    for name in CANONICAL_MAPS:
        if name not in a.maps:  # a family under its resolution floor has no map
            continue
        m = np.abs(a.maps[name]) * 100 if name == "texture" else a.maps[name]
        w, _ = warp_to_canonical(np.ascontiguousarray(m, dtype=np.float32), a.face, mm_per_px=a.scale.mm_per_px,
                                 frame=frame)
        w = cv2.GaussianBlur(w, (0, 0), 2.0 * frame.px_per_mm)
        keep[name] = cv2.resize(w, small, interpolation=cv2.INTER_AREA).astype(np.float16)
    buf = io.BytesIO()
    np.savez_compressed(buf, **keep)
    return {f"regions/{stem}.jpg": encode_jpeg(a.overlay(), quality=85),
            f"canonical/{stem}.jpg": encode_jpeg(rgb, quality=90),
            f"canonical/{stem}.npz": buf.getvalue()}


def write_files(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write :func:`overlay_files` into ``out_dir`` (each whole, or an OutputError naming it)."""
    for rel, data in files.items():
        write_bytes(Path(out_dir) / rel, data, what="image")


def _analyse_entry(entry: PhotoEntry, content_hash: str, state: dict | None = None) -> dict:
    """Analyse one photo in a worker; everything returned is plain data for the store.

    Whatever goes wrong with one photo becomes its ``skipped`` outcome with a one-line reason:
    an expected failure (not a photo, no face...) says why and what to do, anything else is an
    internal error, retried by the next run. Only the batch's own failures (the store) stop it.
    ``state`` is what :func:`_init_worker` filled (default: this process's ``_W``).
    """
    w = _W if state is None else state
    base = {"entry": entry, "content_hash": content_hash}
    try:
        # The reference is fetched after the metrics: a pool's first photos start while the batch
        # process is still analysing the references.
        a = analyse_photo(entry.path, reference=lambda: _references(w).get(entry.subject), landmarker=w["landmarker"],
                          keep_maps=CANONICAL_MAPS if w["overlays"] else False)
        files = overlay_files(a, _stem(entry)) if w["overlays"] else {}
        if not w.get("return_files"):
            write_files(w["out_dir"], files)
            files = {}
        return {**base, "files": files, "status": "analysed", "error": None, "record": a.record(), "metrics": a.metrics,
                "quality": [q.as_dict() for q in a.quality], "flagged": bool(a.failed_checks),
                "detections": a.detections, "se": a.uncertainty}
    except OutputError as exc:  # the output folder's failure, not the photo's: the batch stops on it
        return {**base, "status": "skipped", "error": _reason(exc), "retry": True, "fatal": str(exc)}
    except SkinscanError as exc:
        # A write error is the output folder's, not the photo's: try again next run.
        retry = exc.path is not None and exc.path != entry.path
        return {**base, "status": "skipped", "error": _reason(exc), "retry": retry}
    except MemoryError:
        return {**base, "status": "skipped", "retry": True,
                "error": "out of memory while analysing this photo; close other programs or use fewer --jobs"}
    except Exception as exc:  # a bug must cost one photo, not the batch
        return {**base, "status": "skipped", "error": _internal_error_reason(exc), "retry": True}


#: The flag of a loose photo with no capture date: analysed and listed, placed on no timeline.
UNDATED_FLAG = "undated"


def _store_result(store: ResultStore, res: dict) -> None:
    e: PhotoEntry = res["entry"]
    key = _RETRY + res["content_hash"] if res.get("retry") else res["content_hash"]
    entry = {**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": key}
    record = res.get("record") or {"photo": str(e.path), "capture_time": e.capture_time.isoformat()
                                   if e.capture_time else ""}
    record = {**record, "skinscan_version": __version__}
    if e.undated and res["status"] == "analysed":
        record = {**record, "quality_flags": ";".join(filter(None, [record.get("quality_flags", ""), UNDATED_FLAG]))}
    store.add_photo(entry, record=record, metrics=res.get("metrics"), quality=res.get("quality"),
                    status=res["status"], error=res["error"], units=METRIC_UNITS, detections=res.get("detections"),
                    se=res.get("se"))


def _find_references(disc: Discovery, hashes: dict, lm, subjects) -> dict[str, PhotoAnalysis]:
    """The reference of each of ``subjects``: its first photo (baseline session) that analyses and
    passes the blocking quality checks, else the first that analyses at all (landmarker ``lm``)."""
    refs: dict[str, PhotoAnalysis] = {}
    for subject in (s for s in disc.subjects if s in subjects):
        fallback = None
        for e in (x for x in disc.entries if x.subject == subject):
            if hashes.get(e.path) is None:
                continue
            try:
                a = analyse_photo(e.path, landmarker=lm, metrics=False)
            except Exception:  # recorded with its reason when the batch reaches it
                continue
            if not a.excluded_by:
                refs[subject] = _slim_reference(a)
                break
            fallback = fallback or a
        if subject not in refs and fallback is not None:
            refs[subject] = _slim_reference(fallback)
    return refs


def run_batch(paths, out_dir, *, jobs: int = 1, allow_file_time: bool = False, model_path=None,
              progress: bool = True, overlays: bool = True, busy_timeout: float = 30.0,
              scheduler=None) -> BatchResult:
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
        Worker processes, each with its own landmarker (with ``scheduler="local"``: Dask workers).
    allow_file_time : bool
        Date loose photos without EXIF capture time by their file time (else they are analysed
        as undated: listed, on no timeline).
    overlays : bool
        Write the region overlay and the canonical-frame image of every photo.
    busy_timeout : float
        Seconds to wait for another process writing the same store before giving up with
        :class:`~skinscan.store.StoreBusyError`.
    scheduler : str or distributed.Client, optional
        Analyse the photos on a Dask cluster instead of local processes: a scheduler address
        (``"tcp://HOST:PORT"``), ``"local"`` (a local cluster of ``jobs`` workers) or a connected
        ``Client``; see :func:`skinscan.distributed.run_dask`. Needs ``skinscan[distributed]``.

    Returns
    -------
    BatchResult

    Raises
    ------
    SkinscanError
        The store or the output folder failed (:class:`~skinscan.errors.OutputError` for a file
        that cannot be written, e.g. a full disk); what was stored is kept.
    KeyboardInterrupt
        Interrupted (Ctrl-C, or SIGTERM under the command): the photos stored are kept, and the
        exception carries the :class:`BatchResult` so far as ``batch_result``.
    """
    if scheduler is not None:  # before any work: a missing extra or a wrong value is one line, at once
        from .distributed import check_scheduler

        check_scheduler(scheduler)
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
                _analyse(store, disc, todo, hashes, result, jobs=jobs, out=out, model_path=model_path,
                         overlays=overlays, scheduler=scheduler, progress=progress)
            export_tables(store, out)
    except KeyboardInterrupt as exc:
        exc.batch_result = result
        raise
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
            result.n_flagged += bool(flags)
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


def _analyse(store: ResultStore, disc: Discovery, todo: list[PhotoEntry], hashes: dict, result: BatchResult, *,
             jobs: int, out: Path, model_path, overlays: bool, scheduler, progress: bool) -> None:
    """Analyse ``todo`` here, in a pool of ``jobs`` processes, or on a Dask cluster, storing each photo as it comes."""
    from .landmarks import FaceLandmarker

    # Only subjects with photos left to analyse need a reference (a resume touches few).
    subjects = {e.subject for e in todo}
    bar = Progress(todo, "analysing", enabled=progress)
    if scheduler is not None:
        from .distributed import run_dask

        with FaceLandmarker(model_path) as lm:
            refs = _find_references(disc, hashes, lm, subjects)
        run_dask(store, todo, hashes, (refs, str(out), model_path, overlays), result, bar, scheduler, jobs)
    elif jobs <= 1:
        lm = FaceLandmarker(model_path)  # one landmarker for the references and the photos
        threads = _single_threaded()
        try:
            with freed_memory_kept():  # as a pool worker does, until the batch ends
                try:
                    _init_worker(_find_references(disc, hashes, lm, subjects), str(out), model_path,
                                 overlays, landmarker=lm)
                    for e in todo:
                        if store.is_done(hashes[e.path], PIPELINE_VERSION, e.subject, e.session, path=e.path):
                            result.n_cached += 1  # another skinscan writing this store got there first
                        else:
                            _record(store, _analyse_entry(e, hashes[e.path]), result)
                        bar.step(e.path.name)
                finally:
                    _W.clear()  # the references go before the heap is given back
        finally:
            cv2.setNumThreads(threads)
            lm.close()
    else:
        _run_pool(store, todo, hashes, jobs, result, bar, disc=disc, subjects=subjects, out=out,
                  model_path=model_path, overlays=overlays)
    bar.close()


#: Name start of the file through which a pool's workers get the references: then the batch's pid.
_REFS_PREFIX = ".skinscan-references-"


def _run_pool(store: ResultStore, todo: list[PhotoEntry], hashes: dict, jobs: int, result: BatchResult,
              bar: Progress, *, disc: Discovery, subjects: set, out: Path, model_path, overlays: bool) -> None:
    """Analyse ``todo`` in ``jobs`` worker processes, storing each result as it arrives.

    The workers start on the first photos at once, while the first of them free finds the
    subjects' references (this process finds them itself if that worker dies): a worker needs its
    photo's reference only after the metrics (for the difference checks and the alignment). The references reach the workers through a pickle in ``out``
    (written whole, then renamed into place; removed at the end), which a worker waits for then.

    Photos are handed out a few at a time, each after checking that no other skinscan writing the
    same store has stored it meanwhile, so a failure of the store or an interrupt leaves little
    queued. A worker that dies (killed, out of memory, a crash in native code) costs the photos it
    and its siblings had in hand, stored as to be retried; a new pool takes the rest.
    """
    from .landmarks import FaceLandmarker

    # Workers inherit one OpenCV thread from this process (set here, before they are forked:
    # changing it in a forked child can deadlock on the parent's thread pool).
    threads = _single_threaded()
    _remove_stale_references(out)
    refs_file = out / f"{_REFS_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.pkl"

    def publish(refs: dict) -> None:  # whole, then renamed: a worker never reads half a file
        data = pickle.dumps(refs, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(refs_file, lambda tmp: tmp.write_bytes(data), what="reference photos for the workers")

    def find_references() -> None:  # the answer of the worker asked below
        try:
            refs = from_worker.result()
        except BrokenProcessPool:  # that worker died: find them here
            with FaceLandmarker(model_path) as lm:
                refs = _find_references(disc, hashes, lm, subjects)
        publish(refs)

    try:
        initargs = (os.getpid(), str(refs_file), str(out), model_path, overlays)
        # Forked now, before this process holds a landmarker of its own (MediaPipe's threads).
        pool = ProcessPoolExecutor(jobs, initializer=_init_pool_worker, initargs=initargs)
        # The references are found by the first worker free, with its landmarker, before its first
        # photo: this process then loads none (a third landmarker, ~0.35 s of CPU and ~100 MB,
        # that competed with the workers' start on a machine with as many cores as workers).
        from_worker = pool.submit(_references_in_worker, disc, hashes, subjects)
        _run_pool_inner(store, todo, hashes, jobs, initargs, result, bar, pool, started=find_references)
    finally:
        cv2.setNumThreads(threads)
        refs_file.unlink(missing_ok=True)
        for sub in ("", "regions", "canonical"):  # a worker stopped while writing an image left its part
            remove_stale_temporaries(out / sub)


def _remove_stale_references(out: Path) -> None:
    """Remove references files (``.pkl``, ``.tmp``) left in ``out`` by a batch that was killed (its
    process is gone); another batch running on the same ``out`` keeps its own."""
    for f in out.glob(f"{_REFS_PREFIX}*"):
        try:
            os.kill(int(f.name[len(_REFS_PREFIX):].split("-")[0]), 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, OSError):  # not our name, or a process of another user: leave it
            continue


def _run_pool_inner(store: ResultStore, todo: list[PhotoEntry], hashes: dict, jobs: int, initargs: tuple,
                    result: BatchResult, bar: Progress, pool: ProcessPoolExecutor, started=None) -> None:
    """The pool's loop; ``started`` runs once, when the first photos are handed out (the workers
    analyse them meanwhile; they wait for the references only at the end)."""
    def submit(e: PhotoEntry):
        nonlocal pool
        try:
            return pool.submit(_analyse_entry, e, hashes[e.path])
        except BrokenProcessPool:
            pool.shutdown(wait=False)
            pool = ProcessPoolExecutor(jobs, initializer=_init_pool_worker, initargs=initargs)
            return pool.submit(_analyse_entry, e, hashes[e.path])

    try:
        queue, running = iter(todo), {}
        while True:
            while len(running) < 2 * jobs:
                e = next(queue, None)
                if e is None:
                    break
                if store.is_done(hashes[e.path], PIPELINE_VERSION, e.subject, e.session, path=e.path):
                    result.n_cached += 1
                    bar.step(e.path.name)
                else:
                    running[submit(e)] = e
            if started is not None:
                started, first = None, started
                first()
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                e = running.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    res = {"entry": e, "content_hash": hashes[e.path], "status": "skipped", "retry": True,
                           "error": "the worker process analysing this photo stopped unexpectedly; run skinscan "
                                    "again to retry it (with --jobs 1 if it happens again)"}
                except Exception as exc:  # e.g. a result that cannot be sent back from the worker
                    res = {"entry": e, "content_hash": hashes[e.path], "status": "skipped", "retry": True,
                           "error": _internal_error_reason(exc)}
                _record(store, res, result)
                bar.step(e.path.name)
    except BaseException:
        # An interrupt, a full disk, a failed store: the photos in hand are not waited for (a
        # worker may also be waiting for references that will never come). Their rows are not
        # written; the next run analyses them.
        terminate(list(getattr(pool, "_processes", {}).values()))
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _path_key(path) -> str:
    """Store key of a file that could not be read: never a content hash, so it is retried every run."""
    return "path:" + hashlib.sha256(os.fsencode(str(path))).hexdigest()


def _record(store: ResultStore, res: dict, result: BatchResult) -> None:
    """Store one photo's outcome and count it; an output folder that cannot be written stops the batch."""
    if res.get("fatal"):
        raise OutputError(res["fatal"])
    _store_result(store, res)
    if res["status"] == "analysed":
        undated = res["entry"].undated
        result.n_analysed += 1
        result.n_flagged += bool(res.get("flagged", False) or undated)
        result.n_undated += undated
    else:
        result.failures.append((str(res["entry"].path), res["error"]))
