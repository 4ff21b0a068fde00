"""Batch work on photo folders: analyse every photo into the results store, then write tables, charts and reports.

What the ``skinscan analyse``, ``chart`` and ``report`` commands do, as functions a notebook can call.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis import PIPELINE_VERSION, PhotoAnalysis, analyse_photo
from .discover import Discovery, PhotoEntry, discover, safe_name
from .errors import SkinscanError
from .metrics import METRIC_UNITS
from .progress import Progress
from .store import ResultStore

__all__ = ["BatchResult", "run_batch", "write_outputs", "STORE_NAME", "file_hash"]

STORE_NAME = "skinscan.db"
_UNSORTED = ("(unsorted)", "(none)")


@dataclass
class BatchResult:
    """What a batch did: counts, and the files it could not analyse with the reason."""

    out_dir: Path
    n_photos: int = 0
    n_analysed: int = 0
    n_cached: int = 0
    n_flagged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"{self.n_analysed + self.n_cached} of {self.n_photos} files analysed "
                f"({self.n_cached} already in the store, {self.n_flagged} with quality flags), "
                f"{len(self.failures)} skipped; results in {self.out_dir}")


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


def _init_worker(references: dict, out_dir: str, model_path, overlays: bool) -> None:
    from .landmarks import FaceLandmarker

    _W.update(references=references, out_dir=Path(out_dir), overlays=overlays,
              landmarker=FaceLandmarker(model_path))


def _analyse_entry(entry: PhotoEntry, content_hash: str) -> dict:
    """Analyse one photo in a worker; everything returned is plain data for the store."""
    from .io import save_jpeg
    from .regions import draw_regions

    base = {"entry": entry, "content_hash": content_hash}
    try:
        a = analyse_photo(entry.path, reference=_W["references"].get(entry.subject), landmarker=_W["landmarker"])
    except SkinscanError as exc:
        return {**base, "status": "skipped", "error": exc.reason}
    except MemoryError:
        return {**base, "status": "skipped", "error": "out of memory while analysing this photo"}
    if _W["overlays"]:
        out = _W["out_dir"]
        save_jpeg(out / "regions" / f"{_stem(entry)}.jpg", draw_regions(a.rgb, a.masks), quality=85)
        can, _ = a.canonical()
        save_jpeg(out / "canonical" / f"{_stem(entry)}.jpg", can, quality=90)
    return {**base, "status": "analysed", "error": None, "record": a.record(), "metrics": a.metrics,
            "quality": [q.as_dict() for q in a.quality], "flagged": bool(a.failed_checks)}


def _store_result(store: ResultStore, res: dict) -> None:
    e: PhotoEntry = res["entry"]
    entry = {**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": res["content_hash"]}
    record = res.get("record") or {"photo": str(e.path), "capture_time": e.capture_time.isoformat()
                                   if e.capture_time else ""}
    store.add_photo(entry, record=record, metrics=res.get("metrics"), quality=res.get("quality"),
                    status=res["status"], error=res["error"], units=METRIC_UNITS)


def _find_references(disc: Discovery, hashes: dict, model_path) -> dict[str, PhotoAnalysis]:
    """Each subject's reference: its first photo (baseline session) that analyses."""
    from .landmarks import FaceLandmarker

    refs: dict[str, PhotoAnalysis] = {}
    with FaceLandmarker(model_path) as lm:
        for subject in disc.subjects:
            for e in (x for x in disc.entries if x.subject == subject):
                if hashes.get(e.path) is None:
                    continue
                try:
                    refs[subject] = _slim_reference(analyse_photo(e.path, landmarker=lm))
                    break
                except SkinscanError:
                    continue  # it is recorded with its reason when the batch reaches it
    return refs


