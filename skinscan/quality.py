"""Named photo-quality checks, each with its value, threshold and verdict, and the light references they use."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ._filters import blur, mask_box, shrink, wide_blur
from .color import luminance, srgb_to_linear
from .geometry import EYES_CLOSED_BLINK, eyes_closed, Scale, iris_diameters_px
from .landmarks import LEFT_IRIS, RIGHT_IRIS, FaceLandmarks
from .metrics.registry import family

__all__ = [
    "QualityCheck",
    "QualityThresholds",
    "LightReference",
    "ColorChecker",
    "detect_colorchecker",
    "light_reference",
    "SCLERA_TARGET",
    "sclera_mask",
    "sharpness",
    "assess_quality",
    "reference_checks",
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


@dataclass(frozen=True)
class LightReference:
    """Colour of non-skin references in a photo, in linear RGB: the sclera, the background and a ColorChecker.

    NaN where the reference is not visible. Used to tell a lighting or white-balance change from
    a skin change, without looking at the skin being measured. ``chart_rgb`` is the linear RGB
    an ideal white (reflectance 1) has in the photo, fitted on the chart's neutral patches
    (``chart_patches`` of them unclipped), so ``1 / chart_rgb`` are the gains that give the
    chart its reference colours.
    """

    sclera_rgb: tuple[float, float, float]
    background_rgb: tuple[float, float, float]
    sclera_pixels: int = 0
    background_pixels: int = 0
    chart_rgb: tuple[float, float, float] = (float("nan"),) * 3
    chart_patches: int = 0
    #: Each eye's sclera (subject's right, left) read on its own: their disagreement is the
    #: sclera's own uncertainty (lashes, lid shadow, glare in a squint).
    sclera_eyes_rgb: tuple = ((float("nan"),) * 3, (float("nan"),) * 3)
    #: The background's four sides (top, bottom, left, right) read on their own.
    background_sides_rgb: tuple = ()
    #: Relative RMS residual, per channel, of the chart's neutrals after its gains.
    chart_residual: tuple[float, float, float] = (float("nan"),) * 3
    #: The eyes were closed (a blink blendshape of 0.5 or more): no sclera was read.
    eyes_closed: bool = False

    def gains_to(self, other: "LightReference", *, use: str = "sclera") -> np.ndarray:
        """Per-channel linear gains that map this photo's light onto ``other``'s (NaN if unknown).

        ``use`` is ``"sclera"``, ``"background"`` or ``"chart"``.
        """
        a = np.asarray(getattr(self, f"{use}_rgb"), dtype=np.float64)
        b = np.asarray(getattr(other, f"{use}_rgb"), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return b / a


#: Linear-light colour the sclera is normalised to: a neutral white of sRGB ~200.
SCLERA_TARGET = 0.58


#: The ColorChecker Classic's neutral row, white to black: patch indices 18-23 of OpenCV's MCC24 order.
_CHART_NEUTRALS = np.arange(18, 24)


@functools.cache
def _chart_reference_linear() -> np.ndarray:
    """OpenCV's reference colours of the 24-patch ColorChecker (``cv2.mcc``, 8-bit sRGB in BGR order)
    as linear RGB, shape (24, 3)."""
    det = cv2.mcc.CCheckerDetector_create()
    det.setColorChartType(cv2.mcc.MCC24)
    bgr = np.asarray(det.getRefColors(), dtype=np.uint8).reshape(24, 3)
    return srgb_to_linear(np.ascontiguousarray(bgr[:, ::-1])).astype(np.float64)


@dataclass(frozen=True)
class ColorChecker:
    """A 24-patch ColorChecker found in a photo, and its neutral patches read in linear light.

    Attributes
    ----------
    box : ndarray, shape (4, 2)
        The chart's corners (x, y) in the photo's pixels.
    patches : ndarray, shape (24, 4, 2)
        Corners of the middle part of each patch (x, y, photo pixels), in the chart's order
        (dark skin ... black; the neutrals are 18-23).
    neutral_rgb : ndarray, shape (6, 3)
        Robust mean linear RGB of the neutral patches, white to black; NaN for a clipped (or
        crushed black) patch.
    reference_rgb : ndarray, shape (6, 3)
        The neutrals' reference colours in linear RGB (OpenCV's MCC24 values).
    cost : float
        The detector's colour-fit cost (lower is better).
    """

    box: np.ndarray
    patches: np.ndarray
    neutral_rgb: np.ndarray
    reference_rgb: np.ndarray
    cost: float

    @property
    def usable(self) -> np.ndarray:
        """Which neutral patches were read (not clipped), shape (6,) bool."""
        return np.all(np.isfinite(self.neutral_rgb), axis=1)

    @property
    def gains(self) -> np.ndarray:
        """Per-channel linear gains mapping the read neutrals onto their references, shape (3,).

        Least squares through the origin per channel over the usable neutrals,
        ``g = sum(m r) / sum(m m)``; NaN with fewer than two usable patches.
        """
        ok = self.usable
        if ok.sum() < 2:
            return np.full(3, np.nan)
        m, r = self.neutral_rgb[ok], self.reference_rgb[ok]
        return (m * r).sum(axis=0) / (m * m).sum(axis=0)


def _patch_samples(rgb: np.ndarray, quads: np.ndarray, *, inset: float = 0.2, max_n: int = 48) -> np.ndarray:
    """Pixels on an n x n grid inside each quadrilateral (inset from its edges), shape (k, n*n, 3).

    The detector places its patch centres to within about a fifth of a patch; the middle 60% of
    its patch cores (a third of a patch) stays inside the patch.
    """
    side = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1).mean()
    n = int(np.clip(round(side * (1 - 2 * inset)), 2, max_n))
    t = np.linspace(inset, 1 - inset, n)
    u, v = (a.ravel()[None, :, None] for a in np.meshgrid(t, t))
    p0, p1, p2, p3 = (quads[:, i][:, None, :] for i in range(4))
    pts = (1 - u) * (1 - v) * p0 + u * (1 - v) * p1 + u * v * p2 + (1 - u) * v * p3
    h, w = rgb.shape[:2]
    x = np.clip(np.rint(pts[..., 0]).astype(np.intp), 0, w - 1)
    y = np.clip(np.rint(pts[..., 1]).astype(np.intp), 0, h - 1)
    return rgb[y, x]


def detect_colorchecker(rgb: np.ndarray, *, max_side: int = 640) -> ColorChecker | None:
    """Find a 24-patch ColorChecker (Classic layout) and read its neutral patches.

    The chart is found by OpenCV's ``mcc`` detector on a copy reduced (area averaging by an
    integer factor) to at most ``max_side`` pixels on its longer side, which keeps a photo without
    a chart cheap (28 ms for 12 MP on one core, 36 ms with a chart); a patch must then span about
    24 px of the reduced copy (1/27 of the photo's longer side at the default). The neutral
    patches (white to black) are then read at full resolution, in linear light: per channel, the
    mean of the middle half of the ranks of the pixels inside each patch. A patch with over 1% of
    its pixels at 250+ (clipped) or 5 or below (crushed) is not read.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        The photo (sRGB).
    max_side : int
        Longer side, in pixels, of the copy the chart is searched in.

    Returns
    -------
    ColorChecker or None
        None when no chart is found, or when the read neutrals do not darken from white to black
        or do not share one colour cast (a false detection, or a chart registered wrongly).

    References
    ----------
    Marrero Fernández, P. D., et al. OpenCV's ``mcc`` module (ColorChecker detection), opencv_contrib.

    Examples
    --------
    >>> chart = detect_colorchecker(photo_rgb)          # doctest: +SKIP
    >>> None if chart is None else chart.gains          # doctest: +SKIP
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3); got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    k = max(1, int(np.ceil(max(h, w) / max_side)))
    # An integer factor keeps patch coordinates exact ((x + 0.5) * k - 0.5 below).
    small = rgb if k == 1 else shrink(rgb[:h - h % k, :w - w % k], (w // k, h // k))
    det = cv2.mcc.CCheckerDetector_create()
    det.setColorChartType(cv2.mcc.MCC24)
    det.setUseDnnModel(False)
    params = det.getDetectionParams()
    params.minImageSize = int(min(small.shape[:2]))  # the detector otherwise enlarges to a 1000 px shorter side
    det.setDetectionParams(params)
    if not det.process(np.ascontiguousarray(small[..., ::-1]), 1):
        return None
    checker = det.getBestColorChecker()
    # Pixel centres of the reduced copy map to (x + 0.5) * k - 0.5 in the photo.
    patches = (np.asarray(checker.getColorCharts(), dtype=np.float64).reshape(24, 4, 2) + 0.5) * k - 0.5
    box = (np.asarray(checker.getBox(), dtype=np.float64).reshape(4, 2) + 0.5) * k - 0.5
    px = _patch_samples(rgb, patches[_CHART_NEUTRALS])
    clipped = np.mean(px.max(axis=2) >= 250, axis=1) > 0.01
    crushed = ~clipped & (np.mean(px.min(axis=2) <= 5, axis=1) > 0.01)
    ranked = np.sort(srgb_to_linear(px), axis=1)
    n = ranked.shape[1]
    neutral = ranked[:, n // 4:max(3 * n // 4, n // 4 + 1)].mean(axis=1).astype(np.float64)
    neutral[clipped | crushed] = np.nan
    # White to black: clipped patches first, then read ones darkening, then crushed ones; anything
    # else is a false detection or a chart read upside down.
    state = np.where(clipped, 0, np.where(crushed, 2, 1))
    read = neutral[state == 1]
    if np.any(np.diff(state) < 0) or np.any(np.diff(read[:, 1]) >= 0):
        return None
    # The neutrals share one colour cast (a camera's tone curve bends it by a few % across the
    # greys); a chart registered onto its colour patches is off by factors.
    with np.errstate(divide="ignore", invalid="ignore"):
        chroma = np.log(read[:, [0, 2]] / read[:, [1]])
    if len(read) > 1 and not np.all(np.ptp(chroma, axis=0) <= 0.2):
        return None
    return ColorChecker(box=box, patches=patches, neutral_rgb=neutral,
                        reference_rgb=_chart_reference_linear()[_CHART_NEUTRALS], cost=float(checker.getCost()))


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def sclera_mask(rgb: np.ndarray, face: FaceLandmarks) -> np.ndarray:
    """Pixels of the whites of the eyes: inside the eye contours, outside the iris, the brighter half.

    Lashes, lid shadow and the caruncle are darker than the sclera, so only eye pixels above the
    median luminance of the eye's non-iris pixels are kept.
    """
    right, left = sclera_masks(rgb, face)
    return right | left


def sclera_masks(rgb: np.ndarray, face: FaceLandmarks) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sclera_mask` of each eye on its own (the subject's right, left)."""
    h, w = rgb.shape[:2]
    out = []
    diam = iris_diameters_px(face).mean(axis=1)
    yy, xx = np.ogrid[:h, :w]
    for eye, iris, d in ((RIGHT_EYE, RIGHT_IRIS, diam[0]), (LEFT_EYE, LEFT_IRIS, diam[1])):
        m = _poly_mask((h, w), face.points[eye])
        c = face.points[iris[0]]
        r = 0.6 * d
        box = (slice(max(int(c[1] - 3 * d), 0), int(c[1] + 3 * d) + 1), slice(max(int(c[0] - 4 * d), 0), int(c[0] + 4 * d) + 1))
        sub = m[box] & (((xx[:, box[1]] - c[0]) ** 2 + (yy[box[0]] - c[1]) ** 2) > r * r)
        eye = np.zeros((h, w), dtype=bool)
        if sub.sum() >= 4:
            y = luminance(rgb[box])
            sub &= y > np.median(y[sub])
            eye[box] = sub
        out.append(eye)
    return out[0], out[1]


def _rank_mean(rgb8: np.ndarray) -> tuple[float, float, float]:
    """Linear RGB of reference pixels (uint8 sRGB, shape (n, 3)): per channel, the mean of the ranks
    between 15% and 50%, clipped pixels included.

    Clipping only reorders the top ranks, so this holds in every photo with under half its
    reference pixels clipped, and every photo uses the same ranks (dropping clipped pixels instead
    biased brighter exposures low; a plain median snaps to 8-bit steps). NaN for fewer than 8
    pixels, half of them clipped or 15% crushed.
    """
    if len(rgb8) < 8:
        return (np.nan, np.nan, np.nan)
    if np.mean(rgb8.max(axis=1) >= 250) >= 0.5 or np.mean(rgb8.min(axis=1) <= 5) >= 0.15:
        return (np.nan, np.nan, np.nan)
    ranked = np.sort(srgb_to_linear(rgb8), axis=0)
    n = len(ranked)
    lo, hi = int(0.15 * n), max(int(0.5 * n), int(0.15 * n) + 1)
    return tuple(float(v) for v in ranked[lo:hi].mean(axis=0))


def light_reference(rgb: np.ndarray, face: FaceLandmarks, *, sclera: np.ndarray | None = None,
                    sclera_in: tuple[np.ndarray, FaceLandmarks] | None = None,
                    chart: bool = True) -> LightReference:
    """Measure the sclera, background and ColorChecker colour of a photo (linear RGB, robust means).

    The background is a border strip of the photo outside the face's bounding box widened by
    half its size, so that hair and shoulders mostly stay out (sampled on a grid of at most about
    1000 px on the longer side). The chart is found with :func:`detect_colorchecker`. Both lie
    outside the face, so ``rgb`` should be the whole photo.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        The photo.
    face : FaceLandmarks
        Landmarks in ``rgb``'s pixels.
    sclera : ndarray of bool, optional
        The sclera mask (computed when omitted), in the pixels of the image the sclera is read in.
    sclera_in : (ndarray, FaceLandmarks), optional
        Read the sclera in this image and its landmarks instead of ``rgb`` (``analyse_photo``
        passes its face crop at the working resolution).
    chart : bool
        Look for a ColorChecker.
    """
    s_rgb, s_face = (rgb, face) if sclera_in is None else sclera_in
    closed = eyes_closed(face) >= EYES_CLOSED_BLINK
    eyes = sclera_masks(s_rgb, s_face) if sclera is None else (sclera, np.zeros_like(sclera))
    if closed:  # closed lids are skin, not the whites of the eyes
        eyes = (np.zeros(s_rgb.shape[:2], bool),) * 2
    sclera = eyes[0] | eyes[1]
    h, w = rgb.shape[:2]
    # A grid sample of the strip is plenty for a rank mean, and keeps a 12 MP photo cheap.
    step = max(1, int(np.ceil(max(h, w) / 1024)))
    grid = rgb[::step, ::step]
    hs, ws = grid.shape[:2]
    x0, y0, x1, y1 = (v / step for v in face.bbox)
    fw, fh = x1 - x0, y1 - y0
    bg = np.zeros((hs, ws), dtype=bool)
    band = max(int(0.04 * min(hs, ws)), 2)
    bg[:band, :] = bg[-band:, :] = True
    bg[:, :band] = bg[:, -band:] = True
    bg[max(int(y0 - 0.5 * fh), 0):int(y1 + 0.5 * fh), max(int(x0 - 0.5 * fw), 0):int(x1 + 0.5 * fw)] = False
    found = detect_colorchecker(rgb) if chart else None
    chart_rgb, n_chart, residual = (np.nan, np.nan, np.nan), 0, (np.nan, np.nan, np.nan)
    if found is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            chart_rgb, n_chart = tuple(float(v) for v in 1.0 / found.gains), int(found.usable.sum())
            ok = found.usable
            fitted = found.neutral_rgb[ok] * found.gains
            residual = tuple(float(v) for v in np.sqrt(np.mean((fitted / found.reference_rgb[ok] - 1) ** 2, axis=0)))
    sides = [bg[:band], bg[-band:], bg[band:-band, :band], bg[band:-band, -band:]]
    grids = [grid[:band], grid[-band:], grid[band:-band, :band], grid[band:-band, -band:]]
    return LightReference(_rank_mean(s_rgb[sclera]), _rank_mean(grid[bg]), int(sclera.sum()), int(bg.sum()),
                          chart_rgb, n_chart, sclera_eyes_rgb=tuple(_rank_mean(s_rgb[e]) for e in eyes),
                          background_sides_rgb=tuple(_rank_mean(g[m]) for g, m in zip(grids, sides)),
                          chart_residual=residual, eyes_closed=closed)


def sharpness(gray: np.ndarray, mask: np.ndarray, *, mm_per_px: float) -> float:
    """Fine-to-coarse detail ratio on skin: band energy at one octave over band energy two octaves lower.

    The fine octave starts at 0.1 mm, or at 0.7 px when the photo does not resolve 0.1 mm; the
    coarse octave starts four times wider. Computed on log luminance (so independent of
    exposure). Defocus and motion blur remove the fine band first, so the ratio falls with blur.
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
