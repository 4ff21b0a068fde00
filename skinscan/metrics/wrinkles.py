"""Fine lines: length of thin dark ridges per area, from a Hessian ridge filter in physical scale."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

from .._filters import mask_box
from ._common import (MaskArg, MetricResult, as_masks, check_scale, resize, resize_mask, resize_masks, robust_sigma,
                      skin_image, work_scale)

__all__ = ["wrinkle_metrics", "WRINKLE_KEYS", "LINE_WIDTH_MM"]

LINE_WIDTH_MM = (0.1, 0.5)
WRINKLE_KEYS = {"wrinkle_density": "mm per cm2"}


def skeleton_length_at(skel: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Length share of each pixel (ys, xs) of a one-pixel-wide skeleton: half of each link to an
    8-neighbour, orthogonal links counting 1 and diagonal ones sqrt(2), and at least 1 (an isolated
    pixel or an end point stands for about one pixel of line). Computed at those pixels only."""
    p = np.pad(skel, 1)
    y, x = ys + 1, xs + 1
    ortho = (p[y - 1, x].astype(np.float32) + p[y + 1, x] + p[y, x - 1] + p[y, x + 1])
    diag = (p[y - 1, x - 1].astype(np.float32) + p[y - 1, x + 1] + p[y + 1, x - 1] + p[y + 1, x + 1])
    return np.maximum(0.5 * (ortho + np.sqrt(2) * diag), 1.0).astype(np.float32)


def ridge_filter(img: np.ndarray, sigmas_px, *, reduce_from_px: float | None = None) -> np.ndarray:
    """Multi-scale Hessian ridge strength for bright ridges (Sato's tubeness in 2-D).

    At each scale the Hessian of the Gaussian-smoothed image is formed with OpenCV derivative
    filters; across a bright ridge its smaller eigenvalue is strongly negative, so the response
    is ``sigma^2 * max(-lambda_min, 0)``, and the maximum over scales is kept. With
    ``reduce_from_px``, scales of that many pixels and more are computed on a copy halved in size
    and interpolated back (faster, but the 3x3 derivatives then read thin lines about 15% weaker,
    which moves the line threshold: off by default).
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    out = np.zeros(img.shape, np.float32)
    half = None
    for s in sigmas_px:
        s = float(s)
        if reduce_from_px is not None and s >= reduce_from_px and min(img.shape) >= 8:
            if half is None:
                half = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
            r = cv2.resize(_ridge_response(half, s / 2), (img.shape[1], img.shape[0]),
                           interpolation=cv2.INTER_LINEAR)
        else:
            r = _ridge_response(img, s)
        np.maximum(out, r, out=out)
    return out


def _ridge_response(img: np.ndarray, s: float) -> np.ndarray:
    g = cv2.GaussianBlur(img, (0, 0), s, borderType=cv2.BORDER_REFLECT)
    dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3, scale=0.25)
    dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3, scale=0.25)
    dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3, scale=0.25)
    half_trace = cv2.addWeighted(dxx, 0.5, dyy, 0.5, 0)
    disc = cv2.magnitude(cv2.addWeighted(dxx, 0.5, dyy, -0.5, 0), dxy)
    # -lambda_min = disc - half_trace, kept where positive, scale-normalised.
    return np.maximum(cv2.subtract(disc, half_trace), np.float32(0)) * np.float32(s * s)


def wrinkle_metrics(rgb, mask: MaskArg, *, mm_per_px: float, width_mm=LINE_WIDTH_MM, k_sigma: float = 2.5,
                    min_strength: float = 0.016, min_length_mm: float = 2.0, max_tortuosity: float = 1.3,
                    work_px_per_mm: float = 10.0) -> MetricResult:
    """Fine-line density: mm of line per cm^2 of skin.

    The grey optical density is filtered with a Hessian ridge filter (Sato's tubeness) for bright
    ridges (dark lines are bright in density) at Gaussian scales set by the line widths in mm, thresholded at
    ``min_strength`` (a contrast in optical density) and at ``k_sigma`` robust standard deviations
    of the photo's ridge noise, thinned to a skeleton; skeleton pieces shorter than
    ``min_length_mm`` or more tortuous than ``max_tortuosity`` (length over the diagonal of their
    bounding box) are dropped: pores and texture give short or meandering fragments.

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
    work_px_per_mm : float
        Working resolution (the photo is never upsampled).

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
    dark = resize(img.relief(mm_per_px), f)
    mm_w = mm_per_px / f
    small = resize_masks(img, masks, dark.shape)  # nearest-neighbour: the union of the resized masks is
    union = np.logical_or.reduce(list(small.values()))  # the resized union
    box = mask_box(union, int(np.ceil(3 * width_mm[1] / mm_w)) + 2)
    if box is None:
        return MetricResult({k: {"wrinkle_density": float("nan")} for k in masks})
    sigmas = np.unique(np.round(np.maximum(np.array(width_mm) / 2 / mm_w, 0.7), 2))
    ridge = np.zeros(dark.shape, np.float32)
    ridge[box] = ridge_filter(np.ascontiguousarray(dark[box]), sigmas)
    # A line must be darker than its surround by a physical contrast (grey optical density, so
    # independent of exposure) and stand out of the photo's own ridge noise.
    inside = np.flatnonzero(union)
    sample = ridge.reshape(-1)[inside[:: max(1, inside.size // 50_000)]]
    thr = max(min_strength, k_sigma * robust_sigma(sample) + float(np.median(sample)))
    line = cv2.compare(ridge, float(thr), cv2.CMP_GT).view(bool) & union
    skel = skeletonize(line)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(skel.view(np.uint8), connectivity=8)
    ys, xs = np.nonzero(skel)
    seg_len = skeleton_length_at(skel, ys, xs)
    comp = lab[ys, xs]
    comp_len = np.bincount(comp, weights=seg_len, minlength=n) * mm_w
    # A fine line runs fairly straight: its length is close to the diagonal of its bounding box;
    # chains of texture ridges that happen to connect meander.
    diag = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) * mm_w
    keep = (comp_len >= min_length_mm) & (comp_len <= max_tortuosity * np.maximum(diag, 1e-9))
    keep[0] = False
    kept = keep[comp]
    ys, xs, seg_len = ys[kept], xs[kept], seg_len[kept]
    skel = np.zeros(dark.shape, bool)
    skel[ys, xs] = True
    values = {}
    for k, ms in small.items():
        a_cm2 = np.count_nonzero(ms) * mm_w ** 2 / 100.0
        values[k] = {"wrinkle_density": float(seg_len[ms[ys, xs]].sum() * mm_w / a_cm2) if a_cm2 > 0
                     else float("nan")}
    return MetricResult(values, maps={"lines": resize_mask(skel, img.shape)})