def run_batch(paths, out_dir, *, jobs: int = 1, allow_file_time: bool = False, model_path=None,
              progress: bool = True, overlays: bool = True) -> BatchResult:
    """Analyse every photo under ``paths`` into ``out_dir/skinscan.db``.

    Photos already in the store with the same content hash and pipeline version are skipped, so
    an interrupted batch resumes where it stopped; each photo is written in its own transaction.

    Parameters
    ----------
    paths : path or list of paths
        Photo files or folders (``photos/<subject>/<session>/*`` or flat folders; see
        :func:`skinscan.discover.discover`).
    out_dir : path
        Output folder (created).
    jobs : int
        Worker processes, each with its own landmarker.
    allow_file_time : bool
        Date photos without EXIF capture time by their file time.
    overlays : bool
        Write the region overlay and the canonical-frame image of every photo.

    Returns
    -------
    BatchResult
    """
    out = Path(out_dir)
    for sub in ("", "regions", "canonical"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    disc = discover(paths, allow_file_time=allow_file_time)
    result = BatchResult(out, n_photos=len(disc.entries) + len(disc.skipped))
    with ResultStore(out / STORE_NAME) as store:
        for path, reason in disc.skipped:
            key = "path:" + hashlib.sha256(os.fsencode(str(path))).hexdigest()
            store.add_photo({"subject": _UNSORTED[0], "session": _UNSORTED[1], "session_index": 0, "date": None,
                             "path": str(path), "pipeline_version": PIPELINE_VERSION, "content_hash": key},
                            record={"photo": str(path)}, status="skipped", error=reason)
            result.failures.append((str(path), reason))
        hashes, todo = {}, []
        for e in disc.entries:
            try:
                hashes[e.path] = file_hash(e.path)
            except OSError as exc:
                hashes[e.path] = None
                reason = f"cannot read the file ({exc.strerror or exc})"
                key = "path:" + hashlib.sha256(os.fsencode(str(e.path))).hexdigest()
                store.add_photo({**e.as_dict(), "pipeline_version": PIPELINE_VERSION, "content_hash": key},
                                record={"photo": str(e.path)}, status="skipped", error=reason)
                result.failures.append((str(e.path), reason))
                continue
            if store.is_done(hashes[e.path], PIPELINE_VERSION, e.subject, e.session):
                result.n_cached += 1
            else:
                todo.append(e)
        store.update_sessions([e.as_dict() for e in disc.entries])
        if todo:
            refs = _find_references(disc, hashes, model_path)
            initargs = (refs, str(out), model_path, overlays)
            bar = Progress(todo, "analysing", enabled=progress)
            if jobs <= 1:
                _init_worker(*initargs)
                try:
                    for e in todo:
                        _record(store, _analyse_entry(e, hashes[e.path]), result)
                        bar.step(e.path.name)
                finally:
                    _W.pop("landmarker").close()
            else:
                with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=initargs) as ex:
                    futures = [ex.submit(_analyse_entry, e, hashes[e.path]) for e in todo]
                    for fut in as_completed(futures):
                        res = fut.result()
                        _record(store, res, result)
                        bar.step(res["entry"].path.name)
            bar.close()
        store.export(out)
    return result


def _record(store: ResultStore, res: dict, result: BatchResult) -> None:
    _store_result(store, res)
    if res["status"] == "analysed":
        result.n_analysed += 1
        result.n_flagged += int(res.get("flagged", False))
    else:
        result.failures.append((str(res["entry"].path), res["error"]))


