"""Writing what a batch stored: the tables, each subject's charts and report, redone only where something changed.

A re-run that analyses nothing new should cost next to nothing: :func:`write_outputs` keeps a small
manifest (:data:`MANIFEST`) of what each output was made from (a fingerprint of the stored photos
and treatment days, the options and skinscan's version) and rewrites the tables only when the store
changed, and a subject's charts and report only when that subject's photos or treatments changed,
or an output file is missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ._version import version_text
from ._write import output_error, remove_stale_temporaries, write_bytes, write_csv, write_text
from .discover import SessionInfo, discover, safe_name, treatment_dates
from .progress import Progress
from .raster import trend_png
from .store import STORE_NAME, ResultStore
from .svg import trend_svg

__all__ = ["Outputs", "write_outputs", "export_tables", "before_after", "MANIFEST", "CANONICAL_MAPS", "CANONICAL_PX_PER_MM",
           "MAPS_PX_PER_MM", "UNSORTED_SUBJECT"]

#: The manifest of the outputs in an output folder (a hidden file beside them).
MANIFEST = ".skinscan-outputs.json"
#: The tables every run exports.
TABLES = ("results", "photos", "detections")
#: The maps a before/after shows (redness, texture), kept per photo in the canonical frame at
#: :data:`MAPS_PX_PER_MM` (they are blurred over 2 mm before they are drawn), beside its face at
#: :data:`CANONICAL_PX_PER_MM` (``canonical/<stem>.jpg`` and ``.npz``).
CANONICAL_MAPS = ("a_star", "texture")
CANONICAL_PX_PER_MM = 4.0
MAPS_PX_PER_MM = 1.0
#: Files discovery could not place in a subject (a folder given that is not a photo...).
UNSORTED_SUBJECT = "(unsorted)"


class Outputs(dict):
    """The files of each kind (``tables``, ``changes``, ``charts``, ``reports``: every subject's, written
    now or up to date), with the subjects whose charts or report were ``written`` now, those left
    ``up_to_date``, the charts and reports written now (``new_files``), whether ``changes.csv`` was
    rewritten, and ``notes`` for the user."""

    def __init__(self, files: dict, *, written: list, up_to_date: list):
        super().__init__(files)
        self.written, self.up_to_date = written, up_to_date
        self.new_files: list[Path] = []
        self.changes_written = False
        self.notes: list[str] = []

    def summary(self, kind: str, out_dir) -> str:
        """One line on the ``charts`` or ``reports`` (the kind a command asked for alone): how many
        were written now, or that they are up to date."""
        def count(n: int) -> str:
            return f"{n} {kind if n != 1 else kind[:-1]}"

        fresh, n = sum(_kind(f) == kind for f in self.new_files), len(self.get(kind, []))
        if fresh:
            return f"{count(fresh)} written under {out_dir}" + (f" ({n - fresh} up to date)" if n > fresh else "")
        return (f"{count(n)} up to date under {out_dir}" + ("" if self.changes_written else ", nothing rewritten")
                + " (--force rewrites them)")


def export_tables(store: ResultStore, out: Path, *, force: bool = False) -> dict[str, list[Path]]:
    """Export the store's tables (``results``, ``photos``, ``detections``: CSV and Parquet) into ``out``,
    unless they were exported from the same content before (see the module) and are all there.

    Parameters
    ----------
    store : ResultStore
        The open store.
    out : Path
        Output folder (the manifest recording what was exported lives there too).
    force : bool
        Export even when the files are up to date.

    Returns
    -------
    dict of str to list of Path
        Per table, its CSV and Parquet file.
    """
    manifest = _read(out)
    key = _digest(version_text(), store.fingerprint())
    files = [out / f"{t}{s}" for t in TABLES for s in (".csv", ".parquet")]
    if force or manifest.get("tables") != key or not all(f.exists() for f in files):
        store.export(out)
        manifest["tables"] = key
        _write(out, manifest)
    return {t: [out / f"{t}.csv", out / f"{t}.parquet"] for t in TABLES}


def write_outputs(out_dir, *, paths=None, formats=("png",), include_flagged: bool = False, charts: bool = True,
                  reports: bool = True, progress: bool = True, busy_timeout: float = 30.0,
                  force: bool = False, timings: dict | None = None) -> Outputs:
    """Tables, charts and one HTML report per subject from the store in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        A folder written by :func:`skinscan.batch.run_batch`.
    paths : path or list, optional
        The photo folders, to read their ``sessions.csv`` treatment days afresh; default: the
        treatment days the store recorded when the photos were analysed.
    formats : tuple of str
        Chart formats among ``png``, ``svg``, ``pdf``.
    include_flagged : bool
        Keep photos that failed a blocking quality check in the trends.
    progress : bool
        Show a bar over the subjects whose outputs are written.
    busy_timeout : float
        Seconds to wait for another process writing the store.
    force : bool
        Rewrite everything, changed or not.
    timings : dict, optional
        Filled with seconds: ``tables`` (export), ``series`` (changes, recovery), and one entry per
        subject written (``subject:<name>``: its charts and report).

    Returns
    -------
    Outputs
        The files by kind, and which subjects' outputs were written now or are up to date.

    Notes
    -----
    Every subject with an analysed photo gets a report, also when quality checks leave all its
    photos out of the trends (the report's quality table then says why). Output files are named by
    :func:`~skinscan.discover.safe_name`, so no subject or session name can lead outside ``out_dir``.
    """
    import time

    clock = time.perf_counter
    timings = {} if timings is None else timings
    out = Path(out_dir)
    remove_stale_temporaries(out, recursive=True)  # left by a skinscan killed while writing
    with ResultStore(out / STORE_NAME, busy_timeout=busy_timeout) as store:
        t0 = clock()
        tables = export_tables(store, out, force=force)
        timings["tables"] = clock() - t0
        treatments = _treatments(store, paths)
        # Each kind of output has its own key: `skinscan report` (reports only) after `analyse` (both)
        # finds the reports up to date, and leaves the charts' key alone for the next `analyse`.
        kinds = {"charts": {"formats": sorted(formats)}} if charts else {}
        base = {s: _digest(version_text(), include_flagged, f, [d.isoformat() for d in treatments.get(s, [])])
                for s, f in store.fingerprint(per_subject=True).items() if s != UNSORTED_SUBJECT}
        manifest = _read(out)
        done = _entries(manifest)
        opts = {s: dict(kinds) for s in base}
        if reports:  # a report shows the canonical faces the analysis left: it follows them too
            for s in base:
                faces = sorted(p.name for p in (out / "canonical").glob(f"{safe_name(s)}__*"))
                opts[s]["reports"] = {"canonical": faces}
        todo = {s: [k for k, o in opts[s].items()
                    if force or done.get(s, {}).get(k, {}).get("key") != _digest(base[s], o)
                    or not all(Path(f).exists() for f in done.get(s, {}).get(k, {}).get("files", []))]
                for s in base}
        stale = sorted(s for s in base if todo[s])
        if reports and any(not o["reports"]["canonical"] for o in opts.values()):
            canonical = out / "canonical"
            notes = [f"no faces in {canonical}: the reports have no before/after images (copy canonical/ from "
                     "the output folder the photos were analysed into, or analyse them into a fresh --out)"]
        else:
            notes = []
        changes_key = _digest(manifest.get("tables"), include_flagged, sorted(base.items()))
        result = Outputs({"tables": [f for fs in tables.values() for f in fs], "changes": [out / "changes.csv"],
                          "charts": [], "reports": []}, written=stale, up_to_date=sorted(set(base) - set(stale)))
        result.notes += notes
        if not (stale or force) and manifest.get("changes") == changes_key and (out / "changes.csv").exists():
            for s in base:
                _collect(result, done, s, opts[s])
            return result
        values, photos = store.values_frame(), store.photos_frame()
    from .series import recovery_curve, recovery_time_hours, summarise

    t0 = clock()
    summary = summarise(values, photos, treatments=treatments, include_flagged=include_flagged)
    any_report = any("reports" in todo[s] for s in stale)
    curve = recovery_curve(values, photos, treatments, include_flagged=include_flagged) if any_report else None
    hours = recovery_time_hours(curve) if any_report else {}
    timings["series"] = clock() - t0
    if manifest.get("changes") != changes_key or not (out / "changes.csv").exists() or force:
        write_csv(summary, out / "changes.csv", what="table")
        result.changes_written = True
    for subject in Progress(stale, "reporting", enabled=progress and bool(stale)):
        t0 = clock()
        files = _subject_outputs(out, subject, summary, photos, treatments.get(subject, []), curve, hours,
                                 formats=formats, charts="charts" in todo[subject],
                                 reports="reports" in todo[subject])
        timings[f"subject:{subject}"] = clock() - t0
        result.new_files += files
        entry = done.setdefault(subject, {})
        for k in todo[subject]:
            entry[k] = {"key": _digest(base[subject], opts[subject][k]),
                        "files": [str(f) for f in files if _kind(f) == k]}
    for s in base:
        _collect(result, done, s, opts[s])
    manifest.update(subjects={s: done[s] for s in base if s in done}, changes=changes_key)
    _write(out, manifest)
    return result


def _subject_outputs(out: Path, subject: str, summary, photos, days, curve, hours, *, formats, charts: bool,
                     reports: bool) -> list[Path]:
    """Write one subject's trend charts and report; returns the files."""
    from . import charts as ch
    from . import report as rp

    slug, files = safe_name(subject), []
    if charts:
        sub_dir = out / "charts" / slug
        try:
            sub_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise output_error(e, sub_dir, "charts folder") from None
        for metric in sorted(summary.loc[summary["subject"] == subject, "metric"].unique()):
            # SVG and PNG are the report's own drawing (about 1 and 20 ms, no matplotlib, the same
            # chart as in the report); PDF, for print, is matplotlib's (about 0.1 s).
            if "svg" in formats:
                svg_text = trend_svg(summary, subject=subject, metric=metric, treatments=days, standalone=True)
                files.append(write_text(sub_dir / f"trend_{metric}.svg", svg_text, what="chart"))
            if "png" in formats:
                png = trend_png(summary, subject=subject, metric=metric, treatments=days)
                files.append(write_bytes(sub_dir / f"trend_{metric}.png", png, what="chart"))
            if "pdf" in formats:
                fig = ch.trend_chart(summary, subject=subject, metric=metric, treatments=days)
                files.append(ch.save_figure(fig, sub_dir / f"trend_{metric}.pdf"))
    if reports:
        html = rp.build_report(summary, photos, subject=subject, treatments=days,
                               recovery=curve[curve["subject"] == subject],
                               recovery_hours={(k[2], k[3]): v for k, v in hours.items() if k[0] == subject},
                               before_after=before_after(out, photos, summary, subject))
        files.append(rp.write_report(out / f"report_{slug}.html", html))
    return files


def _entries(manifest: dict) -> dict:
    """The manifest's subjects as ``{subject: {kind: {"key": str, "files": [str]}}}``, leaving out what
    is not of that shape (an older manifest's, or a damaged one's: those outputs are written again)."""
    subjects = manifest.get("subjects")
    out = {}
    for s, kinds in (subjects.items() if isinstance(subjects, dict) else ()):
        if isinstance(kinds, dict):
            out[s] = {k: v for k, v in kinds.items() if isinstance(v, dict) and isinstance(v.get("key"), str)
                      and isinstance(v.get("files"), list) and all(isinstance(f, str) for f in v["files"])}
    return out


def _kind(f) -> str:
    return "reports" if Path(f).name.startswith("report_") else "charts"


def _collect(result: dict, done: dict, subject: str, kinds) -> None:
    for k in kinds:
        result[k] += map(Path, done.get(subject, {}).get(k, {}).get("files", []))


def _treatments(store: ResultStore, paths) -> dict:
    """Each subject's treatment days: from the folders' ``sessions.csv`` when given, else as stored."""
    if paths is not None:
        disc = discover(paths)
        return {s: disc.treatment_dates(s) for s in disc.subjects}
    calendars = store.treatments_frame()
    return {subject: treatment_dates([SessionInfo(date=r.date, label=r.session, treatment=r.treatment)
                                      for r in rows.itertuples()])
            for subject, rows in calendars.groupby("subject")}


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _read(out: Path) -> dict:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(out: Path, manifest: dict) -> None:
    write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True), what="outputs manifest")


