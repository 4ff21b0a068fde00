"""One photo end to end: load, find the face, calibrate, regions, quality, canonical frame; returns a result record."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .align import Alignment, align_to_reference, canonical_fit_residual_mm, canonical_frame, warp_to_canonical
from .errors import FaceTooSmallError
from .geometry import Scale, estimate_scale
from .io import Photo, load_photo
from .landmarks import FaceLandmarker, FaceLandmarks, shared_landmarker
from .metrics import compute_metrics
from .quality import LightReference, QualityCheck, QualityThresholds, assess_quality, light_gains, light_reference
from .regions import REGION_NAMES, region_masks

__all__ = ["PIPELINE_VERSION", "PhotoAnalysis", "analyse_photo", "MIN_FACE_WIDTH_PX"]

#: Bumped whenever a change to the pipeline changes its numbers (stored results are then redone).
PIPELINE_VERSION = "0.1.0"
#: Faces narrower than this (eye-corner to eye-corner spans about a third of it) cannot be calibrated.
MIN_FACE_WIDTH_PX = 80


@dataclass
class PhotoAnalysis:
    """Everything skinscan knows about one photo.

    Image-sized data are kept for the face crop only (``crop_box`` in the original photo), so a
    12 MP photo's result stays small.

    Attributes
    ----------
    path : Path or None
    content_hash : str
        SHA-256 of the file (or of the pixels for an array input).
    capture_time : datetime or None
    image_shape : tuple of int
        (height, width) of the full, upright photo.
    crop_box : tuple of int
        (y0, y1, x0, x1) of the face crop in the full photo.
    rgb : ndarray, shape (h, w, 3), uint8
        The face crop.
    face : FaceLandmarks
        Landmarks in crop pixels.
    scale : Scale
    masks : dict of str to ndarray of bool
        Region masks in crop pixels, keyed by ``REGION_NAMES``.
    region_area_mm2 : dict of str to float
    light : LightReference
    quality : list of QualityCheck
    alignment : Alignment or None
        Similarity onto the reference photo's crop, when a reference was given.
    canonical_residual_mm : float
        RMS departure of the landmarks from the canonical face after a similarity fit.
    gains : ndarray, shape (3,)
        Linear per-channel gains that normalise the photo's light (see ``quality.light_gains``).
    light_source : str
        What the light was normalised on: ``"sclera"``, ``"background"`` or ``"none"``.
    metrics : dict
        ``{region: {metric: value}}`` (empty when analysed with ``metrics=False``).
    metric_notes : dict
        Why a metric family gave NaN (e.g. pores at too low a resolution).
    maps : dict
        Metric maps of the face crop (kept only with ``keep_maps=True``).
    """

    path: Path | None
    content_hash: str
    capture_time: datetime | None
    image_shape: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    rgb: np.ndarray
    face: FaceLandmarks
    scale: Scale
    masks: dict[str, np.ndarray]
    region_area_mm2: dict[str, float]
    light: LightReference
    quality: list[QualityCheck]
    alignment: Alignment | None = None
    canonical_residual_mm: float = float("nan")
    gains: np.ndarray = field(default_factory=lambda: np.ones(3))
    light_source: str = "none"
    metrics: dict = field(default_factory=dict)
    metric_notes: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        """Names of the quality checks this photo fails (warnings included)."""
        return [q.name for q in self.quality if not q.passed]

    @property
    def excluded_by(self) -> list[str]:
        """Failed blocking checks: the reasons to leave this photo out of trends."""
        return [q.name for q in self.quality if q.blocking and not q.passed]

    def canonical(self, px_per_mm: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """The face crop warped into the canonical frame: (rgb, valid mask)."""
        return warp_to_canonical(self.rgb, self.face, mm_per_px=self.scale.mm_per_px,
                                 frame=canonical_frame(px_per_mm))

    def record(self) -> dict:
        """A flat, CSV-ready summary of this photo (no arrays)."""
        rec = {
            "photo": str(self.path) if self.path else "",
            "content_hash": self.content_hash,
            "capture_time": self.capture_time.isoformat() if self.capture_time else "",
            "width": self.image_shape[1],
            "height": self.image_shape[0],
            "faces": self.face.n_faces,
            "mm_per_px": self.scale.mm_per_px,
            "px_per_mm": self.scale.px_per_mm,
            "ipd_mm": self.scale.ipd_mm,
            "ipd_agreement": self.scale.ipd_agreement,
            "yaw_deg": self.face.yaw_deg,
            "pitch_deg": self.face.pitch_deg,
            "roll_deg": self.face.roll_deg,
            "canonical_residual_mm": self.canonical_residual_mm,
            "alignment_residual_mm": self.alignment.residual_rms_mm if self.alignment else float("nan"),
            "light_source": self.light_source,
            "quality_flags": ";".join(self.failed_checks),
            "excluded_by": ";".join(self.excluded_by),
        }
        rec.update({f"area_mm2_{k}": v for k, v in self.region_area_mm2.items()})
        rec.update({f"q_{q.name}": q.value for q in self.quality})
        return rec


def _face_crop(face: FaceLandmarks, shape: tuple[int, int], *, mm_per_px: float,
               margin_mm: float = 30.0) -> tuple[int, int, int, int]:
    """The face's bounding box grown by a margin in mm (room for the forehead up to the hairline)."""
    x0, y0, x1, y1 = face.bbox
    m = margin_mm / mm_per_px
    return (max(int(y0 - 1.3 * m), 0), min(int(np.ceil(y1 + m)), shape[0]),
            max(int(x0 - m), 0), min(int(np.ceil(x1 + m)), shape[1]))


