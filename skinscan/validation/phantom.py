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
from pathlib import Path

import cv2
import numpy as np

from ..color import HAEMOGLOBIN_OD, MELANIN_OD, linear_to_srgb8, luminance, rgb_to_lab, srgb_to_linear

__all__ = [
    "HAEMOGLOBIN_OD", "MELANIN_OD", "TEXTURE_BAND_MM",
    "add_redness", "redness_for_delta_a", "add_melanin", "darken_to_ita",
    "add_pores", "add_scars", "add_spots", "add_lines", "add_texture", "skin_microtexture",
    "exposure", "white_balance", "jpeg_roundtrip", "sensor_noise", "similarity", "turn_head", "photograph",
    "face_warp_map", "expression_displacement", "mouth_in_frame", "EXPRESSIONS", "grow_pores", "LogNormal", "DepthByDiameter",
    "REAL_SKIN", "SKIN_PORES", "FAINT_PORES", "PORE_OD_RGB", "measure_skin", "pore_labels",
    "MasterFace", "master_face", "closeup_face", "MASTER_EXPOSURE_EV",
]

#: Skin-texture band, mm: a difference of Gaussians with sigmas of half these sizes.
TEXTURE_BAND_MM = (0.2, 2.0)

_GREY = np.ones(3, dtype=np.float32)


@dataclass(frozen=True)
class LogNormal:
    """A log-normal spread of sizes or depths: ``median x exp(N(0, log_sd))``, clipped to [lo, hi]."""

    median: float
    log_sd: float
    lo: float = 0.0
    hi: float = np.inf

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.clip(self.median * np.exp(rng.normal(0.0, self.log_sd, n)), self.lo, self.hi)


