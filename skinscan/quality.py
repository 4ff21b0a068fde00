"""Named photo-quality checks, each with its value, threshold and verdict.

The checks read the photo, its landmarks and scale, and the light references of :mod:`skinscan.light`
(to compare a photo's light with its series' reference photo); they change nothing they read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ._filters import blur, mask_box, wide_blur
from .color import luminance
from .geometry import Scale
from .landmark_ids import FACE_OVAL
from .landmarks import FaceLandmarks
from .light import (
    SCLERA_TARGET,
    ColorChecker,
    LightReference,
    detect_colorchecker,
    light_reference,
    sclera_mask,
)
from .metrics.registry import family

# The light references have a room of their own (skinscan.light) and the landmark ids theirs
# (skinscan.landmark_ids); their names stay importable from here for code and notebooks that
# import them from skinscan.quality.
__all__ = [
    "FACE_OVAL",
    "SCLERA_TARGET",
    "ColorChecker",
    "LightReference",
    "QualityCheck",
    "QualityThresholds",
    "assess_quality",
    "detect_colorchecker",
    "light_reference",
    "reference_checks",
    "sclera_mask",
    "sharpness",
]

# Blendshapes that change the skin's shape (folds, stretched lines); gaze direction does not.
_SKIN_EXPRESSIONS = ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
                     "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
                     "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawOpen",
                     "mouthFrownLeft", "mouthFrownRight", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
                     "mouthStretchLeft", "mouthStretchRight", "noseSneerLeft", "noseSneerRight")


@dataclass(frozen=True)
class QualityCheck:
    """One named check: ``passed`` is ``value <= threshold`` or ``value >= threshold`` as ``comparison`` says.

    A check that cannot be computed (no reference photo, no sclera visible) has ``value`` NaN and
    ``passed`` True: absence of evidence is reported in ``detail``, not counted as a failure.
    ``blocking`` checks make a failed photo unfit for trends (blur, clipping, pose, expression
    change); the others are warnings whose effect is handled elsewhere (low resolution makes the
    pore metrics NaN; a colour cast is normalised on a ColorChecker or the sclera).
    """

    name: str
    value: float
    threshold: float
    comparison: str
    unit: str
    passed: bool
    detail: str = ""
    blocking: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the quality checks (defaults chosen for the pore band, 0.1–0.5 mm)."""

    min_px_per_mm: float = family("pores").floor_px_per_mm  # below the pores' resolution floor, no pores
    min_sharpness: float = 0.45  # sharp samples 0.73-0.77; a Gaussian blur of sigma 0.1 mm gives 0.46-0.49
    max_clipped_pct: float = 15.0  # the skin mask drops clipped pixels; beyond this too much skin is lost
    max_dark_pct: float = 2.0
    max_abs_yaw_deg: float = 15.0
    max_abs_pitch_deg: float = 15.0
    max_pose_difference_deg: float = 8.0
    max_expression: float = 0.5
    max_expression_difference: float = 0.3
    max_white_balance_mismatch_pct: float = 6.0
    max_exposure_mismatch_ev: float = 0.5
    max_faces: int = 1


def sharpness(gray: np.ndarray, mask: np.ndarray, *, mm_per_px: float) -> float:
    """Fine-to-coarse detail ratio on skin: band energy at one octave over band energy two octaves lower.

    The fine octave starts at 0.1 mm, or at 0.7 px when the photo does not resolve 0.1 mm; the
    coarse octave starts four times wider. Computed on log luminance (so independent of
    exposure). Defocus and motion blur remove the fine band first, so the ratio falls with blur.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Linear luminance.
    mask : ndarray of bool, shape (H, W)
        The skin.
    mm_per_px : float
        The scale.

    Returns
    -------
    float
        The ratio of the two bands' RMS (sharp samples 0.73-0.77); NaN on under 100 skin pixels.
    """
    g = cv2.log(np.asarray(gray, dtype=np.float32) + np.float32(1e-3))
    s0 = max(0.1 / mm_per_px, 0.7)  # sigma in px
    b1 = blur(g, s0) - blur(g, 2 * s0)
    b2 = wide_blur(g, 4 * s0, px_per_sigma=2.0) - wide_blur(g, 8 * s0, px_per_sigma=2.0)
    m = mask.astype(bool)
    if m.sum() < 100:
        return float("nan")
    e2 = float(np.mean(b2[m] ** 2))
    return float(np.sqrt(np.mean(b1[m] ** 2) / e2)) if e2 > 0 else float("nan")


