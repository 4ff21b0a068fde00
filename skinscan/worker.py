"""The worker side of a batch: one photo analysed into an :class:`Outcome`, in whichever process runs it.

A :class:`Worker` holds what analysing a batch's photos needs (a landmarker, the subjects'
reference analyses, the output folder); the batch process, a pool worker and a Dask worker each
make one. Whatever becomes of a photo, analysed or skipped with its reason, is an :class:`Outcome`:
plain data that travels back to the batch process and is stored there.
"""

from __future__ import annotations

import io
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ._write import write_bytes
from .analysis import PhotoAnalysis, analyse_photo
from .discover import Discovery, PhotoEntry, safe_name
from .errors import CalibrationError, NoFaceError, OutputError, SkinscanError
from .outputs import CANONICAL_MAPS, CANONICAL_PX_PER_MM, MAPS_PX_PER_MM

__all__ = [
    "AnalyseFn",
    "Outcome",
    "Worker",
    "find_references",
    "internal_error_reason",
    "overlay_files",
    "single_threaded",
    "write_files",
]

#: What analyses one photo: :func:`skinscan.analysis.analyse_photo`, or a caller's wrapper of it
#: with the same signature (a test injecting a fault, a profiler).
AnalyseFn = Callable[..., PhotoAnalysis]

#: What to do, appended to the reasons of errors whose message says only what went wrong.
_ADVICE = {
    NoFaceError: "use a photo with the whole face in the frame, facing the camera, in even light",
    CalibrationError: "retake it facing the camera with the eyes open, without glasses, close enough",
}
_OUT_OF_MEMORY = "out of memory while analysing this photo; close other programs or use fewer --jobs"


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _reason(exc: SkinscanError) -> str:
    """The error's reason with what to do about it, on one line."""
    reason = _one_line(exc.reason)
    advice = next((a for kind, a in _ADVICE.items() if isinstance(exc, kind)), None)
    return f"{reason}; {advice}" if advice else reason


def internal_error_reason(exc: BaseException) -> str:
    """The one-line reason recorded for an exception skinscan did not expect.

    Parameters
    ----------
    exc : BaseException
        The exception.

    Returns
    -------
    str
        ``"internal error (<type>): <message on one line> — please report"``.
    """
    return f"internal error ({type(exc).__name__}): {_one_line(exc)} — please report"


@dataclass
class Outcome:
    """What became of one photo of a batch: everything the store keeps of it, as plain data.

    Built by :meth:`analysed`, :meth:`skipped` or :meth:`failed` only, in the process that
    analysed the photo or, when that process was lost, in the batch process.

    Attributes
    ----------
    entry : PhotoEntry
        The photo.
    content_hash : str
        SHA-256 of its bytes when the batch planned it.
    status : {"analysed", "skipped"}
        Whether it was analysed.
    error : str or None
        Why it was skipped, on one line, with what to do.
    retry : bool
        Skipped for a reason that is not the photo's (an internal error, memory, a lost worker):
        the next run analyses it again.
    fatal : str or None
        The output folder failed (a full disk): the batch stops with this message.
    record, metrics, quality, detections, se
        The analysis's :meth:`~skinscan.analysis.PhotoAnalysis.record`, metric values, quality
        checks (as dicts), detections and standard errors; None when skipped.
    flagged : bool
        A quality check failed (warnings included).
    files : dict of str to bytes
        Images still to write into the output folder, by path within it (a Dask worker's; a
        local worker writes its own and leaves this empty).
    """

    entry: PhotoEntry
    content_hash: str
    status: str
    error: str | None = None
    retry: bool = False
    fatal: str | None = None
    record: dict | None = None
    metrics: dict | None = None
    quality: list | None = None
    flagged: bool = False
    detections: dict | None = None
    se: dict | None = None
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def analysed(cls, entry: PhotoEntry, content_hash: str, a: PhotoAnalysis,
                 files: dict[str, bytes] | None = None) -> Outcome:
        """The outcome of a photo analysed into ``a``, with its images ``files`` still to write.

        Parameters
        ----------
        entry : PhotoEntry
            The photo.
        content_hash : str
            SHA-256 of its bytes.
        a : PhotoAnalysis
            Its analysis.
        files : dict of str to bytes, optional
            Images still to write, by path within the output folder.

        Returns
        -------
        Outcome
        """
        return cls(entry, content_hash, "analysed", record=a.record(), metrics=a.metrics,
                   quality=[q.as_dict() for q in a.quality], flagged=bool(a.failed_checks),
                   detections=a.detections, se=a.uncertainty, files=dict(files or {}))

    @classmethod
    def skipped(cls, entry: PhotoEntry, content_hash: str, reason: str, *, retry: bool = False,
                fatal: str | None = None) -> Outcome:
        """The outcome of a photo not analysed, with the one-line ``reason``.

        Parameters
        ----------
        entry : PhotoEntry
            The photo.
        content_hash : str
            SHA-256 of its bytes.
        reason : str
            Why it was not analysed, stored and shown.
        retry : bool
            The reason is not the photo's, so the next run analyses it again.
        fatal : str, optional
            The batch stops with this message (the output folder failed).

        Returns
        -------
        Outcome
        """
        return cls(entry, content_hash, "skipped", error=reason, retry=retry, fatal=fatal)

    @classmethod
    def failed(cls, entry: PhotoEntry, content_hash: str, exc: BaseException) -> Outcome:
        """The outcome of a photo whose analysis raised ``exc``.

        An expected failure (not a photo, no face...) says why and what to do; a failure of the
        output folder stops the batch; anything else is an internal error, retried by the next run.

        Parameters
        ----------
        entry : PhotoEntry
            The photo.
        content_hash : str
            SHA-256 of its bytes.
        exc : BaseException
            What the analysis raised.

        Returns
        -------
        Outcome
            Skipped, with its reason.
        """
        if isinstance(exc, OutputError):  # the output folder's failure, not the photo's
            return cls.skipped(entry, content_hash, _reason(exc), retry=True, fatal=str(exc))
        if isinstance(exc, SkinscanError):
            # An error about another file than the photo (a write) is not the photo's: try again next run.
            return cls.skipped(entry, content_hash, _reason(exc), retry=exc.path is not None and exc.path != entry.path)
        if isinstance(exc, MemoryError):
            return cls.skipped(entry, content_hash, _OUT_OF_MEMORY, retry=True)
        return cls.skipped(entry, content_hash, internal_error_reason(exc), retry=True)