@dataclass(frozen=True)
class DepthByDiameter:
    """Pore depths that grow with the diameter, as a funnel's, up to a limit: ``min(od_per_mm x
    diameter, most) x exp(N(0, log_sd))``, at most ``hi`` (OD). On the real close-up the labelled pores' mean
    profiles deepen from 0.046 to 0.076 OD between labels of 0.3-0.45 and 0.45-0.6 mm, and the
    larger ones (0.6-0.9 mm) are no deeper (0.068)."""

    od_per_mm: float
    log_sd: float
    most: float = np.inf
    hi: float = np.inf

    def draw(self, diameters_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        d = np.asarray(diameters_mm, float)
        depth = np.minimum(self.od_per_mm * d, self.most) * np.exp(rng.normal(0.0, self.log_sd, d.size))
        return np.minimum(depth, self.hi)


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


def _draw(spec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of a size or depth spec: a number (all alike), a (lo, hi) uniform range or a :class:`LogNormal`."""
    if isinstance(spec, LogNormal):
        return spec.draw(n, rng)
    if np.ndim(spec) == 0:
        return np.full(n, float(spec))
    lo, hi = spec
    return rng.uniform(float(lo), float(hi), size=n)


def _spaced(cand: np.ndarray, taken: np.ndarray, spacing_px: float) -> np.ndarray:
    """Which candidate centres (in order) lie at least ``spacing_px`` from every point of ``taken``
    and from every earlier candidate (Matern's second thinning: an earlier candidate blocks a later
    one even when it is itself blocked)."""
    from scipy.spatial import cKDTree

    ok = np.ones(len(cand), bool)
    if len(cand) == 0 or spacing_px <= 0:
        return ok
    if len(taken):
        ok &= ~np.isfinite(cKDTree(taken).query(cand, distance_upper_bound=spacing_px)[0])
    pairs = cKDTree(cand).query_pairs(spacing_px, output_type="ndarray")
    ok[pairs.max(axis=1)] = False
    return ok


def _place_blobs(mask, *, mm_per_px, density_per_cm2, diameter_mm, irregularity, rng, placement,
                 depth=None, spacing_mm=0.0, avoid_px=None) -> dict:
    """Blob centres, diameters and outline harmonics: Poisson(density x area) blobs, each centred at
    least its radius + 1 px inside the mask (rejected draws are redrawn), or a prefix of ``placement``.

    With ``spacing_mm``, centres keep at least that distance from each other and from ``avoid_px``
    (the centres of pores the skin already has): candidates are drawn in rounds and each round
    keeps those that clash with nothing kept before nor with an earlier candidate of its own. With
    a ``depth`` spec that is not a number, each blob gets its own depth (record ``depths``).
    """
    area = _area_cm2(mask, mm_per_px)
    if placement is not None:
        n = min(len(placement["diameters_px"]), int(round(float(density_per_cm2) * area)))
        c = np.asarray(placement["centres_px"], float)[:n].reshape(-1, 2)
        d = np.asarray(placement["diameters_px"], float)[:n]
        shape = np.asarray(placement["shape"], float)[:n].reshape(-1, 4)
        rec = {"depths": np.asarray(placement["depths"], float)[:n]} if "depths" in placement else {}
    else:
        rng = _need_rng(rng)
        n = int(rng.poisson(float(density_per_cm2) * area))
        d = _draw(diameter_mm, n, rng) / float(mm_per_px)
        shape = np.c_[irregularity * rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n),
                      irregularity * rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n)]
        dist, (ys, xs) = _distance_inside(mask), np.nonzero(mask)
        if spacing_mm > 0:
            c, d, shape = _place_spaced(mask, dist, ys, xs, d, shape, spacing_px=float(spacing_mm) / float(mm_per_px),
                                        avoid_px=avoid_px, rng=rng)
        else:
            c, todo = np.zeros((n, 2)), np.arange(n)
            for _ in range(30 if ys.size else 0):  # rounds of redraws, not a loop over blobs
                k = rng.integers(0, ys.size, size=todo.size)
                ok = dist[ys[k], xs[k]] >= d[todo] / 2 + 1
                c[todo[ok]] = np.c_[xs[k[ok]], ys[k[ok]]] + rng.uniform(-0.5, 0.5, (int(ok.sum()), 2))
                todo = todo[~ok]
            keep = np.setdiff1d(np.arange(n), todo)  # blobs too big for the mask are dropped
            c, d, shape = c[keep], d[keep], shape[keep]
        n, rec = len(d), {}
        if isinstance(depth, DepthByDiameter):
            rec["depths"] = depth.draw(d * float(mm_per_px), rng)
        elif isinstance(depth, LogNormal) or np.ndim(depth) == 1:
            rec["depths"] = _draw(depth, n, rng)
    return {"count": n, "centres_px": c, "diameters_px": d, "diameters_mm": d * float(mm_per_px),
            "shape": shape, "area_cm2": area, "density_per_cm2": n / area if area else 0.0, **rec}


def _place_spaced(mask, dist, ys, xs, d, shape, *, spacing_px, avoid_px, rng):
    """Centres for the blobs ``d`` (px), each wholly inside the mask and at least ``spacing_px``
    from the others and from ``avoid_px``; the blobs that find no room within 40 rounds of
    candidates are dropped (the last ones)."""
    taken = np.asarray(avoid_px, float).reshape(-1, 2) if avoid_px is not None else np.zeros((0, 2))
    c = np.zeros((0, 2))
    for _ in range(40 if ys.size and len(d) else 0):  # rounds of candidates, not a loop over blobs
        todo = len(d) - len(c)
        if todo <= 0:
            break
        k = rng.integers(0, ys.size, size=4 * todo + 16)
        k = k[dist[ys[k], xs[k]] >= d.max() / 2 + 1]
        cand = np.c_[xs[k], ys[k]] + rng.uniform(-0.5, 0.5, (k.size, 2))
        cand = cand[_spaced(cand, taken, spacing_px)][:todo]
        taken, c = np.concatenate([taken, cand]), np.concatenate([c, cand])
    return c, d[:len(c)], shape[:len(c)]


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
    if "depths" in rec:  # each blob its own depth
        val = val * np.asarray(rec["depths"], float)[:, None, None]
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h) & (val != 0)
    flat = np.broadcast_to(ys * w + xs, val.shape)[ok]
    return np.bincount(flat, val[ok], minlength=h * w).reshape(h, w).astype(np.float32)


def _blobs(rgb, mask, vec, amount, *, edge, shading=0.0, light_deg=90.0, **place):
    rgb, m = _check(rgb, mask)
    rec = _place_blobs(m, depth=amount, **place)
    amount = 1.0 if "depths" in rec else amount
    field = _blob_field(m.shape, rec, edge=edge, shading=shading, light_deg=light_deg)
    sl = _bbox(field != 0, 1)
    return (rgb.copy() if sl is None else _apply_od(rgb, sl, float(amount) * field[sl][..., None] * vec)), rec


def add_pores(rgb, mask, *, mm_per_px: float, density_per_cm2: float, diameter_mm=(0.15, 0.3),
              depth=0.08, od_rgb=(1.0, 1.0, 1.0), edge: float = 0.5, spacing_mm: float = 0.0, avoid_px=None,
              rng: np.random.Generator | None = None, placement: dict | None = None):
    """Add round pores: grey depressions with a dark core of OD ``depth``, half as dark at the diameter.

    The count is Poisson(density x mask area); centres are uniform over the mask where the whole
    pore fits (at least its radius + 1 px from the edge), and with ``spacing_mm`` at least that far
    from each other and from ``avoid_px`` (real pores keep apart: see :data:`REAL_SKIN`).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    mask : ndarray of bool, shape (H, W)
    mm_per_px : float
    density_per_cm2 : float
        Pores per cm^2 of mask.
    diameter_mm : (float, float) or LogNormal
        Diameters, mm: a uniform range or a :class:`LogNormal` (visible facial pores are about
        0.2-0.6 mm).
    depth : float, LogNormal or DepthByDiameter
        OD at the core in green (0.08 is 17 % darker); a distribution gives each pore its own.
    od_rgb : (float, float, float)
        OD in red, green and blue per unit of ``depth``: (1, 1, 1) is grey, a shadow; real pores
        are (0.77, 1, 1.11), see :data:`REAL_SKIN`.
    edge : float
        The profile: full depth out to 1 - ``edge`` radii, a raised cosine to nothing at 1 + ``edge``
        radii (half depth at the diameter). 0.5 has a flat floor; 1.0 is a bell with none, as real
        pores' mean profiles are.
    spacing_mm : float
        Least distance between pore centres, mm.
    avoid_px : ndarray, shape (N, 2), optional
        Centres (x, y), px, of pores already there, kept ``spacing_mm`` away from.
    rng : numpy.random.Generator
    placement : dict, optional
        An earlier record: its first ``round(density x area)`` pores are drawn again; rng unused.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``count``, ``centres_px`` (N, 2) as (x, y), ``diameters_px`` and ``diameters_mm`` (N,),
        ``shape`` (N, 4) outline harmonics, ``area_cm2``, ``density_per_cm2`` (realised), and
        ``depths`` (N,) when ``depth`` is a distribution.
    """
    vec = np.asarray(od_rgb, np.float32).reshape(3)
    return _blobs(rgb, mask, vec, depth, edge=edge, mm_per_px=mm_per_px, density_per_cm2=density_per_cm2,
                  diameter_mm=diameter_mm, irregularity=0.0, rng=rng, placement=placement,
                  spacing_mm=spacing_mm, avoid_px=avoid_px)


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
                noise_band_mm=None, rng: np.random.Generator):
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
    noise = _band(rng.standard_normal(inside.shape).astype(np.float32), mm_per_px, noise_band_mm or band_mm)
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


#: Real facial skin: :func:`measure_skin` of the labelled close-up of Pore-Net (``tests/data/porenet``:
#: 13.3 px/mm, 1309 pores labelled by others in 21.6 cm^2 of glabella, nose and cheek; cheek 68.4 per
#: cm^2, glabella and nose 51.0). Percentiles are (10, 50, 90) but for the spacing (1, 10, 50); the
#: relief is (robust, plain) SD: its tails are hairs, glare and dips nobody labelled. A Poisson
#: pattern of the pores' density would put the nearest pore at 0.2 mm for one pore in ten; real
#: pores keep apart (0.52 mm).
REAL_SKIN = {
    "pore_density_per_cm2": 60.7,
    "pore_diameter_mm": (0.294, 0.379, 0.550),
    "pore_spacing_mm": (0.401, 0.518, 0.737),
    "pore_contrast_od": (0.0165, 0.0322, 0.0590),
    "share_over_threshold": 0.766,
    "relief_band_od": (0.0114, 0.0176),
    "relief_dog_od": (0.0064, 0.0099),
    "noise_od": 0.0034,
    "detector": {"density_per_cm2": 63.4, "precision": 0.706, "recall": 0.738, "unlabelled_per_cm2": 18.6},
}

#: Real pores' colour: their optical density in red, green and blue per unit of green, the mean over
#: the labelled pores of the core's OD over that of a ring 0.1-0.3 mm outside the label. Grey is
#: (1, 1, 1); a pore is darker in blue than in red (unmixed: about half a grey shadow, half melanin,
#: a little blood), which keeps its darkness out of the grey shading that scars are read on.
PORE_OD_RGB = (0.77, 1.0, 1.11)

#: The phantom's visible pores, chosen to reproduce :data:`REAL_SKIN` on the master face (12 px/mm).
#: Diameters are half-depth diameters: a hand-drawn label outlines about 1.33x that (the labelled
#: pores' mean profile is at half its depth 0.135 mm from the centre for labels of 0.37 mm), so
#: the labels' median of 0.38 mm is 0.285 mm here. The profile is a bell (``edge`` 1) as the real
#: pores' mean profiles are, not a flat-floored pit. Depths grow with the diameter as real pores'
#: do (0.25 OD per mm, up to 0.08; spread 0.4 in log) and stop at 0.1 OD: the real close-up shows no
#: scar, and its photos under the protocol's nuisances 0.04 per cm^2, while deeper large pores read
#: as scars (uncapped, 0.15-0.33 OD at 0.4-0.6 mm: 0.8 per cm^2 on the clean master; capped at 0.12:
#: 0.1-0.4 per cm^2 in its photos; at 0.1: 0-0.18). The cost is the contrast's upper tail (90th
#: percentile 0.047 against the real 0.059). Centres keep 0.45 mm apart: real pores' nearest
#: neighbour is 0.52 mm at the 10th percentile (1st: 0.40), where a Poisson pattern of their
#: density would give 0.2 mm.
SKIN_PORES = {"density_per_cm2": 60.7, "diameter_mm": LogNormal(0.285, 0.27, 0.1, 0.6),
              "depth": DepthByDiameter(0.25, 0.4, most=0.08, hi=0.1), "od_rgb": PORE_OD_RGB, "edge": 1.0,
              "spacing_mm": 0.45}
#: Faint follicle openings nobody labelled: with them (and the relief) the detector finds on the master
#: about what it finds on the real skin between the labels (14 unlabelled detections per cm^2 against 19;
#: without them 0.4).
FAINT_PORES = {"density_per_cm2": 40.0, "diameter_mm": LogNormal(0.22, 0.3, 0.08, 0.45),
               "depth": LogNormal(0.036, 0.5), "od_rgb": PORE_OD_RGB, "edge": 1.0, "spacing_mm": 0.45}


def skin_microtexture(rgb, mask, *, mm_per_px: float, rng: np.random.Generator, pores: dict | None = SKIN_PORES,
                      faint_pores: dict | None = FAINT_PORES, relief_od: float = 0.014,
                      relief_band_mm=(0.15, 0.6), mottle_od: float = 0.012):
    """Give a smooth (e.g. upscaled) face the skin of a real close-up: fine relief, mottling and dense pores.

    Relief is band-limited grey OD noise (``relief_band_mm``) of SD ``relief_od``; mottling is blood
    and melanin OD noise at 2-8 mm of SD ``mottle_od``; ``pores`` and then ``faint_pores`` (kept
    clear of the first) are :func:`add_pores` keywords. The defaults reproduce :data:`REAL_SKIN` on
    the master face (12 px/mm), measured as it was measured on the real close-up:

    ====================================  =====================  =====================
    :func:`measure_skin`                  real close-up          master face
    ====================================  =====================  =====================
    labelled pores / cm^2                 60.7                   63.5
    label diameter, mm (10, 50, 90%)      0.29, 0.38, 0.55       0.27, 0.38, 0.54
    nearest pore, mm (1, 10, 50%)         0.40, 0.52, 0.74       0.45, 0.50, 0.72
    contrast, OD (10, 50, 90%)            0.017, 0.032, 0.059    0.016, 0.031, 0.047
    share over the detector's 0.023       77%                    75%
    relief 0.1-0.6 mm, OD (robust, SD)    0.0114, 0.0176         0.0113, 0.0118
    detector's band-pass between pores    0.0064, 0.0099         0.0074, 0.0077
    pixel noise, OD                       0.0034                 0.0030
    detections / cm^2                     63.4                   60.3
    precision, recall against labels     0.71, 0.74             0.77, 0.73
    unlabelled detections / cm^2          18.6                   13.9
    ====================================  =====================  =====================

    The master's "labels" are its visible pores at 1.33x their half-depth diameter (see
    :data:`SKIN_PORES`). Not matched: the real contrast's upper tail (deeper pores read as scars,
    see :data:`SKIN_PORES`), the relief's tails (hairs and glare are not drawn) and a quarter of
    the unlabelled dips. The relief starts at 0.15 mm: from 0.1 mm it made the master's pixel
    noise 0.008 OD, where the real photo's optics leave 0.0034.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    record : dict
        ``pores`` and ``faint_pores`` (the :func:`add_pores` records, None when not drawn),
        ``relief_od``, ``mottle_od``.
    """
    rgb, m = _check(rgb, mask)
    rng = _need_rng(rng)
    sl = _bbox(m, int(8 / mm_per_px) + 2)
    rec = {"pores": None, "faint_pores": None, "relief_od": relief_od, "mottle_od": mottle_od}
    if sl is None:
        return rgb.copy(), rec
    soft = _blur(m[sl], 3.0)

    def noise(lo_mm, hi_mm):
        n = _band(rng.standard_normal(soft.shape).astype(np.float32), mm_per_px, (lo_mm, hi_mm))
        return (n / max(float(n[m[sl]].std()), 1e-9) * soft)[..., None]

    od = relief_od * noise(*relief_band_mm) * _GREY
    od += mottle_od * (noise(2.0, 8.0) * HAEMOGLOBIN_OD + noise(2.0, 8.0) * MELANIN_OD)
    out = _apply_od(rgb, sl, od)
    if pores:
        out, rec["pores"] = add_pores(out, m, mm_per_px=mm_per_px, rng=rng, **pores)
    if faint_pores:
        taken = rec["pores"]["centres_px"] if rec["pores"] else None
        out, rec["faint_pores"] = add_pores(out, m, mm_per_px=mm_per_px, rng=rng, avoid_px=taken, **faint_pores)
    return out, rec


def pore_labels(shape_hw, centres_px, diameters_px) -> np.ndarray:
    """An int32 label image (0: none, i + 1: pore i) of discs of the given diameters (at least 1.5 px).

    Where two discs overlap the later pore keeps the pixels.
    """
    h, w = shape_hw
    c = np.asarray(centres_px, float).reshape(-1, 2)
    r = np.maximum(np.asarray(diameters_px, float).reshape(-1), 1.5) / 2
    out = np.zeros(h * w, np.int32)
    if len(r) == 0:
        return out.reshape(h, w)
    half = int(np.ceil(r.max())) + 1
    off = np.arange(-half, half + 1)
    xs = np.round(c[:, 0]).astype(np.int64)[:, None, None] + off[None, None, :]
    ys = np.round(c[:, 1]).astype(np.int64)[:, None, None] + off[None, :, None]
    ok = (np.hypot(xs - c[:, 0, None, None], ys - c[:, 1, None, None]) <= r[:, None, None]) \
        & (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    ids = np.broadcast_to(np.arange(1, len(r) + 1, dtype=np.int32)[:, None, None], ok.shape)
    np.maximum.at(out, (ys * w + xs)[ok], ids[ok])
    return out.reshape(h, w)


def measure_skin(rgb, roi, labels, *, mm_per_px: float) -> dict:
    """Pores and relief of a skin photo with its pores labelled: the measurement behind :data:`REAL_SKIN`.

    Everything is read on the green optical density, as the pore detector reads it.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    roi : ndarray of bool, shape (H, W)
        Where the labels are complete.
    labels : ndarray of int, shape (H, W)
        One id per labelled pore (0: none), e.g. ``cv2.connectedComponents`` of a label mask, or
        :func:`pore_labels`. A pore counts when its centroid lies in ``roi``.
    mm_per_px : float

    Returns
    -------
    dict
        ``pore_density_per_cm2``; ``pore_diameter_mm`` (10th, 50th, 90th percentile of the labels'
        equivalent diameters); ``pore_spacing_mm`` (1st, 10th, 50th percentile of the distance to
        the nearest labelled pore); ``pore_contrast_od`` (10th, 50th, 90th percentile of the
        detector's band-pass maximum inside each label) and ``share_over_threshold`` (of labels
        whose maximum reaches the detector's ``min_contrast_od``); ``relief_band_od`` and
        ``relief_dog_od``: (robust, plain) SD over the ROI's skin more than 4 px from any label of
        the 0.1-0.6 mm band (DoG sigmas 0.05, 0.3 mm) and of the detector's band-pass;
        ``noise_od`` (the detector's noise estimate); ``detector``: what
        :func:`~skinscan.metrics.pores.detect_pores` finds in the ROI (``density_per_cm2``, and
        against the labels within 0.26 mm, ``precision``, ``recall``, ``unlabelled_per_cm2``).
    """
    from scipy.spatial import cKDTree

    from .labelled import score_detections
    from ..metrics import SkinImage
    from ..metrics.stats import robust_sigma
    from ..metrics.pores import DETECTOR, band_pass, detect_pores, noise_sd_od

    rgb, roi = _check(rgb, roi)
    labels = np.asarray(labels)
    px = 1.0 / float(mm_per_px)
    od = SkinImage(rgb, mm_per_px=mm_per_px).green_od
    n = int(labels.max())
    ids = labels.ravel()
    count = np.bincount(ids, minlength=n + 1)[1:].astype(float)
    yy, xx = np.indices(labels.shape)
    cx = np.bincount(ids, xx.ravel(), minlength=n + 1)[1:] / np.maximum(count, 1)
    cy = np.bincount(ids, yy.ravel(), minlength=n + 1)[1:] / np.maximum(count, 1)
    h, w = roi.shape
    keep = (count > 0) & roi[np.clip(np.rint(cy).astype(int), 0, h - 1), np.clip(np.rint(cx).astype(int), 0, w - 1)]
    area_cm2 = _area_cm2(roi, mm_per_px)
    diam = 2 * np.sqrt(count[keep] / np.pi) / px
    centres = np.c_[cx, cy][keep]
    nearest = cKDTree(centres).query(centres, k=2)[0][:, 1] / px if len(centres) > 1 else np.zeros(0)
    contrast = band_pass(od, DETECTOR["centre_sigma_mm"] * px, DETECTOR["surround_sigma_mm"] * px, roi)
    peak = np.full(n + 1, -np.inf)
    np.maximum.at(peak, ids, contrast.ravel())
    peak = peak[1:][keep]
    away = roi & ~cv2.dilate((labels > 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))).astype(bool)
    away = cv2.erode(away.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    band = _blur(od, 0.05 * px) - _blur(od, 0.3 * px)
    found = detect_pores(od, roi, mm_per_px=mm_per_px)
    dots = np.zeros(roi.shape, bool)
    dots[np.clip(np.rint(centres[:, 1]).astype(int), 0, h - 1), np.clip(np.rint(centres[:, 0]).astype(int), 0, w - 1)] = True
    score = score_detections(np.c_[found["x"], found["y"]], dots, roi, tolerance_px=0.26 * px)

    def spread(v):
        return (round(robust_sigma(v), 4), round(float(np.std(v)), 4))

    return {
        "pore_density_per_cm2": len(centres) / area_cm2,
        "pore_diameter_mm": tuple(np.percentile(diam, [10, 50, 90]).round(3)),
        "pore_spacing_mm": tuple(np.percentile(nearest, [1, 10, 50]).round(3)),
        "pore_contrast_od": tuple(np.percentile(peak, [10, 50, 90]).round(4)),
        "share_over_threshold": float(np.mean(peak >= DETECTOR["min_contrast_od"])),
        "relief_band_od": spread(band[away]),
        "relief_dog_od": spread(contrast[away]),
        "noise_od": noise_sd_od(od, roi),
        "detector": {"density_per_cm2": score.detections / area_cm2, "precision": score.precision,
                     "recall": score.recall, "unlabelled_per_cm2": (score.detections - score.matched) / area_cm2},
    }


def grow_pores(rgb, centres_px, diameters_px, *, growth_mm: float, mm_per_px: float, reach: float = 0.75):
    """Enlarge pores where they are: each one's neighbourhood magnified so that its diameter grows by ``growth_mm``.

    Pore i (centre c, diameter d) is magnified by k = 1 + growth / d within ``reach`` x d of its
    centre, which holds a whole pore of :func:`add_pores` (its profile ends at 0.75 d), whatever
    its depth profile: the pore keeps its depth and shape and grows by ``growth_mm`` (a real
    pore, too, whose diameter ``diameters_px`` estimates). The skin of a ring as wide as the growth
    around it is compressed to make room. One remap (Lanczos) of the displaced pixels; the rest of
    the image is unchanged, and ``growth_mm`` 0 returns it as it is.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    centres_px : ndarray, shape (N, 2)
        Pore centres (x, y), px.
    diameters_px : ndarray, shape (N,)
    growth_mm : float
        Added to every pore's diameter (negative: shrink).
    mm_per_px : float

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
    """
    rgb = _check(rgb)[0]
    c = np.asarray(centres_px, float).reshape(-1, 2)
    d = np.asarray(diameters_px, float).reshape(-1)
    grow = float(growth_mm) / float(mm_per_px)
    if grow == 0 or len(d) == 0:
        return rgb.copy()
    h, w = rgb.shape[:2]
    a = reach * d                     # magnified disc, source radius
    k = 1 + grow / d
    r1 = k * a                        # ... its radius in the output
    r2 = r1 + max(abs(grow), 1.0) * 2  # end of the compressed ring
    half = int(np.ceil(r2.max())) + 1
    off = np.arange(-half, half + 1)
    xs = np.round(c[:, 0]).astype(np.int64)[:, None, None] + off[None, None, :]
    ys = np.round(c[:, 1]).astype(np.int64)[:, None, None] + off[None, :, None]
    dx, dy = xs - c[:, 0, None, None], ys - c[:, 1, None, None]
    rho = np.hypot(dx, dy)
    # How far each output pixel's source lies inwards of it: rho (1 - 1/k) inside the magnified
    # disc, falling linearly to 0 across the ring (continuous, and monotone for growth > 0).
    kk, aa, rr1, rr2 = (v[:, None, None] for v in (k, a, r1, r2))
    inward = np.where(rho <= rr1, rho * (1 - 1 / kk), (rr1 - aa) * np.clip((rr2 - rho) / (rr2 - rr1), 0, 1))
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h) & (rho < rr2)
    flat, near = np.broadcast_to(ys * w + xs, rho.shape)[ok], (rho / rr2)[ok]
    # Where two pores' neighbourhoods overlap (dense pores), a pixel follows the pore it lies
    # deeper inside of: summed, the two pulls distorted both pores (grown by 0.1 mm, dense pores
    # read +0.066 mm; isolated ones +0.0995).
    best = np.full(h * w, np.inf)
    np.minimum.at(best, flat, near)
    own = near == best[flat]
    dx, dy = (np.broadcast_to(v, rho.shape)[ok][own] for v in (dx, dy))
    flat, u = flat[own], inward[ok][own] / np.maximum(rho[ok][own], 1e-9)
    map_x = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    map_x.reshape(-1)[flat] -= (u * dx).astype(np.float32)
    map_y.reshape(-1)[flat] -= (u * dy).astype(np.float32)
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)


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


#: The eyes' lid contours as (upper, lower) pairs of MediaPipe mesh ids facing each other, outer
#: corner to inner; and the mouth corners. A squint moves each pair together, a smile the corners up.
LID_PAIRS = {"right": ((246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155)),
             "left": ((466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382))}
MOUTH_CORNERS = (61, 291)
#: Expressions: ``squint`` halves each eye's opening (lids move towards each other by a quarter of it
#: each, the skin around them along, fading over ~2.5 mm); ``smile`` raises both mouth corners by
#: 3 mm along the face's vertical, the cheeks and lips around them along, fading over ~8 mm.
EXPRESSIONS = ("none", "squint", "smile")
SMILE_RAISE_MM = 3.0


def _spread(points: np.ndarray, ctrl: np.ndarray, disp: np.ndarray, sigma_px: float) -> np.ndarray:
    """Displacements (N, 2) of every point from those of the control points: their own on the controls,
    elsewhere a Gaussian-weighted mean of the controls', faded by the weight of the nearest control."""
    d2 = ((points[:, None, :] - points[ctrl][None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma_px ** 2))
    out = (k @ disp) / np.maximum(k.sum(1, keepdims=True), 1e-12) * k.max(1, keepdims=True)
    out[ctrl] = disp
    return out


def _up(face) -> np.ndarray:
    """Unit vector (image x, y) of the face's vertical, from the mouth towards the eyes."""
    p = face.points
    across = p[263] - p[33]
    up = np.array([across[1], -across[0]]) / max(float(np.linalg.norm(across)), 1e-9)
    mouth, eyes = p[list(MOUTH_CORNERS)].mean(0), (p[263] + p[33]) / 2
    return up if up @ (eyes - mouth) > 0 else -up


def mouth_in_frame(face, shape_hw, *, mm_per_px: float, margin_mm: float = SMILE_RAISE_MM + 2.0) -> bool:
    """Whether both mouth corners lie at least ``margin_mm`` inside the photo (a smile can be drawn)."""
    c = face.points[list(MOUTH_CORNERS)]
    m = margin_mm / mm_per_px
    return bool(np.all((c >= m) & (c <= np.array(shape_hw[::-1]) - 1 - m)))


def expression_displacement(face, kind: str, *, mm_per_px: float) -> np.ndarray:
    """How far (px) each of the 468 mesh points moves for an expression (see :data:`EXPRESSIONS`), shape (468, 2).

    A squint of closed eyes moves nothing (their opening is nil already).
    """
    if kind not in EXPRESSIONS:
        raise ValueError(f"expression: expected one of {EXPRESSIONS}, got {kind!r}")
    p = face.points[:468]
    if kind == "none":
        return np.zeros_like(p)
    if kind == "squint":
        pairs = np.array([pr for eye in LID_PAIRS.values() for pr in eye])
        opening = p[pairs[:, 1]] - p[pairs[:, 0]]
        ctrl = np.r_[pairs[:, 0], pairs[:, 1], [33, 133, 263, 362]]  # the corners stay
        disp = np.r_[opening / 4, -opening / 4, np.zeros((4, 2))]
        return _spread(p, ctrl, disp, 2.5 / mm_per_px)
    raise_px = SMILE_RAISE_MM / mm_per_px * _up(face)
    return _spread(p, np.array(MOUTH_CORNERS), np.tile(raise_px, (2, 1)), 8.0 / mm_per_px)


def face_warp_map(face, shape_hw, *, mm_per_px: float, yaw_deg: float = 0.0, expression: str = "none"):
    """The backward map of a head turn and/or an expression: for each output pixel, where it comes from.

    The 478-point mesh is moved (an expression's displacement, then a turn of ``yaw_deg`` about the
    head's vertical axis, > 0 towards the image right, in 3-D with MediaPipe's own depths,
    projected orthographically) and the photo is warped piecewise-affinely from the old to the new
    triangle positions; the canonical frame's outer ring (the hairline and background around the
    face) stays put, so the face blends into its surroundings. Triangles are drawn far to near, so
    the nearer side hides what turns away. A squint's lids close over the eye: inside the narrowed
    openings the eye itself is only turned.

    Returns
    -------
    (map_x, map_y) : ndarrays, shape ``shape_hw``, float32
        Source x and y of every output pixel (``cv2.remap``'s maps); None when nothing moves.
    """
    from ..align import canonical_frame, photo_vertices

    if not yaw_deg and expression == "none":
        return None
    frame = canonical_frame()
    src = photo_vertices(face, frame, mm_per_px=mm_per_px)
    moved = src.copy()
    moved[:468] += expression_displacement(face, expression, mm_per_px=mm_per_px)
    (map_x, map_y), dst = _turned_map(face, frame, src, moved, yaw_deg, shape_hw)
    if expression == "squint":
        # Lids slide over the eye; they do not squash it. Inside the narrowed openings the eye is
        # as the turn alone leaves it (an iris squashed with the lids read 6-7% smaller to MediaPipe,
        # and so did the whole face's scale).
        (still_x, still_y), _ = _turned_map(face, frame, src, src, yaw_deg, shape_hw)
        opening = np.zeros(shape_hw, np.uint8)
        for (outer, inner), pairs in zip(((33, 133), (263, 362)), LID_PAIRS.values()):
            ring = [outer, *(u for u, _ in pairs), inner, *(lo for _, lo in reversed(pairs))]
            cv2.fillPoly(opening, [np.round(dst[ring] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        # The lid margins (2 px, what a bilinear read of a lid point reaches) stay the lids'.
        inside = cv2.erode(opening, np.ones((5, 5), np.uint8)).view(bool)
        map_x[inside], map_y[inside] = still_x[inside], still_y[inside]
    return map_x, map_y


def _turned_map(face, frame, src: np.ndarray, moved: np.ndarray, yaw_deg: float, shape_hw):
    """The backward map taking the mesh from ``src`` to ``moved`` turned by ``yaw_deg``, and the
    turned vertices (see :func:`face_warp_map`)."""
    from ..align import rasterise_triangles, triangle_affines

    p, z = moved[:468], face.z[:468]
    c, cz = p.mean(axis=0), z.mean()
    t = np.radians(yaw_deg)
    dst = moved.copy()
    dst[:468, 0] = c[0] + (p[:, 0] - c[0]) * np.cos(t) - (z - cz) * np.sin(t)
    depth = np.concatenate([(p[:, 0] - c[0]) * np.sin(t) + (z - cz) * np.cos(t), np.full(len(src) - 468, z.max())])
    tris = frame.triangles[np.argsort(-depth[frame.triangles].mean(axis=1), kind="stable")]
    h, w = shape_hw
    index = rasterise_triangles(dst, tris, (h, w))
    aff = triangle_affines(src, dst, tris)
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    inside = index >= 0
    t_in = index[inside]
    coef = [np.take(aff[:, i, j], t_in) for i in (0, 1) for j in (0, 1, 2)]
    map_x, map_y = xs.copy(), ys.copy()
    map_x[inside] = (coef[0] * xs[inside] + coef[1] * ys[inside] + coef[2]).astype(np.float32)
    map_y[inside] = (coef[3] * xs[inside] + coef[4] * ys[inside] + coef[5]).astype(np.float32)
    return (map_x, map_y), dst


def turn_head(rgb, face, *, yaw_deg: float, mm_per_px: float, expression: str = "none") -> np.ndarray:
    """The photo with the head turned by ``yaw_deg`` about its vertical axis (> 0: towards the image
    right), and optionally an expression (see :func:`face_warp_map`); bilinear."""
    rgb, _ = _check(rgb)
    maps = face_warp_map(face, rgb.shape[:2], mm_per_px=mm_per_px, yaw_deg=yaw_deg, expression=expression)
    if maps is None:
        return rgb.copy()
    return cv2.remap(rgb, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def photograph(rgb, face, *, mm_per_px: float, angle_deg: float = 0.0, scale: float = 1.0, shift_px=(0.0, 0.0),
               yaw_deg: float = 0.0, expression: str = "none", fit_frame: bool = False,
               interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """The face re-photographed: turned, with an expression, rotated, scaled and shifted, sampled once.

    A camera samples the scene once: the head turn and expression (:func:`face_warp_map`) and the
    similarity (as :func:`similarity`, about the image centre) are composed into one backward map
    and the photo is resampled once (bicubic). Resampled twice (a bilinear turn, then a bicubic
    similarity) the real close-up lost 10% of its detected pores to a turn of 8 degrees, which
    foreshortens the skin by 1%; sampled once, 2.5% (50.1 -> 48.9 per cm^2; Lanczos: 46.3).

    Parameters
    ----------
    fit_frame : bool
        The frame grows and shrinks with ``scale``, so the whole photo stays in it (a close-up that
        fills its frame); otherwise the frame keeps its size and the border is reflected.

    Returns
    -------
    ndarray, uint8, shape (H, W, 3): (H, W) the input's, or scaled by ``scale`` with ``fit_frame``.
    """
    rgb, _ = _check(rgb)
    h, w = rgb.shape[:2]
    out_h, out_w = (int(round(h * scale)), int(round(w * scale))) if fit_frame else (h, w)
    mat = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(angle_deg), float(scale))
    mat[:, 2] += np.asarray(shift_px, float) + [(out_w - w) / 2, (out_h - h) / 2]
    inv = cv2.invertAffineTransform(mat)
    ys, xs = np.mgrid[:out_h, :out_w].astype(np.float32)
    qx = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]).astype(np.float32)
    qy = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]).astype(np.float32)
    maps = face_warp_map(face, (h, w), mm_per_px=mm_per_px, yaw_deg=yaw_deg, expression=expression)
    if maps is not None:  # the mesh warp's map read where the similarity lands (it is smooth: bilinear)
        qx, qy = (cv2.remap(m, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for m in maps)
    return cv2.remap(rgb, qx, qy, interpolation, borderMode=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class MasterFace:
    """A subject of the protocol: a face photo with known skin, its landmarks, scale, regions and pores.

    Attributes
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
    face : FaceLandmarks
    mm_per_px : float
    masks : dict of str to ndarray of bool
        ``region_masks`` of the face, plus ``forehead_below_fringe`` (the forehead without the
        extension towards the hairline, which the astronaut's fringe covers).
    skin : ndarray of bool
        All facial skin (the micro-texture was given to it, on the sample face).
    microtexture : dict or None
        The :func:`skin_microtexture` record (None for a real photo's own skin).
    pores : dict
        The face's visible pores: ``centres_px`` (N, 2), ``diameters_px`` (N,); and ``avoid_px``,
        every pore-like dip a new pore keeps clear of.
    name : str
    fills_frame : bool
        The face fills the photo (a close-up): re-photographed, the frame follows its scale.
    """

    rgb: np.ndarray
    face: object
    mm_per_px: float
    masks: dict
    skin: np.ndarray
    microtexture: dict | None
    pores: dict = None
    name: str = "sample"
    fills_frame: bool = False


#: Crop of ``skimage.data.astronaut()`` around the face (x0, y0, x1, y1) and its upscale to ~12 px/mm.
ASTRONAUT_CROP_XYXY = (170, 50, 280, 190)
ASTRONAUT_UPSCALE = 17.0
MASTER_SEED = 20260105
#: The real close-up (Pore-Net, Apache-2.0; see tests/data/porenet/README.md): 13.3 px/mm, eyes closed.
CLOSEUP_PHOTO = Path(__file__).resolve().parents[2] / "tests" / "data" / "porenet" / "photo.png"


def _facial_skin(face, shape_hw, mm_per_px: float) -> np.ndarray:
    """All facial skin of a photo: the face oval and the regions, less the eyes, brows, lips and nostrils (2 mm wider)."""
    from ..landmark_ids import FACE_OVAL
    from ..regions import EXCLUSION_POLYGONS, polygon_masks

    oval = np.zeros(shape_hw, np.uint8)
    cv2.fillPoly(oval, [np.round(face.points[FACE_OVAL]).astype(np.int32)], 1)
    cut = np.zeros_like(oval)
    polys = [np.round(face.points[list(ids)]).astype(np.int32) for ids in EXCLUSION_POLYGONS.values()]
    cv2.fillPoly(cut, polys, 1)
    cv2.polylines(cut, polys, True, 1, int(round(2 / mm_per_px)))
    return (oval.astype(bool) | polygon_masks(face.points, shape_hw, mm_per_px=mm_per_px)["face"]) & ~cut.astype(bool)


def _masks(face, rgb, mm_per_px: float) -> dict:
    from ..regions import region_masks

    masks = region_masks(face, mm_per_px=mm_per_px, rgb=rgb)
    masks["forehead_below_fringe"] = region_masks(face, mm_per_px=mm_per_px, rgb=rgb,
                                                  forehead_extension_mm=0.0)["forehead"]
    return masks


#: The sample face's exposure relative to the astronaut photo's (see :func:`master_face`).
MASTER_EXPOSURE_EV = -0.3


def master_face(landmarker=None, *, seed: int = MASTER_SEED, px_per_mm: float | None = None) -> MasterFace:
    """Build the sample face from scikit-image's astronaut (a public-domain NASA photo).

    The face is cropped, denoised (film grain would upscale to blotches), upscaled 17x with
    Lanczos to about 12 px/mm (or to ``px_per_mm``), softened, exposed :data:`MASTER_EXPOSURE_EV`
    down, and given :func:`skin_microtexture`
    over all facial skin: dense pores and relief measured on real skin (:data:`REAL_SKIN`).
    Deterministic for a given ``seed`` and resolution.
    """
    from skimage import data

    from ..geometry import estimate_scale
    from ..landmarks import FaceLandmarker

    own = landmarker is None
    lm = landmarker or FaceLandmarker()
    try:
        x0, y0, x1, y1 = ASTRONAUT_CROP_XYXY
        crop = np.ascontiguousarray(data.astronaut()[y0:y1, x0:x1])
        crop = cv2.fastNlMeansDenoisingColored(crop, None, 4, 4, 5, 11)
        # The default upscale gives 11.8 px/mm; another resolution scales it (and the softening).
        f = 1.0 if px_per_mm is None else float(px_per_mm) / 11.8155
        up = ASTRONAUT_UPSCALE * f
        big = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_LANCZOS4)
        big = cv2.GaussianBlur(big, (0, 0), 3.0 * f)  # soften the interpolation's staircase
        # Exposed as a phone meters a face, not as the astronaut was: its skin reaches 252 at the 99th
        # percentile (1.6% at 250 or more), and the protocol's +0.3 EV nuisance then clipped 25% of
        # the skin, past the quality check's 15%, in a quarter of the photos.
        big = exposure(big, MASTER_EXPOSURE_EV)
        face = lm.detect(big)
        mm_per_px = estimate_scale(face).mm_per_px
        masks = _masks(face, big, mm_per_px)
        # Micro-texture over all facial skin (glare included), not only the named regions, or
        # their edges would show.
        skin = _facial_skin(face, big.shape[:2], mm_per_px)
        rgb, micro = skin_microtexture(big, skin, mm_per_px=mm_per_px, rng=np.random.default_rng(seed))
        drawn = [micro[k] for k in ("pores", "faint_pores") if micro[k]]
        pores = {"centres_px": micro["pores"]["centres_px"], "diameters_px": micro["pores"]["diameters_px"],
                 "avoid_px": np.concatenate([r["centres_px"] for r in drawn])}
        return MasterFace(rgb, face, mm_per_px, masks, skin, micro, pores, "sample", False)
    finally:
        if own:
            lm.close()


def closeup_face(landmarker=None, *, path=CLOSEUP_PHOTO) -> MasterFace:
    """The real close-up as a subject: its own skin and pores, eyes closed, filling the frame.

    Its visible pores are those :func:`skinscan.metrics.pores.detect_pores` finds on the photo
    itself over all facial skin (63 per cm^2 in the labelled region, precision 0.71 and recall 0.75
    against the labels, which cover only the image-left half): they are what a pore-size dose
    grows and what a pore-count dose keeps clear of.
    """
    from ..geometry import estimate_scale
    from ..io import load_photo
    from ..landmarks import FaceLandmarker
    from ..metrics import SkinImage
    from ..metrics.pores import detect_pores

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the real close-up is not at {path} (it ships with the source tree, tests/data/porenet)")
    own = landmarker is None
    lm = landmarker or FaceLandmarker()
    try:
        rgb = np.ascontiguousarray(load_photo(path).rgb)
        face = lm.detect(rgb)
        mm_per_px = estimate_scale(face).mm_per_px
        skin = _facial_skin(face, rgb.shape[:2], mm_per_px)
        found = detect_pores(SkinImage(rgb, mm_per_px=mm_per_px).green_od, skin, mm_per_px=mm_per_px)
        xy = np.c_[found["x"], found["y"]]
        pores = {"centres_px": xy, "diameters_px": found["diameter_mm"] / mm_per_px, "avoid_px": xy}
        return MasterFace(rgb, face, mm_per_px, _masks(face, rgb, mm_per_px), skin, None, pores, "closeup", True)
    finally:
        if own:
            lm.close()
