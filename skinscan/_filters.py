"""Gaussian filters shared by the quality checks and the metrics, with a cheap path for large sigmas."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blur", "wide_blur"]


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
