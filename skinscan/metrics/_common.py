"""Shared metric machinery: input checks, per-region statistics over label images, scale-space blob detection."""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from .._filters import blur, shrink, wide_blur

MaskArg = np.ndarray | Mapping[str, np.ndarray]


def as_masks(mask: MaskArg, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """A single mask becomes ``{"region": mask}``; every mask is checked against the image shape."""
    masks = {"region": mask} if isinstance(mask, np.ndarray) else dict(mask)
    for k, m in masks.items():
        if m.shape != shape:
            raise ValueError(f"mask {k!r} has shape {m.shape}, expected the image's {shape}")
    return {k: m.astype(bool, copy=False) for k, m in masks.items()}


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"expected an RGB image of shape (H, W, 3), got {getattr(rgb, 'shape', type(rgb))}")
    if rgb.dtype != np.uint8 and not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"expected uint8 or float RGB, got {rgb.dtype}")
    return rgb


def check_scale(mm_per_px: float) -> float:
    mm_per_px = float(mm_per_px)
    if not np.isfinite(mm_per_px) or mm_per_px <= 0:
        raise ValueError(f"mm_per_px must be a positive number, got {mm_per_px}")
    return mm_per_px


def region_means(values: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of a map over each mask (NaN for an empty mask), ignoring non-finite values."""
    out = {}
    finite = np.isfinite(values)
    for k, m in masks.items():
        sel = m & finite
        n = np.count_nonzero(sel)
        out[k] = float(values[sel].mean()) if n else float("nan")
    return out


def area_cm2(masks: dict[str, np.ndarray], mm_per_px: float) -> dict[str, float]:
    return {k: np.count_nonzero(m) * mm_per_px ** 2 / 100.0 for k, m in masks.items()}


def work_scale(mm_per_px: float, px_per_mm: float) -> float:
    """Resize factor taking a photo to a working resolution (never upsampling)."""
    return min(1.0, px_per_mm * mm_per_px)


def resize(img: np.ndarray, f: float) -> np.ndarray:
    """``img`` reduced by ``f``: area averaging from 2x down (fast halvings), bilinear above (a
    reduction by under 2x barely aliases, and OpenCV's area resampling of it is 7x slower)."""
    if f >= 0.999:
        return img
    h, w = img.shape[:2]
    size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
    if f <= 0.5:
        return shrink(img, size)
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), (shape[1], shape[0]),
                      interpolation=cv2.INTER_NEAREST).view(bool)


