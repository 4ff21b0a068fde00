"""Dark blobs by scale-space maxima of the scale-normalised Laplacian of Gaussian, and their statistics per region.

The scars' detector (:func:`detect_dark_blobs`), stage by stage, each a function of its own:

1. the signal smoothed at each scale and its scale-normalised Laplacian (:func:`scale_response`);
2. each scale's threshold, a number of robust SDs of its own response over the mask and at least a
   physical contrast (:func:`noise_floor`); the points over it (:func:`candidates`) and what the
   later tests need of them, read while that scale's smoothed signal exists (:func:`sample_points`);
3. the maxima over the 3x3x3 neighbourhood in position and scale (:func:`scale_space_maxima`);
4. round pits only: the Hessian's eigenvalue ratio and the ring of skin around (:func:`shape_test`);
5. each blob's scale between the sampled ones (:func:`refine_scale`);
6. a blob's filter support on skin (:func:`support_on_mask`), and of blobs nearer each other than
   their size the strongest (:func:`strongest_nearby`).

Every length is in pixels of the signal; the caller turns millimetres into them. A blob of sigma
``s`` is a disc about ``2 sqrt(2) s`` across (the scale at which the normalised Laplacian of a disc
peaks).

References
----------
.. [1] Lindeberg T. (1998) Feature detection with automatic scale selection. IJCV 30(2):79-116.
.. [2] Lowe D. G. (2004) Distinctive image features from scale-invariant keypoints. IJCV 60(2):91-110.
"""

from __future__ import annotations

import cv2
import numpy as np

from .._filters import blur
from .stats import robust_sigma

__all__ = ["BLOB_FIELDS", "blob_mask", "blobs_per_region", "candidates", "detect_dark_blobs", "noise_floor",
           "refine_scale", "sample_points", "scale_response", "scale_space_maxima", "shape_test", "strongest_nearby",
           "support_on_mask"]

#: The columns of a blob list: centre ``x``, ``y`` (px), ``sigma`` (px), ``response`` (signal units).
BLOB_FIELDS = ("x", "y", "sigma", "response")
#: d2/dx2 + d2/dy2 by fourth-order central differences, times 4 (the scale of OpenCV's 3x3 kernel).
_LAPLACIAN_4 = np.zeros((5, 5), np.float32)
_LAPLACIAN_4[2] += np.array([-1, 16, -30, 16, -1], np.float32) / 3
_LAPLACIAN_4[:, 2] += _LAPLACIAN_4[2].copy()
#: The 8 directions of the ring test, from +x towards +y.
_RING_ANGLES = np.linspace(0, 2 * np.pi, 8, endpoint=False)
#: A threshold is set on at most about this many pixels of the mask (a regular stride).
_FLOOR_SAMPLES = 50_000