def analyse_photo(source: str | os.PathLike | Photo | np.ndarray, *,
                  reference: PhotoAnalysis | None = None,
                  landmarker: FaceLandmarker | None = None,
                  thresholds: QualityThresholds = QualityThresholds(),
                  metrics: bool = True, keep_maps: bool = False) -> PhotoAnalysis:
    """Analyse one photo: face, millimetre scale, skin regions, quality checks and alignment.

    Parameters
    ----------
    source : path, Photo or ndarray
        A photo file, an already loaded :class:`~skinscan.io.Photo`, or an RGB uint8 array.
    reference : PhotoAnalysis, optional
        The series' reference (usually the baseline photo): enables alignment and the
        difference checks (pose, expression, lighting).
    landmarker : FaceLandmarker, optional
        Defaults to the process-wide one.
    metrics : bool
        Compute the skin metrics for every region (after light normalisation).
    keep_maps : bool
        Keep the metric maps (heatmaps) in the result.

    Raises
    ------
    ImageLoadError, NoFaceError, FaceTooSmallError, CalibrationError
        The photo cannot be analysed; the error says why.

    Examples
    --------
    >>> import skinscan                                              # doctest: +SKIP
    >>> a = skinscan.analyse_photo("sample_images/astronaut/2026-01-05/photo_1.jpg")  # doctest: +SKIP
    >>> round(a.scale.px_per_mm, 1), a.failed_checks                 # doctest: +SKIP
    """
    if isinstance(source, np.ndarray):
        import hashlib

        rgb = np.ascontiguousarray(source)
        photo = Photo(rgb=rgb, path=None, capture_time=None, orientation=1, source_mode="RGB", format="array",
                      icc_converted=False, n_frames=1, exif_has_gps=False,
                      content_hash=hashlib.sha256(rgb.tobytes()).hexdigest())
    elif isinstance(source, Photo):
        photo = source
    else:
        photo = load_photo(source)
    lm = landmarker or shared_landmarker()
    face_full = lm.detect(photo.rgb)
    x0, _, x1, _ = face_full.bbox
    if x1 - x0 < MIN_FACE_WIDTH_PX:
        raise FaceTooSmallError(f"the face is {x1 - x0:.0f} px wide; at least {MIN_FACE_WIDTH_PX} px are needed "
                                "(take the photo closer)", photo.path)
    scale_full = estimate_scale(face_full)
    y0c, y1c, x0c, x1c = _face_crop(face_full, photo.rgb.shape[:2], mm_per_px=scale_full.mm_per_px)
    rgb = np.ascontiguousarray(photo.rgb[y0c:y1c, x0c:x1c])
    face = face_full.transformed(np.array([[1.0, 0, -x0c], [0, 1.0, -y0c]]), image_shape=rgb.shape[:2])
    scale = scale_full
    masks = region_masks(face, mm_per_px=scale.mm_per_px, rgb=rgb)
    area_px = {k: int(np.count_nonzero(masks[k])) for k in REGION_NAMES}
    region_area_mm2 = {k: v * scale.mm_per_px ** 2 for k, v in area_px.items()}
    light = light_reference(rgb, face)
    # Exposure is judged on all the skin the regions cover, before the skin mask drops glare.
    candidate = region_masks(face, mm_per_px=scale.mm_per_px, apply_skin_mask=False)["face"]
    quality = assess_quality(
        rgb, face, scale, masks["face"], exposure_mask=candidate, light=light,
        reference_face=reference.face if reference is not None else None,
        reference_light=reference.light if reference is not None else None,
        thresholds=thresholds,
    )
    gains, light_source = light_gains(light)
    values, extra = ({}, {"maps": {}, "notes": {}})
    if metrics:
        values, extra = compute_metrics(rgb, masks, mm_per_px=scale.mm_per_px, gains=gains)
    alignment = None
    if reference is not None:
        alignment = align_to_reference(face, reference.face, reference_mm_per_px=reference.scale.mm_per_px,
                                       image=rgb, reference_image=reference.rgb, reference_mask=reference.masks["face"])
    return PhotoAnalysis(
        path=photo.path,
        content_hash=photo.content_hash,
        capture_time=photo.capture_time,
        image_shape=photo.rgb.shape[:2],
        crop_box=(y0c, y1c, x0c, x1c),
        rgb=rgb,
        face=face,
        scale=scale,
        masks=masks,
        region_area_mm2=region_area_mm2,
        light=light,
        quality=quality,
        alignment=alignment,
        canonical_residual_mm=canonical_fit_residual_mm(face, mm_per_px=scale.mm_per_px),
        gains=gains,
        light_source=light_source,
        metrics=values,
        metric_notes=extra["notes"],
        maps=extra["maps"] if keep_maps else {},
    )
