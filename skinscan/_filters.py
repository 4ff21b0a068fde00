"""Image helpers shared by regions, quality checks and metrics: Gaussian filters (with a cheap path for
large sigmas) and the bounding box of a mask."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blur", "blur_to", "wide_blur", "masked_blur", "shrink", "shrink_matrix", "mask_box"]


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with mirrored borders (sigma in pixels)."""
    return cv2.GaussianBlur(img, (0, 0), float(sigma_px), borderType=cv2.BORDER_REFLECT)


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged reduction to ``size`` (width, height).

    OpenCV's area resampling is fast only for an exact 2x step (a 12 MP frame in ~1 ms against
    ~20 ms at 1/3), so the image is halved while the target is at most half of it, then resampled
    once; a halving drops an odd last row or column (under 0.1% of the scale).
    """
    tw, th = int(size[0]), int(size[1])
    img, _ = halve_towards(img, (tw, th))
    if (img.shape[1], img.shape[0]) != (tw, th):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    return img


def shrink_matrix(shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """The 3x3 map from pixel coordinates of an image of ``shape`` to those of :func:`shrink`'s
    reduction of it to ``size`` (width, height).

    Each axis scales by its own factor, which is not the requested one: the reduced size is
    rounded to whole pixels (half a pixel over the width: 0.1% of the scale at 500 px, 2 px at
    the far side of a 2000 px photo) and a halving drops an odd last row or column. Pixel centres
    map to pixel centres, as OpenCV's resampling does: x' = (x + 0.5) k - 0.5.
    """
    (h, w), (tw, th) = shape[:2], (int(size[0]), int(size[1]))
    n = _halvings(shape, (tw, th))
    h, w = h >> n, w >> n  # the size after the halvings (each drops an odd last row or column)
    kx, ky = tw / (w * 2 ** n), th / (h * 2 ** n)
    return np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, 0.5 * ky - 0.5], [0, 0, 1.0]])


def halve_towards(img: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``img`` halved (exact 2x area averaging, OpenCV's fast path) while ``size`` (width,
    height) is at most half of it, and the number of halvings; an odd last row or column is dropped."""
    n = _halvings(img.shape, size)
    for _ in range(n):
        h, w = img.shape[:2]
        img = cv2.resize(img[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return img, n


def _halvings(shape: tuple[int, ...], size: tuple[int, int]) -> int:
    """How many exact 2x halvings :func:`halve_towards` makes of an image of ``shape`` towards ``size``."""
    (h, w), (tw, th) = shape[:2], (int(size[0]), int(size[1]))
    n = 0
    while w >= 2 * tw and h >= 2 * th and min(h, w) >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


def reduce_with_blur(img: np.ndarray, f: float) -> tuple[np.ndarray, float]:
    """``img`` reduced by ``f`` (never enlarged), and the variance of the blur the reduction added, in its new pixels
    (``img`` itself and 0 when the reduced size rounds to its own).

    Exact 2x area halvings while the target is at most half the size (each adds a box: (4 - 1) / 12
    of the finer pixel^2), then one bilinear step (on average over its sampling phases, 1/6 of a
    pixel^2 before it). A detector that takes that blur out of its own smoothing (the line
    detector's ridge scales, the scar detector's denoising) works at the same scale in mm at every
    working resolution.
    """
    h, w = img.shape[:2]
    tw, th = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
    if f >= 0.999 or (tw, th) == (w, h):
        return img, 0.0
    img, n = halve_towards(img, (tw, th))
    var = (4 ** n - 1) / 12  # source pixels^2: the k-th halving adds 3 / 12 of (2^k)^2
    if (img.shape[1], img.shape[0]) != (tw, th):
        var += 4 ** n / 6
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR)
    return img, var * (tw / w) ** 2


def blur_to(img: np.ndarray, sigma_px: float, *, prior_var_px: float = 0.0, min_sigma_px: float = 0.5) -> np.ndarray:
    """Gaussian blur that brings ``img``, already blurred by a variance of ``prior_var_px`` (px^2:
    a reduction's box, an interpolation, see :func:`reduce_with_blur`), to a total blur of
    ``sigma_px``; the blur applied is at least ``min_sigma_px``."""
    return blur(img, max(float(np.sqrt(max(sigma_px ** 2 - prior_var_px, 0.0))), min_sigma_px))


def masked_blur(img: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of ``img`` using only pixels under ``mask`` (normalised convolution); 0 where
    no masked pixel is near."""
    m = mask.astype(np.float32)
    num = blur(img * m, sigma_px)
    den = blur(m, sigma_px)
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0).astype(np.float32)


def wide_blur(img: np.ndarray, sigma_px: float, *, px_per_sigma: float = 4.0) -> np.ndarray:
    """Gaussian blur of a large sigma through a reduced copy: area-averaged, blurred, bilinear back.

    A sigma of tens of pixels costs tens of taps per pixel; sampled at ``px_per_sigma`` pixels
    per sigma the same low-pass costs a few, and the interpolation back is smooth at that scale.
    Small sigmas (reduction under 2x) use the direct blur.
    """
    f = min(1.0, px_per_sigma / float(sigma_px))
    if f > 0.5:
        return blur(img, sigma_px)
    h, w = img.shape[:2]
    size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
    small = shrink(img, size)
    # The box of the reduction and the bilinear interpolation add a little blur of their own.
    return cv2.resize(blur_to(small, sigma_px * f, prior_var_px=1 / 12 + 1 / 6), (w, h), interpolation=cv2.INTER_LINEAR)


def mask_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    """(rows, cols) slices of the bounding box of ``mask``'s True pixels grown by ``pad`` pixels
    (clipped to the image), or None for an empty mask: where the work on a face is."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape[:2]
    return (slice(max(int(rows[0]) - pad, 0), min(int(rows[-1]) + 1 + pad, h)),
            slice(max(int(cols[0]) - pad, 0), min(int(cols[-1]) + 1 + pad, w)))