def detect_dark_blobs(signal: np.ndarray, mask: np.ndarray, *, sigmas_px: np.ndarray, k_sigma: float,
                      min_contrast: float = 0.0, max_elongation: float = 4.0,
                      support_sigmas: float = 3.0, support_max_px: float = np.inf,
                      ring_min: int = 0, merge_sigmas: float = 0.0, laplacian: str = "3x3",
                      subpixel: bool = False, support_pad_px: float = 1.0,
                      min_sigma_px: float = 0.0, max_sigma_px: float = np.inf) -> dict[str, np.ndarray]:
    """Bright blobs of ``signal`` (dark spots of the skin, when it is a darkness such as an optical density).

    Parameters
    ----------
    signal : ndarray, shape (H, W)
        Larger = darker (e.g. a grey optical density).
    mask : ndarray of bool, shape (H, W)
        Where a blob may lie, and where its support must lie.
    sigmas_px : array-like of float
        The Gaussian scales sampled, px, increasing.
    k_sigma : float
        A blob's response exceeds this many robust SDs of its scale's response over the mask.
    min_contrast : float
        ... and this (scale-normalised response, signal units).
    max_elongation : float
        Largest ratio of the Hessian's eigenvalues (:func:`shape_test`).
    support_sigmas, support_max_px, support_pad_px : float
        A blob's support, a circle of ``support_sigmas`` sigma (px), at most ``support_max_px``,
        plus ``support_pad_px``, must lie in the image and under ``mask`` (:func:`support_on_mask`).
    ring_min : int
        With ``ring_min`` > 0, a blob is darker than at least this many of 8 points at 2 sigma.
    merge_sigmas : float
        With ``merge_sigmas`` > 0, of blobs closer than this many sigma of the larger only the
        strongest is kept (:func:`strongest_nearby`).
    laplacian : {"3x3", "fourth_order"}
        The Laplacian's differences (:func:`scale_response`).
    subpixel : bool
        Test each blob at the sub-pixel peak of its response and its support with the mask's
        distance transform (:func:`sample_points`, :func:`support_on_mask`).
    min_sigma_px : float
        Blobs whose refined scale is under this are dropped, before the merge: a smaller, stronger
        dip beside a larger blob must not take the larger one with it.
    max_sigma_px : float
        Blobs whose refined scale is over this are dropped, before the merge. With one sampled
        scale above it (a guard), a dip whose response still grows at the top of the band (a
        larger shading) peaks at the guard and is dropped, rather than counted at the band's top.

    Returns
    -------
    dict of str to ndarray, shape (N,)
        ``x``, ``y`` (px; sub-pixel with ``subpixel``), ``sigma`` (px, refined between the sampled
        scales), ``response`` (:func:`scale_response` at the blob: about 2.9 times a disc's
        contrast, in signal units).

    Notes
    -----
    The defaults measure at the maximum's pixel. A detector that must give the same answer at
    any resolution (scars, at a working resolution of 6 px/mm or at a photo's own) takes
    ``laplacian="fourth_order"`` and ``subpixel=True``: the 3x3 kernel's error falls on the small
    scales of a coarse grid only, and half a pixel off the peak, the Hessian ratio of a 1 mm blob at
    6 px/mm is ~3% rounder or longer.

    References
    ----------
    .. [1] Lindeberg T. (1998) Feature detection with automatic scale selection. IJCV 30(2):79–116.
    .. [2] Lowe D. G. (2004) Distinctive image features from scale-invariant keypoints. IJCV 60(2):91–110.
    """
    sigmas_px = np.asarray(sigmas_px, dtype=np.float64)
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    if min(signal.shape) < 3:  # no 3x3 neighbourhood: no maximum can be tested
        return {k: np.zeros(0) for k in BLOB_FIELDS}
    m = mask.astype(bool, copy=False)
    stack, pts = _scale_space(signal, m, sigmas_px, k_sigma=k_sigma, min_contrast=min_contrast,
                              laplacian=laplacian, subpixel=subpixel, ring=ring_min > 0)
    pts = _take(pts, scale_space_maxima(stack, pts["scale"], pts["y"], pts["x"]))
    pts = _take(pts, shape_test(pts["nb"], pts["ring"], max_elongation=max_elongation, ring_min=ring_min))
    sigma = refine_scale(stack, pts["scale"], pts["y"], pts["x"], sigmas_px)
    rad = np.minimum(support_sigmas * (sigma if subpixel else sigmas_px[pts["scale"]]), support_max_px) + support_pad_px
    x, y = pts["x"] + pts["off"][0], pts["y"] + pts["off"][1]
    ok = support_on_mask(m, x, y, rad, exact=subpixel) & (sigma >= min_sigma_px) & (sigma <= max_sigma_px)
    x, y, sigma = x[ok], y[ok], sigma[ok]
    response = stack[pts["scale"][ok], pts["y"][ok], pts["x"][ok]].astype(np.float64)
    if merge_sigmas > 0:
        keep = strongest_nearby(x, y, merge_sigmas * sigma, response)
        x, y, sigma, response = x[keep], y[keep], sigma[keep], response[keep]
    return {"x": x.astype(np.float64), "y": y.astype(np.float64), "sigma": sigma, "response": response}


