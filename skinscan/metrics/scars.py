"""Atrophic scars: shaded, darker, edged depressions 1–5 mm across."""

from __future__ import annotations

import cv2
import numpy as np

from .._filters import blur_to, reduce_with_blur
from ..inputs import MaskArg, as_masks, check_scale
from .blobs import blobs_per_region, detect_dark_blobs
from .results import MetricResult, detections
from .skinimage import resize_masks, skin_image, work_scale

__all__ = ["scar_metrics", "SCAR_DIAMETER_MM"]

SCAR_DIAMETER_MM = (0.5, 5.0)

# The opening's digital disc: the pixels within 2.5 px of the centre (21 px, 5 across), and the
# diameter of the disc of the same area.
_DISC = (np.hypot(*np.mgrid[-2:3, -2:3]) <= 2.5).astype(np.uint8)
_DISC_PX = 2 * np.sqrt(_DISC.sum() / np.pi)


def _open_disc(img: np.ndarray, diameter_px: float) -> np.ndarray:
    """Grey-level opening of ``img`` by a disc ``diameter_px`` across, for any real diameter.

    A digital disc of 1.5-3 px (0.5 mm at 6-12 px/mm) is a cross, a square or a blocky 5 or 7 px
    shape, whose size in mm jumps with the resolution. The opening is done instead on a grid
    where the disc is :data:`_DISC` (the 21 px digital disc with the disc's area): the image is
    resampled there (cubic up, area down), opened and resampled back (bilinear, or cubic up), so
    every resolution opens with the same disc in mm. For 0.5 mm that grid is ~10 px/mm: above the working resolution, and below a
    photo's own only by what the pre-opening blur has already removed.
    """
    g = _DISC_PX / diameter_px
    h, w = img.shape
    size = (max(int(round(w * g)), 1), max(int(round(h * g)), 1))
    fine = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if g > 1 else cv2.INTER_AREA)
    fine = cv2.morphologyEx(fine, cv2.MORPH_OPEN, _DISC)
    return cv2.resize(fine, (w, h), interpolation=cv2.INTER_LINEAR if g > 1 else cv2.INTER_CUBIC)


