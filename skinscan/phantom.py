"""Physically plausible skin changes and photo nuisances injected into real photos, to validate the metrics.

Skin changes add optical density OD = -log10(R) per channel to the linear-light sRGB reflectance R
(decoded exactly from 8-bit sRGB), so chromophores combine as in the Beer-Lambert law; shading
(pores, scars, lines, relief) is an equal OD in all channels, i.e. a luminance factor. ``hb_od`` and
``melanin_od`` multiply the absorbance vectors below; ``depth`` is the grey OD at a depression's core
(0.1 = 21 % darker); densities are per cm^2 of mask (pixels x mm_per_px^2 / 100). Functions that
place objects take ``rng`` and return ``(rgb, record)`` with the ground truth; an earlier record
passed as ``placement`` redraws the same objects, keeping the first ``round(density x area)``.

Examples
--------
>>> skin, mask = np.full((400, 400, 3), (200, 150, 130), np.uint8), np.ones((400, 400), bool)
>>> out, rec = add_pores(skin, mask, mm_per_px=0.05, density_per_cm2=50, rng=np.random.default_rng(0))
>>> round(rec["area_cm2"], 2), rec["count"]   # Poisson(50 x 4 cm^2)
(4.0, 206)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .color import HAEMOGLOBIN_OD, MELANIN_OD, linear_to_srgb8, luminance, rgb_to_lab, srgb_to_linear

__all__ = [
    "HAEMOGLOBIN_OD", "MELANIN_OD", "TEXTURE_BAND_MM",
    "add_redness", "redness_for_delta_a", "add_melanin", "darken_to_ita",
    "add_pores", "add_scars", "add_spots", "add_lines", "add_texture", "skin_microtexture",
    "exposure", "white_balance", "jpeg_roundtrip", "sensor_noise", "similarity", "turn_head",
    "MasterFace", "master_face",
]

#: Skin-texture band, mm: a difference of Gaussians with sigmas of half these sizes.
TEXTURE_BAND_MM = (0.2, 2.0)

_GREY = np.ones(3, dtype=np.float32)


# ------------------------------------------------------------------------------------ helpers
def _check(rgb, mask=None):
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise TypeError(f"expected an RGB uint8 array (H, W, 3), got {arr.dtype} {arr.shape}")
    m = None if mask is None else np.asarray(mask).astype(bool)
    if m is not None and m.shape != arr.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match the image {arr.shape[:2]}")
    return arr, m


def _need_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng: expected a numpy.random.Generator, e.g. np.random.default_rng(seed)")
    return rng


def _lab(lin: np.ndarray) -> np.ndarray:
    return rgb_to_lab(lin, linear=True)


def _bbox(mask: np.ndarray, pad: int):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (slice(max(rows[0] - pad, 0), rows[-1] + pad + 1), slice(max(cols[0] - pad, 0), cols[-1] + pad + 1))


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px < 0.2:
        return img.astype(np.float32, copy=True)
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), float(sigma_px), borderType=cv2.BORDER_REFLECT)


def _attenuate(lin: np.ndarray, od) -> np.ndarray:
    return lin * np.power(np.float32(10), -np.asarray(od, np.float32))


def _apply_od(rgb: np.ndarray, sl, od: np.ndarray) -> np.ndarray:
    """A copy of ``rgb`` with ``od`` (h, w, 3) added to the optical density of its crop ``sl``."""
    out = rgb.copy()
    if sl is not None:
        out[sl] = linear_to_srgb8(_attenuate(srgb_to_linear(rgb[sl]), od))
    return out


def _area_cm2(mask: np.ndarray, mm_per_px: float) -> float:
    return float(mask.sum()) * float(mm_per_px) ** 2 / 100


def _solve(f, x1: float, tol: float, max_iter: int = 16) -> tuple[float, float]:
    """Root of a monotone ``f`` by secant steps from 0 and ``x1``; (x, f(x)) of the best step."""
    x0, f0 = 0.0, f(0.0)
    best = (x0, f0)
    for _ in range(max_iter):
        f1 = f(x1)
        best = (x1, f1) if abs(f1) < abs(best[1]) else best
        if abs(f1) < tol:
            break
        step = 2 * x1 if f1 == f0 else x1 - f1 * (x1 - x0) / (f1 - f0)  # flat (quantised): go further
        x0, f0, x1 = x1, f1, float(np.clip(step, -3.0, 5.0))
    return best


# ------------------------------------------------------------------------------- chromophores
def _uniform(rgb, mask, vec, amount, feather_px):
    rgb, m = _check(rgb, mask)
    sl = _bbox(m, int(3 * feather_px) + 1)
    return rgb.copy() if sl is None else _apply_od(rgb, sl, float(amount) * _blur(m[sl], feather_px)[..., None] * vec)


def _solve_uniform(rgb, mask, vec, feather_px, measure, target, *, relative, x1, tol):
    """Density of ``vec`` for which ``measure`` of the mask's re-encoded pixels reaches ``target``
    (plus its value before, when ``relative``); returns (rgb, density, before, after)."""
    rgb, m = _check(rgb, mask)
    sl = _bbox(m, int(3 * feather_px) + 1)
    if sl is None:
        return rgb.copy(), 0.0, float("nan"), float("nan")
    lin, w = srgb_to_linear(rgb[m]), _blur(m[sl], feather_px)[m[sl]][:, None]
    before = measure(lin)
    goal = float(target) + (before if relative else 0.0)
    x, _ = _solve(lambda x: measure(srgb_to_linear(linear_to_srgb8(_attenuate(lin, x * w * vec)))) - goal, x1, tol)
    out = _uniform(rgb, m, vec, x, feather_px)
    return out, x, before, measure(srgb_to_linear(out[m]))


def _mean_a(lin: np.ndarray) -> float:
    return float(_lab(lin)[:, 1].mean())


def _ita(lin: np.ndarray) -> float:
    lab = _lab(lin).mean(axis=0)
    return float(np.degrees(np.arctan2(lab[0] - 50, lab[2])))


def add_redness(rgb, mask, *, hb_od: float, feather_px: float = 3.0) -> np.ndarray:
    """Add haemoglobin OD ``hb_od`` x :data:`HAEMOGLOBIN_OD` inside ``mask`` (its edge feathered).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    mask : ndarray of bool, shape (H, W)
    hb_od : float
        Blood density; 0.1 raises a* of light skin by about 5 (negative removes blood).
    feather_px : float
        Gaussian sigma, px, softening the mask edge so there is no seam.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
    """
    return _uniform(rgb, mask, HAEMOGLOBIN_OD, hb_od, feather_px)


def redness_for_delta_a(rgb, mask, delta_a_star: float, *, feather_px: float = 3.0, tol: float = 0.01):
    """Add the blood that raises the mean CIELAB a* over ``mask`` by ``delta_a_star`` (measured on the output).

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``hb_od``, ``delta_a_star`` (achieved), ``target_delta_a_star``.
    """
    out, x, a0, a1 = _solve_uniform(rgb, mask, HAEMOGLOBIN_OD, feather_px, _mean_a, delta_a_star, relative=True,
                                    x1=float(delta_a_star) / 50, tol=tol)
    return out, {"hb_od": x, "delta_a_star": a1 - a0, "target_delta_a_star": float(delta_a_star)}


def add_melanin(rgb, mask, *, melanin_od: float, feather_px: float = 3.0) -> np.ndarray:
    """Add a uniform melanin OD ``melanin_od`` x :data:`MELANIN_OD` inside ``mask``; as :func:`add_redness`."""
    return _uniform(rgb, mask, MELANIN_OD, melanin_od, feather_px)


def darken_to_ita(rgb, mask, *, ita_deg: float = 5.0, margin_deg: float = 0.5, feather_px: float = 3.0):
    """Deepen the skin tone: add uniform melanin until ITA over ``mask`` is ``margin_deg`` below ``ita_deg``.

    ITA = atan((L* - 50) / b*), degrees, of the mean L* and b* over the mask (a per-pixel ITA is
    unstable where b* is near 0). Chardon et al. (1991): ITA > 55 very light, 10-28 tan, < -30 dark.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``melanin_od``, ``ita_before``, ``ita_after`` (degrees).
    """
    rgb, m = _check(rgb, mask)
    goal = float(ita_deg) - float(margin_deg)
    if not m.any() or _ita(srgb_to_linear(rgb[m])) <= goal:
        before = _ita(srgb_to_linear(rgb[m])) if m.any() else float("nan")
        return rgb.copy(), {"melanin_od": 0.0, "ita_before": before, "ita_after": before}
    out, x, before, after = _solve_uniform(rgb, m, MELANIN_OD, feather_px, _ita, goal, relative=False, x1=0.3,
                                           tol=0.5 * float(margin_deg))
    return out, {"melanin_od": x, "ita_before": before, "ita_after": after}


# -------------------------------------------------------------------------------------- blobs
def _distance_inside(mask: np.ndarray) -> np.ndarray:
    """Distance, px, from each mask pixel to the nearest pixel outside (the image border counts as inside)."""
    return cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]


def _place_blobs(mask, *, mm_per_px, density_per_cm2, diameter_mm, irregularity, rng, placement) -> dict:
    """Blob centres, diameters and outline harmonics: Poisson(density x area) blobs, each centred at
    least its radius + 1 px inside the mask (rejected draws are redrawn), or a prefix of ``placement``."""
    area = _area_cm2(mask, mm_per_px)
    if placement is not None:
        n = min(len(placement["diameters_px"]), int(round(float(density_per_cm2) * area)))
        c = np.asarray(placement["centres_px"], float)[:n].reshape(-1, 2)
        d = np.asarray(placement["diameters_px"], float)[:n]
        shape = np.asarray(placement["shape"], float)[:n].reshape(-1, 4)
    else:
        rng = _need_rng(rng)
        n = int(rng.poisson(float(density_per_cm2) * area))
        d = rng.uniform(*diameter_mm, size=n) / float(mm_per_px)
        shape = np.c_[irregularity * rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n),
                      irregularity * rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n)]
        dist, (ys, xs) = _distance_inside(mask), np.nonzero(mask)
        c, todo = np.zeros((n, 2)), np.arange(n)
        for _ in range(30 if ys.size else 0):  # rounds of redraws, not a loop over blobs
            k = rng.integers(0, ys.size, size=todo.size)
            ok = dist[ys[k], xs[k]] >= d[todo] / 2 + 1
            c[todo[ok]] = np.c_[xs[k[ok]], ys[k[ok]]] + rng.uniform(-0.5, 0.5, (int(ok.sum()), 2))
            todo = todo[~ok]
        keep = np.setdiff1d(np.arange(n), todo)  # blobs too big for the mask are dropped
        c, d, shape, n = c[keep], d[keep], shape[keep], keep.size
    return {"count": n, "centres_px": c, "diameters_px": d, "diameters_mm": d * float(mm_per_px),
            "shape": shape, "area_cm2": area, "density_per_cm2": n / area if area else 0.0}


def _blob_field(shape_hw, rec: dict, *, edge: float, shading: float = 0.0, light_deg: float = 90.0) -> np.ndarray:
    """Sum of soft-disc profiles (1 inside, raised-cosine edge of half-width ``edge`` radii, 0.5 at the
    nominal radius) evaluated on one square patch per blob and accumulated with ``np.bincount``."""
    h, w = shape_hw
    r = np.asarray(rec["diameters_px"], float) / 2
    if r.size == 0:
        return np.zeros((h, w), np.float32)
    c, s = np.asarray(rec["centres_px"], float), np.asarray(rec["shape"], float)[:, :, None, None]
    off = np.arange(-(int(np.ceil(r.max() * (1 + edge) * 1.4)) + 2), int(np.ceil(r.max() * (1 + edge) * 1.4)) + 3)
    xs = np.round(c[:, 0]).astype(np.int64)[:, None, None] + off[None, None, :]
    ys = np.round(c[:, 1]).astype(np.int64)[:, None, None] + off[None, :, None]
    dx, dy = xs - c[:, 0, None, None], ys - c[:, 1, None, None]
    theta, dist, rr = np.arctan2(dy, dx), np.hypot(dx, dy), r[:, None, None]
    wobble = 1 + s[:, 0] * np.cos(2 * theta + s[:, 1]) + s[:, 2] * np.cos(3 * theta + s[:, 3])
    e = np.maximum(edge, 0.6 / rr)  # at least ~1 px of edge, so tiny blobs keep their area
    t = np.clip((dist / (rr * wobble) - (1 - e)) / (2 * e), 0, 1)
    val = 0.5 * (1 + np.cos(np.pi * t))
    if shading:  # the pit wall on the light's side faces away from it: darker there, lighter opposite
        lx, ly = np.cos(np.radians(light_deg)), -np.sin(np.radians(light_deg))
        val = 0.5 * val + shading * np.sin(np.pi * t) * (dx * lx + dy * ly) / np.maximum(dist, 1e-6)
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h) & (val != 0)
    flat = np.broadcast_to(ys * w + xs, val.shape)[ok]
    return np.bincount(flat, val[ok], minlength=h * w).reshape(h, w).astype(np.float32)


def _blobs(rgb, mask, vec, amount, *, edge, shading=0.0, light_deg=90.0, **place):
    rgb, m = _check(rgb, mask)
    rec = _place_blobs(m, **place)
    field = _blob_field(m.shape, rec, edge=edge, shading=shading, light_deg=light_deg)
    sl = _bbox(field != 0, 1)
    return (rgb.copy() if sl is None else _apply_od(rgb, sl, float(amount) * field[sl][..., None] * vec)), rec


def add_pores(rgb, mask, *, mm_per_px: float, density_per_cm2: float, diameter_mm=(0.15, 0.3),
              depth: float = 0.08, rng: np.random.Generator | None = None, placement: dict | None = None):
    """Add round pores: grey depressions with a dark core of OD ``depth``, half as dark at the diameter.

    The count is Poisson(density x mask area); centres are uniform over the mask where the whole
    pore fits (at least its radius + 1 px from the edge).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    mask : ndarray of bool, shape (H, W)
    mm_per_px : float
    density_per_cm2 : float
        Pores per cm^2 of mask.
    diameter_mm : (float, float)
        Uniform range of diameters, mm (visible facial pores are about 0.1-0.5 mm).
    depth : float
        Grey OD at the core; 0.08 is 17 % darker.
    rng : numpy.random.Generator
    placement : dict, optional
        An earlier record: its first ``round(density x area)`` pores are drawn again; rng unused.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``count``, ``centres_px`` (N, 2) as (x, y), ``diameters_px`` and ``diameters_mm`` (N,),
        ``shape`` (N, 4) outline harmonics, ``area_cm2``, ``density_per_cm2`` (realised).
    """
    return _blobs(rgb, mask, _GREY, depth, edge=0.5, mm_per_px=mm_per_px, density_per_cm2=density_per_cm2,
                  diameter_mm=diameter_mm, irregularity=0.0, rng=rng, placement=placement)


def add_scars(rgb, mask, *, mm_per_px: float, density_per_cm2: float, diameter_mm=(1.0, 3.0),
              depth: float = 0.08, shading: float = 0.8, light_deg: float = 90.0,
              rng: np.random.Generator | None = None, placement: dict | None = None):
    """Add atrophic (rolling) scars: shallow, slightly irregular pits that read as shaded.

    The floor darkens by grey OD ``depth / 2``; the wall adds up to ``shading x depth`` of
    Lambertian shading: darker on the side towards the light (that wall faces away from it),
    lighter on the opposite rim. ``light_deg`` is the direction towards the light in the image,
    degrees counter-clockwise from the image right (90: from above). Otherwise as :func:`add_pores`.
    """
    return _blobs(rgb, mask, _GREY, depth, edge=0.6, shading=shading, light_deg=light_deg, mm_per_px=mm_per_px,
                  density_per_cm2=density_per_cm2, diameter_mm=diameter_mm, irregularity=0.12, rng=rng,
                  placement=placement)


def add_spots(rgb, mask, *, mm_per_px: float, density_per_cm2: float, diameter_mm=(1.0, 3.0),
              melanin_od: float, rng: np.random.Generator | None = None, placement: dict | None = None):
    """Add brown spots (lentigines): melanin OD ``melanin_od`` x :data:`MELANIN_OD` in soft irregular
    discs (0.2 darkens light skin by about 8 L*). Otherwise as :func:`add_pores`."""
    return _blobs(rgb, mask, MELANIN_OD, melanin_od, edge=0.35, mm_per_px=mm_per_px, density_per_cm2=density_per_cm2,
                  diameter_mm=diameter_mm, irregularity=0.14, rng=rng, placement=placement)


# -------------------------------------------------------------------------------------- lines
def _lengths(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(v, axis=-2), axis=-1).sum(axis=-1)


def _candidate_lines(mask, n, *, length_px, width_px, orientation_deg, orientation_sd_deg, bend, rng):
    """``n`` parabolic arcs (n, 16, 2) centred in the mask; those wholly inside it, with their widths."""
    ys, xs = np.nonzero(mask)
    k, ln = rng.integers(0, ys.size, n), rng.uniform(*length_px, n)
    ang = (rng.uniform(0, np.pi, n) if orientation_deg is None
           else np.radians(rng.normal(orientation_deg, orientation_sd_deg, n)))
    sag, wid = rng.normal(0, bend, n) * ln, rng.uniform(*width_px, n)
    t = np.linspace(-0.5, 0.5, 16)[None, :, None]
    along = np.stack([np.cos(ang), -np.sin(ang)], -1)[:, None]  # image y points down
    across = np.stack([np.sin(ang), np.cos(ang)], -1)[:, None]
    v = (np.c_[xs[k], ys[k]][:, None] + t * ln[:, None, None] * along
         + 4 * sag[:, None, None] * (0.25 - t**2) * across)
    p = np.clip(np.round(v).astype(int), 0, [mask.shape[1] - 1, mask.shape[0] - 1])
    inside = (_distance_inside(mask)[p[..., 1], p[..., 0]] >= wid[:, None] / 2 + 1).all(axis=1)
    return v[inside], wid[inside]


def add_lines(rgb, mask, *, mm_per_px: float, density_mm_per_cm2: float, width_mm=(0.1, 0.3),
              length_mm=(5.0, 20.0), depth: float = 0.1, orientation_deg: float | None = 0.0,
              orientation_sd_deg: float = 10.0, bend: float = 0.06, rng: np.random.Generator | None = None,
              placement: dict | None = None):
    """Add fine lines: thin, slightly curved dark furrows, ``density_mm_per_cm2`` mm of line per cm^2 of mask.

    Lines lie wholly inside the mask, and the last is shortened so that the total length is exact.
    They are drawn as anti-aliased centrelines (cv2.polylines, one call per width class) blurred to
    a Gaussian cross-section of FWHM = width and peak grey OD ``depth`` (a line narrower than a
    pixel keeps its integrated darkness at a lower peak).

    Parameters
    ----------
    width_mm, length_mm : (float, float)
        Uniform ranges, mm.
    orientation_deg : float or None
        Mean direction, degrees counter-clockwise from the image horizontal, with normal spread
        ``orientation_sd_deg``; None for uniform directions.
    bend : float
        SD of each arc's sagitta as a fraction of its length.
    placement : dict, optional
        An earlier record: its lines are reused in order up to the requested length; rng unused.
    Others as :func:`add_pores`.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``count``, ``polylines_px`` (N, 16, 2), ``widths_px``, ``lengths_mm`` (N,),
        ``total_length_mm``, ``area_cm2``, ``density_mm_per_cm2`` (realised).
    """
    rgb, m = _check(rgb, mask)
    scale, area = float(mm_per_px), _area_cm2(m, mm_per_px)
    target = float(density_mm_per_cm2) * area / scale  # px of line
    if placement is not None:
        v = np.asarray(placement["polylines_px"], float).reshape(-1, 16, 2)
        wid = np.asarray(placement["widths_px"], float)
    else:
        rng, v, wid = _need_rng(rng), np.zeros((0, 16, 2)), np.zeros(0)
        for _ in range(40 if m.any() else 0):  # rounds of candidates until enough length fits inside
            missing = target - _lengths(v).sum()
            if missing <= 0:
                break
            cv, cw = _candidate_lines(m, int(2 * missing * scale / np.mean(length_mm)) + 16,
                                      length_px=np.divide(length_mm, scale), width_px=np.divide(width_mm, scale),
                                      orientation_deg=orientation_deg, orientation_sd_deg=orientation_sd_deg,
                                      bend=bend, rng=rng)
            v, wid = np.concatenate([v, cv]), np.r_[wid, cw]
    lens = _lengths(v)
    n = int(min(np.searchsorted(np.cumsum(lens), target) + 1, lens.size))
    v, wid = v[:n].copy(), wid[:n]
    if n:  # cut the last line at the remaining length, resampled to 16 vertices
        s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(v[-1], axis=0), axis=1))]
        u = np.linspace(0, min(target - lens[: n - 1].sum(), s[-1]), 16)
        v[-1] = np.c_[np.interp(u, s, v[-1, :, 0]), np.interp(u, s, v[-1, :, 1])]
    lens = _lengths(v)

    od = np.zeros(m.shape, np.float32)
    which = np.clip(np.digitize(wid, np.linspace(wid.min(), wid.max() + 1e-9, 5)) - 1, 0, 3) if n else wid
    for b in np.unique(which):  # a few width classes, each drawn in one call
        sel, canvas = which == b, np.zeros(m.shape, np.uint8)
        cv2.polylines(canvas, list(np.round(v[sel] * 16).astype(np.int32)), False, 255, 1, cv2.LINE_AA, 4)
        drawn, sigma = canvas.astype(np.float32), float(wid[sel].mean()) / 2.355
        drawn *= lens[sel].sum() / max(float(drawn.sum()), 1e-6)  # unit cross-section integral
        od += _blur(drawn, sigma) * float(depth) * max(sigma, 0.4) * np.sqrt(2 * np.pi)
    sl = _bbox(od > 0, 1)
    out = rgb.copy() if sl is None else _apply_od(rgb, sl, od[sl][..., None] * _GREY)
    total = float(lens.sum()) * scale
    return out, {"count": n, "polylines_px": v, "widths_px": wid, "lengths_mm": lens * scale,
                 "total_length_mm": total, "area_cm2": area, "density_mm_per_cm2": total / area if area else 0.0}


# ------------------------------------------------------------------------------------ texture
def _band(img: np.ndarray, mm_per_px: float, band_mm=TEXTURE_BAND_MM) -> np.ndarray:
    return _blur(img, band_mm[0] / 2 / mm_per_px) - _blur(img, band_mm[1] / 2 / mm_per_px)


def _log_lum(lin: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(luminance(lin, linear=True), 1e-4)).astype(np.float32)


def add_texture(rgb, mask, *, mm_per_px: float, energy_gain: float, band_mm=TEXTURE_BAND_MM,
                rng: np.random.Generator):
    """Raise the skin-texture energy in ``band_mm`` (0.2-2 mm) by the factor ``1 + energy_gain``.

    Band energy is the variance over the mask of the difference-of-Gaussians band-pass (sigmas of
    half the band's sizes) of log10 luminance. Band-limited noise, added as grey OD, is scaled so
    that the energy of the uint8 output is ``1 + energy_gain`` times the input's.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``energy_before``, ``energy_after`` (log10-luminance variance), ``energy_gain`` (achieved),
        ``noise_od_sd`` (amplitude of the added noise).
    """
    rgb, m = _check(rgb, mask)
    rng = _need_rng(rng)
    sl = _bbox(m, int(2 * band_mm[1] / mm_per_px) + 2)
    if sl is None:
        return rgb.copy(), {"energy_before": 0.0, "energy_after": 0.0, "energy_gain": 0.0, "noise_od_sd": 0.0}
    inside, lin = m[sl], srgb_to_linear(rgb[sl])
    b0 = _band(_log_lum(lin), mm_per_px, band_mm)[inside]
    e0 = float(b0.var())
    noise = _band(rng.standard_normal(inside.shape).astype(np.float32), mm_per_px, band_mm)
    noise *= _blur(inside, 2.0) / max(float(noise[inside].std()), 1e-9)

    def energy(alpha: float):
        out = linear_to_srgb8(_attenuate(lin, alpha * noise[..., None]))
        return out, float(_band(_log_lum(srgb_to_linear(out)), mm_per_px, band_mm)[inside].var())

    # var(b0 + a bn) is quadratic in a: solve it on float, then secant steps absorb the quantisation.
    bn = _band(noise, mm_per_px, band_mm)[inside]
    vn, cov = float(bn.var()), float(np.mean((b0 - b0.mean()) * (bn - bn.mean())))
    a1 = (-cov + np.sqrt(cov**2 + vn * e0 * max(energy_gain, 0.0))) / max(vn, 1e-12)
    alpha = _solve(lambda a: energy(a)[1] / e0 - 1 - energy_gain, a1, 1e-3, 6)[0] if energy_gain > 0 else 0.0
    out, (sub, e1) = rgb.copy(), energy(alpha)
    out[sl] = sub
    return out, {"energy_before": e0, "energy_after": e1, "energy_gain": e1 / e0 - 1, "noise_od_sd": float(alpha)}


def skin_microtexture(rgb, mask, *, mm_per_px: float, pore_density_per_cm2: float = 60.0,
                      pore_diameter_mm=(0.08, 0.2), pore_depth: float = 0.05, roughness: float = 0.02,
                      mottle_od: float = 0.012, rng: np.random.Generator):
    """Give a smooth (e.g. upscaled) face plausible baseline skin: fine relief, mottling and faint pores.

    Relief is band-limited grey OD noise (0.1-0.6 mm) of SD ``roughness``; mottling is blood and
    melanin OD noise at 2-8 mm of SD ``mottle_od``; pores as :func:`add_pores`.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``pores`` (the :func:`add_pores` record), ``roughness``, ``mottle_od``.
    """
    rgb, m = _check(rgb, mask)
    rng = _need_rng(rng)
    sl = _bbox(m, int(8 / mm_per_px) + 2)
    if sl is None:
        return rgb.copy(), {"pores": None, "roughness": roughness, "mottle_od": mottle_od}
    soft = _blur(m[sl], 3.0)

    def noise(lo_mm, hi_mm):
        n = _band(rng.standard_normal(soft.shape).astype(np.float32), mm_per_px, (lo_mm, hi_mm))
        return (n / max(float(n[m[sl]].std()), 1e-9) * soft)[..., None]

    od = roughness * noise(0.1, 0.6) * _GREY
    od += mottle_od * (noise(2.0, 8.0) * HAEMOGLOBIN_OD + noise(2.0, 8.0) * MELANIN_OD)
    out, pores = add_pores(_apply_od(rgb, sl, od), m, mm_per_px=mm_per_px, density_per_cm2=pore_density_per_cm2,
                           diameter_mm=pore_diameter_mm, depth=pore_depth, rng=rng)
    return out, {"pores": pores, "roughness": roughness, "mottle_od": mottle_od}


# ---------------------------------------------------------------------------------- nuisances
def exposure(rgb, ev: float) -> np.ndarray:
    """Multiply linear light by 2**ev, clipped: +1 EV doubles it. uint8 RGB in and out."""
    return linear_to_srgb8(srgb_to_linear(_check(rgb)[0]) * np.float32(2.0 ** float(ev)))


def white_balance(rgb, gains) -> np.ndarray:
    """Multiply linear R, G, B by ``gains`` (3,), e.g. (1.04, 1.0, 0.96) for a warmer cast."""
    return linear_to_srgb8(srgb_to_linear(_check(rgb)[0]) * np.asarray(gains, np.float32).reshape(3))


def jpeg_roundtrip(rgb, quality: int) -> np.ndarray:
    """Encode as a JPEG of ``quality`` (0-100) with OpenCV and decode again (RGB order kept)."""
    bgr = cv2.cvtColor(_check(rgb)[0], cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def sensor_noise(rgb, sigma: float, rng: np.random.Generator, *, read_sigma: float = 0.0) -> np.ndarray:
    """Add Gaussian noise in linear light of SD sqrt(sigma^2 x signal + read_sigma^2); ``sigma`` is
    the shot noise at full scale (0.01: about 1.3 sRGB levels in light skin)."""
    lin = srgb_to_linear(_check(rgb)[0])
    sd = np.sqrt(float(sigma) ** 2 * lin + float(read_sigma) ** 2)
    return linear_to_srgb8(lin + sd * _need_rng(rng).standard_normal(lin.shape, dtype=np.float32))


def similarity(rgb, *, angle_deg: float, scale: float, shift_px=(0.0, 0.0), center=None):
    """Rotate, scale and shift a photo (same size, the border reflected; bicubic).

    Parameters
    ----------
    angle_deg : float
        Degrees; positive turns the content counter-clockwise on screen (OpenCV's convention).
    scale : float
    shift_px : (float, float)
        (dx, dy), px, added after the rotation and scaling.
    center : (float, float), optional
        Fixed point (x, y), px, of the rotation and scaling; default the image centre.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    matrix : ndarray, shape (2, 3)
        Maps a source pixel to its output pixel: ``(x', y') = matrix @ (x, y, 1)``.
    """
    rgb = _check(rgb)[0]
    h, w = rgb.shape[:2]
    cx, cy = ((w - 1) / 2, (h - 1) / 2) if center is None else center
    mat = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle_deg), float(scale))
    mat[:, 2] += np.asarray(shift_px, float)
    return cv2.warpAffine(rgb, mat, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT), mat


def turn_head(rgb, face, *, yaw_deg: float, mm_per_px: float) -> np.ndarray:
    """The photo with the head turned by ``yaw_deg`` about its vertical axis (> 0: towards the image right).

    The 478-point mesh is rotated in 3-D with MediaPipe's own depths, projected orthographically,
    and the photo is warped piecewise-affinely from the old to the new triangle positions; the
    canonical frame's outer ring (the hairline and background around the face) stays put, so the
    face blends into its surroundings. Triangles are drawn far to near, so the nearer side hides
    what turns away.
    """
    from .align import _rasterise_triangles, canonical_frame, photo_vertices, warp_piecewise

    rgb, _ = _check(rgb)
    frame = canonical_frame()
    src = photo_vertices(face, frame, mm_per_px=mm_per_px)
    p, z = face.points[:468], face.z[:468]
    c, cz = p.mean(axis=0), z.mean()
    t = np.radians(yaw_deg)
    dst = src.copy()
    dst[:468, 0] = c[0] + (p[:, 0] - c[0]) * np.cos(t) - (z - cz) * np.sin(t)
    depth = np.concatenate([(p[:, 0] - c[0]) * np.sin(t) + (z - cz) * np.cos(t), np.full(len(src) - 468, z.max())])
    tris = frame.triangles[np.argsort(-depth[frame.triangles].mean(axis=1), kind="stable")]
    index = _rasterise_triangles(dst, tris, rgb.shape[:2])
    warped, _ = warp_piecewise(rgb, src, dst, tris, rgb.shape[:2], triangle_index=index,
                               interpolation=cv2.INTER_LINEAR)
    return np.where((index >= 0)[..., None], warped, rgb)


@dataclass(frozen=True)
class MasterFace:
    """The project's synthetic subject: a real face upscaled to phone resolution with skin micro-texture.

    Attributes
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    face : FaceLandmarks
    mm_per_px : float
    masks : dict of str to ndarray of bool
        ``region_masks`` of the face, plus ``forehead_below_fringe`` (the forehead without the
        extension towards the hairline, which the astronaut's fringe covers).
    skin : ndarray of bool
        All facial skin the micro-texture was given to.
    microtexture : dict
        The :func:`skin_microtexture` record.
    """

    rgb: np.ndarray
    face: object
    mm_per_px: float
    masks: dict
    skin: np.ndarray
    microtexture: dict


#: Crop of ``skimage.data.astronaut()`` around the face (x0, y0, x1, y1) and its upscale to ~12 px/mm.
ASTRONAUT_CROP_XYXY = (170, 50, 280, 190)
ASTRONAUT_UPSCALE = 17.0
MASTER_SEED = 20260105


def master_face(landmarker=None, *, seed: int = MASTER_SEED) -> MasterFace:
    """Build the master face from scikit-image's astronaut (a public-domain NASA photo).

    The face is cropped, denoised (film grain would upscale to blotches), upscaled 17x with
    Lanczos to about 12 px/mm, softened, and given :func:`skin_microtexture` over all facial skin.
    Deterministic for a given ``seed``.
    """
    from skimage import data

    from .geometry import estimate_scale
    from .landmarks import FaceLandmarker
    from .regions import EXCLUSION_POLYGONS, polygon_masks, region_masks

    own = landmarker is None
    lm = landmarker or FaceLandmarker()
    try:
        x0, y0, x1, y1 = ASTRONAUT_CROP_XYXY
        crop = np.ascontiguousarray(data.astronaut()[y0:y1, x0:x1])
        crop = cv2.fastNlMeansDenoisingColored(crop, None, 4, 4, 5, 11)
        big = cv2.resize(crop, None, fx=ASTRONAUT_UPSCALE, fy=ASTRONAUT_UPSCALE, interpolation=cv2.INTER_LANCZOS4)
        big = cv2.GaussianBlur(big, (0, 0), 3.0)  # soften the interpolation's staircase
        face = lm.detect(big)
        mm_per_px = estimate_scale(face).mm_per_px
        masks = region_masks(face, mm_per_px=mm_per_px, rgb=big)
        masks["forehead_below_fringe"] = region_masks(face, mm_per_px=mm_per_px, rgb=big,
                                                      forehead_extension_mm=0.0)["forehead"]
        # Micro-texture over all facial skin (glare included), not only the named regions, or
        # their edges would show.
        oval = np.zeros(big.shape[:2], np.uint8)
        from .quality import FACE_OVAL

        cv2.fillPoly(oval, [np.round(face.points[FACE_OVAL]).astype(np.int32)], 1)
        cut = np.zeros_like(oval)
        polys = [np.round(face.points[list(ids)]).astype(np.int32) for ids in EXCLUSION_POLYGONS.values()]
        cv2.fillPoly(cut, polys, 1)
        cv2.polylines(cut, polys, True, 1, int(round(2 / mm_per_px)))
        skin = (oval.astype(bool) | polygon_masks(face.points, big.shape[:2], mm_per_px=mm_per_px)["face"]) \
            & ~cut.astype(bool)
        rgb, micro = skin_microtexture(big, skin, mm_per_px=mm_per_px, rng=np.random.default_rng(seed))
        return MasterFace(rgb, face, mm_per_px, masks, skin, micro)
    finally:
        if own:
            lm.close()