_WARNINGS = {"resolution", "face_count", "expression", "white_balance_mismatch", "exposure_mismatch",
             "background_white_balance_mismatch"}


def _check(name, value, threshold, comparison, unit, detail="") -> QualityCheck:
    value = float(value)
    blocking = name not in _WARNINGS
    if not np.isfinite(value):
        return QualityCheck(name, value, float(threshold), comparison, unit, True, detail or "not measurable", blocking)
    ok = value <= threshold if comparison == "<=" else value >= threshold
    return QualityCheck(name, value, float(threshold), comparison, unit, bool(ok), detail, blocking)


def _crop_box(face: FaceLandmarks, shape: tuple[int, int], pad: float = 0.15) -> tuple[slice, slice]:
    x0, y0, x1, y1 = face.bbox
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    return (slice(max(int(y0 - py), 0), min(int(y1 + py) + 1, shape[0])),
            slice(max(int(x0 - px), 0), min(int(x1 + px) + 1, shape[1])))


def assess_quality(rgb: np.ndarray, face: FaceLandmarks, scale: Scale, skin: np.ndarray, *,
                   exposure_mask: np.ndarray | None = None,
                   light: LightReference | None = None,
                   reference_face: FaceLandmarks | None = None,
                   reference_light: LightReference | None = None,
                   thresholds: QualityThresholds = QualityThresholds(),
                   photo_px_per_mm: float | None = None) -> list[QualityCheck]:
    """Run every quality check on one photo.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    face : FaceLandmarks
    scale : Scale
    skin : ndarray of bool, shape (H, W)
        The skin being measured (for blur, and for exposure unless ``exposure_mask`` is given).
    exposure_mask : ndarray of bool, optional
        Where to count clipped and dark pixels: the skin before glare and shadow were dropped from
        it (a skin mask that removed the clipped pixels would hide them).
    light : LightReference, optional
        This photo's light references (computed when omitted).
    reference_face, reference_light : optional
        The series' reference photo, for the pose, expression and lighting difference checks.
    photo_px_per_mm : float, optional
        The photo's own resolution at the face, when ``rgb`` was reduced to a working resolution
        (the resolution check is about the photo; default ``scale.px_per_mm``).

    Returns
    -------
    list of QualityCheck
        resolution, sharpness, clipped_highlights, dark_pixels, head_yaw, head_pitch, face_count,
        expression, and with a reference: pose_difference, expression_difference,
        white_balance_mismatch, exposure_mismatch (both on a ColorChecker when both photos have
        one, else on the sclera), background_white_balance_mismatch.
    """
    t = thresholds
    res_px_per_mm = scale.px_per_mm if photo_px_per_mm is None else float(photo_px_per_mm)
    box = _crop_box(face, rgb.shape[:2])
    crop, skin_c = rgb[box], skin[box]
    expo_c = skin_c if exposure_mask is None else exposure_mask[box]
    n_skin = max(int(expo_c.sum()), 1)
    top = cv2.max(cv2.max(crop[..., 0], crop[..., 1]), crop[..., 2]) if crop.dtype == np.uint8 else crop.max(axis=2)
    clipped = 100.0 * np.count_nonzero((top >= 250) & expo_c) / n_skin
    dark = 100.0 * np.count_nonzero((top <= 10) & expo_c) / n_skin
    # Sharpness where the skin is: the bounding box of the skin mask (plus the filters' reach).
    sb = mask_box(skin_c, int(np.ceil(3 * 8 * max(0.1 / scale.mm_per_px, 0.7))))
    sharp = float("nan") if sb is None else sharpness(luminance(crop[sb]), skin_c[sb], mm_per_px=scale.mm_per_px)
    shapes = face.blendshapes
    expr_name, expr = max(((k, shapes.get(k, 0.0)) for k in _SKIN_EXPRESSIONS), key=lambda kv: kv[1])
    checks = [
        _check("resolution", res_px_per_mm, t.min_px_per_mm, ">=", "px/mm",
               "enough for pores" if res_px_per_mm >= t.min_px_per_mm else
               "too coarse for pores; move closer or use the rear camera"),
        _check("sharpness", sharp, t.min_sharpness, ">=", "ratio", "fine/coarse skin detail (low = blurred)"),
        _check("clipped_highlights", clipped, t.max_clipped_pct, "<=", "% of skin", "skin pixels at 250+"),
        _check("dark_pixels", dark, t.max_dark_pct, "<=", "% of skin", "skin pixels at 10 or below"),
        _check("head_yaw", abs(face.yaw_deg), t.max_abs_yaw_deg, "<=", "deg", f"yaw {face.yaw_deg:+.1f}"),
        _check("head_pitch", abs(face.pitch_deg), t.max_abs_pitch_deg, "<=", "deg", f"pitch {face.pitch_deg:+.1f}"),
        _check("face_count", face.n_faces, t.max_faces, "<=", "faces",
               "the largest face was analysed" if face.n_faces > 1 else ""),
        _check("expression", expr, t.max_expression, "<=", "blendshape", expr_name),
        QualityCheck("scale_source", float(scale.source != "iris"), 0.0, "<=", "", scale.source == "iris",
                     "millimetres from the iris (11.7 mm across)" if scale.source == "iris" else
                     f"millimetres from the outer eye corners (89.5 mm apart, +-{scale.uncertainty_pct:.0f}%): "
                     f"{scale.reason}", blocking=False),
    ]
    if reference_face is not None or reference_light is not None:
        checks += reference_checks(rgb, face, light, reference_face=reference_face, reference_light=reference_light,
                                   thresholds=t)
    return checks