def _scale_space(signal: np.ndarray, mask: np.ndarray, sigmas_px: np.ndarray, *, k_sigma: float,
                 min_contrast: float, laplacian: str, subpixel: bool, ring: bool) -> tuple[np.ndarray, dict]:
    """The responses at every scale, shape (S, H, W), and the points over each scale's threshold
    with their samples (see :func:`_gather`).

    One scale at a time: its response, its threshold, the points over it (a sparse set) and their
    samples of the smoothed signal; the smoothed image itself is not kept, which halves the memory
    of the scale space.
    """
    h, w = signal.shape
    stack = np.empty((len(sigmas_px), h, w), dtype=np.float32)
    inside = np.flatnonzero(mask)
    sample = inside[:: max(1, inside.size // _FLOOR_SAMPLES)]
    parts = []
    for i, s in enumerate(sigmas_px):
        smooth = blur(signal, s)
        scale_response(smooth, s, laplacian=laplacian, out=stack[i])
        thr = noise_floor(stack[i], sample, k_sigma=k_sigma, min_contrast=min_contrast)
        if not np.isfinite(thr):
            continue
        ys, xs = candidates(stack[i], mask, thr, peaks_only=subpixel)
        if ys.size:
            parts.append({"scale": np.full(ys.size, i), "y": ys, "x": xs,
                          **sample_points(smooth, stack[i], ys, xs, s, subpixel=subpixel, ring=ring)})
    return stack, _gather(parts)


def _gather(parts: list[dict]) -> dict[str, np.ndarray]:
    """The points of every scale as one set of columns: ``scale`` (index), ``y``, ``x`` (px, int) of
    shape (N,); ``nb`` (9, N), ``ring`` (8, N) and ``off`` (2, N) as :func:`sample_points` gives
    them, zeros where it gave none."""
    pts = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64) for k in ("scale", "y", "x")}
    n = pts["scale"].size
    for key, rows, dtype in (("nb", 9, np.float32), ("ring", 8, np.float32), ("off", 2, np.float64)):
        got = [p[key] for p in parts if key in p]
        pts[key] = np.concatenate(got, axis=1) if got else np.zeros((rows, n), dtype)
    return pts


