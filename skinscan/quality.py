"""Named photo-quality checks, each with its value, threshold and verdict, and the light references they use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from ._filters import blur, mask_box, wide_blur
from .color import luminance, srgb_to_linear
from .geometry import Scale, iris_diameters_px
from .landmarks import LEFT_IRIS, RIGHT_IRIS, FaceLandmarks

__all__ = [
    "QualityCheck",
    "QualityThresholds",
    "LightReference",
    "light_reference",
    "light_gains",
    "SCLERA_TARGET",
    "sclera_mask",
    "sharpness",
    "assess_quality",
]

RIGHT_EYE = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246])
LEFT_EYE = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466])
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                      152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
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
    pore metrics NaN; a colour cast is normalised on the sclera).
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

    min_px_per_mm: float = 10.0  # a 0.15 mm pore is then 1.5 px across; below, pores are not measurable
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


@dataclass(frozen=True)
class LightReference:
    """Colour of non-skin references in a photo, in linear RGB: the sclera and the background.

    NaN where the reference is not visible. Used to tell a lighting or white-balance change from
    a skin change, without looking at the skin being measured.
    """

    sclera_rgb: tuple[float, float, float]
    background_rgb: tuple[float, float, float]
    sclera_pixels: int = 0
    background_pixels: int = 0

    def gains_to(self, other: "LightReference", *, use: str = "sclera") -> np.ndarray:
        """Per-channel linear gains that map this photo's light onto ``other``'s (NaN if unknown)."""
        a = np.asarray(getattr(self, f"{use}_rgb"), dtype=np.float64)
        b = np.asarray(getattr(other, f"{use}_rgb"), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return b / a


#: Linear-light colour the sclera is normalised to: a neutral white of sRGB ~200.
SCLERA_TARGET = 0.58


def light_gains(light: LightReference, *, min_pixels: int = 30) -> tuple[np.ndarray, str]:
    """Per-channel linear gains that bring a photo's light to a fixed white, and the reference used.

    The sclera (whites of the eyes) is taken to be neutral and of a fixed brightness, so a photo's
    white balance and exposure are undone without looking at the skin being measured; when the
    sclera is not visible (closed eyes, glasses) the background is used for the colour cast only;
    otherwise the photo is left as it is.

    Returns
    -------
    gains : ndarray, shape (3,)
    source : str
        ``"sclera"``, ``"background"`` or ``"none"``.
    """
    sclera = np.asarray(light.sclera_rgb, dtype=np.float64)
    if light.sclera_pixels >= min_pixels and np.all(np.isfinite(sclera)) and np.all(sclera > 0.02):
        return np.clip(SCLERA_TARGET / sclera, 0.25, 4.0), "sclera"
    bg = np.asarray(light.background_rgb, dtype=np.float64)
    if light.background_pixels >= min_pixels and np.all(np.isfinite(bg)) and np.all(bg > 0.02):
        return np.clip(bg.mean() / bg, 0.5, 2.0), "background"
    return np.ones(3), "none"


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def sclera_mask(rgb: np.ndarray, face: FaceLandmarks) -> np.ndarray:
    """Pixels of the whites of the eyes: inside the eye contours, outside the iris, the brighter half.

    Lashes, lid shadow and the caruncle are darker than the sclera, so only eye pixels above the
    median luminance of the eye's non-iris pixels are kept.
    """
    h, w = rgb.shape[:2]
    out = np.zeros((h, w), dtype=bool)
    diam = iris_diameters_px(face).mean(axis=1)
    yy, xx = np.ogrid[:h, :w]
    for eye, iris, d in ((RIGHT_EYE, RIGHT_IRIS, diam[0]), (LEFT_EYE, LEFT_IRIS, diam[1])):
        m = _poly_mask((h, w), face.points[eye])
        c = face.points[iris[0]]
        r = 0.6 * d
        box = (slice(max(int(c[1] - 3 * d), 0), int(c[1] + 3 * d) + 1), slice(max(int(c[0] - 4 * d), 0), int(c[0] + 4 * d) + 1))
        sub = m[box] & (((xx[:, box[1]] - c[0]) ** 2 + (yy[box[0]] - c[1]) ** 2) > r * r)
        if sub.sum() < 4:
            continue
        y = luminance(rgb[box])
        sub &= y > np.median(y[sub])
        out[box] |= sub
    return out


def light_reference(rgb: np.ndarray, face: FaceLandmarks, *, sclera: np.ndarray | None = None) -> LightReference:
    """Measure the sclera and background colour of a photo (linear RGB, robust means).

    The background is a border strip of the photo outside the face's bounding box widened by
    half its size, so that hair and shoulders mostly stay out.
    """
    sclera = sclera_mask(rgb, face) if sclera is None else sclera
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = face.bbox
    fw, fh = x1 - x0, y1 - y0
    bg = np.zeros((h, w), dtype=bool)
    band = max(int(0.04 * min(h, w)), 2)
    bg[:band, :] = bg[-band:, :] = True
    bg[:, :band] = bg[:, -band:] = True
    bg[max(int(y0 - 0.5 * fh), 0):int(y1 + 0.5 * fh), max(int(x0 - 0.5 * fw), 0):int(x1 + 0.5 * fw)] = False

    def _robust_mean(mask: np.ndarray) -> tuple[float, float, float]:
        # Per channel, the mean of the ranks between 15% and 50%, clipped pixels included:
        # clipping only reorders the top ranks, so this holds in every photo with under half its
        # reference pixels clipped, and every photo uses the same ranks (dropping clipped pixels
        # instead biased brighter exposures low; a plain median snaps to 8-bit steps).
        if mask.sum() < 8:
            return (np.nan, np.nan, np.nan)
        px = rgb[mask]
        if np.mean(px.max(axis=1) >= 250) >= 0.5 or np.mean(px.min(axis=1) <= 5) >= 0.15:
            return (np.nan, np.nan, np.nan)
        ranked = np.sort(srgb_to_linear(px), axis=0)
        n = len(ranked)
        lo, hi = int(0.15 * n), max(int(0.5 * n), int(0.15 * n) + 1)
        return tuple(float(v) for v in ranked[lo:hi].mean(axis=0))

    return LightReference(_robust_mean(sclera), _robust_mean(bg), int(sclera.sum()), int(bg.sum()))


def sharpness(gray: np.ndarray, mask: np.ndarray, *, mm_per_px: float) -> float:
    """Fine-to-coarse detail ratio on skin: band energy at one octave over band energy two octaves lower.

    The fine octave starts at 0.1 mm, or at 0.7 px when the photo does not resolve 0.1 mm; the
    coarse octave starts four times wider. Computed on log luminance (so independent of
    exposure). Defocus and motion blur remove the fine band first, so the ratio falls with blur.
    """
    g = cv2.log(np.asarray(gray, dtype=np.float32) + np.float32(1e-3))
    s0 = max(0.1 / mm_per_px, 0.7)  # sigma in px
    b1 = blur(g, s0) - blur(g, 2 * s0)
    b2 = wide_blur(g, 4 * s0) - wide_blur(g, 8 * s0)
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
        white_balance_mismatch, exposure_mismatch, background_white_balance_mismatch.
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
               "enough for pores (0.1-0.5 mm)" if res_px_per_mm >= t.min_px_per_mm else
               "too coarse for pores; move closer or use the rear camera"),
        _check("sharpness", sharp, t.min_sharpness, ">=", "ratio", "fine/coarse skin detail (low = blurred)"),
        _check("clipped_highlights", clipped, t.max_clipped_pct, "<=", "% of skin", "skin pixels at 250+"),
        _check("dark_pixels", dark, t.max_dark_pct, "<=", "% of skin", "skin pixels at 10 or below"),
        _check("head_yaw", abs(face.yaw_deg), t.max_abs_yaw_deg, "<=", "deg", f"yaw {face.yaw_deg:+.1f}"),
        _check("head_pitch", abs(face.pitch_deg), t.max_abs_pitch_deg, "<=", "deg", f"pitch {face.pitch_deg:+.1f}"),
        _check("face_count", face.n_faces, t.max_faces, "<=", "faces",
               "the largest face was analysed" if face.n_faces > 1 else ""),
        _check("expression", expr, t.max_expression, "<=", "blendshape", expr_name),
    ]
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
        for use, name in (("sclera", "white_balance_mismatch"), ("background", "background_white_balance_mismatch")):
            g = light.gains_to(reference_light, use=use)
            if np.all(np.isfinite(g)) and np.all(g > 0):
                chroma = np.log(g / g[1])  # colour cast relative to green, exposure removed
                mismatch = 100.0 * float(np.abs(chroma[[0, 2]]).max())
            else:
                mismatch = float("nan")
            checks.append(_check(name, mismatch, t.max_white_balance_mismatch_pct, "<=", "%",
                                 f"measured on the {use}, not on skin"))
            if use == "sclera":
                ev = float(np.log2(g[1])) if np.isfinite(g[1]) and g[1] > 0 else float("nan")
                checks.append(_check("exposure_mismatch", abs(ev), t.max_exposure_mismatch_ev, "<=", "EV",
                                     f"{ev:+.2f} EV on the sclera" if np.isfinite(ev) else "sclera not visible"))
    return checks
