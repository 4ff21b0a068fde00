"""Skin metrics per region, in physical units: redness, texture, pores, scars, fine lines, pigmentation.

Every family takes an sRGB image (or a :class:`SkinImage` that caches colour conversions), one mask
or a dict of region masks, and ``mm_per_px``; it returns a :class:`MetricResult`
(``{region: {metric: value}}`` with maps). Metrics never load files or call MediaPipe.
"""

from __future__ import annotations

import numpy as np

from ._common import MetricResult, SkinImage, blob_mask
from .pigmentation import PIGMENT_KEYS, ita_degrees, pigmentation_metrics
from .pores import PORE_KEYS, pore_metrics
from .redness import REDNESS_KEYS, redness
from .scars import SCAR_KEYS, scar_metrics
from .texture import TEXTURE_KEYS, roughness
from .wrinkles import WRINKLE_KEYS, wrinkle_metrics

__all__ = ["MetricResult", "SkinImage", "METRICS", "METRIC_UNITS", "HIGHER_IS_WORSE", "compute_metrics",
           "redness", "roughness", "pore_metrics", "scar_metrics", "wrinkle_metrics", "pigmentation_metrics",
           "ita_degrees"]

#: Families in pipeline order: name -> (function, {metric key: unit}).
METRICS = {
    "redness": (redness, REDNESS_KEYS),
    "texture": (roughness, TEXTURE_KEYS),
    "pores": (pore_metrics, PORE_KEYS),
    "scars": (scar_metrics, SCAR_KEYS),
    "wrinkles": (wrinkle_metrics, WRINKLE_KEYS),
    "pigmentation": (pigmentation_metrics, PIGMENT_KEYS),
}
METRIC_UNITS = {k: u for _, keys in METRICS.values() for k, u in keys.items()}
#: Direction of each metric: True when a higher value is worse skin; ITA° is a descriptor.
HIGHER_IS_WORSE = {k: k != "ita_deg" for k in METRIC_UNITS}


def compute_metrics(rgb, masks, *, mm_per_px: float, gains=None, families=None) -> tuple[dict, dict]:
    """Run every metric family on one photo.

    Parameters
    ----------
    rgb : ndarray (H, W, 3)
        sRGB photo (the face crop).
    masks : dict of str to ndarray of bool
        Region masks.
    mm_per_px : float
    gains : array-like of 3 floats, optional
        Light normalisation (linear per-channel gains).
    families : iterable of str, optional
        A subset of ``METRICS``.

    Returns
    -------
    values : dict
        ``{region: {metric: value}}``.
    extra : dict
        ``maps`` (name -> array) and ``notes`` (family -> reason a value is NaN).
    """
    img = SkinImage(rgb, gains=gains)
    values: dict[str, dict[str, float]] = {k: {} for k in masks}
    maps, notes = {}, {}
    wanted = list(families or METRICS)
    # Pigmentation runs before pores (a pore inside a brown spot is part of the spot) and texture
    # last (it leaves out the discrete features the others found).
    order = {"pigmentation": -1, "texture": 1}
    for name in sorted(wanted, key=lambda n: order.get(n, 0)):
        fn, _ = METRICS[name]
        kwargs = {}
        if name == "texture":
            kwargs["exclude"] = feature_mask(maps, img.shape, mm_per_px)
        elif name == "pores" and "spots" in maps:
            kwargs["exclude"] = _grow(maps["spots"], 0.5 / mm_per_px)
        res = fn(img, masks, mm_per_px=mm_per_px, **kwargs)
        for region, vals in res.items():
            values[region].update(vals)
        maps.update(res.maps)
        notes.update(res.notes)
    return values, {"maps": maps, "notes": notes}


def _grow(mask: np.ndarray, radius_px: float) -> np.ndarray:
    import cv2

    r = max(int(round(radius_px)), 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def feature_mask(maps: dict, shape: tuple[int, int], mm_per_px: float, *, margin_mm: float = 1.0) -> np.ndarray:
    """Union of the millimetre-scale features found so far (scars, lines, spots), grown by ``margin_mm``.

    The margin covers the halo a thin feature leaves in the texture band (its coarse Gaussian is
    1 mm wide). Pores stay in: they are part of the texture a user sees and barely reach the band.
    """
    import cv2

    out = np.zeros(shape, bool)
    for key in ("scar_blobs",):
        if key in maps and len(maps[key]):
            b = maps[key]
            out |= blob_mask({"x": b[:, 0], "y": b[:, 1], "sigma": b[:, 2]}, shape)
    for key in ("lines", "spots"):
        if key in maps:
            out |= maps[key]
    return _grow(out, margin_mm / mm_per_px)
