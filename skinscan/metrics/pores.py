"""Pores: dark blobs 0.1–0.5 mm across, found in physical scale space."""

from __future__ import annotations

import cv2
import numpy as np

from ._common import (MaskArg, MetricResult, as_masks, blobs_per_region, check_scale, detect_dark_blobs, detections,
                      skin_image)

__all__ = ["pore_metrics", "PORE_KEYS", "PORE_DIAMETER_MM", "MIN_PX_PER_MM_PORES"]

PORE_DIAMETER_MM = (0.1, 0.5)
PORE_KEYS = {"pore_density": "per cm2", "pore_area_pct": "%", "pore_diameter_mm": "mm"}
#: The smallest pore (0.1 mm) must span a pixel: below 10 px/mm pores are not measurable.
MIN_PX_PER_MM_PORES = 10.0
#: Diameters past the pore band where a pore candidate must not respond more strongly (scale selection).
OUTSCALE_MM = (0.7, 1.0, 1.4)


def pore_metrics(rgb, mask: MaskArg, *, mm_per_px: float, diameter_mm=PORE_DIAMETER_MM, k_sigma: float = 5.0,
                 min_px_per_mm: float = MIN_PX_PER_MM_PORES, exclude: np.ndarray | None = None,
                 outscale_mm=OUTSCALE_MM) -> MetricResult:
    """Pore density, area and size from dark blobs in the pore band.

    Blobs are scale-space maxima of the scale-normalised Laplacian of the grey optical density,
    at Gaussian scales sigma = d / (2 sqrt 2) for diameters d across ``diameter_mm``, kept when
    their response exceeds ``k_sigma`` robust standard deviations of the skin's response.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
    mask : ndarray of bool or dict of masks
    mm_per_px : float
    diameter_mm : (float, float)
        The pore band.
    k_sigma : float
        Detection threshold in robust standard deviations.
    min_px_per_mm : float
        Below this resolution every value is NaN, with the reason in ``notes``.
    exclude : ndarray of bool, optional
        Where blobs are not pores (e.g. inside brown spots, whose mottled edges look pore-sized).
    outscale_mm : sequence of float
        Diameters beyond the band at which a blob is tested once more: a pore-band maximum whose
        scale-normalised response is larger at one of these is part of a larger dark structure (a
        scar's shaded floor or wall, a shadowed fold) and is not a pore. Empty to skip the test.

    Returns
    -------
    MetricResult
        Per region: ``pore_density`` (per cm^2), ``pore_area_pct`` (% of the region covered by
        pore discs), ``pore_diameter_mm`` (mean diameter). Higher = worse. Map: ``pores`` (a
        labelled disc image of the detections, 1 inside a pore).

    References
    ----------
    .. [1] Lindeberg T. (1998) IJCV 30(2):79–116 (scale-normalised LoG, sigma = r / sqrt 2).
    """
    mm_per_px = check_scale(mm_per_px)
    img = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, img.shape)
    if 1.0 / mm_per_px < min_px_per_mm:
        why = (f"pores not measurable at {1 / mm_per_px:.1f} px/mm: the {diameter_mm[0]} mm pores need "
               f"{min_px_per_mm:.0f} px/mm or more")
        nan = {"pore_density": np.nan, "pore_area_pct": np.nan, "pore_diameter_mm": np.nan}
        return MetricResult({k: dict(nan) for k in masks}, notes={"pores": why})
    if exclude is not None:
        keep = ~exclude
        masks = {k: m & keep for k, m in masks.items()}
    union = np.logical_or.reduce(list(masks.values()))
    d = np.geomspace(diameter_mm[0], diameter_mm[1], 6)
    sig_px = np.maximum(d / (2 * np.sqrt(2)) / mm_per_px, 0.5)
    relief = img.relief(mm_per_px)
    blobs = detect_dark_blobs(relief, union, sigmas_px=np.unique(np.round(sig_px, 3)), k_sigma=k_sigma)
    if outscale_mm and len(blobs["x"]):
        # A pore-band maximum that answers more at a larger scale is part of a larger structure.
        keep = _outscale_response(relief, blobs, mm_per_px, outscale_mm) <= blobs["response"]
        blobs = {k: v[keep] for k, v in blobs.items()}
    stats = blobs_per_region(blobs, masks, mm_per_px)
    values = {k: {"pore_density": s["density_per_cm2"], "pore_area_pct": s["area_pct"],
                  "pore_diameter_mm": s["diameter_mm"]} for k, s in stats.items()}
    found = detections(blobs["x"], blobs["y"], diameter_mm=2 * np.sqrt(2) * blobs["sigma"] * mm_per_px,
                       strength=blobs["response"])
    return MetricResult(values, maps={"pore_blobs": np.stack([blobs["x"], blobs["y"], blobs["sigma"]], 1)},
                        detections={"pore": found})


def _outscale_response(signal: np.ndarray, blobs: dict, mm_per_px: float, diameters_mm) -> np.ndarray:
    """Each blob's largest scale-normalised response at scales past the pore band (Lindeberg's scale selection).

    The response is the detector's own (:func:`detect_dark_blobs`: a Gaussian blur, then OpenCV's
    3x3 Laplacian, times -sigma^2) at the photo's resolution, but evaluated at the blobs' centres
    only: the two filters are folded into one kernel and dotted with the signal around each
    centre. There is no resampled copy, so the response is continuous in the photo's scale (on a
    copy reduced by a whole number of halvings it jumped by 7% between photos a hair apart in
    scale), and it costs a few thousand multiplications per blob instead of whole-image blurs.
    """
    sig_px = np.asarray(diameters_mm, float) / (2 * np.sqrt(2)) / mm_per_px
    kernels = [_blurred_laplacian_kernel(s) for s in sig_px]
    pad = max(k.shape[0] for k in kernels) // 2
    padded = cv2.copyMakeBorder(np.ascontiguousarray(signal, np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    ys = np.clip(np.rint(blobs["y"]).astype(np.int64), 0, signal.shape[0] - 1)
    xs = np.clip(np.rint(blobs["x"]).astype(np.int64), 0, signal.shape[1] - 1)
    best = np.full(len(ys), -np.inf)
    for kernel in kernels:
        r = kernel.shape[0] // 2
        windows = np.lib.stride_tricks.sliding_window_view(padded[pad - r:padded.shape[0] - pad + r,
                                                                  pad - r:padded.shape[1] - pad + r], kernel.shape)
        for i in range(0, len(ys), 256):  # bounded memory: 256 patches at a time
            resp = np.einsum("nij,ij->n", windows[ys[i:i + 256], xs[i:i + 256]], kernel)
            best[i:i + 256] = np.maximum(best[i:i + 256], resp)
    return best


def _blurred_laplacian_kernel(sigma_px: float) -> np.ndarray:
    """-sigma^2 x OpenCV's 3x3 Laplacian of OpenCV's Gaussian blur, as one (2r + 3)^2 kernel."""
    # The Gaussian as cv2.GaussianBlur builds it for float images (radius 4 sigma, odd size).
    g = cv2.getGaussianKernel(int(round(sigma_px * 8 + 1)) | 1, sigma_px, cv2.CV_64F)
    lap = np.array([[2, 0, 2], [0, -8, 0], [2, 0, 2]], np.float64)  # cv2.Laplacian, ksize=3
    # The full convolution of the two (both symmetric): the Gaussian padded by the Laplacian's radius.
    kernel = cv2.filter2D(np.pad(g @ g.T, 1), -1, lap, borderType=cv2.BORDER_CONSTANT)
    return (-sigma_px * sigma_px * kernel).astype(np.float32)
