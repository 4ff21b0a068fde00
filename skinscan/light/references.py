"""A photo's light references that are not skin, in linear light: the eyes' whites, the background, a ColorChecker."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..color import luminance, srgb_to_linear
from ..geometry import EYES_CLOSED_BLINK, eyes_closed, iris_diameters_px
from ..landmark_ids import LEFT_EYE, LEFT_IRIS, RIGHT_EYE, RIGHT_IRIS
from ..landmarks import FaceLandmarks
from .chart import ColorChecker, detect_colorchecker

__all__ = ["SCLERA_TARGET", "LightReference", "light_reference", "sclera_mask", "sclera_masks"]

#: Linear-light colour the sclera is normalised to: a neutral white of sRGB ~200.
SCLERA_TARGET = 0.58


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

    def gains_to(self, other: LightReference, *, use: str = "sclera") -> np.ndarray:
        """Per-channel linear gains that map this photo's light onto ``other``'s.

        Parameters
        ----------
        other : LightReference
            The light to map onto.
        use : {"sclera", "background", "chart"}
            The reference compared.

        Returns
        -------
        ndarray of float64, shape (3,)
            NaN where either photo's reference is unknown.
        """
        a = np.asarray(getattr(self, f"{use}_rgb"), dtype=np.float64)
        b = np.asarray(getattr(other, f"{use}_rgb"), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return b / a


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def sclera_mask(rgb: np.ndarray, face: FaceLandmarks) -> np.ndarray:
    """Pixels of the whites of the eyes: inside the eye contours, outside the iris, the brighter half.

    Lashes, lid shadow and the caruncle are darker than the sclera, so only eye pixels above the
    median luminance of the eye's non-iris pixels are kept.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        sRGB, uint8 or float in [0, 1].
    face : FaceLandmarks
        Landmarks in ``rgb``'s pixels (with the iris points).

    Returns
    -------
    ndarray of bool, shape (H, W)
        Both eyes' sclera.
    """
    right, left = sclera_masks(rgb, face)
    return right | left


def sclera_masks(rgb: np.ndarray, face: FaceLandmarks) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sclera_mask` of each eye on its own.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        sRGB, uint8 or float in [0, 1].
    face : FaceLandmarks
        Landmarks in ``rgb``'s pixels.

    Returns
    -------
    (ndarray, ndarray) of bool, shape (H, W)
        The sclera of the subject's right eye, then of the left (an eye whose opening holds under
        4 pixels outside the iris is empty).
    """
    h, w = rgb.shape[:2]
    out = []
    diam = iris_diameters_px(face).mean(axis=1)
    yy, xx = np.ogrid[:h, :w]
    for eye, iris, d in ((RIGHT_EYE, RIGHT_IRIS, diam[0]), (LEFT_EYE, LEFT_IRIS, diam[1])):
        m = _poly_mask((h, w), face.points[eye])
        c = face.points[iris[0]]
        r = 0.6 * d
        box = (slice(max(int(c[1] - 3 * d), 0), int(c[1] + 3 * d) + 1),
               slice(max(int(c[0] - 4 * d), 0), int(c[0] + 4 * d) + 1))
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

    Returns
    -------
    LightReference
        The references' colours in linear RGB (NaN where one is not visible), with the pixels or
        patches each was read on, and the parts (each eye, each side) their uncertainty comes from.
    """
    s_rgb, s_face = (rgb, face) if sclera_in is None else sclera_in
    closed = eyes_closed(face) >= EYES_CLOSED_BLINK
    eyes = sclera_masks(s_rgb, s_face) if sclera is None else (sclera, np.zeros_like(sclera))
    if closed:  # closed lids are skin, not the whites of the eyes
        eyes = (np.zeros(s_rgb.shape[:2], bool),) * 2
    sclera = eyes[0] | eyes[1]
    grid, bg, band = _background_strip(rgb, face)
    sides = [bg[:band], bg[-band:], bg[band:-band, :band], bg[band:-band, -band:]]
    grids = [grid[:band], grid[-band:], grid[band:-band, :band], grid[band:-band, -band:]]
    chart_rgb, n_chart, residual = _chart_light(detect_colorchecker(rgb) if chart else None)
    return LightReference(_rank_mean(s_rgb[sclera]), _rank_mean(grid[bg]), int(sclera.sum()), int(bg.sum()),
                          chart_rgb, n_chart, sclera_eyes_rgb=tuple(_rank_mean(s_rgb[e]) for e in eyes),
                          background_sides_rgb=tuple(_rank_mean(g[m]) for g, m in zip(grids, sides)),
                          chart_residual=residual, eyes_closed=closed)


def _background_strip(rgb: np.ndarray, face: FaceLandmarks) -> tuple[np.ndarray, np.ndarray, int]:
    """The photo on a grid of at most about 1024 px on its longer side, the background strip on that
    grid (a border band, outside the face's bounding box widened by half its size) and the band's
    width in grid pixels."""
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
    return grid, bg, band


def _chart_light(found: ColorChecker | None) -> tuple[tuple, int, tuple]:
    """A found chart as :class:`LightReference` holds it: the linear RGB of its white (1 / its gains),
    how many neutrals were read, and their relative RMS residual per channel after the gains."""
    nan3 = (np.nan, np.nan, np.nan)
    if found is None:
        return nan3, 0, nan3
    with np.errstate(divide="ignore", invalid="ignore"):
        chart_rgb, n_chart = tuple(float(v) for v in 1.0 / found.gains), int(found.usable.sum())
        ok = found.usable
        fitted = found.neutral_rgb[ok] * found.gains
        residual = tuple(float(v) for v in np.sqrt(np.mean((fitted / found.reference_rgb[ok] - 1) ** 2, axis=0)))
    return chart_rgb, n_chart, residual
