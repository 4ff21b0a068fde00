"""Pores: dark blobs 0.1–0.5 mm across, found in physical scale space."""

from __future__ import annotations

import numpy as np

from ._common import (MaskArg, MetricResult, as_masks, blobs_per_region, check_scale, detect_dark_blobs,
                      skin_image)

__all__ = ["pore_metrics", "PORE_KEYS", "PORE_DIAMETER_MM", "MIN_PX_PER_MM_PORES"]

PORE_DIAMETER_MM = (0.1, 0.5)
PORE_KEYS = {"pore_density": "per cm2", "pore_area_pct": "%", "pore_diameter_mm": "mm"}
#: The smallest pore (0.1 mm) must span a pixel: below 10 px/mm pores are not measurable.
MIN_PX_PER_MM_PORES = 10.0


def pore_metrics(rgb, mask: MaskArg, *, mm_per_px: float, diameter_mm=PORE_DIAMETER_MM, k_sigma: float = 5.0,
                 min_px_per_mm: float = MIN_PX_PER_MM_PORES, exclude: np.ndarray | None = None) -> MetricResult:
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
    blobs = detect_dark_blobs(img.relief(mm_per_px), union, sigmas_px=np.unique(np.round(sig_px, 3)), k_sigma=k_sigma)
    stats = blobs_per_region(blobs, masks, mm_per_px)
    values = {k: {"pore_density": s["density_per_cm2"], "pore_area_pct": s["area_pct"],
                  "pore_diameter_mm": s["diameter_mm"]} for k, s in stats.items()}
    return MetricResult(values, maps={"pore_blobs": np.stack([blobs["x"], blobs["y"], blobs["sigma"]], 1)})