def _take(pts: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The points of ``pts`` (columns along the last axis) where ``keep``."""
    return {k: v[..., keep] for k, v in pts.items()}


def scale_response(smooth: np.ndarray, sigma_px: float, *, laplacian: str = "3x3",
                   out: np.ndarray | None = None) -> np.ndarray:
    """The scale-normalised Laplacian of a signal already smoothed at ``sigma_px``: ``-sigma^2`` times
    OpenCV's 3x3 Laplacian, which is 4 times the Laplacian.

    Positive on a bright blob of the signal (a dark pit of the skin). At the centre of a disc of
    radius r and contrast c it peaks at sigma = r / sqrt(2), with 8c / e (about 2.9 c).

    Parameters
    ----------
    smooth : ndarray of float32, shape (H, W)
        The signal after a Gaussian blur of ``sigma_px``.
    sigma_px : float
        The scale, px.
    laplacian : {"3x3", "fourth_order"}
        OpenCV's 3x3 Laplacian, or fourth-order central differences, whose error (a few % of a
        blob's response at 1-2 px sigma, where the 3x3 kernel's is) does not depend on the grid.
    out : ndarray of float32, shape (H, W), optional
        Where to write the response.

    Returns
    -------
    ndarray of float32, shape (H, W)
        In signal units.
    """
    out = np.empty(smooth.shape, np.float32) if out is None else out
    if laplacian == "fourth_order":
        cv2.filter2D(smooth, cv2.CV_32F, _LAPLACIAN_4 * np.float32(-sigma_px * sigma_px), dst=out,
                     borderType=cv2.BORDER_REFLECT)
    else:
        cv2.Laplacian(smooth, cv2.CV_32F, dst=out, ksize=3, scale=-(sigma_px * sigma_px))
    return out


def noise_floor(response: np.ndarray, sample: np.ndarray, *, k_sigma: float, min_contrast: float = 0.0) -> float:
    """One scale's threshold: ``k_sigma`` robust SDs of its response over the skin, at least ``min_contrast``.

    The robust SD (1.4826 MAD) is the spread of the dense part of the response, the skin's own
    texture and noise at that scale, which the few blobs do not move.

    Parameters
    ----------
    response : ndarray, shape (H, W)
        The scale's response (:func:`scale_response`).
    sample : ndarray of int
        Flat indices of the pixels to read (e.g. a regular stride through the mask's).
    k_sigma : float
        Robust SDs.
    min_contrast : float
        The smallest threshold, in the response's (signal) units.

    Returns
    -------
    float
        Infinite for an empty sample: nothing can be told from noise.
    """
    if sample.size == 0:
        return np.inf
    return max(k_sigma * robust_sigma(response.reshape(-1)[sample]), min_contrast)


def candidates(response: np.ndarray, mask: np.ndarray, threshold: float, *,
               peaks_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of one scale whose response is over ``threshold``, under ``mask``.

    Parameters
    ----------
    response : ndarray of float32, shape (H, W)
    mask : ndarray of bool, shape (H, W)
    threshold : float
        In the response's units.
    peaks_only : bool
        Keep only the maxima of their 3x3 neighbourhood in this scale (only those can be maxima
        in scale space; the others need no samples).

    Returns
    -------
    (ndarray, ndarray) of int64
        ``ys``, ``xs`` (px), in raster order.
    """
    h, w = response.shape
    c = np.flatnonzero(cv2.compare(response, float(threshold), cv2.CMP_GT).view(bool) & mask)
    cy, cx = c // w, c % w
    if peaks_only and c.size:
        top = np.ones(c.size, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                top &= response[cy, cx] >= response[np.clip(cy + dy, 0, h - 1), np.clip(cx + dx, 0, w - 1)]
        cy, cx = cy[top], cx[top]
    return cy, cx


def sample_points(smooth: np.ndarray, response: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma_px: float, *,
                  subpixel: bool = False, ring: bool = False) -> dict[str, np.ndarray]:
    """What the shape tests need of one scale's points, read while its smoothed signal exists.

    Parameters
    ----------
    smooth : ndarray of float32, shape (H, W)
        The signal smoothed at this scale.
    response : ndarray of float32, shape (H, W)
        Its response (:func:`scale_response`).
    ys, xs : ndarray of int, shape (N,)
        The points, px.
    sigma_px : float
        The scale, px (the ring lies at 2 sigma).
    subpixel : bool
        Sample at the response's sub-pixel peak (a quadratic through its 3x3 neighbourhood),
        bilinearly, rather than at the pixel.
    ring : bool
        Also sample the ring.

    Returns
    -------
    dict of str to ndarray
        ``nb`` (9, N): the smoothed signal's 3x3 neighbourhood, row by row; with ``ring``,
        ``ring`` (8, N): the point's value less each of 8 points at 2 sigma; with ``subpixel``,
        ``off`` (2, N): the peak's (x, y) offset from the pixel, within half a pixel.
    """
    h, w = smooth.shape
    yc, xc = np.clip(ys, 1, h - 2), np.clip(xs, 1, w - 2)
    if not subpixel:
        out = {"nb": _neighbourhood(smooth, yc, xc)}
        if ring:
            ry = np.clip(np.round(ys[None] + 2 * sigma_px * np.sin(_RING_ANGLES)[:, None]).astype(np.int64), 0, h - 1)
            rx = np.clip(np.round(xs[None] + 2 * sigma_px * np.cos(_RING_ANGLES)[:, None]).astype(np.int64), 0, w - 1)
            out["ring"] = smooth[ys, xs][None] - smooth[ry, rx]
        return out
    ox, oy = _quadratic_peak(_neighbourhood(response, yc, xc))
    fx, fy = xs + ox, ys + oy
    d3 = np.array([-1.0, 0.0, 1.0])
    out = {"off": np.stack([ox, oy]),
           "nb": _bilinear(smooth, fx[None] + np.tile(d3, 3)[:, None], fy[None] + np.repeat(d3, 3)[:, None])}
    if ring:
        out["ring"] = _bilinear(smooth, fx, fy)[None] - _bilinear(
            smooth, fx[None] + 2 * sigma_px * np.cos(_RING_ANGLES)[:, None],
            fy[None] + 2 * sigma_px * np.sin(_RING_ANGLES)[:, None])
    return out


def scale_space_maxima(stack: np.ndarray, scale: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Which points are maxima of their 3x3x3 neighbourhood in position and scale (ties count).

    Parameters
    ----------
    stack : ndarray, shape (S, H, W)
        The responses at each scale.
    scale, y, x : ndarray of int, shape (N,)
        The points: scale index and pixel.

    Returns
    -------
    ndarray of bool, shape (N,)
        At the first and last scale only the one neighbouring scale counts; at the image's edge
        the nearest pixel stands in for the missing ones.
    """
    n_s, h, w = stack.shape
    v = stack[scale, y, x]
    is_max = np.ones(v.shape, bool)
    for di in (-1, 0, 1):
        ii = scale + di
        ok = (ii >= 0) & (ii < n_s)
        ii = np.clip(ii, 0, n_s - 1)
        for dy in (-1, 0, 1):
            yy = np.clip(y + dy, 0, h - 1)
            for dx in (-1, 0, 1):
                if di == dy == dx == 0:
                    continue
                xx = np.clip(x + dx, 0, w - 1)
                is_max &= ~ok | (v >= stack[ii, yy, xx])
    return is_max


def shape_test(nb: np.ndarray, ring: np.ndarray, *, max_elongation: float, ring_min: int = 0) -> np.ndarray:
    """Which points are round pits: a maximum in every direction, not along a line or an edge.

    Both Hessian eigenvalues of the smoothed signal must be negative with a ratio under
    ``max_elongation`` (points along lines and edges are not blobs; the test of Lowe 2004,
    section 4.1, on the trace and determinant). With ``ring_min`` > 0 the point must also be darker
    than at least ``ring_min`` of the 8 points around it at 2 sigma: a pit is darker than the skin
    all around it, while a blob on the edge of a shadow or a fold is not.

    Parameters
    ----------
    nb : ndarray, shape (9, N)
        The smoothed signal's 3x3 neighbourhood of each point, row by row (:func:`sample_points`).
    ring : ndarray, shape (8, N)
        The point's value less each ring point's.
    max_elongation : float
        Largest eigenvalue ratio (1 is a perfect disc; infinite: any, the eigenvalues of one sign).
    ring_min : int
        Ring points the point must be darker than (0: no ring test).

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    dxx, dyy, dxy = _hessian_3x3(nb)
    tr, det = dxx + dyy, dxx * dyy - dxy * dxy
    r = max_elongation
    round_ = det > 0
    if np.isfinite(r):  # (an infinite ratio would make both sides infinite and fail every point)
        round_ &= tr * tr * r < (r + 1) ** 2 * det
    if ring_min:
        round_ &= (ring > 0).sum(axis=0) >= ring_min
    return round_


def refine_scale(stack: np.ndarray, scale: np.ndarray, y: np.ndarray, x: np.ndarray,
                 sigmas_px: np.ndarray) -> np.ndarray:
    """Each blob's sigma between the sampled ones: the peak of a parabola, in log sigma, through its
    responses at the neighbouring scales (sizes otherwise snap to the few sampled scales).

    Parameters
    ----------
    stack : ndarray, shape (S, H, W)
        The responses at each scale.
    scale, y, x : ndarray of int, shape (N,)
        The blobs: scale index and pixel.
    sigmas_px : ndarray of float, shape (S,)
        The sampled scales, px.

    Returns
    -------
    ndarray of float64, shape (N,)
        Sigma, px: moved by at most half a step towards a neighbouring scale, and the sampled one
        at the first and last scale.
    """
    log_s = np.log(sigmas_px)
    sigma = sigmas_px[scale].copy()
    inner = (scale > 0) & (scale < len(sigmas_px) - 1)
    if inner.any() and len(sigmas_px) >= 3:
        i, yi, xi = scale[inner], y[inner], x[inner]
        r_lo, r0, r_hi = stack[i - 1, yi, xi], stack[i, yi, xi], stack[i + 1, yi, xi]
        curv = r_lo - 2 * r0 + r_hi
        delta = np.where(curv < 0, 0.5 * (r_lo - r_hi) / np.where(curv < 0, curv, -1), 0.0)
        delta = np.clip(delta, -0.5, 0.5)
        step = np.where(delta > 0, log_s[np.minimum(i + 1, len(log_s) - 1)] - log_s[i], log_s[i] - log_s[i - 1])
        sigma[inner] = np.exp(log_s[i] + delta * step)
    return sigma


def support_on_mask(mask: np.ndarray, x: np.ndarray, y: np.ndarray, radius_px: np.ndarray, *,
                    exact: bool = False) -> np.ndarray:
    """Which blobs have their filter support on skin: a circle of ``radius_px`` inside the image and the mask.

    One that crosses the image edge answers to the border's reflection, one that crosses the
    mask's edge to whatever is beside the skin (a face cut by the frame edge, a nostril, the eye's
    white gave false blobs there).

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    x, y : ndarray of float, shape (N,)
        Centres, px.
    radius_px : ndarray of float, shape (N,)
        Support radii, px.
    exact : bool
        Test the whole disc (the distance from the centre to the nearest pixel off the mask or the
        image, from the mask's distance transform, at the sub-pixel centre) rather than 8 points
        on the circle rounded to pixels.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    h, w = mask.shape
    if exact:
        if x.size == 0:
            return np.zeros(0, bool)
        dist = cv2.distanceTransform(cv2.copyMakeBorder(np.ascontiguousarray(mask).view(np.uint8), 1, 1, 1, 1,
                                                         cv2.BORDER_CONSTANT, value=0),
                                     cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        return _bilinear(dist, x, y) >= radius_px
    py = np.round(y[:, None] + radius_px[:, None] * np.sin(_RING_ANGLES)[None]).astype(np.int64)
    px = np.round(x[:, None] + radius_px[:, None] * np.cos(_RING_ANGLES)[None]).astype(np.int64)
    inside = (py >= 0) & (px >= 0) & (py < h) & (px < w)
    inside &= mask[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)]
    return inside.all(axis=1)


def strongest_nearby(x: np.ndarray, y: np.ndarray, radius: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Which points no stronger point lies near: within the larger of the two points' radii (ties:
    the first kept).

    Not greedy: a point suppressed by a stronger one that is itself suppressed stays suppressed.
    The 3x3x3 neighbourhood of :func:`scale_space_maxima` is a size in pixels, so one wide blob with
    a flat top (a scar after an opening) can give two maxima a few pixels apart at a fine
    resolution and one at a coarse one; this keeps one at any resolution.

    Parameters
    ----------
    x, y : ndarray of float, shape (N,)
        Centres, px.
    radius : ndarray of float, shape (N,)
        Each point's reach, px.
    strength : ndarray, shape (N,)

    Returns
    -------
    ndarray of bool, shape (N,)
        Pairwise, a chunk of rows at a time (about 2 million pairs per chunk; the points are
        blobs, a few hundred).
    """
    n = len(x)
    chunk = max(1, 2_000_000 // max(n, 1))
    keep = np.ones(n, bool)
    idx = np.arange(n)
    for a in range(0, n, chunk):
        b = slice(a, min(a + chunk, n))
        near = np.hypot(x[b, None] - x[None], y[b, None] - y[None]) < np.maximum(radius[b, None], radius[None])
        tie = (strength[None] == strength[b, None]) & (idx[None] < idx[b, None])
        stronger = (strength[None] > strength[b, None]) | tie
        keep[b] = ~(near & stronger).any(axis=1)
    return keep


def _neighbourhood(img: np.ndarray, yc: np.ndarray, xc: np.ndarray) -> np.ndarray:
    """``img``'s 3x3 neighbourhoods of the pixels (``yc``, ``xc``), none on the image's edge, as (9, N), row by row."""
    return np.stack([img[yc + dy, xc + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


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


# ---------------------------------------------------------------------- blob statistics

def blob_mask(blobs: dict[str, np.ndarray], shape: tuple[int, int], *, scale: float = 1.0,
              diameter_factor: float = 2 * np.sqrt(2)) -> np.ndarray:
    """Pixels covered by detected blobs (discs of their diameter), in a grid ``scale`` times the blobs' own.

    Each disc is stamped from precomputed offsets, one vectorised pass per distinct radius, so
    the cost is the area covered, not the image's.

    Parameters
    ----------
    blobs : dict of str to ndarray, shape (N,)
        ``x``, ``y``, ``sigma`` in px of the blobs' own grid.
    shape : (int, int)
        The output grid's (height, width).
    scale : float
        The output grid's pixels per pixel of the blobs' grid.
    diameter_factor : float
        A blob's diameter in sigmas.

    Returns
    -------
    ndarray of bool, shape ``shape``
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
                     *, diameter_factor: float = 2 * np.sqrt(2),
                     counted: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Count, density (per cm^2), area (%) and mean diameter (mm) of blobs whose centre lies in each mask.

    Parameters
    ----------
    blobs : dict of str to ndarray, shape (N,)
        ``x``, ``y``, ``sigma`` (px) and ``response`` (signal units), as :func:`detect_dark_blobs` gives.
    masks : dict of str to ndarray of bool
        On the blobs' grid.
    mm_per_px : float
        The grid's scale.
    diameter_factor : float
        A blob's diameter in sigmas.
    counted : ndarray of bool, shape (N,), optional
        The blobs ``count`` and ``density_per_cm2`` count (default: all); the others take all.

    Returns
    -------
    dict of str to dict of str to float
        Per mask: ``count``, ``density_per_cm2``, ``area_pct`` (the discs' area over the mask's),
        ``diameter_mm`` (mean), ``response_sum_mm2`` (response x disc area, summed) and ``area_mm2``.
    """
    xs, ys = np.rint(blobs["x"]).astype(int), np.rint(blobs["y"]).astype(int)
    d_mm = blobs["sigma"] * diameter_factor * mm_per_px
    disc_mm2 = np.pi * (d_mm / 2) ** 2
    out = {}
    for k, m in masks.items():
        inside = m[np.clip(ys, 0, m.shape[0] - 1), np.clip(xs, 0, m.shape[1] - 1)] if len(xs) else np.zeros(0, bool)
        a_mm2 = np.count_nonzero(m) * mm_per_px ** 2
        n = int(inside.sum())
        n_counted = n if counted is None else int(np.count_nonzero(inside & counted))
        out[k] = {
            "count": n_counted,
            "density_per_cm2": n_counted / (a_mm2 / 100.0) if a_mm2 > 0 else float("nan"),
            "area_pct": 100.0 * float(disc_mm2[inside].sum()) / a_mm2 if a_mm2 > 0 else float("nan"),
            "diameter_mm": float(d_mm[inside].mean()) if n else float("nan"),
            "response_sum_mm2": float((blobs["response"][inside] * disc_mm2[inside]).sum()),
            "area_mm2": a_mm2,
        }
    return out
