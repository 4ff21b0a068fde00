"""Skin metrics per region, in physical units: redness, texture, pores, scars, fine lines, pigmentation.

Every family takes an sRGB image (or a :class:`SkinImage` that caches colour conversions), one mask
or a dict of region masks, and ``mm_per_px``; it returns a :class:`MetricResult`
(``{region: {metric: value}}`` with maps). Metrics never load files or call MediaPipe. The metrics
and their families are declared once, in :mod:`skinscan.metrics.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .._filters import mask_box, shrink
from .blobs import blob_mask
from .pigmentation import ita_degrees, pigmentation_metrics
from .pores import pore_metrics
from .redness import redness
from .registry import FAMILIES, METRIC_UNITS, METRICS, Family, Metric, family, metric
from .results import MetricResult
from .scars import scar_metrics
from .skinimage import SkinImage
from .texture import roughness
from .wrinkles import wrinkle_metrics

__all__ = ["MetricResult", "SkinImage", "Measurements", "METRICS", "FAMILIES", "METRIC_UNITS", "Metric", "Family",
           "metric", "family", "compute_metrics",
           "redness", "roughness", "pore_metrics", "scar_metrics", "wrinkle_metrics", "pigmentation_metrics",
           "ita_degrees"]


@dataclass
class Measurements:
    """What :func:`compute_metrics` measured on one photo.

    Attributes
    ----------
    values : dict
        ``{region: {metric: value}}``, every metric of every family run (NaN where not measured).
    maps : dict
        Map name -> array (``a_star``, ``texture``, ``lines``, ``spots``, ``pore_blobs``...).
    notes : dict
        Family (or concern) -> why its values are NaN.
    detections : dict
        Kind -> columns ``x``, ``y`` (the photo's pixels), ``diameter_mm``, ``length_mm``,
        ``strength``: every pore, scar, spot and line branch found.
    """

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    detections: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def compute_metrics(rgb, masks, *, mm_per_px: float, gains=None, families=None, timings: dict | None = None,
                    maps_shape: tuple[int, int] | None = None, full_resolution: bool = False,
                    min_resolution: bool = True, keep_maps: tuple | None = None) -> Measurements:
    """Run every metric family on one photo.

    The work is done in the bounding box of the masks (plus a margin for the filters), so the
    hair and background around a face crop cost nothing. The families run in the order of
    :data:`FAMILIES`, each given the features it leaves out (:attr:`Family.excludes`).

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
        Names of a subset of :data:`FAMILIES` (all by default).
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
        Leave out a family below its resolution floor (:attr:`Family.floor_px_per_mm`): its metrics
        are NaN, with the reason in the notes; False measures it anyway (to measure the floors).

    Returns
    -------
    Measurements
        Values, maps, notes and detections (``x``, ``y`` in ``rgb``'s pixels).

    Raises
    ------
    KeyError
        For a family name the registry does not hold.
    """
    import time

    h, w = rgb.shape[:2]
    union = np.logical_or.reduce([np.asarray(m, bool) for m in masks.values()]) if masks else np.zeros((h, w), bool)
    box = mask_box(union, int(np.ceil(_BOX_MARGIN_MM / mm_per_px))) or (slice(0, h), slice(0, w))
    sub_masks = {k: np.ascontiguousarray(np.asarray(m, bool)[box]) for k, m in masks.items()}
    img = SkinImage(np.ascontiguousarray(rgb[box]), gains=gains, mm_per_px=mm_per_px,
                    full_resolution=full_resolution)
    out = Measurements(values={k: {} for k in masks})
    wanted = {family(n).name for n in families} if families is not None else {f.name for f in FAMILIES}
    px_per_mm = 1.0 / mm_per_px
    for fam in (f for f in FAMILIES if f.name in wanted):
        t0 = time.perf_counter()
        if min_resolution and fam.floor_px_per_mm > px_per_mm * 1.001:  # not run: NaN, and why
            for region in out.values.values():
                region.update(dict.fromkeys(fam.keys, float("nan")))
            out.notes[fam.name] = _below_floor(fam, px_per_mm)
            continue
        needs = {}
        if fam.excludes:
            needs["exclude"] = feature_mask(out.maps, img.shape, mm_per_px, keys=fam.excludes,
                                            margin_mm=fam.exclude_margin_mm)
        res = fam.function(img, sub_masks, mm_per_px=mm_per_px, **needs)
        for region, vals in res.items():
            out.values[region].update(vals)
        out.maps.update(res.maps)
        out.notes.update(res.notes)
        for kind, cols in res.detections.items():  # from the box's pixels to rgb's
            out.detections[kind] = {**cols, "x": cols["x"] + box[1].start, "y": cols["y"] + box[0].start}
        if timings is not None:
            timings[f"metrics.{fam.name}"] = timings.get(f"metrics.{fam.name}", 0.0) + time.perf_counter() - t0
    if keep_maps is not None:
        out.maps = {k: v for k, v in out.maps.items() if k in keep_maps}
    if maps_shape is not None:
        out.maps = {k: _to_photo(k, v, box, img.shape, maps_shape) for k, v in out.maps.items()}
    return out


def _below_floor(fam: Family, px_per_mm: float) -> str:
    """Why a family was not measured on a photo of ``px_per_mm``, and what to do."""
    return (f"{fam.name} not measured at {px_per_mm:.1f} px/mm: {'they need' if len(fam.keys) > 1 else 'it needs'}"
            f" {fam.floor_px_per_mm:g} px/mm or more (move closer or use the rear camera)")


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

    Parameters
    ----------
    maps : dict of str to ndarray
        Maps of the families measured so far (:attr:`MetricResult.maps`): ``scar_blobs`` is an
        (N, 3) array of blob x, y, sigma (px); ``lines`` and ``spots`` are bool masks of ``shape``.
    shape : tuple of int
        (H, W) of the mask to return, px.
    mm_per_px : float
        Image scale, mm/px.
    margin_mm : float
        How far the features are grown, mm.
    keys : tuple of str
        Which of ``scar_blobs``, ``lines`` and ``spots`` to include.

    Returns
    -------
    ndarray of bool (H, W) or None
        The grown union, or None if ``maps`` holds none of ``keys``.
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
