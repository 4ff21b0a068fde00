"""Skin metrics per region, in physical units: redness, texture, pores, scars, fine lines, pigmentation.

Every family takes an sRGB image (or a :class:`SkinImage` that caches colour conversions), one mask
or a dict of region masks, and ``mm_per_px``; it returns a :class:`MetricResult`
(``{region: {metric: value}}`` with maps). Metrics never load files or call MediaPipe.
"""

from __future__ import annotations

import cv2
import numpy as np

from .._filters import mask_box, shrink
from .blobs import blob_mask
from .pigmentation import PIGMENT_KEYS, ita_degrees, pigmentation_metrics
from .pores import PORE_KEYS, pore_metrics
from .redness import REDNESS_KEYS, redness
from .results import MetricResult
from .scars import SCAR_KEYS, scar_metrics
from .skinimage import SkinImage
from .texture import TEXTURE_KEYS, roughness
from .wrinkles import WRINKLE_KEYS, wrinkle_metrics

__all__ = ["MetricResult", "SkinImage", "METRICS", "METRIC_UNITS", "HIGHER_IS_WORSE", "RESOLUTION_FLOORS", "FAMILY_FLOORS",
           "compute_metrics",
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
#: The coarsest resolution (px/mm at the face) at which each family reads what a finer photo reads
#: (within 10%, its unit tolerance or twice its own standard error), measured on the real close-up
#: of ``tests/data/porenet`` by :func:`skinscan.floors.measure_floors` (``docs/validation.md``), and
#: the same for every metric of a family (the largest of theirs: a family is measured together).
#: Below it the metric is NaN, with the reason in the notes.
FAMILY_FLOORS = {"redness": 1.0, "pigmentation": 2.0, "scars": 2.5, "texture": 4.0, "wrinkles": 4.9, "pores": 8.0}
RESOLUTION_FLOORS = {k: FAMILY_FLOORS[name] for name, (_, keys) in METRICS.items() for k in keys}
#: Direction of each metric: True when a higher value is worse skin; ITA° is a descriptor.
HIGHER_IS_WORSE = {k: k != "ita_deg" for k in METRIC_UNITS}


def compute_metrics(rgb, masks, *, mm_per_px: float, gains=None, families=None, timings: dict | None = None,
                    maps_shape: tuple[int, int] | None = None, full_resolution: bool = False,
                    min_resolution: bool = True, keep_maps: tuple | None = None) -> tuple[dict, dict]:
    """Run every metric family on one photo.

    The work is done in the bounding box of the masks (plus a margin for the filters), so the
    hair and background around a face crop cost nothing.

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
    timings : dict, optional
        Filled with the seconds spent in each family (``metrics.<family>``).
    maps_shape : tuple of int, optional
        Return image-like maps at this (height, width), i.e. in the photo's pixels; by default
        they are left at the resolution and in the box each family worked in.
    full_resolution : bool
        Run every family at the photo's resolution instead of its working resolution.
    keep_maps : tuple of str, optional
        Return only these maps (all by default).
    min_resolution : bool
        Leave out a family below its resolution floor (:data:`FAMILY_FLOORS`): its metrics are NaN,
        with the reason in the notes; False measures it anyway (to measure the floors).

    Returns
    -------
    values : dict
        ``{region: {metric: value}}``.
    extra : dict
        ``maps`` (name -> array), ``notes`` (family -> reason a value is NaN) and ``detections``
        (kind -> columns ``x``, ``y`` in ``rgb``'s pixels, ``diameter_mm``, ``length_mm``,
        ``strength``: every pore, scar, spot and line branch counted).
    """
    import time

    h, w = rgb.shape[:2]
    union = np.logical_or.reduce([np.asarray(m, bool) for m in masks.values()]) if masks else np.zeros((h, w), bool)
    box = mask_box(union, int(np.ceil(_BOX_MARGIN_MM / mm_per_px))) or (slice(0, h), slice(0, w))
    sub_masks = {k: np.ascontiguousarray(np.asarray(m, bool)[box]) for k, m in masks.items()}
    img = SkinImage(np.ascontiguousarray(rgb[box]), gains=gains, mm_per_px=mm_per_px,
                    full_resolution=full_resolution)
    values: dict[str, dict[str, float]] = {k: {} for k in masks}
    maps, notes, found = {}, {}, {}
    wanted = list(families or METRICS)
    # Pigmentation and scars run before pores (a pore-sized blob inside a brown spot or on a
    # scar's shaded wall is part of that feature) and texture last (it leaves out the discrete
    # features the others found).
    order = {"pigmentation": -2, "scars": -1, "texture": 1}
    px_per_mm = 1.0 / mm_per_px
    for name in sorted(wanted, key=lambda n: order.get(n, 0)):
        t0 = time.perf_counter()
        fn, keys = METRICS[name]
        if min_resolution and FAMILY_FLOORS[name] > px_per_mm * 1.001:  # not run: NaN, and why
            for region in values.values():
                region.update(dict.fromkeys(keys, float("nan")))
            notes[name] = (f"{name} not measured at {px_per_mm:.1f} px/mm: {'they need' if len(keys) > 1 else 'it needs'}"
                           f" {FAMILY_FLOORS[name]:g} px/mm or more (move closer or use the rear camera)")
            continue
        kwargs = {}
        if name == "texture":
            kwargs["exclude"] = feature_mask(maps, img.shape, mm_per_px)
        elif name == "pores":
            kwargs["exclude"] = feature_mask(maps, img.shape, mm_per_px, keys=("scar_blobs", "spots"),
                                             margin_mm=0.5)
        res = fn(img, sub_masks, mm_per_px=mm_per_px, **kwargs)
        for region, vals in res.items():
            values[region].update(vals)
        maps.update(res.maps)
        notes.update(res.notes)
        for kind, cols in res.detections.items():  # from the box's pixels to rgb's
            found[kind] = {**cols, "x": cols["x"] + box[1].start, "y": cols["y"] + box[0].start}
        if timings is not None:
            timings[f"metrics.{name}"] = timings.get(f"metrics.{name}", 0.0) + time.perf_counter() - t0
    if keep_maps is not None:
        maps = {k: v for k, v in maps.items() if k in keep_maps}
    if maps_shape is not None:
        maps = {k: _to_photo(k, v, box, img.shape, maps_shape) for k, v in maps.items()}
    return values, {"maps": maps, "notes": notes, "detections": found}


#: Margin around the masks' bounding box kept for the filters (the widest is the 2.5 mm spot background).
_BOX_MARGIN_MM = 5.0


def _to_photo(name: str, m: np.ndarray, box: tuple[slice, slice], box_shape: tuple[int, int],
              shape: tuple[int, int]) -> np.ndarray:
    """A map computed in ``box`` (at any resolution) as a photo-sized array; blob lists are shifted.

    Masks are False outside the box; values are extended from the box's edge (a later blur or
    warp must not meet NaN or zero there).
    """
    if name.endswith("_blobs"):  # (N, 3): x, y, sigma
        return m + np.array([box[1].start, box[0].start, 0.0]) if len(m) else m
    if m.ndim != 2:
        return m
    bh, bw = box_shape
    is_bool = m.dtype == bool
    if m.shape != (bh, bw):
        if is_bool:
            m = cv2.resize(m.view(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST).view(bool)
        else:
            m = cv2.resize(np.ascontiguousarray(m, dtype=np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR)
    border = (box[0].start, shape[0] - box[0].stop, box[1].start, shape[1] - box[1].stop)
    if is_bool:
        return cv2.copyMakeBorder(m.view(np.uint8), *border, cv2.BORDER_CONSTANT, value=0).view(bool)
    return cv2.copyMakeBorder(np.ascontiguousarray(m, dtype=np.float32), *border, cv2.BORDER_REPLICATE)


def _grow(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``mask`` grown by a disc of ``radius_px``; large radii on a reduced copy (a margin needs no pixel precision)."""
    r = max(int(round(radius_px)), 1)
    q = max(int(np.ceil(r / 3)), 1)
    m = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    if q == 1:
        return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).view(bool)
    h, w = mask.shape
    # Any marked pixel marks its block (a 0/1 image would average a thin line away).
    small = shrink(cv2.multiply(m, 255), (max(w // q, 1), max(h // q, 1)))
    rs = max(int(round(r / q)), 1)
    small = cv2.dilate((small > 0).view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rs + 1,) * 2))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).view(bool) | mask.astype(bool, copy=False)


def feature_mask(maps: dict, shape: tuple[int, int], mm_per_px: float, *, margin_mm: float = 1.0,
                 keys=("scar_blobs", "lines", "spots")) -> np.ndarray | None:
    """Union of the millimetre-scale features found so far (scars, lines, spots), grown by ``margin_mm``.

    The margin covers the halo a thin feature leaves in the texture band (its coarse Gaussian is
    1 mm wide). Pores stay in: they are part of the texture a user sees and barely reach the band.
    """
    if not any(k in maps for k in keys):
        return None
    out = np.zeros(shape, bool)
    if "scar_blobs" in keys and "scar_blobs" in maps and len(maps["scar_blobs"]):
        b = maps["scar_blobs"]
        out |= blob_mask({"x": b[:, 0], "y": b[:, 1], "sigma": b[:, 2]}, shape)
    for key in ("lines", "spots"):
        if key in keys and key in maps:
            out |= maps[key]
    return _grow(out, margin_mm / mm_per_px)
