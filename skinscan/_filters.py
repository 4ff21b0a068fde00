"""Image helpers shared by regions, quality checks and metrics: Gaussian filters (with a cheap path for
large sigmas) and the bounding box of a mask."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blur", "wide_blur", "mask_box"]


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with mirrored borders (sigma in pixels)."""
    return cv2.GaussianBlur(img, (0, 0), float(sigma_px), borderType=cv2.BORDER_REFLECT)


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
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    # The box of the reduction and the bilinear interpolation add a little blur of their own.
    s = float(np.sqrt(max((sigma_px * f) ** 2 - 1 / 12 - 1 / 6, 0.25)))
    return cv2.resize(blur(small, s), (w, h), interpolation=cv2.INTER_LINEAR)


def mask_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    """(rows, cols) slices of the bounding box of ``mask``'s True pixels grown by ``pad`` pixels
    (clipped to the image), or None for an empty mask: where the work on a face is."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape[:2]
    return (slice(max(int(rows[0]) - pad, 0), min(int(rows[-1]) + 1 + pad, h)),
            slice(max(int(cols[0]) - pad, 0), min(int(cols[-1]) + 1 + pad, w)))
