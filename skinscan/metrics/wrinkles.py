"""Fine lines: length of thin dark ridges per area, from a Hessian ridge filter in physical scale."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

from .._filters import mask_box, reduce_with_blur
from ..inputs import MaskArg, as_masks, check_scale
from .results import MetricResult, detections
from .skinimage import resize_mask, resize_masks, skin_image, work_scale
from .stats import robust_sigma

__all__ = ["wrinkle_metrics", "LINE_WIDTH_MM"]

LINE_WIDTH_MM = (0.1, 0.5)
#: The finest Gaussian scale of the ridge filter, mm, the same at any resolution (a scale in pixels,
#: such as 0.7 px, is 0.058 mm at 12 px/mm and 0.117 at 6: another filter at each). Its response
#: peaks at 1.5 cycles/mm, well inside what a 6 px/mm photo holds (up to 3), and a 0.1 mm line
#: still reads at ~2/3 of its best-scale response.
MIN_SCALE_MM = 0.15
#: The coarsest grid lines are detected on, px/mm (a coarser working image is interpolated up to
#: it): there the finest scale is 1.5 px, and the sampled peak of a line's response is within ~15%
#: of its true peak wherever the line falls between two pixels (40% at 6 px/mm).
MIN_GRID_PX_PER_MM = 10.0
#: ... but by at most this factor (a photo under 5 px/mm does not resolve fine lines anyway, and
#: its cost would grow with the square).
MAX_GRID_ZOOM = 2.0


#: Radius (mm) of the window whose skeleton pixels give a pixel's line direction.
DIR_RADIUS_MM = 0.4


def skeleton_length_at(skel: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, radius_px: int = 4) -> np.ndarray:
    """Length of line each pixel (ys, xs) of a one-pixel-wide skeleton stands for, in pixels.

    A thin 8-connected digital line at angle t from the rows has one pixel per column when
    ``|t| <= 45°`` (one per row otherwise), so each pixel stands for ``1 / max(|cos t|, |sin t|)``
    of line, from 1 (along the grid) to sqrt(2) (diagonal). The direction t is the principal axis
    of the skeleton pixels within ``radius_px`` (their Gaussian-weighted second moments about the
    pixel, three separable filters; the analysis takes :data:`DIR_RADIUS_MM`, so that a wavering
    line is smoothed alike at any resolution). Counting links instead (1 per orthogonal neighbour,
    sqrt(2) per diagonal one: the chain-code length) read a straight line up to 8% long at 22.5°
    and 67.5° and a wavering one long at every angle; this reads straight lines at every angle
    within 1.3% and a circle of 2 mm radius at 10 px/mm 2% short.

    Parameters
    ----------
    skel : ndarray (H, W) bool
        One-pixel-wide skeleton.
    ys, xs : ndarray of int, shape (N,)
        The skeleton pixels to measure, px.
    radius_px : int
        Radius of the window giving each pixel's direction, px (at least 1).

    Returns
    -------
    ndarray of float32, shape (N,)
        Length of line per pixel, px, between 1 and sqrt(2).

    Examples
    --------
    >>> skel = np.zeros((20, 20), bool); skel[np.arange(3, 17), np.arange(3, 17)] = True
    >>> ys, xs = np.nonzero(skel)
    >>> float(skeleton_length_at(skel, ys, xs).sum().round(2))  # 14 pixels on a diagonal
    19.8
    """
    if ys.size == 0:
        return np.zeros(0, np.float32)
    r = max(int(radius_px), 1)
    d = np.arange(-r, r + 1, dtype=np.float32)
    g = np.exp(-d ** 2 / (2 * (r / 1.5) ** 2)).astype(np.float32)
    h, w = skel.shape
    y0, y1 = max(int(ys.min()) - r, 0), min(int(ys.max()) + r + 1, h)
    x0, x1 = max(int(xs.min()) - r, 0), min(int(xs.max()) + r + 1, w)
    s = np.ascontiguousarray(skel[y0:y1, x0:x1]).view(np.uint8)  # filtered to float32 by OpenCV: no float copy

    def moment(kx, ky):  # sum over the window of g(dx) g(dy) kx(dx) ky(dy) skel(x + dx, y + dy)
        return cv2.sepFilter2D(s, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_CONSTANT)[ys - y0, xs - x0]

    sxx = moment(g * d ** 2, g)
    syy = moment(g, g * d ** 2)
    sxy = moment(g * d, g * d)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    return (1.0 / np.maximum(np.abs(np.cos(theta)), np.abs(np.sin(theta)))).astype(np.float32)


_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32)
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def prune_spurs(skel: np.ndarray, mm_w: float, max_mm: float, *, rounds: int = 1) -> np.ndarray:
    """The skeleton without its spurs: branches that touch one junction only and reach less than
    ``max_mm`` (the diagonal of their bounding box) from it.

    Thinning a line of some width leaves a short twig wherever its edge bulges, and how many it
    leaves depends on the grid: a finer grid samples more of the edge's wobble. Each twig makes a
    junction, and a junction cuts the line into branches that :func:`_keep_lines` judges one by
    one, so a line read at 12 px/mm was cut into more short pieces than at 10 and 3-12% less of
    it was kept. A twig shorter than the widest line sought is the thinning's, not a feature of
    the skin. The pruned skeleton is thinned again (a junction's pixels can be left two wide). A
    line's own end that forks within ``max_mm`` loses its fork: the line reads that much shorter.

    Parameters
    ----------
    skel : ndarray (H, W) bool
        One-pixel-wide skeleton.
    mm_w : float
        Pixel size of the grid, mm.
    max_mm : float
        Reach under which a spur is dropped, mm.
    rounds : int
        Passes of pruning and thinning. A second pass finds the twigs the first one hid, for
        little: working against full resolution on the benchmark's photos +0.43% with one, +0.53%
        with two, at twice the cost (a pass costs about as much as the thinning itself).

    Returns
    -------
    ndarray (H, W) bool

    Examples
    --------
    >>> skel = np.zeros((12, 40), bool); skel[6, 2:38] = True; skel[3:6, 20] = True  # a 3 px twig
    >>> int(prune_spurs(skel, 0.1, 0.5).sum()), int(prune_spurs(skel, 0.1, 0.2).sum())
    (36, 39)
    """
    for _ in range(rounds):
        nb = cv2.filter2D(skel.view(np.uint8), -1, _RING, borderType=cv2.BORDER_CONSTANT)
        junction = (nb >= 3) & skel
        if not junction.any():
            break
        n_b, b_lab, stats, _ = cv2.connectedComponentsWithStats((skel & ~junction).view(np.uint8), connectivity=8)
        n_c, c_lab = cv2.connectedComponents(junction.view(np.uint8), connectivity=8)
        # Each branch pixel next to a junction pixel, with that junction's cluster: a branch touches
        # one junction only when the largest and the smallest cluster it touches are the same.
        jy, jx = np.nonzero(junction)
        jc = c_lab[jy, jx]
        h, w = skel.shape
        touch_b, touch_c = [], []
        for dy, dx in _NEIGHBOURS:
            y, x = jy + dy, jx + dx
            ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            lab = b_lab[y[ok], x[ok]]
            touch_b.append(lab[lab > 0])
            touch_c.append(jc[ok][lab > 0])
        tb, tc = np.concatenate(touch_b), np.concatenate(touch_c)
        b_hi = np.zeros(n_b, np.int64)
        np.maximum.at(b_hi, tb, tc)
        b_lo = np.full(n_b, n_c + 1, np.int64)
        np.minimum.at(b_lo, tb, tc)
        reach = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) * mm_w
        spur = (b_hi > 0) & (b_hi == b_lo) & (reach < max_mm)
        spur[0] = False
        if not spur.any():
            break
        skel = skeletonize(skel & ~spur[b_lab])
    return skel


def _keep_lines(skel: np.ndarray, ys: np.ndarray, xs: np.ndarray, seg_len: np.ndarray, mm_w: float, *,
                min_length_mm: float, max_tortuosity: float, min_branch_mm: float) -> np.ndarray:
    """Which pixels (ys, xs) of the one-pixel-wide ``skel`` belong to lines (bool per pixel).

    The skeleton is cut at its junctions (pixels with 3+ neighbours) into branches. A branch is
    dropped when it meanders (its length over the diagonal of its bounding box is over
    ``max_tortuosity``) or when it is shorter than ``min_branch_mm`` and touches a junction (a
    spur of the thinning, or a link in a mesh of texture ridges); what is left is kept where its
    8-connected piece (junctions included) is at least ``min_length_mm`` long. Two lines that
    cross, or a line that a texture ridge touches, are then judged line by line, not as one
    tortuous network: whether two features touch depends on the sampling, and a network judged
    whole would be kept or dropped with it.
    """
    nb = cv2.filter2D(skel.view(np.uint8), -1, _RING, borderType=cv2.BORDER_CONSTANT)[ys, xs]
    junction = nb >= 3
    branch_px = np.zeros(skel.shape, np.uint8)
    branch_px[ys[~junction], xs[~junction]] = 1
    n_b, b_lab, stats, _ = cv2.connectedComponentsWithStats(branch_px, connectivity=8)
    b = b_lab[ys, xs]  # 0 at the junctions
    b_len = np.bincount(b, weights=seg_len, minlength=n_b) * mm_w
    diag = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) * mm_w
    keep = b_len <= max_tortuosity * np.maximum(diag, 1e-9)
    if junction.any():
        j_px = np.zeros(skel.shape, np.uint8)
        j_px[ys[junction], xs[junction]] = 1
        near_j = cv2.dilate(j_px, np.ones((3, 3), np.uint8))[ys, xs].view(bool)
        linked = np.bincount(b[near_j & ~junction], minlength=n_b) > 0
        keep &= ~(linked & (b_len < min_branch_mm))
    keep[0] = True
    kept = keep[b]
    kept_px = np.zeros(skel.shape, np.uint8)
    kept_px[ys[kept], xs[kept]] = 1
    n, lab = cv2.connectedComponents(kept_px, connectivity=8)
    comp = lab[ys, xs]
    comp_len = np.bincount(comp[kept], weights=seg_len[kept], minlength=n) * mm_w
    return kept & (comp_len[comp] >= min_length_mm)


def ridge_responses(img: np.ndarray, sigmas_px, *, prior_var_px: float = 0.0):
    """Hessian ridge strength for bright ridges (Sato's tubeness in 2-D), one map per scale (a generator).

    Across a bright ridge the smaller eigenvalue of the Hessian of the Gaussian-smoothed image is
    strongly negative; the response is ``sigma^2 * max(-lambda_min, 0)``. ``sigmas_px`` are the
    total Gaussian scales sought: an image that already carries a blur of variance
    ``prior_var_px`` (a reduction's, see :func:`reduce_with_blur`) is smoothed by the rest only,
    so the same scale in mm gives the same response at any resolution. The second derivatives are
    fourth-order central differences of the smoothed image (OpenCV's 3x3 Sobel kernels smooth
    across by [1, 2, 1] / 4, a variance of 0.5 px^2, which at a sigma of ~1 px is a
    resolution-dependent part of the scale).

    Parameters
    ----------
    img : ndarray (H, W)
        Image whose bright ridges are sought (converted to float32).
    sigmas_px : iterable of float
        Total Gaussian scales, px.
    prior_var_px : float
        Variance of the blur ``img`` already carries, px²; the blur added for a scale has a
        variance of at least 0.25 px² (sigma 0.5 px).

    Yields
    ------
    ndarray (H, W) float32
        The response at each scale, in increasing order of scale (not the order given), in the
        units of ``img``. The maps are computed as they are asked for.
    """
    g = np.ascontiguousarray(img, dtype=np.float32)
    done = 0.0  # variance of the blur applied so far; each scale blurs the last one's image by the rest
    for s in sorted(float(s) for s in sigmas_px):
        var = max(s * s - prior_var_px, 0.25)
        if var > done:
            g = cv2.GaussianBlur(g, (0, 0), float(np.sqrt(var - done)), borderType=cv2.BORDER_REFLECT)
            done = var
        c = np.float32(s * s / 2)  # -lambda_min = sqrt(((dxx - dyy) / 2)^2 + dxy^2) - (dxx + dyy) / 2
        dxx = cv2.filter2D(g, cv2.CV_32F, _D2 * c, borderType=cv2.BORDER_REFLECT)
        dyy = cv2.filter2D(g, cv2.CV_32F, _D2.T * c, borderType=cv2.BORDER_REFLECT)
        dxy2 = cv2.sepFilter2D(g, cv2.CV_32F, _D1 * (2 * c), _D1, borderType=cv2.BORDER_REFLECT)
        r = cv2.magnitude(cv2.subtract(dxx, dyy), dxy2)
        r = cv2.subtract(r, cv2.add(dxx, dyy, dst=dxx), dst=r)
        yield np.maximum(r, np.float32(0), out=r)


# Fourth-order central differences: first (x 2 below) and second derivative, as row kernels.
_D1 = np.array([[1, -8, 0, 8, -1]], np.float32) / 12
_D2 = np.array([[-1, 16, -30, 16, -1]], np.float32) / 12


def wrinkle_metrics(rgb, mask: MaskArg, *, mm_per_px: float, width_mm=LINE_WIDTH_MM, k_sigma: float = 2.5,
                    min_strength: float = 0.016, min_length_mm: float = 2.0, max_tortuosity: float = 1.3,
                    min_branch_mm: float = 2.0, min_scale_mm: float = MIN_SCALE_MM, n_scales: int = 3,
                    work_px_per_mm: float = 10.0, min_grid_px_per_mm: float = MIN_GRID_PX_PER_MM) -> MetricResult:
    """Fine-line density: mm of line per cm^2 of skin.

    The grey optical density is filtered with a Hessian ridge filter (Sato's tubeness) for bright
    ridges (dark lines are bright in density) at ``n_scales`` Gaussian scales from half the
    narrowest to half the widest line width, none under ``min_scale_mm``, in mm at any resolution
    (the blur of the reduction to the working grid counts towards them, see
    :func:`reduce_with_blur`); each scale is thresholded at ``min_strength`` (a contrast in optical
    density) and at ``k_sigma`` robust standard deviations of its own response over the skin (the
    photo's ridge noise), a pixel being on a line when any scale is over its threshold. The lines
    are found on a grid of at least ``min_grid_px_per_mm`` (a coarser working image is
    interpolated up), thinned to a skeleton, rid of the thinning's spurs (twigs reaching less
    than the widest line width from a junction, see :func:`prune_spurs`) and cut at its junctions
    into branches; branches more tortuous than ``max_tortuosity`` (length over the diagonal of their
    bounding box), branches under ``min_branch_mm`` that touch a junction (spurs, texture meshes) and
    pieces shorter than ``min_length_mm`` are dropped: pores and texture give short or meandering
    fragments (see :func:`_keep_lines`).

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
    mask : ndarray of bool or dict of masks
    mm_per_px : float
    width_mm : (float, float)
        Widths of the lines sought.
    k_sigma : float
        Threshold in robust standard deviations of the ridge response over the skin.
    min_strength : float
        Smallest ridge response (scale-normalised grey optical density) that counts as a line.
    min_length_mm : float
    max_tortuosity : float
    min_branch_mm : float
    min_scale_mm : float
        Finest filter scale (Gaussian sigma), mm.
    n_scales : int
    work_px_per_mm : float
        Working resolution (the photo is never reduced below it, nor enlarged to it).
    min_grid_px_per_mm : float
        Coarsest grid the lines are detected on (a cubic interpolation of the working image, at
        most ``MAX_GRID_ZOOM`` times as fine). With the scales in mm and this grid, the density
        is the same within ~2% whether the photo is analysed at 6, 8 or 10 px/mm or at a finer
        resolution of its own.

    Returns
    -------
    MetricResult
        ``wrinkle_density`` per region (mm of line per cm^2; higher = worse); meaningful on the
        forehead, periorbital and perioral skin. Map: ``lines`` (bool skeleton, resized to the
        photo).

    References
    ----------
    .. [1] Sato Y. et al. (1998) Three-dimensional multi-scale line filter for segmentation and
       visualization of curvilinear structures in medical images. Med Image Anal 2(2):143–168.
    """
    mm_per_px = check_scale(mm_per_px)
    img = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, img.shape)
    f = 1.0 if img.full_resolution else work_scale(mm_per_px, work_px_per_mm)
    dark, prior_var = reduce_with_blur(img.relief(mm_per_px), f)
    mm_w = mm_per_px * img.shape[1] / dark.shape[1]
    if mm_w * min_grid_px_per_mm > 1.001:
        # A coarser grid is interpolated up to min_grid_px_per_mm: a line's peak response falls
        # between two pixels of a coarse grid and is sampled up to ~40% low at 6 px/mm (~15% at
        # 10), so faint lines broke up there. The cubic interpolation adds no blur to speak of.
        w0 = dark.shape[1]
        g = min(mm_w * min_grid_px_per_mm, MAX_GRID_ZOOM)
        dark = cv2.resize(dark, (max(int(round(w0 * g)), 1), max(int(round(dark.shape[0] * g)), 1)),
                          interpolation=cv2.INTER_CUBIC)
        prior_var *= (dark.shape[1] / w0) ** 2
        mm_w = mm_per_px * img.shape[1] / dark.shape[1]
    small = resize_masks(img, masks, dark.shape)  # nearest-neighbour: the union of the resized masks is
    union = np.logical_or.reduce(list(small.values()))  # the resized union
    box = mask_box(union, int(np.ceil(3 * width_mm[1] / mm_w)) + 2)
    if box is None:
        return MetricResult({k: {"wrinkle_density": float("nan")} for k in masks})
    # Scales in mm, the same at every resolution: half the line widths, at least min_scale_mm.
    sigmas_mm = np.geomspace(max(width_mm[0] / 2, min_scale_mm), max(width_mm[1] / 2, min_scale_mm), n_scales)
    sub_union = np.ascontiguousarray(union[box])
    inside = np.flatnonzero(sub_union)
    pick = inside[:: max(1, inside.size // 50_000)]
    # A line must be darker than its surround by a physical contrast (grey optical density, so
    # independent of exposure) and stand out of the photo's own ridge noise at its scale: each
    # scale has its own threshold (the texture's response grows with the scale, and a threshold
    # shared by all scales would be set by the coarsest), and a pixel is on a line when any scale
    # is over its threshold.
    score = strongest = None
    for r in ridge_responses(dark[box], np.unique(sigmas_mm / mm_w), prior_var_px=prior_var):
        sample = r.reshape(-1)[pick]
        thr = max(min_strength, k_sigma * robust_sigma(sample) + float(np.median(sample)))
        strongest = r.copy() if strongest is None else np.maximum(strongest, r, out=strongest)
        r *= np.float32(1 / thr)
        score = r if score is None else np.maximum(score, r, out=score)
    line = np.zeros(dark.shape, bool)
    line[box] = cv2.compare(score, 1.0, cv2.CMP_GT).view(bool) & sub_union
    skel = prune_spurs(skeletonize(line), mm_w, width_mm[1])
    ys, xs = np.nonzero(skel)
    seg_len = skeleton_length_at(skel, ys, xs, radius_px=int(round(DIR_RADIUS_MM / mm_w)))
    kept = _keep_lines(skel, ys, xs, seg_len, mm_w, min_length_mm=min_length_mm, max_tortuosity=max_tortuosity,
                       min_branch_mm=min_branch_mm)
    ys, xs, seg_len = ys[kept], xs[kept], seg_len[kept]
    skel = np.zeros(dark.shape, bool)
    skel[ys, xs] = True
    values = {}
    for k, ms in small.items():
        a_cm2 = np.count_nonzero(ms) * mm_w ** 2 / 100.0
        values[k] = {"wrinkle_density": float(seg_len[ms[ys, xs]].sum() * mm_w / a_cm2) if a_cm2 > 0
                     else float("nan")}
    response = np.zeros(dark.shape, np.float32)
    response[box] = strongest
    found = _branches(skel, ys, xs, seg_len, response[ys, xs], mm_w, scale=(img.shape[1] / dark.shape[1],
                                                                             img.shape[0] / dark.shape[0]))
    return MetricResult(values, maps={"lines": resize_mask(skel, img.shape)}, detections={"line": found})


def _branches(skel: np.ndarray, ys: np.ndarray, xs: np.ndarray, seg_len: np.ndarray, strength: np.ndarray,
              mm_w: float, *, scale: tuple[float, float]) -> dict[str, np.ndarray]:
    """The lines' branches (the kept skeleton cut at its junctions) as detections: centre (px of the
    photo, ``scale`` times the grid's), length in mm, mean ridge response (grey optical density)."""
    if ys.size == 0:
        return detections([], [], length_mm=[], strength=[])
    nb = cv2.filter2D(skel.view(np.uint8), -1, _RING, borderType=cv2.BORDER_CONSTANT)[ys, xs]
    px = np.zeros(skel.shape, np.uint8)
    px[ys[nb < 3], xs[nb < 3]] = 1
    n, lab = cv2.connectedComponents(px, connectivity=8)
    b = lab[ys, xs]
    count = np.bincount(b, minlength=n).astype(np.float64)
    keep = np.arange(n) > 0
    keep &= count > 0
    cnt = np.maximum(count, 1)
    cx = np.bincount(b, weights=xs, minlength=n) / cnt
    cy = np.bincount(b, weights=ys, minlength=n) / cnt
    return detections((cx[keep] + 0.5) * scale[0] - 0.5, (cy[keep] + 0.5) * scale[1] - 0.5,
                      length_mm=np.bincount(b, weights=seg_len, minlength=n)[keep] * mm_w,
                      strength=np.bincount(b, weights=strength, minlength=n)[keep] / cnt[keep])
