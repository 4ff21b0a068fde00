"""One photo end to end: load, face, scale (mm), regions, light, quality, metrics, reference; a result record."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ._filters import shrink
from ._version import PIPELINE_VERSION
from .align import Alignment, align_to_reference, canonical_fit_residual_mm, canonical_frame, warp_to_canonical
from .errors import FaceTooSmallError, NoFaceError
from .geometry import Scale, estimate_scale
from .io import Photo, load_photo
from .landmarks import FaceLandmarker, FaceLandmarks, shared_landmarker
from .metrics import Measurements, compute_metrics
from .light import ABSOLUTE_COLOUR, LightChoice, LightReference, choose_light, light_reference
from .quality import QualityCheck, QualityThresholds, assess_quality, reference_checks
from .regions import REGION_NAMES, SKIN_PX_PER_MM, region_masks
from .uncertainty import measurement_se

__all__ = ["PIPELINE_VERSION", "PhotoAnalysis", "analyse_photo", "MIN_FACE_WIDTH_PX", "MAX_PX_PER_MM",
           "DETECTION_COLUMNS"]

#: A face photographed finer than this is reduced to it first. The pore detector was chosen on real
#: labelled pores at 13.3 px/mm; finer photos are analysed at about that resolution, so that a close-up
#: costs little more than a photo at arm's length (a 20 px/mm crop has 2.6 times the pixels of a
#: 12.4 px/mm one) and reads pores as they were validated. Every family's own floor is lower
#: (``Family.floor_px_per_mm`` in ``skinscan.metrics.registry``).
MAX_PX_PER_MM = 14.0
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
        (height, width) of the full photo as analysed: upright, and turned by ``rotation_deg``.
    crop_box : tuple of int
        (y0, y1, x0, x1) of the face crop in the full photo as analysed.
    rgb : ndarray, shape (h, w, 3), uint8
        The face crop.
    face : FaceLandmarks
        Landmarks in crop pixels.
    scale : Scale
        The scale of ``rgb`` (the working resolution; see ``photo_px_per_mm`` for the photo's own).
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
        Linear per-channel gains that normalise the photo's light (see :func:`skinscan.light.choose_light`).
    light_source : str
        What the light was normalised on: ``"chart"`` (a ColorChecker), ``"sclera"``,
        ``"background"`` or ``"none"`` (no reference trustworthy: the absolute colour metrics are
        NaN; see :mod:`skinscan.light`).
    metrics : dict
        ``{region: {metric: value}}`` (empty when analysed with ``metrics=False``).
    metric_notes : dict
        Why a metric family gave NaN (e.g. pores at too low a resolution).
    uncertainty : dict
        ``{region: {metric: standard error}}`` of this photo's own values, NaN where one photo
        cannot tell (see :mod:`skinscan.uncertainty`).
    maps : dict
        Metric maps of the face crop (kept only with ``keep_maps=True``), in ``rgb``'s pixels.
    photo_px_per_mm : float
        Resolution of the photo itself at the face, before any reduction to the working resolution.
    photo_to_crop : ndarray, shape (2, 3)
        Affine map from the photo's pixels (upright by its EXIF orientation) to ``rgb``'s: the
        turn of a sideways photo, the crop and any reduction.
    rotation_deg : int
        Clockwise turn skinscan gave the photo, upright by its EXIF orientation, to find the face:
        0, or 90, 180, 270 for a photo taken sideways with no orientation tag (see :func:`analyse_photo`).
    detections : dict of str to ndarray
        Every pore, scar, spot and line branch the metrics found (``pore_density`` counts the pores
        of 0.3 mm or more of them), as columns of equal length:
        ``kind`` (``pore``, ``scar``, ``spot``, ``line``), ``region`` (the named region holding the
        centre; ``face`` only where none does), ``x_px``, ``y_px`` (the centre in the photo's pixels,
        upright by its EXIF orientation, before any ``rotation_deg``), ``diameter_mm`` or
        ``length_mm`` (lines), and ``strength`` (the family's contrast). Empty with ``metrics=False``.
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
    uncertainty: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)
    photo_px_per_mm: float = float("nan")
    photo_to_crop: np.ndarray = field(default_factory=lambda: np.eye(2, 3))
    rotation_deg: int = 0
    light_reason: str = ""
    detections: dict = field(default_factory=lambda: _detection_columns([]))

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """(x, y) points in ``rgb``'s pixels mapped back to the photo's pixels.

        Parameters
        ----------
        points : array-like, shape (N, 2)
            (x, y) in ``rgb``'s pixels.

        Returns
        -------
        ndarray of float64, shape (N, 2)
            (x, y) in the photo's pixels, upright by its EXIF orientation (before ``rotation_deg``).
        """
        inv = cv2.invertAffineTransform(np.asarray(self.photo_to_crop, dtype=np.float64))
        return np.asarray(points, dtype=np.float64) @ inv[:, :2].T + inv[:, 2]

    @property
    def failed_checks(self) -> list[str]:
        """Names of the quality checks this photo fails (warnings included)."""
        return [q.name for q in self.quality if not q.passed]

    @property
    def excluded_by(self) -> list[str]:
        """Failed blocking checks: the reasons to leave this photo out of trends."""
        return [q.name for q in self.quality if q.blocking and not q.passed]

    def overlay(self, px_per_mm: float | None = 5.0) -> np.ndarray:
        """The face crop with its regions drawn (see :func:`skinscan.regions.draw_regions`).

        Parameters
        ----------
        px_per_mm : float or None
            Resolution of the drawing (reduced, never enlarged; None: the crop's own).

        Returns
        -------
        ndarray of uint8, shape (h, w, 3)
        """
        from .regions import draw_regions

        f = 1.0 if px_per_mm is None else min(1.0, px_per_mm * self.scale.mm_per_px)
        if f > 0.9:
            return draw_regions(self.rgb, self.masks)
        h, w = self.rgb.shape[:2]
        size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
        small = shrink(self.rgb, size)
        masks = {k: cv2.resize(m.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)
                 for k, m in self.masks.items()}
        return draw_regions(small, masks)

    def canonical(self, px_per_mm: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """The face crop warped into the canonical frame.

        Parameters
        ----------
        px_per_mm : float
            Resolution of the canonical frame.

        Returns
        -------
        rgb : ndarray of uint8, shape (H, W, 3)
        valid : ndarray of bool, shape (H, W)
            Where the frame holds the face.
        """
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
            "mm_per_px": 1.0 / self.photo_px_per_mm,
            "px_per_mm": self.photo_px_per_mm,
            "analysed_px_per_mm": self.scale.px_per_mm,
            "scale_source": self.scale.source,
            "ipd_mm": self.scale.ipd_mm,
            "ipd_agreement": self.scale.ipd_agreement,
            "yaw_deg": self.face.yaw_deg,
            "pitch_deg": self.face.pitch_deg,
            "roll_deg": self.face.roll_deg,
            "canonical_residual_mm": self.canonical_residual_mm,
            "alignment_residual_mm": self.alignment.residual_rms_mm if self.alignment else float("nan"),
            "light_source": self.light_source,
            "light_note": self.light_reason,
            "rotation_deg": self.rotation_deg,
            "quality_flags": ";".join(self.failed_checks),
            "excluded_by": ";".join(self.excluded_by),
        }
        rec.update({f"area_mm2_{k}": v for k, v in self.region_area_mm2.items()})
        rec.update({f"q_{q.name}": q.value for q in self.quality})
        return rec


def _face_crop(face: FaceLandmarks, shape: tuple[int, int], *, mm_per_px: float,
               margin_mm: float = 20.0) -> tuple[int, int, int, int]:
    """The face's bounding box grown by a margin in mm (room for the forehead up to the hairline)."""
    x0, y0, x1, y1 = face.bbox
    m = margin_mm / mm_per_px
    return (max(int(y0 - 1.3 * m), 0), min(int(np.ceil(y1 + m)), shape[0]),
            max(int(x0 - m), 0), min(int(np.ceil(x1 + m)), shape[1]))


def analyse_photo(source: str | os.PathLike | Photo | np.ndarray, *,
                  reference: PhotoAnalysis | Callable[[], PhotoAnalysis | None] | None = None,
                  landmarker: FaceLandmarker | None = None,
                  thresholds: QualityThresholds = QualityThresholds(),
                  metrics: bool = True, keep_maps: bool | tuple = False,
                  max_px_per_mm: float | None = MAX_PX_PER_MM, full_resolution: bool = False,
                  families=None, timings: dict | None = None) -> PhotoAnalysis:
    """Analyse one photo: face, millimetre scale, skin regions, quality checks and alignment.

    Parameters
    ----------
    source : path, Photo or ndarray
        A photo file, an already loaded :class:`~skinscan.io.Photo`, or an RGB uint8 array.
    reference : PhotoAnalysis, or a function returning one (or None), optional
        The series' reference (usually the baseline photo): enables alignment and the
        difference checks (pose, expression, lighting). A function is called once, after the
        metrics, when the reference is first needed: a batch starts its photos while it is still
        analysing the references.
    landmarker : FaceLandmarker, optional
        Defaults to the process-wide one.
    metrics : bool
        Compute the skin metrics for every region (after light normalisation).
    keep_maps : bool or tuple of str
        Keep the metric maps (heatmaps) in the result, in the crop's pixels: all, or those named
        (e.g. ``("a_star", "texture")``; each map of a 12 MP photo's crop is tens of MB).
    families : iterable of str, optional
        Only these metric families (see ``skinscan.metrics.FAMILIES``); default all.
    max_px_per_mm : float or None
        A face crop finer than this is reduced to it before regions, quality and metrics.
        None: never reduce.
    full_resolution : bool
        Compute every metric at the crop's resolution, without the coarser working resolutions
        of colour, pigment, scars and lines (slow; for checking that those working resolutions do
        not change the values). The skin mask is the same in both: skin colour is classified on
        0.2 mm pixels (:data:`~skinscan.regions.SKIN_PX_PER_MM`), where the noise of single pixels
        has averaged out, with thin dark hairs and clipped pixels tested again at the crop's own
        resolution (see :func:`~skinscan.regions.skin_mask`).
    timings : dict, optional
        Filled with the seconds spent in each stage (decode, landmarks, calibration, regions,
        quality, alignment, and one entry per metric family).

    Returns
    -------
    PhotoAnalysis

    Raises
    ------
    ImageLoadError, NoFaceError, FaceTooSmallError, CalibrationError
        The photo cannot be analysed; the error says why.

    Notes
    -----
    A photo in which no face is found upright, or only one lying on its side, is searched again
    turned by 90°, 270° and 180° (a phone held sideways whose photo lost its orientation tag, or a
    scan); the turn showing the most upright face is analysed, ``rotation_deg`` says which, and the
    warning check ``rotation`` flags it.

    Examples
    --------
    >>> import skinscan
    >>> a = skinscan.analyse_photo("sample_images/astronaut/2026-01-05/IMG_20260105_100412.jpg")
    >>> round(a.scale.px_per_mm, 1), a.failed_checks     # a smile: expressions move skin
    (12.3, ['expression'])
    >>> round(a.metrics["face"]["pore_density"])          # pores of 0.3 mm or more per cm²
    41
    """
    clock = _Clock(timings)
    with clock("decode"):
        photo = _as_photo(source)
    lm = landmarker or shared_landmarker()
    with clock("landmarks"):
        upright_shape = photo.rgb.shape[:2]
        photo, face_full, rotation_deg = _find_face(photo, lm)
    with clock("calibration"):
        crop = _calibrated_crop(photo, face_full, max_px_per_mm)
    with clock("regions"):
        # Exposure is judged on all the skin the regions cover, before the skin mask drops glare.
        # Skin colour is classified on 0.2 mm pixels at every resolution: classified on the crop's
        # own pixels, noise scatters the shaded rim of the face in and out of the mask (2.7% of
        # the mask on the benchmark photo, moving the erythema index by 2.8%).
        masks, candidate = region_masks(crop.face, mm_per_px=crop.scale.mm_per_px, rgb=crop.rgb,
                                        return_candidate=True, skin_px_per_mm=SKIN_PX_PER_MM)
        region_area_mm2 = {k: int(np.count_nonzero(masks[k])) * crop.scale.mm_per_px ** 2 for k in REGION_NAMES}
    with clock("quality"):  # the light references are timed with the checks that read them
        light, choice = _light(photo, face_full, crop, masks["face"])
        quality = _own_checks(crop, masks["face"], candidate, light, thresholds, rotation_deg)
    measured = _measure(crop.rgb, masks, crop.scale, choice, metrics=metrics, keep_maps=keep_maps,
                        full_resolution=full_resolution, families=families, timings=timings)
    with clock("alignment"):
        reference = reference() if callable(reference) else reference
        quality += _reference_checks(crop, light, reference, thresholds)
        alignment = _alignment(crop, reference)
        residual = canonical_fit_residual_mm(crop.face, mm_per_px=crop.scale.mm_per_px)
    photo_to_crop = crop.to_crop @ np.vstack([_turn(rotation_deg, upright_shape), [0, 0, 1]])
    detections = _in_photo(measured.detections, masks, photo_to_crop)
    return PhotoAnalysis(
        path=photo.path, content_hash=photo.content_hash, capture_time=photo.capture_time,
        image_shape=photo.rgb.shape[:2], crop_box=crop.box, rgb=crop.rgb, face=crop.face, scale=crop.scale,
        masks=masks, region_area_mm2=region_area_mm2, light=light, quality=quality, alignment=alignment,
        canonical_residual_mm=residual, gains=choice.gains, light_source=choice.source, metrics=measured.values,
        metric_notes=measured.notes,
        uncertainty=measurement_se(measured.values, detections, region_area_mm2, colour_se=choice.colour_se),
        light_reason=choice.reason, maps=measured.maps if keep_maps else {}, photo_px_per_mm=crop.photo_px_per_mm,
        photo_to_crop=photo_to_crop, rotation_deg=rotation_deg, detections=detections,
    )


def _as_photo(source: str | os.PathLike | Photo | np.ndarray) -> Photo:
    """A photo file loaded, a :class:`~skinscan.io.Photo` as it is, an RGB array as a photo without a file."""
    if isinstance(source, Photo):
        return source
    if not isinstance(source, np.ndarray):
        return load_photo(source)
    rgb = np.ascontiguousarray(source)
    return Photo(rgb=rgb, path=None, capture_time=None, orientation=1, source_mode="RGB", format="array",
                 icc_converted=False, n_frames=1, exif_has_gps=False,
                 content_hash=hashlib.sha256(rgb.tobytes()).hexdigest())


@dataclass(frozen=True)
class _Crop:
    """The face crop the analysis works on, at its working resolution."""

    rgb: np.ndarray  # (h, w, 3) uint8
    face: FaceLandmarks  # in rgb's pixels
    scale: Scale  # of rgb
    photo_px_per_mm: float  # the photo's own resolution at the face
    box: tuple[int, int, int, int]  # (y0, y1, x0, x1) in the photo as analysed
    to_crop: np.ndarray  # (2, 3): the photo's pixels to rgb's


def _calibrated_crop(photo: Photo, face_full: FaceLandmarks, max_px_per_mm: float | None) -> _Crop:
    """The face's millimetre scale, and the face cropped with a margin and reduced to ``max_px_per_mm``."""
    x0, _, x1, _ = face_full.bbox
    if x1 - x0 < MIN_FACE_WIDTH_PX:
        raise FaceTooSmallError(f"the face is {x1 - x0:.0f} px wide; at least {MIN_FACE_WIDTH_PX} px are needed "
                                "(take the photo closer)", photo.path)
    scale_full = estimate_scale(face_full)
    y0c, y1c, x0c, x1c = _face_crop(face_full, photo.rgb.shape[:2], mm_per_px=scale_full.mm_per_px)
    rgb = photo.rgb[y0c:y1c, x0c:x1c]
    to_crop = np.array([[1.0, 0, -x0c], [0, 1.0, -y0c]])
    f = 1.0 if max_px_per_mm is None else max_px_per_mm * scale_full.mm_per_px
    if f < 0.999:
        rgb, to_crop, scale = _reduce(rgb, to_crop, scale_full, max_px_per_mm)
    else:
        rgb, scale = np.ascontiguousarray(rgb), scale_full
    face = face_full.transformed(to_crop, image_shape=rgb.shape[:2])
    return _Crop(rgb, face, scale, scale_full.px_per_mm, (y0c, y1c, x0c, x1c), to_crop)


def _light(photo: Photo, face_full: FaceLandmarks, crop: _Crop, skin: np.ndarray) -> tuple[LightReference, LightChoice]:
    """The photo's light references and the normalisation chosen for its skin's colour.

    A chart and the background lie outside the face crop: they are read in the whole photo; the
    sclera in the crop, at the working resolution.
    """
    light = light_reference(photo.rgb, face_full, sclera_in=(crop.rgb, crop.face))
    return light, choose_light(light, _skin_colour(crop.rgb, skin))


def _own_checks(crop: _Crop, skin: np.ndarray, candidate: np.ndarray, light: LightReference,
                thresholds: QualityThresholds, rotation_deg: int) -> list[QualityCheck]:
    """The photo's own quality checks (not against a reference), and a warning for a photo turned to find its face."""
    quality = assess_quality(crop.rgb, crop.face, crop.scale, skin, exposure_mask=candidate, light=light,
                             thresholds=thresholds, photo_px_per_mm=crop.photo_px_per_mm)
    if rotation_deg:
        quality.append(QualityCheck(
            "rotation", float(rotation_deg), 0.0, "<=", "deg", False,
            f"no face upright: analysed turned {rotation_deg} deg clockwise (a sideways photo without an "
            "orientation tag)", blocking=False))
    return quality


def _measure(rgb: np.ndarray, masks: dict[str, np.ndarray], scale: Scale, choice: LightChoice, *, metrics: bool,
             keep_maps: bool | tuple, full_resolution: bool, families, timings: dict | None) -> Measurements:
    """The metrics of every region (nothing with ``metrics=False``), the absolute colour NaN when no
    light reference was trusted."""
    measured = Measurements()
    if metrics:
        gains = choice.gains
        measured = compute_metrics(rgb, masks, mm_per_px=scale.mm_per_px, gains=gains, timings=timings,
                                   maps_shape=rgb.shape[:2] if keep_maps else None,
                                   keep_maps=None if keep_maps is True or not keep_maps else tuple(keep_maps),
                                   full_resolution=full_resolution, families=families)
        if not choice.trusted:  # no absolute colour from a light nobody knows
            for region in measured.values.values():
                region.update({k: float("nan") for k in ABSOLUTE_COLOUR if k in region})
            measured.notes["colour"] = (f"a*, erythema index and ITA not measured: {choice.reason}; put a colour "
                                        "chart in the frame or keep the eyes open")
    return measured


def _reference_checks(crop: _Crop, light: LightReference, reference: PhotoAnalysis | None,
                      thresholds: QualityThresholds) -> list[QualityCheck]:
    """The checks against the series' reference photo (none without one)."""
    if reference is None:
        return []
    return reference_checks(crop.rgb, crop.face, light, reference_face=reference.face,
                            reference_light=reference.light, thresholds=thresholds)


def _alignment(crop: _Crop, reference: PhotoAnalysis | None) -> Alignment | None:
    """The similarity taking the crop onto the reference photo's crop (None without a reference)."""
    if reference is None:
        return None
    return align_to_reference(crop.face, reference.face, reference_mm_per_px=reference.scale.mm_per_px,
                              image=crop.rgb, reference_image=reference.rgb, reference_mask=reference.masks["face"])


#: Columns of :attr:`PhotoAnalysis.detections`, in order.
DETECTION_COLUMNS = ("kind", "region", "x_px", "y_px", "diameter_mm", "length_mm", "strength")


def _detection_columns(parts: list[dict]) -> dict[str, np.ndarray]:
    if not parts:
        return {k: np.zeros(0, object if k in ("kind", "region") else np.float64) for k in DETECTION_COLUMNS}
    return {k: np.concatenate([p[k] for p in parts]) for k in DETECTION_COLUMNS}


def _in_photo(found: dict, masks: dict[str, np.ndarray], photo_to_crop: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics' detections (in the crop's pixels) with their region, and centres in the photo's pixels."""
    named = [k for k in REGION_NAMES if k != "face"]
    inv = cv2.invertAffineTransform(np.asarray(photo_to_crop, dtype=np.float64))
    parts = []
    for kind, cols in found.items():
        x, y = cols["x"], cols["y"]
        h, w = masks["face"].shape
        yi, xi = np.clip(np.rint(y).astype(int), 0, h - 1), np.clip(np.rint(x).astype(int), 0, w - 1)
        region = np.full(x.shape, "face", dtype=object)
        for name in named:
            region[masks[name][yi, xi]] = name
        parts.append({"kind": np.full(x.shape, kind, dtype=object), "region": region,
                      "x_px": inv[0, 0] * x + inv[0, 1] * y + inv[0, 2], "y_px": inv[1, 0] * x + inv[1, 1] * y + inv[1, 2],
                      "diameter_mm": cols["diameter_mm"], "length_mm": cols["length_mm"], "strength": cols["strength"]})
    return _detection_columns(parts)


#: Clockwise turns tried when no face is found upright, with OpenCV's code for each.
_TURNS = ((90, cv2.ROTATE_90_CLOCKWISE), (270, cv2.ROTATE_90_COUNTERCLOCKWISE), (180, cv2.ROTATE_180))
#: A face found rolled by more than this is tried turned too: MediaPipe finds a face lying on its side
#: (70 deg of roll on the sample photo turned a quarter) with landmarks too poor to calibrate.
_MAX_ROLL_DEG = 45.0


def _find_face(photo: Photo, lm: FaceLandmarker) -> tuple[Photo, FaceLandmarks, int]:
    """The face, in the photo as it is or turned (see :func:`analyse_photo`): ``(photo, face, turn)``.

    When the photo shows no face, or one rolled past :data:`_MAX_ROLL_DEG`, each quarter turn is
    tried and the one whose face is the most upright (least roll) is kept.
    """
    try:
        face = lm.detect(photo.rgb)
    except NoFaceError as e:
        face, upright = None, e
    if face is not None and abs(face.roll_deg) <= _MAX_ROLL_DEG:
        return photo, face, 0
    best = (abs(face.roll_deg), photo, face, 0) if face is not None else None
    for degrees, code in _TURNS:
        turned = np.ascontiguousarray(cv2.rotate(photo.rgb, code))
        try:
            found = lm.detect(turned)
        except NoFaceError:
            continue
        if best is None or abs(found.roll_deg) < best[0]:
            best = (abs(found.roll_deg), dataclasses.replace(photo, rgb=turned), found, degrees)
    if best is None:
        raise upright
    return best[1], best[2], best[3]


def _turn(degrees: int, shape: tuple[int, int]) -> np.ndarray:
    """The 2x3 map from a (h, w) image's pixels to those of the same image turned ``degrees`` clockwise."""
    h, w = shape
    if degrees == 90:
        return np.array([[0.0, -1.0, h - 1.0], [1.0, 0.0, 0.0]])
    if degrees == 270:
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0]])
    if degrees == 180:
        return np.array([[-1.0, 0.0, w - 1.0], [0.0, -1.0, h - 1.0]])
    return np.eye(2, 3)


