"""Redness: CIELAB a*, an erythema index from haemoglobin density, and the red area."""

from __future__ import annotations

import numpy as np

from .._filters import masked_blur
from ..inputs import MaskArg, as_masks, check_scale
from .results import MetricResult
from .skinimage import fill_clipped, resize_masks, skin_image
from .stats import region_means

__all__ = ["redness"]


def redness(rgb, mask: MaskArg, *, mm_per_px: float, reference_mask: np.ndarray | None = None,
            reference_percentile: float = 50.0, threshold: float = 0.03, smooth_mm: float = 0.5,
            work_px_per_mm: float = 4.0) -> MetricResult:
    """Redness of skin: mean a*, erythema index and the share of red skin, per mask.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
        sRGB photo (uint8 or float in [0, 1]); light-normalise it first for comparisons.
    mask : ndarray of bool (H, W) or dict of str to such masks
        The skin to measure.
    mm_per_px : float
        Photo scale.
    reference_mask : ndarray of bool, optional
        The subject's skin used as "unaffected" reference (default: the union of the masks).
    reference_percentile : float
        The reference level is this percentile of haemoglobin density over the reference skin
        (default the median: the subject's typical skin in the same photo, so that a colour cast,
        which shifts every pixel's haemoglobin alike, cancels).
    threshold : float
        Haemoglobin density above the reference that counts as red (0.03 is about +2.5 a* on
        light skin).
    smooth_mm : float
        Gaussian smoothing of the haemoglobin map before thresholding: redness comes in patches of
        millimetres, pixel noise does not.
    work_px_per_mm : float
        Working resolution (colour needs no finer sampling; the photo is never upsampled).

    Returns
    -------
    MetricResult
        Per region: ``a_star`` (CIELAB a*, D65), ``erythema_index`` (100 x haemoglobin density,
        a.u.) and ``red_area_pct`` (%). Higher = redder. Maps (at the working resolution):
        ``a_star``, ``erythema``, ``red``.

    Notes
    -----
    a* is computed in float from linearised sRGB (OpenCV's 8-bit Lab is rescaled and cannot be
    compared with published values). The erythema index is the haemoglobin density from an
    optical-density unmixing (``skinscan.color.unmix_chromophores``), which, unlike a*, is not
    moved by melanin or by exposure.

    References
    ----------
    .. [1] Tsumura N. et al. (2003) ACM TOG 22(3):770–779.
    .. [2] Dawson J. B. et al. (1980) A theoretical and experimental study of light absorption and
       scattering by in vivo skin. Phys Med Biol 25(4):695–709 (log-reflectance erythema index).
    """
    mm_per_px = check_scale(mm_per_px)
    full = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, full.shape)
    img = full.at(work_px_per_mm)
    masks = resize_masks(full, masks, img.shape)
    if reference_mask is None:
        ref_mask = np.logical_or.reduce(list(masks.values()))
    else:
        ref_mask = resize_masks(full, {"ref": np.asarray(reference_mask, bool)}, img.shape)["ref"]
    skin = np.logical_or.reduce([ref_mask, *masks.values()])
    a_map = img.lab[..., 1]
    hb = fill_clipped(np.ascontiguousarray(img.chromophores[..., 0]), img, skin)
    hb_smooth = masked_blur(hb, ref_mask, max(smooth_mm / img.mm_per_px, 0.5))
    ref = float(np.percentile(hb_smooth[ref_mask], reference_percentile)) if ref_mask.any() else float("nan")
    red = hb_smooth > ref + threshold
    # a* scales with lightness, so a clipped pixel's a* cannot be taken from its darker neighbours
    # as its haemoglobin is: a* is the mean over the unclipped skin.
    unclipped = None if img.clipped is None else img.clipped == 0
    a_mean = region_means(a_map, masks if unclipped is None else {k: m & unclipped for k, m in masks.items()})
    hb_mean = region_means(hb, masks)
    red_pct = region_means(red.astype(np.float32), masks)
    # Without a reference level (NaN pixels in a float image spread through the smoothing) no pixel
    # can be called red: the red area is unknown, not zero.
    values = {k: {"a_star": a_mean[k], "erythema_index": 100.0 * hb_mean[k],
                  "red_area_pct": 100.0 * red_pct[k] if np.isfinite(ref) else float("nan")} for k in masks}
    return MetricResult(values, maps={"a_star": a_map, "erythema": 100.0 * hb, "red": red})
