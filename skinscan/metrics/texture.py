"""Texture: roughness as the dense luminance relief in the 0.2–2 mm band."""

from __future__ import annotations

import numpy as np

from .._filters import blur, wide_blur
from ..inputs import MaskArg, as_masks, check_scale
from .results import MetricResult
from .skinimage import skin_image
from .stats import robust_sigma

__all__ = ["roughness", "TEXTURE_BAND_MM"]

TEXTURE_BAND_MM = (0.2, 2.0)


def texture_band(darkness: np.ndarray, *, mm_per_px: float, band_mm=TEXTURE_BAND_MM) -> np.ndarray:
    """Difference of Gaussians of a log-luminance image between the band's two sizes (sigmas half of them).

    The wide Gaussian (1 mm at the default band, tens of pixels) is taken on a copy reduced to
    about 4 px per sigma and interpolated back: the same low-pass at a fraction of the cost.

    Parameters
    ----------
    darkness : ndarray (H, W) float32
        Log-luminance (grey optical density) image, such as :meth:`SkinImage.relief`.
    mm_per_px : float
        Image scale, mm/px.
    band_mm : (float, float)
        Smallest and largest feature size of the band, mm; the Gaussians' sigmas are half of
        them (the small one at least 0.5 px).

    Returns
    -------
    ndarray (H, W) float32
        The band-passed relief, in the units of ``darkness``.
    """
    s1 = max(band_mm[0] / 2 / mm_per_px, 0.5)
    s2 = band_mm[1] / 2 / mm_per_px
    return blur(darkness, s1) - wide_blur(darkness, s2)


def roughness(rgb, mask: MaskArg, *, mm_per_px: float, band_mm=TEXTURE_BAND_MM,
              exclude: np.ndarray | None = None) -> MetricResult:
    """Skin roughness: the robust spread of log-luminance relief in the 0.2–2 mm band.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
    mask : ndarray of bool or dict of masks
    mm_per_px : float
        Sets the band in pixels, so the value does not change with resolution.
    band_mm : (float, float)
        Feature sizes bounding the band, mm.
    exclude : ndarray of bool, optional
        Pixels to leave out: the discrete features other metrics measure (pores, scars, lines,
        spots), so that roughness is the relief of the skin between them.

    Returns
    -------
    MetricResult
        ``roughness`` per region: 100 x the robust standard deviation (1.4826 MAD) of the band-
        passed grey optical density. Log luminance makes it a contrast (independent of exposure);
        the band-pass removes shading; the robust spread measures the dense relief and is blind to
        sparse features (pores, lines, scars, spots have metrics of their own). Higher = rougher.
        Map: ``texture`` (the band-passed relief).
    """
    mm_per_px = check_scale(mm_per_px)
    img = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, img.shape)
    band = texture_band(img.relief(mm_per_px), mm_per_px=mm_per_px, band_mm=band_mm)
    # Every other pixel in each direction: neighbours in a band-passed image are correlated, so a
    # quarter of the pixels holds nearly all the information and costs a quarter of the time.
    st = 2 if mm_per_px < 0.1 * band_mm[1] else 1
    band_s = band[::st, ::st]
    keep = ~exclude[::st, ::st] if exclude is not None else np.ones(band_s.shape, bool)
    values = {k: {"roughness": 100.0 * robust_sigma(band_s[m[::st, ::st] & keep])} for k, m in masks.items()}
    return MetricResult(values, maps={"texture": band})
