"""A 24-patch ColorChecker in the frame, found and its neutral patches read in linear light: the best reference."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .._filters import shrink
from ..color import srgb_to_linear

__all__ = ["ColorChecker", "detect_colorchecker"]

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
    >>> from skinscan import load_photo
    >>> print(detect_colorchecker(load_photo("sample_images/astronaut/2026-01-05/IMG_20260105_100412.jpg").rgb))   # no chart in this photo
    None
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