def write_outputs(out_dir, *, paths=None, formats=("png",), include_flagged: bool = False, charts: bool = True,
                  reports: bool = True, progress: bool = True) -> dict[str, list[Path]]:
    """Tables, charts and one HTML report per subject from the store in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        A folder written by :func:`run_batch`.
    paths : path or list, optional
        The photo folders (for ``sessions.csv`` treatment days); default: none.
    formats : tuple of str
        Chart formats among ``png``, ``svg``, ``pdf``.
    include_flagged : bool
        Keep photos that failed a blocking quality check in the trends.
    """
    from . import charts as ch
    from . import report as rp
    from .series import recovery_curve, recovery_time_hours, summarise

    out = Path(out_dir)
    with ResultStore(out / STORE_NAME) as store:
        values, photos = store.values_frame(), store.photos_frame()
        written = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in store.export(out).items()}
    treatments = {}
    if paths is not None:
        disc = discover(paths)
        treatments = {s: disc.treatment_dates(s) for s in disc.subjects}
    summary = summarise(values, photos, treatments=treatments, include_flagged=include_flagged)
    summary.to_csv(out / "changes.csv", index=False)
    written["changes"] = [out / "changes.csv"]
    curve = recovery_curve(values, photos, treatments, include_flagged=include_flagged)
    hours = recovery_time_hours(curve)
    subjects = [s for s in summary["subject"].unique() if s != _UNSORTED[0]]
    written["charts"], written["reports"] = [], []
    for subject in Progress(subjects, "reporting", enabled=progress):
        slug = safe_name(subject)
        sub_dir = out / "charts" / slug
        days = treatments.get(subject, [])
        if charts:
            sub_dir.mkdir(parents=True, exist_ok=True)
            for metric in sorted(summary.loc[summary["subject"] == subject, "metric"].unique()):
                fig = ch.trend_chart(summary, subject=subject, metric=metric, treatments=days)
                for fmt in formats:
                    written["charts"].append(ch.save_figure(fig, sub_dir / f"trend_{metric}.{fmt}"))
        if reports:
            before_after = _before_after(out, photos, summary, subject)
            sub_curve = curve[curve["subject"] == subject]
            sub_hours = {(k[2], k[3]): v for k, v in hours.items() if k[0] == subject}
            html = rp.build_report(summary, photos, subject=subject, treatments=days, recovery=sub_curve,
                                   recovery_hours=sub_hours, before_after=before_after)
            path = out / f"report_{slug}.html"
            rp.write_report(path, html)
            written["reports"].append(path)
    return written


def _before_after(out: Path, photos, summary, subject: str) -> dict | None:
    """Baseline and latest photo of a subject in the canonical frame, with redness and texture change maps."""
    from .align import canonical_frame, warp_to_canonical

    sessions = summary[summary["subject"] == subject].sort_values("session_index")["session"].unique()
    if len(sessions) < 2:
        return None
    ok = photos[(photos["subject"] == subject) & (photos["status"] == "analysed")]
    pick = []
    for session in (sessions[0], sessions[-1]):
        rows = ok[ok["session"] == session]
        if rows.empty:
            return None
        pick.append(Path(rows.iloc[0]["photo"]))
    frame = canonical_frame(4.0)
    imgs, valid, maps = [], np.ones(frame.shape, bool), {"redness": [], "texture": []}
    for p in pick:
        try:
            a = analyse_photo(p, keep_maps=True)
        except (SkinscanError, OSError):
            return None
        rgb, v = warp_to_canonical(a.rgb, a.face, mm_per_px=a.scale.mm_per_px, frame=frame)
        skin, _ = warp_to_canonical(a.masks["face"].astype(np.uint8), a.face, mm_per_px=a.scale.mm_per_px,
                                    frame=frame, interpolation=0)
        imgs.append(rgb)
        valid &= v & skin.astype(bool)
        for key, name in (("redness", "a_star"), ("texture", "texture")):
            m = np.abs(a.maps[name]) * 100 if key == "texture" else a.maps[name]
            w, _ = warp_to_canonical(np.ascontiguousarray(m, dtype=np.float32), a.face, mm_per_px=a.scale.mm_per_px,
                                     frame=frame)
            import cv2

            maps[key].append(cv2.GaussianBlur(w, (0, 0), 2.0 * frame.px_per_mm))
    heat = {}
    for key, unit in (("redness", "Δ a*"), ("texture", "Δ relief (a.u.)")):
        d = maps[key][1] - maps[key][0]
        heat[key] = (np.where(valid, d, np.nan).astype(np.float32), unit)
    return {"baseline_rgb": imgs[0], "latest_rgb": imgs[1], "valid": valid, "heatmaps": heat,
            "titles": (f"baseline ({sessions[0]})", f"latest ({sessions[-1]})")}