def scar_metrics(rgb, mask: MaskArg, *, mm_per_px: float, diameter_mm=SCAR_DIAMETER_MM, k_sigma: float = 5.0,
                 min_contrast: float = 0.06, max_elongation: float = 2.0, work_px_per_mm: float = 6.0,
                 open_mm: float | None = None, preblur_mm: float = 0.17, support_max_mm: float = 1.0,
                 ring_min: int = 6, min_diameter_mm: float = 1.0) -> MetricResult:
    """Scar density, area and severity from large dark blobs of the shading density.

    Scars are depressions: they darken all channels alike, so they are sought in the grey
    shading left after haemoglobin and melanin are unmixed (brown spots and red patches of the
    same size are not scars).

    Scars are found like pores but at scales of 0.5–5 mm, at a working resolution of
    ``work_px_per_mm`` (scars need no finer sampling), after a grey-level opening with a disc of
    ``diameter_mm[0]`` removes every dark feature narrower than it (fine lines, fine texture), and
    count from ``min_diameter_mm`` (1 mm) across. The disc
    is the same in mm at every resolution (see :func:`_open_disc`), and so are the detector's
    tests, so the values do not depend on the working resolution beyond the odd blob at a
    threshold.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
    mask : ndarray of bool or dict of masks
    mm_per_px : float
    diameter_mm : (float, float)
    k_sigma : float
        Detection threshold in robust standard deviations of the blob response.
    min_contrast : float
        Smallest blob response (scale-normalised, in optical density) that counts: a physical
        floor under the threshold relative to the skin's own spread. On a real close-up whose skin
        is full of pores, clusters of pores and follicles read up to about 0.085 (95% of them under
        it) and a floor of 0.004 let 233 of them count as scars (2 per cm^2, more than the
        protocol's largest dose); the protocol's scars of 1-3 mm read 0.13 and more.
    max_elongation : float
        Largest ratio of the blob's Hessian eigenvalues: scars are roughly round, what is left of
        a fine line after the opening is not.
    work_px_per_mm : float
        Working resolution (the photo is never upsampled).
    open_mm : float, optional
        Diameter of the opening disc (default: the smallest scar diameter).
    preblur_mm : float
        Gaussian denoising before the opening, so that the erosion does not pick noise minima.
    support_max_mm : float
        A scar's support (3 sigma, at most this) must lie on skin: the dark side of a bright edge
        beside the skin (neck, background) reads as a scar-sized blob otherwise. Capped so that a
        large scar near a region's edge still counts.
    ring_min : int
        A scar must be darker than at least this many of 8 points around it at 2 sigma (a pit is
        darker than the skin all around; the dark side of a shadow's edge is not). This is what
        lets the threshold down to 5 robust SDs without false scars along the jaw's shadow.
    min_diameter_mm : float
        Smallest scar diameter (2 sqrt 2 sigma) that counts. Dips under 1 mm are the pore
        detector's (it calls nothing over 1 mm a pore), so each dip is counted by one family.
        Skin full of pores, photographed at 10-13 px/mm with squints and smiles, gave the
        detector 76 dips of 0.6-1 mm in 8 photos of undosed cheeks (0.3 per cm^2, more than the
        protocol's smallest dose; 7 of them 1 mm or more), pores grown by 0.125 mm 146 (20); with
        0.8 scars per cm^2 of 1-3 mm injected, 156 of 194 dips were 1 mm or more.

    Returns
    -------
    MetricResult
        Per region: ``scar_density`` (per cm^2), ``scar_area_pct`` (%), ``scar_severity``
        (sum over scars of contrast x area, per cm^2 of region, x 100; a.u.). Higher = worse.
    """
    mm_per_px = check_scale(mm_per_px)
    full = skin_image(rgb, mm_per_px)
    w = full.shape[1]
    # Shading at the photo's resolution, then reduced: the density of averaged colours is not
    # the average density, and scars are shallow (a few hundredths of optical density).
    f_work = 1.0 if full.full_resolution else work_scale(mm_per_px, work_px_per_mm)
    shade, var = reduce_with_blur(full.shading, f_work)
    shape = shade.shape[:2]
    masks = resize_masks(full, as_masks(mask, full.shape), shape)
    mm_w = mm_per_px * w / shape[1]
    f = mm_per_px / mm_w
    # Denoise first: the erosion would otherwise pick noise minima and leave line remnants.
    # The reduction's own blur counts towards the denoising, so that a working copy and a photo at
    # its own resolution are blurred alike: a working copy blurred 0.17 mm against 0.15 at full
    # resolution answers 2-3% weaker on small scars, and 5.5% fewer scars cross the threshold
    # (12 photos at 12.4 px/mm). 0.17 mm is the blur the detector was validated with (at 0.15,
    # grown pores read as scars: 30% cross-talk).
    if preblur_mm > 0:
        shade = blur_to(shade, preblur_mm / mm_w, prior_var_px=var)
    # Opening of the darkness (bright = dark skin) removes bright features narrower than the disc,
    # the same disc in mm at every resolution (a digital disc of 3-7 px is 0.36-0.58 mm, and the
    # scar area moves by 10-20% with it).
    dark = _open_disc(shade, (open_mm or diameter_mm[0]) / mm_w)
    union = np.logical_or.reduce(list(masks.values()))
    d = np.geomspace(diameter_mm[0], diameter_mm[1], 7)
    # One scale above the band, a guard: a dip still darkening at the band's top (the shading beside
    # the nose, a cheek's hollow) peaks there and is dropped. A maximum at the band's last scale is
    # no maximum in scale, and whether such a dip reaches the threshold there changes with the
    # resolution (a benchmark photo read scar severity 17.7 at 12.2 px/mm and 23.5 at full).
    d = np.append(d, d[-1] ** 2 / d[-2])
    sig_px = np.unique(np.round(np.maximum(d / (2 * np.sqrt(2)) / mm_w, 0.5), 3))
    # Maxima at the guard scale keep its sigma (the refinement leaves the last scale's); a blob of the
    # band refined upwards stays under it.
    below_guard_px = sig_px[-1] * (1 - 1e-6)
    blobs = detect_dark_blobs(dark, union, sigmas_px=sig_px, k_sigma=k_sigma,
                              min_contrast=min_contrast, max_elongation=max_elongation,
                              support_max_px=support_max_mm / mm_w, ring_min=ring_min, merge_sigmas=1.0,
                              laplacian="fourth_order", subpixel=True, support_pad_px=0.1 / mm_w,
                              min_sigma_px=min_diameter_mm / (2 * np.sqrt(2)) / mm_w, max_sigma_px=below_guard_px)
    stats = blobs_per_region(blobs, masks, mm_w)
    values = {k: {"scar_density": s["density_per_cm2"], "scar_area_pct": s["area_pct"],
                  "scar_severity": 100.0 * s["response_sum_mm2"] / (s["area_mm2"] / 100.0) if s["area_mm2"] else np.nan}
              for k, s in stats.items()}
    blobs_full = np.stack([blobs["x"] / f, blobs["y"] / f, blobs["sigma"] / f], 1)
    found = detections(blobs_full[:, 0], blobs_full[:, 1], diameter_mm=2 * np.sqrt(2) * blobs["sigma"] * mm_w,
                       strength=blobs["response"])
    return MetricResult(values, maps={"scar_blobs": blobs_full}, detections={"scar": found})