def _skin_colour(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """The face's median colour in linear RGB, from a grid of about 20,000 of its pixels."""
    from .color import srgb_to_linear

    step = max(int(np.sqrt(max(np.count_nonzero(skin), 1) / 20_000)), 1)
    px = rgb[::step, ::step][skin[::step, ::step]]
    return np.median(srgb_to_linear(px), axis=0) if len(px) else np.full(3, 0.3)


class _Clock:
    """Adds the wall time of each ``with clock(stage):`` block to ``timings[stage]`` (if given)."""

    def __init__(self, timings: dict | None):
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str):
        if self.timings is None:
            yield
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0


def _reduce(rgb: np.ndarray, to_crop: np.ndarray, scale: Scale, px_per_mm: float):
    """The face crop reduced to ``px_per_mm`` (area averaging), the photo-to-result map, and the new scale."""
    h, w = rgb.shape[:2]
    f = px_per_mm * scale.mm_per_px
    size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
    # A Gaussian as wide as the new pixel's footprint, then bilinear: the anti-aliasing of area
    # averaging at a quarter of its cost for the mild reductions of phone photos.
    sigma = 0.5 * np.sqrt(max(1.0 / f ** 2 - 1.0, 0.0))
    src = cv2.GaussianBlur(rgb, (0, 0), sigma) if sigma >= 0.3 else rgb
    small = cv2.resize(src, size, interpolation=cv2.INTER_LINEAR)
    fx, fy = size[0] / w, size[1] / h
    # cv2.resize maps pixel centres: x' = (x + 0.5) * fx - 0.5.
    m = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5]]) @ np.vstack([to_crop, [0, 0, 1]])
    scaled = dataclasses.replace(scale, mm_per_px=1.0 / px_per_mm,
                                 iris_diameter_px=tuple(float(d) * fx for d in scale.iris_diameter_px),
                                 ipd_px=scale.ipd_px * fx)
    return small, m, scaled