def resize_masks(img: "SkinImage", masks: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """``masks`` at another resolution, cached on ``img`` (several families share the same coarse masks)."""
    out = {}
    for k, m in masks.items():
        key = ("mask", id(m), shape)
        hit = img._cache.get(key)
        if hit is None or hit[0] is not m:
            hit = (m, resize_mask(m, shape))
            img._cache[key] = hit
        out[k] = hit[1]
    return out


def robust_sigma(values: np.ndarray, *, max_samples: int = 50_000) -> float:
    """1.4826 x median absolute deviation: the spread of the dense part, blind to sparse outliers.

    Large inputs are subsampled on a regular stride (the MAD of 50,000 values has a relative
    standard error of about 0.5%).
    """
    if values.size == 0:
        return float("nan")
    if values.size > max_samples:
        values = values[:: values.size // max_samples]
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def masked_blur(img: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of ``img`` using only pixels under ``mask`` (normalised convolution)."""
    m = mask.astype(np.float32)
    num = blur(img * m, sigma_px)
    den = blur(m, sigma_px)
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0).astype(np.float32)


def detect_dark_blobs(signal: np.ndarray, mask: np.ndarray, *, sigmas_px: np.ndarray, k_sigma: float,
                      min_contrast: float = 0.0, max_elongation: float = 4.0,
                      support_sigmas: float = 3.0, support_max_px: float = np.inf,
                      ring_min: int = 0, merge_sigmas: float = 0.0, laplacian: str = "3x3",
                      subpixel: bool = False, support_pad_px: float = 1.0) -> dict[str, np.ndarray]:
    """Scale-space maxima of the scale-normalised Laplacian of Gaussian (bright blobs of ``signal``).

    ``signal`` should be "darkness" (larger = darker, e.g. a grey optical density). Each scale's
    response is ``-sigma^2 * LoG``; a blob is a pixel that is the maximum over its 3x3 neighbourhood
    in its own and the adjacent scales, lies under ``mask``, exceeds ``k_sigma`` times the robust
    spread of that scale's response over the mask (and ``min_contrast``), and is round: the ratio
    of its Hessian eigenvalues is below ``max_elongation`` (points along lines and edges are not
    blobs; the test of Lowe 2004, section 4.1). A blob's support (a
    circle of ``support_sigmas`` sigma, at most ``support_max_px``, + ``support_pad_px``) must lie
    inside the image and under ``mask``. With ``ring_min`` > 0, a blob must also be darker (in
    ``signal`` smoothed at its scale) than at least ``ring_min`` of 8 points around it at 2 sigma:
    a pit is darker than the skin all around it, while a blob on the edge of a shadow or a fold is
    not. With ``merge_sigmas`` > 0, of two blobs closer than ``merge_sigmas`` x the larger sigma
    only the stronger is kept: the 3x3x3 neighbourhood is a size in pixels, so one wide blob with a
    flat top (a scar after an opening) could give two maxima a few pixels apart at a fine
    resolution and one at a coarse one.

    The defaults measure at the maximum's pixel. A detector that must give the same answer at
    any resolution (scars, at a working resolution of 6 px/mm or at a photo's own) takes
    ``laplacian="fourth_order"``, fourth-order central differences instead of OpenCV's 3x3
    kernel, whose error (a few % of a blob's response at 1-2 px sigma) falls on the small scales
    of a coarse grid only; and ``subpixel=True``: the roundness and ring tests at the response's
    sub-pixel peak (a quadratic through its 3x3 neighbourhood), the smoothed signal sampled
    bilinearly there (half a pixel off the peak, the Hessian ratio of a 1 mm blob at 6 px/mm is
    ~3% rounder or longer), and the support from the mask's distance transform (no pixel off
    the mask or the image within the radius, of the refined sigma, rather than 8 points rounded to
    pixels); ``x``, ``y`` are then the sub-pixel peak.

    Returns
    -------
    dict
        ``x``, ``y`` (px), ``sigma`` (px), ``response`` (blob contrast in signal units), each (N,).

    References
    ----------
    .. [1] Lindeberg T. (1998) Feature detection with automatic scale selection. IJCV 30(2):79–116.
    .. [2] Lowe D. G. (2004) Distinctive image features from scale-invariant keypoints. IJCV 60(2):91–110.
    """
    sigmas_px = np.asarray(sigmas_px, dtype=np.float64)
    n_s = len(sigmas_px)
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    h, w = signal.shape
    if min(h, w) < 3:  # no 3x3 neighbourhood: no maximum can be tested
        return {k: np.zeros(0) for k in ("x", "y", "sigma", "response")}
    stack = np.empty((n_s, h, w), dtype=np.float32)
    m = mask.astype(bool, copy=False)
    inside = np.flatnonzero(m)
    sample = inside[:: max(1, inside.size // 50_000)]
    thr = np.full(n_s, np.inf)
    found, hess, rings, offsets = [], [], [], []
    ang8 = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    # d2/dx2 + d2/dy2 by fourth-order central differences, x4 (the scale of OpenCV's 3x3 kernel)
    lap4 = np.zeros((5, 5), np.float32)
    lap4[2] += np.array([-1, 16, -30, 16, -1], np.float32) / 3
    lap4[:, 2] += lap4[2].copy()
    # One scale at a time: its response, its threshold, the points over it (a sparse set) and the
    # smoothed signal's 3x3 neighbourhood there (for the Hessian test below); the smoothed image
    # itself is not kept, which halves the memory of the scale space.
    for i, s in enumerate(sigmas_px):
        smooth = blur(signal, s)
        if laplacian == "fourth_order":
            cv2.filter2D(smooth, cv2.CV_32F, lap4 * np.float32(-s * s), dst=stack[i], borderType=cv2.BORDER_REFLECT)
        else:
            cv2.Laplacian(smooth, cv2.CV_32F, dst=stack[i], ksize=3, scale=-(s * s))
        if sample.size:
            thr[i] = max(k_sigma * robust_sigma(stack[i].reshape(-1)[sample]), min_contrast)
        if not np.isfinite(thr[i]):
            continue
        c = np.flatnonzero(cv2.compare(stack[i], float(thr[i]), cv2.CMP_GT).view(bool) & m)
        if c.size:
            cy, cx = c // w, c % w
            if subpixel:  # only this scale's 3x3 maxima can be scale-space maxima: the rest need no samples
                top = np.ones(c.size, bool)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        top &= stack[i][cy, cx] >= stack[i][np.clip(cy + dy, 0, h - 1), np.clip(cx + dx, 0, w - 1)]
                c, cy, cx = c[top], cy[top], cx[top]
            found.append(np.stack([np.full(c.size, i), cy, cx]))
            yc, xc = np.clip(cy, 1, h - 2), np.clip(cx, 1, w - 2)
            if subpixel:
                ox, oy = _quadratic_peak(np.stack([stack[i][yc + dy, xc + dx] for dy in (-1, 0, 1)
                                                   for dx in (-1, 0, 1)]))
                fx, fy = cx + ox, cy + oy
                offsets.append(np.stack([ox, oy]))
                d3 = np.array([-1.0, 0.0, 1.0])
                hess.append(_bilinear(smooth, fx[None] + np.tile(d3, 3)[:, None], fy[None] + np.repeat(d3, 3)[:, None]))
                if ring_min:
                    rings.append(_bilinear(smooth, fx, fy)[None]
                                 - _bilinear(smooth, fx[None] + 2 * s * np.cos(ang8)[:, None],
                                             fy[None] + 2 * s * np.sin(ang8)[:, None]))
                continue
            hess.append(np.stack([smooth[yc + dy, xc + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]))
            if ring_min:
                ry = np.clip(np.round(cy[None] + 2 * s * np.sin(ang8)[:, None]).astype(np.int64), 0, h - 1)
                rx = np.clip(np.round(cx[None] + 2 * s * np.cos(ang8)[:, None]).astype(np.int64), 0, w - 1)
                rings.append(smooth[cy, cx][None] - smooth[ry, rx])
    si, ys, xs = np.concatenate(found, axis=1) if found else np.zeros((3, 0), np.int64)
    nb = np.concatenate(hess, axis=1) if hess else np.zeros((9, 0), np.float32)
    ring = np.concatenate(rings, axis=1) if rings else np.zeros((8, si.size), np.float32)
    off = np.concatenate(offsets, axis=1) if offsets else np.zeros((2, si.size))
    v = stack[si, ys, xs]
    is_max = np.ones(v.shape, bool)
    for di in (-1, 0, 1):
        ii = si + di
        ok = (ii >= 0) & (ii < n_s)
        ii = np.clip(ii, 0, n_s - 1)
        for dy in (-1, 0, 1):
            yy = np.clip(ys + dy, 0, h - 1)
            for dx in (-1, 0, 1):
                if di == dy == dx == 0:
                    continue
                xx = np.clip(xs + dx, 0, w - 1)
                is_max &= ~ok | (v >= stack[ii, yy, xx])
    si, ys, xs, nb, ring, off = si[is_max], ys[is_max], xs[is_max], nb[:, is_max], ring[:, is_max], off[:, is_max]
    # Hessian of the smoothed signal at each peak (its pixel, or sub-pixel peak).
    dxx, dyy, dxy = _hessian_3x3(nb)
    tr, det = dxx + dyy, dxx * dyy - dxy * dxy
    r = max_elongation
    round_ = (det > 0) & (tr * tr * r < (r + 1) ** 2 * det)
    if ring_min:
        round_ &= (ring > 0).sum(axis=0) >= ring_min
    si, ys, xs, off = si[round_], ys[round_], xs[round_], off[:, round_]
    # Refine each blob's scale between the sampled ones: a parabola through the responses at the
    # neighbouring scales, in log sigma (sizes otherwise snap to the few sampled scales).
    log_s = np.log(sigmas_px)
    sigma = sigmas_px[si].copy()
    inner = (si > 0) & (si < len(sigmas_px) - 1)
    if inner.any() and len(sigmas_px) >= 3:
        i, y, x = si[inner], ys[inner], xs[inner]
        r_lo, r0, r_hi = stack[i - 1, y, x], stack[i, y, x], stack[i + 1, y, x]
        curv = r_lo - 2 * r0 + r_hi
        delta = np.where(curv < 0, 0.5 * (r_lo - r_hi) / np.where(curv < 0, curv, -1), 0.0)
        delta = np.clip(delta, -0.5, 0.5)
        step = np.where(delta > 0, log_s[np.minimum(i + 1, len(log_s) - 1)] - log_s[i], log_s[i] - log_s[i - 1])
        sigma[inner] = np.exp(log_s[i] + delta * step)
    # A blob's filter support must lie on skin: one that crosses the image edge answers to the
    # border's reflection, one that crosses the mask's edge to whatever is beside the skin (a face
    # cut by the frame edge, a nostril, the eye's white gave false blobs there). Eight points on a
    # circle of support_sigmas x sigma around each blob must be inside the image and under the mask
    # (sub-pixel: the whole disc, from the distance to the nearest pixel off the mask or the image).
    rad = np.minimum(support_sigmas * (sigma if subpixel else sigmas_px[si]), support_max_px) + support_pad_px
    if subpixel and xs.size:
        dist = cv2.distanceTransform(cv2.copyMakeBorder(np.ascontiguousarray(m).view(np.uint8), 1, 1, 1, 1,
                                                         cv2.BORDER_CONSTANT, value=0),
                                     cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        ok = _bilinear(dist, xs + off[0], ys + off[1]) >= rad
    elif subpixel:
        ok = np.zeros(0, bool)
    else:
        ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        py = np.round(ys[:, None] + rad[:, None] * np.sin(ang)[None]).astype(np.int64)
        px = np.round(xs[:, None] + rad[:, None] * np.cos(ang)[None]).astype(np.int64)
        inside = (py >= 0) & (px >= 0) & (py < h) & (px < w)
        inside &= m[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)]
        ok = inside.all(axis=1)
    si, ys, xs, off, sigma = si[ok], ys[ok], xs[ok], off[:, ok], sigma[ok]
    response = stack[si, ys, xs].astype(np.float64)
    x, y = xs + off[0], ys + off[1]
    if merge_sigmas > 0:
        keep = _strongest_nearby(x, y, merge_sigmas * sigma, response)
        x, y, sigma, response = x[keep], y[keep], sigma[keep], response[keep]
    return {"x": x.astype(np.float64), "y": y.astype(np.float64), "sigma": sigma, "response": response}


def _hessian_3x3(nb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d2/dx2, d2/dy2, d2/dxdy) by central differences from 3x3 neighbourhoods ``nb`` (9, N),
    row by row: (-1,-1) (-1,0) (-1,1) (0,-1) (0,0) ... (vectorised over the N points)."""
    return (nb[5] + nb[3] - 2 * nb[4], nb[7] + nb[1] - 2 * nb[4], 0.25 * (nb[8] + nb[0] - nb[6] - nb[2]))


def _quadratic_peak(nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset (x, y), within half a pixel, of the peak of the quadratic through 3x3 neighbourhoods
    ``nb`` (9, N), row by row; (0, 0) where the quadratic has no maximum."""
    nb = nb.astype(np.float64)
    gx, gy = 0.5 * (nb[5] - nb[3]), 0.5 * (nb[7] - nb[1])
    hxx, hyy, hxy = _hessian_3x3(nb)
    det = hxx * hyy - hxy * hxy
    ok = (det > 0) & (hxx < 0)
    det = np.where(ok, det, 1.0)
    ox = np.where(ok, (hxy * gy - hyy * gx) / det, 0.0)
    oy = np.where(ok, (hxy * gx - hxx * gy) / det, 0.0)
    return np.clip(ox, -0.5, 0.5), np.clip(oy, -0.5, 0.5)


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` at real coordinates (any shape, clamped to the image), bilinearly."""
    h, w = img.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(y.astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _strongest_nearby(x: np.ndarray, y: np.ndarray, radius: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Mask of the points that no stronger point lies within the larger of their two radii of
    (ties: the first kept). Pairwise, a chunk of rows at a time, about 2 million pairs per chunk
    (the points are blobs: a few hundred). Not greedy: a point suppressed by a stronger one that
    is itself suppressed stays suppressed."""
    n = len(x)
    chunk = max(1, 2_000_000 // max(n, 1))
    keep = np.ones(n, bool)
    idx = np.arange(n)
    for a in range(0, n, chunk):
        b = slice(a, min(a + chunk, n))
        near = np.hypot(x[b, None] - x[None], y[b, None] - y[None]) < np.maximum(radius[b, None], radius[None])
        stronger = (strength[None] > strength[b, None]) | ((strength[None] == strength[b, None]) & (idx[None] < idx[b, None]))
        keep[b] = ~(near & stronger).any(axis=1)
    return keep


def blob_mask(blobs: dict[str, np.ndarray], shape: tuple[int, int], *, scale: float = 1.0,
              diameter_factor: float = 2 * np.sqrt(2)) -> np.ndarray:
    """Pixels covered by detected blobs (discs of their diameter), in a grid ``scale`` times the blobs' own.

    Each disc is stamped from precomputed offsets, one vectorised pass per distinct radius, so
    the cost is the area covered, not the image's.
    """
    out = np.zeros(shape, bool)
    if len(blobs["x"]) == 0:
        return out
    r = np.maximum(np.round(blobs["sigma"] * diameter_factor / 2 * scale).astype(int), 1)
    cy = np.clip((blobs["y"] * scale).astype(int), 0, shape[0] - 1)
    cx = np.clip((blobs["x"] * scale).astype(int), 0, shape[1] - 1)
    for rad in np.unique(r):
        sel = r == rad
        dy, dx = np.nonzero(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rad + 1, 2 * rad + 1)))
        yy = np.clip(cy[sel, None] + (dy - rad)[None], 0, shape[0] - 1)
        xx = np.clip(cx[sel, None] + (dx - rad)[None], 0, shape[1] - 1)
        out[yy, xx] = True
    return out


def blobs_per_region(blobs: dict[str, np.ndarray], masks: dict[str, np.ndarray], mm_per_px: float,
                     *, diameter_factor: float = 2 * np.sqrt(2)) -> dict[str, dict[str, float]]:
    """Count, density (per cm^2), area (%) and mean diameter (mm) of blobs whose centre lies in each mask."""
    xs, ys = np.rint(blobs["x"]).astype(int), np.rint(blobs["y"]).astype(int)
    d_mm = blobs["sigma"] * diameter_factor * mm_per_px
    disc_mm2 = np.pi * (d_mm / 2) ** 2
    out = {}
    for k, m in masks.items():
        inside = m[np.clip(ys, 0, m.shape[0] - 1), np.clip(xs, 0, m.shape[1] - 1)] if len(xs) else np.zeros(0, bool)
        a_mm2 = np.count_nonzero(m) * mm_per_px ** 2
        n = int(inside.sum())
        out[k] = {
            "count": n,
            "density_per_cm2": n / (a_mm2 / 100.0) if a_mm2 > 0 else float("nan"),
            "area_pct": 100.0 * float(disc_mm2[inside].sum()) / a_mm2 if a_mm2 > 0 else float("nan"),
            "diameter_mm": float(d_mm[inside].mean()) if n else float("nan"),
            "response_sum_mm2": float((blobs["response"][inside] * disc_mm2[inside]).sum()),
            "area_mm2": a_mm2,
        }
    return out


class SkinImage:
    """One photo's colour representations, computed once and shared by the metric families.

    Fine relief (pores, lines, texture) is measured at the photo's own resolution on one channel,
    the grey optical density; colour (redness, pigment, skin tone) and millimetre-scale features
    (scars, spots) on a coarser copy from :meth:`at`, so the costly three-channel conversions run
    on a few hundred thousand pixels rather than millions.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        sRGB, uint8 or float in [0, 1].
    gains : array-like of 3 floats, optional
        Linear-light per-channel gains that normalise the photo's light (white balance and
        exposure), measured on references that are not skin (see ``skinscan.quality``).
    mm_per_px : float, optional
        The photo's scale; needed by :meth:`at`.
    full_resolution : bool
        Never reduce: :meth:`at` returns the image itself (to check what the working resolutions
        cost in accuracy).
    """

    def __init__(self, rgb: np.ndarray, *, gains=None, mm_per_px: float | None = None,
                 full_resolution: bool = False):
        self.full_resolution = full_resolution
        self.rgb = check_rgb(rgb)
        self.gains = np.ones(3, np.float32) if gains is None else np.asarray(gains, dtype=np.float32).reshape(3)
        self.mm_per_px = mm_per_px
        self.shape = rgb.shape[:2]
        self._cache: dict = {}
        #: In a reduced copy (:meth:`at`): the share of each pixel that was clipped (a channel at 250+), or None.
        self.clipped: np.ndarray | None = None
        #: The variance (in this image's pixels^2) of the blur that made it: 0 for a photo, the
        #: area averaging's box for a reduced copy (:meth:`at`), to be taken out of a blur in mm.
        self.blur_var_px = 0.0

    def _lut(self, kind: str) -> np.ndarray:
        """(1, 256, 3) float32 table from an 8-bit channel value: linear light after the gains
        (clipped to [0, 1]), or its optical density."""
        key = ("lut", kind)
        if key not in self._cache:
            from ..color import srgb_to_linear

            lin = np.clip(srgb_to_linear(np.arange(256, dtype=np.uint8))[:, None] * self.gains[None, :], 0, 1)
            table = lin if kind == "lin" else -np.log10(np.maximum(lin, 1e-4))
            self._cache[key] = np.ascontiguousarray(table.reshape(1, 256, 3), dtype=np.float32)
        return self._cache[key]

    @property
    def lin(self) -> np.ndarray:
        """Linear RGB after the light gains, float32 in [0, 1], shape (H, W, 3)."""
        if "lin" not in self._cache:
            from ..color import srgb_to_linear

            if self.rgb.dtype == np.uint8:
                lin = cv2.LUT(self.rgb, self._lut("lin"))
            else:
                lin = srgb_to_linear(self.rgb)
                if not np.all(self.gains == 1):
                    lin = np.clip(lin * self.gains.reshape(1, 1, 3), 0, 1)
            self._cache["lin"] = lin
        return self._cache["lin"]

    def at(self, px_per_mm: float) -> "SkinImage":
        """This photo at a coarser working resolution (itself when it is not finer than that).

        The copy is reduced with area averaging in 8 bits and keeps the light gains; its
        :attr:`clipped` holds the share of each of its pixels that was clipped (see :func:`fill_clipped`),
        and :attr:`blur_var_px` the blur the averaging added.
        """
        if self.mm_per_px is None:
            raise ValueError("SkinImage.at needs the photo's mm_per_px")
        f = work_scale(self.mm_per_px, px_per_mm)
        if f >= 0.999 or self.full_resolution:
            flags = self._clip_flags()
            if self.clipped is None and flags is not None:  # as a reduced copy would have it
                self.clipped = flags.astype(np.float32) / 255
            return self
        key = ("at", round(f, 6))
        if key not in self._cache:
            h, w = self.shape
            size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
            small = shrink(self.rgb, size)
            copy = SkinImage(small, gains=self.gains, mm_per_px=self.mm_per_px * w / size[0])
            # Each copy pixel averages a box of 1/f photo pixels: (1 - f^2) / 12 of its pixel^2 more
            # than the photo's own pixel.
            copy.blur_var_px = (1 - (self.mm_per_px / copy.mm_per_px) ** 2) / 12
            flags = self._clip_flags()
            if flags is not None:  # share of the pixels averaged in that had a channel clipped
                copy.clipped = shrink(flags, size).astype(np.float32) / 255
            self._cache[key] = copy
        return self._cache[key]

    def _clip_flags(self) -> np.ndarray | None:
        """255 where a channel is at 250+ (8-bit input), computed once; None when nothing is clipped."""
        if "clip" not in self._cache:
            flags = None
            if self.rgb.dtype == np.uint8:
                top = cv2.max(cv2.max(self.rgb[..., 0], self.rgb[..., 1]), self.rgb[..., 2])
                flags = cv2.compare(top, 249, cv2.CMP_GT)
                flags = flags if cv2.countNonZero(flags) else None
            self._cache["clip"] = flags
        return self._cache["clip"]

    @property
    def lab(self) -> np.ndarray:
        if "lab" not in self._cache:
            from ..color import rgb_to_lab

            self._cache["lab"] = rgb_to_lab(self.lin, linear=True)
        return self._cache["lab"]

    @property
    def chromophores(self) -> np.ndarray:
        """(haemoglobin, melanin, shading) densities, shape (H, W, 3)."""
        if "chromo" not in self._cache:
            from ..color import _UNMIX, unmix_chromophores

            if self.rgb.dtype == np.uint8:  # optical densities straight from a table, then the 3x3 unmixing
                self._cache["chromo"] = cv2.transform(cv2.LUT(self.rgb, self._lut("od")), _UNMIX)
            else:
                self._cache["chromo"] = unmix_chromophores(self.lin)
        return self._cache["chromo"]

    @property
    def shading(self) -> np.ndarray:
        """Grey optical density left after haemoglobin and melanin are unmixed: relief without pigment.

        Noisier than :attr:`darkness` at the finest scales (it mixes colour channels, which JPEG
        stores at half resolution), so it serves features of a millimetre and more (scars).
        """
        if "chromo" in self._cache or self.rgb.dtype != np.uint8:
            return np.ascontiguousarray(self.chromophores[..., 2])
        if "shading" not in self._cache:  # one row of the unmixing: no three-channel copy
            from ..color import _UNMIX

            self._cache["shading"] = cv2.transform(cv2.LUT(self.rgb, self._lut("od")), _UNMIX[2:3])
        return self._cache["shading"]

    def relief(self, mm_per_px: float, *, smooth_mm: float = 0.3, pigment_px_per_mm: float = 4.0) -> np.ndarray:
        """Grey relief at full resolution: :attr:`darkness` less the darkening by haemoglobin and melanin.

        Luminance keeps the photo's full resolution (JPEG stores colour at half of it), but a brown
        spot or a red patch darkens it too. Their contribution, from the unmixed densities
        smoothed at ``smooth_mm`` and weighted by how much each channel contributes to luminance at
        that place, is taken out, so pores, lines and texture are measured on relief alone. The
        pigment term is smooth, so it is computed at ``pigment_px_per_mm`` and interpolated.
        """
        key = f"relief{mm_per_px:.6g}/{smooth_mm}/{pigment_px_per_mm}"
        if key not in self._cache:
            from ..color import HAEMOGLOBIN_OD, MELANIN_OD

            if self.mm_per_px is None:
                self.mm_per_px = mm_per_px
            src = self.at(pigment_px_per_mm)
            sig = max(smooth_mm / src.mm_per_px, 0.5)
            w = blur(src.lin, sig) * np.array([0.2126, 0.7152, 0.0722], np.float32)
            w /= np.maximum(w.sum(axis=2, keepdims=True), 1e-6)
            chromo = src.chromophores
            pigment = (w @ HAEMOGLOBIN_OD) * blur(np.ascontiguousarray(chromo[..., 0]), sig) \
                + (w @ MELANIN_OD) * blur(np.ascontiguousarray(chromo[..., 1]), sig)
            if src is not self:
                pigment = cv2.resize(pigment.astype(np.float32), (self.shape[1], self.shape[0]),
                                     interpolation=cv2.INTER_LINEAR)
            self._cache[key] = cv2.subtract(self.darkness, pigment.astype(np.float32))
        return self._cache[key]

    @property
    def green_od(self) -> np.ndarray:
        """Optical density of the photo's own green channel (larger = darker), float32 (H, W): the
        pores' signal (green carries most of a pore's contrast, and is a camera's best-sampled channel).

        The light gains are left out: they only add a constant to the density, which the pores'
        band-pass removes, and applied they would clip bright skin at white and flatten its pores.
        """
        if "green_od" not in self._cache:
            from ..color import srgb_to_linear

            if self.rgb.dtype == np.uint8:
                lin = srgb_to_linear(np.arange(256, dtype=np.uint8))
                table = (-np.log10(np.maximum(lin, 1e-4))).astype(np.float32).reshape(1, 256)
                self._cache["green_od"] = cv2.LUT(np.ascontiguousarray(self.rgb[..., 1]), table)
            else:
                g = np.ascontiguousarray(srgb_to_linear(self.rgb[..., 1]), dtype=np.float32)
                self._cache["green_od"] = cv2.log(np.maximum(g, np.float32(1e-4))) * np.float32(-1 / np.log(10))
        return self._cache["green_od"]

    @property
    def darkness(self) -> np.ndarray:
        """Grey optical density of luminance (larger = darker): the signal for relief (pores, scars, lines, texture).

        From 8-bit input in three passes (a lookup table to linear light, the luminance weights
        with the light gains folded in, a logarithm), without a linear-RGB copy of the photo.
        """
        if "dark" not in self._cache:
            from ..color import luminance

            lin = self._cache.get("lin")
            if lin is None:  # the gains' table straight to luminance: no linear-RGB copy is kept
                lin = cv2.LUT(self.rgb, self._lut("lin")) if self.rgb.dtype == np.uint8 else self.lin
            y = luminance(lin, linear=True)
            self._cache["dark"] = cv2.log(np.maximum(y, np.float32(1e-4))) * np.float32(-1 / np.log(10))
        return self._cache["dark"]


def fill_clipped(values: np.ndarray, img: "SkinImage", skin: np.ndarray, *, sigma_mm: float = 3.0) -> np.ndarray:
    """A colour map (haemoglobin, melanin, a*) with clipped pixels filled from unclipped skin nearby.

    A channel at 250+ in 8 bits holds a floor, not a value, so a clipped pixel's colour is not
    known; dropping such pixels instead takes the brightest skin (lit cheekbones, which are also
    the reddest) out of brighter photos only. Chromophore densities do not depend on how brightly
    a place is lit, so each pixel that is mostly clipped (``img.clipped`` >= 0.5: a reduced pixel
    is then decided as the full-resolution pixels under it mostly are) takes the
    normalised-convolution mean of the unclipped ``skin`` within ~``sigma_mm``, or far inside a
    large clipped area the mean over all unclipped skin.
    """
    frac = img.clipped
    if frac is None:
        return values
    clipped = frac >= 0.5
    ok = (skin & ~clipped).astype(np.float32)
    if not ok.any():
        return values
    sig = max(sigma_mm / img.mm_per_px, 0.5)
    s1 = wide_blur(ok, sig)
    local = wide_blur(values * ok, sig) / np.maximum(s1, 1e-6)
    support = np.clip(s1 / 0.2, 0, 1)
    fill = support * local + (1 - support) * float(values[ok > 0].mean())
    return np.where(clipped, fill, values).astype(np.float32)


def skin_image(rgb, mm_per_px: float | None = None) -> SkinImage:
    if isinstance(rgb, SkinImage):
        if rgb.mm_per_px is None:
            rgb.mm_per_px = mm_per_px
        return rgb
    return SkinImage(rgb, mm_per_px=mm_per_px)


#: The columns of a family's detections (see :func:`detections`).
DETECTION_FIELDS = ("x", "y", "diameter_mm", "length_mm", "strength")


def detections(x, y, *, strength, diameter_mm=None, length_mm=None) -> dict[str, np.ndarray]:
    """One family's detected features as columns: centre ``x``, ``y`` (px of the image the family was
    given), ``diameter_mm`` (pores, scars, spots) or ``length_mm`` (lines), NaN for the other, and
    ``strength`` (the feature's contrast, in the family's own signal units)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    nan = np.full(x.shape, np.nan)
    return {"x": x, "y": np.asarray(y, dtype=np.float64).reshape(-1),
            "diameter_mm": nan if diameter_mm is None else np.asarray(diameter_mm, dtype=np.float64).reshape(-1),
            "length_mm": nan if length_mm is None else np.asarray(length_mm, dtype=np.float64).reshape(-1),
            "strength": np.asarray(strength, dtype=np.float64).reshape(-1)}


class MetricResult(dict):
    """``{region: {metric: value}}`` plus ``maps`` (name -> image-sized array), ``notes`` (why a value
    is NaN) and ``detections`` (kind -> :func:`detections` columns: every pore, scar, spot or line
    the values count)."""

    def __init__(self, values=None, *, maps=None, notes=None, detections=None):
        super().__init__(values or {})
        self.maps: dict[str, np.ndarray] = maps or {}
        self.notes: dict[str, str] = notes or {}
        self.detections: dict[str, dict[str, np.ndarray]] = detections or {}

    @property
    def value(self) -> dict[str, float]:
        """The values of a single-mask call (region ``"region"``)."""
        return self["region"]
