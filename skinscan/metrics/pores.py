"""Pores: dark, round dips of optical density of pore size, found over physical thresholds.

Every threshold is a physical quantity: an optical-density (OD) contrast, a size in millimetres,
and a noise floor measured on the photo itself at a scale finer than pores. None is relative to
the skin's own relief: on skin full of pores the pores *are* that relief, and a threshold of a few
robust SDs of it rises with the pores it should count and loses most of them.

The detector, stage by stage (each a whole-image OpenCV filter or an array operation on the
candidates):

1. the optical density of the green channel, -log10(linear green): a pore's contrast becomes a
   property of the skin, the same under a brighter or dimmer exposure (green carries most of it);
2. a difference of Gaussians (:func:`band_pass`): how much darker a pore's core is than the skin
   around it, in OD; shading, redness and pigment that vary over millimetres cancel;
3. local maxima, one per disc of ``nms_radius_mm`` (:func:`candidates`), over the larger of an
   absolute contrast and ``noise_k`` SDs of the photo's own noise carried through the filter
   (:func:`noise_sd_od`, :func:`dog_noise_gain`);
4. a dip in both directions (:func:`round_dips`): both eigenvalues of the Hessian negative, not a
   ridge, an edge or a saddle, and their ratio at most ``max_elongation``;
5. each pore's diameter by scale selection (:func:`scale_select`); a dip that answers most past
   ``max_diameter_mm`` is part of a larger dark structure (a scar's floor, a fold) and is dropped.

The parameters (:data:`DETECTOR`) were chosen on the cheek of a real clinical close-up whose pores
were labelled by others (Pore-Net; ``tests/data/porenet``), and checked on its glabella and nose:
``docs/validation.md`` gives the search, the scores and how they move with the scale.

References
----------
.. [1] Immerkaer J. (1996) Fast noise variance estimation. CVIU 64(2):300-302.
.. [2] Lindeberg T. (1998) Feature detection with automatic scale selection. IJCV 30(2):79-116.
.. [3] Lowe D. G. (2004) Distinctive image features from scale-invariant keypoints. IJCV 60(2):91-110.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .._filters import mask_box
from ..inputs import MaskArg, as_masks, check_scale
from .blobs import blobs_per_region
from .results import MetricResult, detections
from .skinimage import skin_image

__all__ = ["pore_metrics", "detect_pores", "band_pass", "candidates", "round_dips", "scale_select", "noise_sd_od",
           "dog_noise_gain", "DETECTOR",
           "COUNTED_MIN_DIAMETER_MM"]


#: The detector's parameters, every one physical; chosen on the cheek of the labelled close-up
#: (maximising its F1 averaged over the scale x 1/1.1, 1, 1.1), see ``docs/validation.md``.
DETECTOR = {
    "centre_sigma_mm": 0.065,   # the DoG's centre: the finest detail read (averages noise and JPEG blocks away)
    "surround_sigma_mm": 0.17,  # the DoG's surround: the skin around a pore
    "nms_radius_mm": 0.4,       # one pore per disc of this radius (a lumpy pore floor gives one detection)
    "min_contrast_od": 0.023,   # absolute contrast of a pore's core against its surround
    "noise_k": 5.0,             # ... and at least this many SDs of the photo's own noise (not tuned)
    "hessian_sigma_mm": 0.1,    # the roundness test's scale
    "max_elongation": np.inf,   # eigenvalue ratio; the cheek chose none beyond "a dip in both directions"
    # The scale selection's range (the labels span 0.24-0.61 mm), 1.25x steps: past 1.41 mm it only
    # needs to see that a dip peaks past max_diameter_mm (the range to 2 mm, 17 steps, chose the same
    # pores on the close-up, F1 0.742 against 0.741, at twice the cost).
    "diameter_range_mm": (0.12, 1.41),
    "n_diameters": 12,
    "max_diameter_mm": 1.0,     # a dip that answers most past 1 mm is not a pore (set a priori)
}

#: Pores are counted (``pore_density``) from this diameter, as measured: 3 px at 10 px/mm. Smaller
#: pores are found where the photo resolves them (they are in ``detections.csv`` and score against
#: the labels), but a count that holds them follows the camera's distance. On the real close-up
#: (13.3 px/mm) all pores read 53.3, 46.0 and 41.5 per cm^2 at 13.3, 12 and 10 px/mm; those of
#: 0.3 mm or more 4062, 4061 and 3987 pores (-1.8%) in the face. On the protocol's sample face,
#: photographed at 10-14 px/mm, counting all pores read the smallest dose (+15 per cm^2) at 2.5 SD of
#: the between-photo spread, and counting these at 3.8 SD.
COUNTED_MIN_DIAMETER_MM = 0.3


def pore_metrics(rgb, mask: MaskArg, *, mm_per_px: float, min_px_per_mm: float = 0.0,
                 exclude: np.ndarray | None = None, **params) -> MetricResult:
    """Pore density, area and size per region, from :func:`detect_pores`.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
        sRGB photo (uint8 or float in [0, 1]).
    mask : ndarray of bool or dict of masks
        The skin to measure.
    mm_per_px : float
    min_px_per_mm : float
        Below this resolution every value is NaN, with the reason in ``notes`` (in the pipeline,
        :func:`skinscan.metrics.compute_metrics` applies the measured floor of each metric).
    exclude : ndarray of bool, optional
        Where a dip is not a pore (inside a brown spot or on a scar, whose mottled floor and
        edges hold pore-sized dips).
    **params
        Overrides of :data:`DETECTOR`.

    Returns
    -------
    MetricResult
        Per region: ``pore_density`` (pores of :data:`COUNTED_MIN_DIAMETER_MM` or more per cm^2),
        ``pore_area_pct`` (% of the region covered by the discs of every pore found),
        ``pore_diameter_mm`` (their mean diameter, a descriptor: see :data:`skinscan.metrics.registry.METRICS`). Higher density and area = worse. Map:
        ``pore_blobs`` (N, 3): x, y, sigma (px, the diameter being 2 sqrt 2 sigma). Detections:
        ``pore`` (centre, diameter, OD contrast).

    Examples
    --------
    >>> import numpy as np
    >>> skin = np.full((200, 200, 3), 200, np.uint8)
    >>> yy, xx = np.mgrid[:200, :200]
    >>> skin[(yy - 100) ** 2 + (xx - 100) ** 2 <= 2 ** 2] = 120   # one dark pore, 0.4 mm across
    >>> res = pore_metrics(skin, np.ones((200, 200), bool), mm_per_px=0.1)
    >>> round(float(res.value["pore_density"]), 2), round(float(res.value["pore_diameter_mm"]), 1)
    (0.25, 0.4)
    """
    mm_per_px = check_scale(mm_per_px)
    img = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, img.shape)
    if 1.0 / mm_per_px < min_px_per_mm:
        why = (f"pores not measurable at {1 / mm_per_px:.1f} px/mm: they need {min_px_per_mm:g} px/mm or more "
               "(move closer or use the rear camera)")
        nan = {"pore_density": np.nan, "pore_area_pct": np.nan, "pore_diameter_mm": np.nan}
        return MetricResult({k: dict(nan) for k in masks}, notes={"pores": why})
    if exclude is not None:
        keep = ~exclude
        masks = {k: m & keep for k, m in masks.items()}
    union = np.logical_or.reduce(list(masks.values()))
    found = detect_pores(img.green_od, union, mm_per_px=mm_per_px, **params)
    sigma = found["diameter_mm"] / mm_per_px / (2 * np.sqrt(2))
    blobs = {"x": found["x"], "y": found["y"], "sigma": sigma, "response": found["strength"]}
    stats = blobs_per_region(blobs, masks, mm_per_px, counted=found["diameter_mm"] >= COUNTED_MIN_DIAMETER_MM)
    values = {k: {"pore_density": s["density_per_cm2"], "pore_area_pct": s["area_pct"],
                  "pore_diameter_mm": s["diameter_mm"]} for k, s in stats.items()}
    return MetricResult(values, maps={"pore_blobs": np.stack([found["x"], found["y"], sigma], 1)},
                        detections={"pore": detections(found["x"], found["y"], diameter_mm=found["diameter_mm"],
                                                       strength=found["strength"])})


def detect_pores(od: np.ndarray, mask: np.ndarray, *, mm_per_px: float, **params) -> dict[str, np.ndarray]:
    """Pores of an optical-density plane: dark, round dips of pore size over physical thresholds.

    Parameters
    ----------
    od : ndarray (H, W), float32
        Optical density (-log10 of linear light) of the green channel.
    mask : ndarray of bool (H, W)
        Where a pore's centre may lie.
    mm_per_px : float
        Every length of :data:`DETECTOR` becomes pixels through it.
    **params
        Overrides of :data:`DETECTOR`.

    Returns
    -------
    dict of ndarray (N,)
        ``x``, ``y`` (px), ``diameter_mm``, ``strength`` (the OD contrast of the pore's core
        against the skin around it), and ``threshold_od``, the contrast threshold in force (a float).
    """
    p = {**DETECTOR, **params}
    unknown = set(params) - set(DETECTOR)
    if unknown:
        raise TypeError(f"unknown pore detector parameters {sorted(unknown)}")
    px = 1.0 / check_scale(mm_per_px)
    box = mask_box(mask, int(math.ceil(4 * max(p["surround_sigma_mm"], p["hessian_sigma_mm"],
                                               p["nms_radius_mm"] / 4) * px)) + 2)
    empty = {"x": np.zeros(0), "y": np.zeros(0), "diameter_mm": np.zeros(0), "strength": np.zeros(0),
             "threshold_od": float("nan")}
    if box is None:
        return empty
    od = np.ascontiguousarray(od[box], dtype=np.float32)
    m = np.ascontiguousarray(mask[box])
    s1, s2 = p["centre_sigma_mm"] * px, p["surround_sigma_mm"] * px
    contrast = band_pass(od, s1, s2, m)
    thr = max(float(p["min_contrast_od"]), float(p["noise_k"]) * noise_sd_od(od, m) * dog_noise_gain(s1, s2))
    ys, xs = candidates(contrast, m, threshold=thr, radius_px=p["nms_radius_mm"] * px)
    keep = round_dips(od, ys, xs, sigma_px=p["hessian_sigma_mm"] * px, max_elongation=p["max_elongation"])
    ys, xs = ys[keep], xs[keep]
    diam_px = np.geomspace(*p["diameter_range_mm"], int(p["n_diameters"])) * px
    d_mm = scale_select(od, ys, xs, diam_px) / px
    keep = d_mm <= p["max_diameter_mm"]
    ys, xs, d_mm = ys[keep], xs[keep], d_mm[keep]
    return {"x": (xs + box[1].start).astype(np.float64), "y": (ys + box[0].start).astype(np.float64),
            "diameter_mm": d_mm, "strength": contrast[ys, xs].astype(np.float64), "threshold_od": thr}


def band_pass(od: np.ndarray, centre_px: float, surround_px: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Difference of Gaussians ``G(centre) * od - G(surround) * od``: an OD contrast, positive on a dip.

    With ``mask``, the surround is the skin's alone (a normalised convolution): skin beside an eye's
    white, a nostril or the photo's edge is not darker than its surround because of what lies beyond.

    Parameters
    ----------
    od : ndarray (H, W) float32
        Optical density plane (OD; higher is darker).
    centre_px, surround_px : float
        Gaussian sigmas of the centre and the surround, px.
    mask : ndarray (H, W) bool, optional
        The skin the surround is taken from (default: every pixel).

    Returns
    -------
    ndarray (H, W) float32
        OD contrast.
    """
    centre = cv2.GaussianBlur(od, (0, 0), centre_px, borderType=cv2.BORDER_REFLECT)
    if mask is None:
        return cv2.subtract(centre, cv2.GaussianBlur(od, (0, 0), surround_px, borderType=cv2.BORDER_REFLECT))
    m = mask.astype(np.float32)
    num = cv2.GaussianBlur(od * m, (0, 0), surround_px, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(m, (0, 0), surround_px, borderType=cv2.BORDER_REFLECT)
    return cv2.subtract(centre, num / np.maximum(den, np.float32(1e-3)))


def candidates(contrast: np.ndarray, mask: np.ndarray, *, threshold: float, radius_px: float):
    """``(ys, xs)`` of the maxima of ``contrast`` over a disc of ``radius_px``, under ``mask``, at or
    over ``threshold``. The disc holds the pixels within the radius itself, not rounded to whole
    pixels, so that a photo whose scale is a hair off does not see it jump by a ring.

    Parameters
    ----------
    contrast : ndarray (H, W) float32
        The :func:`band_pass` response, OD.
    mask : ndarray (H, W) bool
        Where maxima count.
    threshold : float
        Least contrast of a maximum, OD.
    radius_px : float
        Radius of the disc a maximum must top, px (at least 1).

    Returns
    -------
    ys, xs : ndarray of int
        Row and column of each maximum, in raster order.
    """
    r_px = max(float(radius_px), 1.0)
    r = int(math.floor(r_px))
    oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
    disc = (ox * ox + oy * oy <= r_px * r_px).astype(np.uint8)
    peak = cv2.compare(contrast, cv2.dilate(contrast, disc), cv2.CMP_GE).view(bool)
    return np.nonzero(peak & (contrast >= threshold) & mask)


def round_dips(od: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, sigma_px: float,
               max_elongation: float = np.inf) -> np.ndarray:
    """Which points are dips in both directions: both Hessian eigenvalues of ``G(sigma) * od``
    negative (an OD maximum; not a ridge, an edge or a saddle), their ratio at most ``max_elongation``
    (Lowe 2004, section 4.1: a hair or a fine line is long, a pore is round).

    Parameters
    ----------
    od : ndarray (H, W) float32
        Optical density plane, OD.
    ys, xs : ndarray of int, shape (N,)
        The points to test, px.
    sigma_px : float
        Gaussian sigma of the smoothing before the Hessian (finite differences over 1 px), px.
    max_elongation : float
        Largest ratio of the two eigenvalues (default: no limit).

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    g = cv2.GaussianBlur(od, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    h, w = g.shape
    yp, ym = np.minimum(ys + 1, h - 1), np.maximum(ys - 1, 0)
    xp, xm = np.minimum(xs + 1, w - 1), np.maximum(xs - 1, 0)
    centre = g[ys, xs]
    hxx = g[ys, xp] + g[ys, xm] - 2 * centre
    hyy = g[yp, xs] + g[ym, xs] - 2 * centre
    hxy = 0.25 * (g[yp, xp] + g[ym, xm] - g[yp, xm] - g[ym, xp])
    mean, dev = 0.5 * (hxx + hyy), np.sqrt(0.25 * (hxx - hyy) ** 2 + hxy ** 2)
    lo, hi = mean - dev, mean + dev
    dip = hi < 0
    return dip & (lo / np.where(dip, hi, -1.0) <= max_elongation)


def noise_sd_od(od: np.ndarray, mask: np.ndarray, *, max_samples: int = 200_000) -> float:
    """The photo's pixel noise SD in an OD plane over ``mask``: Immerkaer's operator, robust (MAD).

    The 3x3 kernel [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] cancels every surface up to a quadratic
    over 3 px, so pores and shading give it almost nothing and what is left is noise (sensor,
    demosaicing, JPEG); its L2 norm is 6. The MAD keeps edges and hairs out of the estimate.

    Parameters
    ----------
    od : ndarray (H, W) float32
        Optical density plane, OD.
    mask : ndarray (H, W) bool
        The skin to measure on (eroded by 1 px, so that the kernel stays inside).
    max_samples : int
        Roughly this many pixels are used at most (an even subsample).

    Returns
    -------
    float
        Noise SD, OD; NaN when the eroded mask is empty.
    """
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(od, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    v = r[inner]
    if v.size == 0:
        return float("nan")
    v = v[:: max(v.size // max_samples, 1)]
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / 6.0)


def dog_noise_gain(centre_px: float, surround_px: float) -> float:
    """The SD of :func:`band_pass`'s response to white noise of SD 1 (the L2 norm of its kernel).

    Parameters
    ----------
    centre_px, surround_px : float
        The sigmas given to :func:`band_pass`, px.

    Returns
    -------
    float
        The gain (dimensionless; without :func:`band_pass`'s mask).
    """
    g1, g2 = _gauss_1d(centre_px), _gauss_1d(surround_px)
    n = max(len(g1), len(g2))
    g1, g2 = np.pad(g1, (n - len(g1)) // 2), np.pad(g2, (n - len(g2)) // 2)
    return float(np.linalg.norm(np.outer(g1, g1) - np.outer(g2, g2)))


def scale_select(od: np.ndarray, ys: np.ndarray, xs: np.ndarray, diam_px: np.ndarray, *, chunk: int = 512) -> np.ndarray:
    """Diameter (px) at which the scale-normalised LoG of ``od`` peaks at each point (Lindeberg 1998).

    The response at each sampled diameter (log-spaced ``diam_px``, sigma = d / 2 sqrt 2) is one
    kernel dotted with each point's neighbourhood (no whole-image filtering); the peak is refined
    by a parabola in log d, and not extrapolated at the range's ends.

    Parameters
    ----------
    od : ndarray (H, W) float32
        Optical density plane, OD.
    ys, xs : ndarray of int, shape (N,)
        The points, px.
    diam_px : ndarray, shape (D,)
        Diameters to try, px, log-spaced and increasing.
    chunk : int
        Points per vectorised step (bounds the memory).

    Returns
    -------
    ndarray, shape (N,)
        Diameter of each point, px, within the range of ``diam_px``.

    Examples
    --------
    A Gaussian blob of sigma 2 px reads as about 2 sqrt 2 sigma = 5.7 px across:

    >>> y, x = np.mgrid[:41, :41]
    >>> od = np.exp(-((x - 20) ** 2 + (y - 20) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
    >>> scale_select(od, np.array([20]), np.array([20]), np.geomspace(2, 16, 13)).round(1)
    array([5.8])
    """
    n = len(ys)
    if n == 0:
        return np.zeros(0)
    kernels = [_normalised_log_kernel(max(d / (2 * math.sqrt(2)), 0.5)) for d in diam_px]
    pad = max(k.shape[0] for k in kernels) // 2
    padded = cv2.copyMakeBorder(od, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    resp = np.empty((len(kernels), n), np.float32)
    for i, k in enumerate(kernels):  # the ~17 scales, not the pixels or the pores
        r = k.shape[0] // 2
        view = np.lib.stride_tricks.sliding_window_view(padded[pad - r:padded.shape[0] - pad + r,
                                                               pad - r:padded.shape[1] - pad + r], k.shape)
        for a in range(0, n, chunk):  # bounded memory
            resp[i, a:a + chunk] = np.einsum("nij,ij->n", view[ys[a:a + chunk], xs[a:a + chunk]], k)
    best = resp.argmax(0)
    inner = np.clip(best, 1, len(kernels) - 2)
    cols = np.arange(n)
    y0, y1, y2 = resp[inner - 1, cols], resp[inner, cols], resp[inner + 1, cols]
    den = y0 - 2 * y1 + y2
    off = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1), 0.0)
    off = np.where(best == inner, np.clip(off, -0.5, 0.5), 0.0)
    step = math.log(diam_px[1] / diam_px[0]) if len(diam_px) > 1 else 0.0
    return diam_px[best] * np.exp(off * step)


def _gauss_1d(sigma_px: float) -> np.ndarray:
    """OpenCV's own Gaussian kernel for a float image (the one cv2.GaussianBlur uses)."""
    return cv2.getGaussianKernel(int(round(sigma_px * 8 + 1)) | 1, sigma_px, cv2.CV_64F)[:, 0]


def _normalised_log_kernel(sigma_px: float) -> np.ndarray:
    """-sigma^2 x (an isotropic 3x3 Laplacian of a Gaussian of ``sigma_px``), as one 2-D kernel."""
    g = _gauss_1d(sigma_px)
    lap = np.array([[0.25, 0.5, 0.25], [0.5, -3.0, 0.5], [0.25, 0.5, 0.25]])  # mean of the + and x stencils
    kern = cv2.filter2D(np.pad(np.outer(g, g), 1), -1, lap, borderType=cv2.BORDER_CONSTANT)
    return (-sigma_px * sigma_px * kern).astype(np.float32)