def overlay_files(a: PhotoAnalysis, stem: str) -> dict[str, bytes]:
    """A photo's images for the output folder, by path within it.

    Parameters
    ----------
    a : PhotoAnalysis
        The photo's analysis, with the maps of :data:`skinscan.outputs.CANONICAL_MAPS` kept.
    stem : str
        The file name's stem.

    Returns
    -------
    dict of str to bytes
        Its region overlay (``regions/<stem>.jpg``), its face in the canonical frame
        (``canonical/<stem>.jpg``), and that frame's valid skin with the redness and texture maps
        (``canonical/<stem>.npz``), from which a report draws its before/after without analysing
        the photos again.
    """
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


def write_files(out_dir, files: dict[str, bytes]) -> None:
    """Write :func:`overlay_files` into ``out_dir``, each whole.

    Parameters
    ----------
    out_dir : path
        The output folder (its ``regions/`` and ``canonical/`` exist).
    files : dict of str to bytes
        Contents by path within ``out_dir``.

    Raises
    ------
    OutputError
        A file cannot be written (e.g. a full disk); it names the file, and no part of it is left.
    """
    for rel, data in files.items():
        write_bytes(Path(out_dir) / rel, data, what="image")


def single_threaded() -> int:
    """One OpenCV thread in this process; returns the previous count, for the caller to restore.

    A batch's parallelism is its worker processes, one photo each: OpenCV's own threads would
    only fight them for the cores (``--jobs N`` runs N single-threaded workers).
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return threads


def _slim_reference(a: PhotoAnalysis) -> PhotoAnalysis:
    """A reference analysis with only what alignment and the difference checks need (cheap to ship to workers)."""
    return PhotoAnalysis(a.path, a.content_hash, a.capture_time, a.image_shape, a.crop_box, a.rgb, a.face, a.scale,
                         {"face": a.masks["face"]}, {}, a.light, a.quality, gains=a.gains, light_source=a.light_source)


def find_references(disc: Discovery, hashes: dict, subjects, *, landmarker,
                    analyse: AnalyseFn = analyse_photo) -> dict[str, PhotoAnalysis]:
    """The reference analysis of each subject: the photo the others are aligned to and compared with.

    Parameters
    ----------
    disc : Discovery
        The batch's photos.
    hashes : dict
        Content hash of each photo path (None: the file could not be read).
    subjects : collection of str
        The subjects whose reference is needed.
    landmarker : FaceLandmarker
        The landmarker to analyse with.
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`).

    Returns
    -------
    dict of str to PhotoAnalysis
        By subject: its first photo (baseline session) that analyses and passes the blocking
        quality checks, else the first that analyses at all, slimmed to what alignment needs. A
        subject none of whose photos analyses has none.
    """
    refs: dict[str, PhotoAnalysis] = {}
    for subject in (s for s in disc.subjects if s in subjects):
        fallback = None
        for e in (x for x in disc.entries if x.subject == subject):
            if hashes.get(e.path) is None:
                continue
            try:
                a = analyse(e.path, landmarker=landmarker, metrics=False)
            except Exception:  # noqa: BLE001, S112 (recorded with its reason when the batch reaches it)
                continue
            if not a.excluded_by:
                refs[subject] = _slim_reference(a)
                break
            fallback = fallback or a
        if subject not in refs and fallback is not None:
            refs[subject] = _slim_reference(fallback)
    return refs


def _stem(entry: PhotoEntry) -> str:
    return "__".join(safe_name(x) for x in (entry.subject, entry.session, entry.path.stem))


class Worker:
    """Analyses a batch's photos one at a time: a landmarker, the references and the output folder.

    Parameters
    ----------
    references : dict or path
        The subjects' reference analyses (:func:`find_references`), or the path of a pickle of
        them that the worker reads when a photo first needs its reference, waiting for the file
        to appear (so that a pool can start, and load its landmarkers, while the references are
        still being found).
    out_dir : path
        The batch's output folder.
    overlays : bool
        Make each photo's images (:func:`overlay_files`).
    model_path : path, optional
        The face landmarker model, for the landmarker this worker makes.
    landmarker : FaceLandmarker, optional
        Use this landmarker (left open by :meth:`close`) instead of making one.
    analyse : callable
        What analyses a photo (:func:`~skinscan.analysis.analyse_photo`).
    return_files : bool
        Return the images in :attr:`Outcome.files` instead of writing them (a worker on another
        computer than the output folder's).
    """

    def __init__(self, references, *, out_dir, overlays: bool = True, model_path=None, landmarker=None,
                 analyse: AnalyseFn = analyse_photo, return_files: bool = False):
        from .landmarks import FaceLandmarker

        self._references = references
        self.out_dir = Path(out_dir)
        self.overlays = overlays
        self.return_files = return_files
        self._analyse = analyse
        self._own_landmarker = landmarker is None
        self.landmarker = FaceLandmarker(model_path) if landmarker is None else landmarker

    def references(self) -> dict[str, PhotoAnalysis]:
        """The subjects' references; from a pickle file, once it is there.

        The file is written whole, then renamed into place. A batch that fails before it appears
        terminates its workers, so the wait cannot outlive the batch.
        """
        refs = self._references
        if isinstance(refs, (str, os.PathLike)):
            while not os.path.exists(refs):
                time.sleep(0.01)
            with open(refs, "rb") as fh:
                refs = self._references = pickle.load(fh)
        return refs

    def find_references(self, disc: Discovery, hashes: dict, subjects) -> dict[str, PhotoAnalysis]:
        """:func:`find_references` with this worker's landmarker and analysis.

        Parameters
        ----------
        disc : Discovery
            The batch's photos.
        hashes : dict
            Content hash of each photo path (None: the file could not be read).
        subjects : collection of str
            The subjects whose reference is needed.

        Returns
        -------
        dict of str to PhotoAnalysis
            By subject (see :func:`find_references`).
        """
        return find_references(disc, hashes, subjects, landmarker=self.landmarker, analyse=self._analyse)

    def analyse(self, entry: PhotoEntry, content_hash: str) -> Outcome:
        """Analyse one photo; whatever goes wrong with it becomes its skipped :class:`Outcome`.

        Parameters
        ----------
        entry : PhotoEntry
            The photo.
        content_hash : str
            Its content hash, as planned.

        Returns
        -------
        Outcome
            Analysed, with its images written into the output folder (or in ``files`` with
            ``return_files``), or skipped with its reason (:meth:`Outcome.failed`).
        """
        try:
            # The reference is fetched after the metrics: a pool's first photos start while the
            # references are still being found.
            a = self._analyse(entry.path, reference=lambda: self.references().get(entry.subject),
                              landmarker=self.landmarker, keep_maps=CANONICAL_MAPS if self.overlays else False)
            files = overlay_files(a, _stem(entry)) if self.overlays else {}
            if not self.return_files:
                write_files(self.out_dir, files)
                files = {}
            return Outcome.analysed(entry, content_hash, a, files)
        except Exception as exc:  # noqa: BLE001 (a bug must cost one photo, not the batch)
            return Outcome.failed(entry, content_hash, exc)

    def close(self) -> None:
        """Close the landmarker this worker made and drop the references."""
        self._references = {}
        if self._own_landmarker:
            self.landmarker.close()