def reference_checks(rgb: np.ndarray, face: FaceLandmarks, light: LightReference | None, *,
                     reference_face: FaceLandmarks | None = None, reference_light: LightReference | None = None,
                     thresholds: QualityThresholds = QualityThresholds()) -> list[QualityCheck]:
    """The checks of one photo against the series' reference photo (see :func:`assess_quality`):
    pose_difference and expression_difference with ``reference_face``; white_balance_mismatch,
    exposure_mismatch and background_white_balance_mismatch with ``reference_light``.

    Separate from the photo's own checks so that a batch can run those (and the metrics) while
    the reference is still being analysed.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        The photo (read only to find its light references when ``light`` is None).
    face : FaceLandmarks
    light : LightReference or None
        The photo's light references.
    reference_face, reference_light : optional
        The reference photo's.
    thresholds : QualityThresholds

    Returns
    -------
    list of QualityCheck
    """
    t = thresholds
    checks: list[QualityCheck] = []
    shapes = face.blendshapes
    if reference_face is not None:
        dpose = max(abs(face.yaw_deg - reference_face.yaw_deg), abs(face.pitch_deg - reference_face.pitch_deg))
        diffs = [abs(shapes.get(k, 0.0) - reference_face.blendshapes.get(k, 0.0)) for k in _SKIN_EXPRESSIONS]
        k = int(np.argmax(diffs))
        checks += [
            _check("pose_difference", dpose, t.max_pose_difference_deg, "<=", "deg", "vs the reference photo"),
            _check("expression_difference", diffs[k], t.max_expression_difference, "<=", "blendshape",
                   _SKIN_EXPRESSIONS[k]),
        ]
    if reference_light is not None:
        light = light or light_reference(rgb, face)
        # The chart when both photos have one (a measured neutral), else the sclera.
        both_charts = np.all(np.isfinite(light.chart_rgb)) and np.all(np.isfinite(reference_light.chart_rgb))
        primary = "chart" if both_charts else "sclera"
        for use, name in ((primary, "white_balance_mismatch"), ("background", "background_white_balance_mismatch")):
            g = light.gains_to(reference_light, use=use)
            if np.all(np.isfinite(g)) and np.all(g > 0):
                chroma = np.log(g / g[1])  # colour cast relative to green, exposure removed
                mismatch = 100.0 * float(np.abs(chroma[[0, 2]]).max())
            else:
                mismatch = float("nan")
            checks.append(_check(name, mismatch, t.max_white_balance_mismatch_pct, "<=", "%",
                                 f"measured on the {use}, not on skin"))
            if use == primary:
                ev = float(np.log2(g[1])) if np.isfinite(g[1]) and g[1] > 0 else float("nan")
                checks.append(_check("exposure_mismatch", abs(ev), t.max_exposure_mismatch_ev, "<=", "EV",
                                     f"{ev:+.2f} EV on the {use}" if np.isfinite(ev) else "sclera not visible"))
    return checks