def before_after(out: Path, photos, summary, subject: str) -> dict | None:
    """Baseline and latest photo of a subject in the canonical frame, with redness and texture change
    maps, from the files the analysis left in ``canonical/`` (:func:`skinscan.worker.overlay_files`);
    None when the subject has a single session, or its photos' files are not there (analysed with no
    overlays).

    Parameters
    ----------
    out : Path
        The batch's output folder.
    photos : DataFrame
        The store's photos table (``subject``, ``session``, ``status``, ``photo``); the first
        analysed photo of the first and of the last session is shown.
    summary : DataFrame
        :func:`skinscan.series.summarise` output (its sessions and their order).
    subject : str
        Subject label.

    Returns
    -------
    dict or None
        Keyword arguments of :func:`skinscan.charts.before_after_figure`: ``baseline_rgb``,
        ``latest_rgb``, ``valid``, ``heatmaps`` (latest minus baseline: ``redness`` in a*,
        ``texture`` in relief a.u.; each only when both photos have its map) and ``titles``.
    """
    sessions = summary[summary["subject"] == subject].sort_values("session_index")["session"].unique()
    if len(sessions) < 2:
        return None
    ok = photos[(photos["subject"] == subject) & (photos["status"] == "analysed")]
    imgs, valid, maps = [], None, {"redness": [], "texture": []}
    for session in (sessions[0], sessions[-1]):
        rows = ok[ok["session"] == session]
        if rows.empty:
            return None
        stem = "__".join(safe_name(x) for x in (subject, session, Path(rows.iloc[0]["photo"]).stem))
        try:
            rgb = np.asarray(Image.open(out / "canonical" / f"{stem}.jpg").convert("RGB"))
            with np.load(out / "canonical" / f"{stem}.npz") as npz:
                shape = tuple(int(v) for v in npz["shape"])
                v = np.unpackbits(npz["valid"])[:shape[0] * shape[1]].reshape(shape).astype(bool)
                stored = {k: npz[k].astype(np.float32) for k in CANONICAL_MAPS if k in npz.files}
        except (OSError, KeyError, ValueError):
            return None
        imgs.append(rgb)
        valid = v if valid is None else valid & v
        for key, name in (("redness", "a_star"), ("texture", "texture")):
            if name in stored:
                maps[key].append(cv2.resize(stored[name], (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR))
    heat = {}
    for key, unit in (("redness", "Δ a*"), ("texture", "Δ relief (a.u.)")):
        if len(maps[key]) == 2:
            heat[key] = (np.where(valid, maps[key][1] - maps[key][0], np.nan).astype(np.float32), unit)
    return {"baseline_rgb": imgs[0], "latest_rgb": imgs[1], "valid": valid, "heatmaps": heat,
            "titles": (f"baseline ({sessions[0]})", f"latest ({sessions[-1]})")}
