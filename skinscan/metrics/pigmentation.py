"""Pigmentation: brown spots from the melanin density, melanin index, ITA° and tone evenness."""

from __future__ import annotations

import cv2
import numpy as np

from .._filters import blur_to, masked_blur
from ..inputs import MaskArg, as_masks, check_scale
from .registry import family
from .results import MetricResult, detections
from .skinimage import SkinImage, fill_clipped, resize_mask, resize_masks, skin_image

__all__ = ["pigmentation_metrics", "SPOT_DIAMETER_MM", "ita_degrees"]

SPOT_DIAMETER_MM = (0.8, 6.0)


def ita_degrees(l_star, b_star):
    """Individual typology angle, ITA° = atan((L* − 50) / b*) in degrees (arctan2, so b* = 0 is safe).

    Skin classes (Chardon 1991): > 55 very light, 41–55 light, 28–41 intermediate, 10–28 tan,
    −30–10 brown, < −30 dark.

    Parameters
    ----------
    l_star : array_like
        CIELAB L* (0-100).
    b_star : array_like
        CIELAB b*, same shape (or broadcastable).

    Returns
    -------
    ndarray of float64 or numpy.float64
        ITA, degrees (a scalar for scalar input).

    Examples
    --------
    >>> ita_degrees([65.0, 40.0], [15.0, 20.0]).round(1)
    array([ 45. , -26.6])
    """
    return np.degrees(np.arctan2(np.asarray(l_star, dtype=np.float64) - 50.0, np.asarray(b_star, dtype=np.float64)))


def _elongation(lab: np.ndarray, n: int) -> np.ndarray:
    """Per label 0..n-1: the ratio of the long to the short axis of its pixels' second moments
    (1 for a disc; a single row of pixels is given the short axis of one pixel's spread, 1/12)."""
    ys, xs = np.nonzero(lab)
    ids = lab[ys, xs]
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    cnt = np.maximum(np.bincount(ids, minlength=n), 1).astype(np.float64)

    def mean(v):
        return np.bincount(ids, weights=v, minlength=n) / cnt

    mx, my = mean(xs), mean(ys)
    cxx = mean(xs ** 2) - mx ** 2 + 1 / 12
    cyy = mean(ys ** 2) - my ** 2 + 1 / 12
    cxy = mean(xs * ys) - mx * my
    half = np.sqrt(np.maximum(((cxx - cyy) / 2) ** 2 + cxy ** 2, 0))
    lo, hi = (cxx + cyy) / 2 - half, (cxx + cyy) / 2 + half
    return np.sqrt(hi / np.maximum(lo, 1e-12))


def pigmentation_metrics(rgb, mask: MaskArg, *, mm_per_px: float, spot_threshold: float = 0.1,
                         diameter_mm=SPOT_DIAMETER_MM, background_mm: float = 2.5,
                         max_elongation: float = 3.0, work_px_per_mm: float = 4.0) -> MetricResult:
    """Brown spots, their pigment load, skin tone and its evenness.

    Melanin density comes from the optical-density unmixing (``skinscan.color.unmix_chromophores``),
    so redness and shading do not read as pigment. Each pixel's melanin is compared with the
    surrounding skin (a masked Gaussian background of ``background_mm``): a colour cast or an
    exposure change shifts a pixel and its surround alike, so these local excesses do not depend on
    the light. Spots are connected areas whose excess is over ``spot_threshold`` with an equivalent
    diameter within ``diameter_mm``, lying wholly on the skin (not touching the mask's edge, where
    hair, brows and shadows show through the mask's rim; on the sample photo they were half the
    "spots" and made the working-resolution values differ from the full-resolution ones by 50%).

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or SkinImage
    mask : ndarray of bool or dict of masks
    mm_per_px : float
    spot_threshold : float
        Melanin density above the surrounding skin that makes a spot (0.1 is about 4 L* darker on
        light skin).
    diameter_mm : (float, float)
    background_mm : float
        Gaussian sigma of the surrounding-skin estimate.
    max_elongation : float
        Largest ratio of a spot's long to short axis (from its second moments): a brown spot is
        roughly round, the shadow along a fold (nasolabial, under the eye) is long; one such
        fold, 4.8 mm across by area, was a "spot" or not depending on a pinhole in the mask.
    work_px_per_mm : float
        Working resolution (pigment needs no finer sampling).

    Returns
    -------
    MetricResult
        Per region, higher = worse except ``ita_deg``:

        ==================  ========  =====================================================
        ``spot_density``    per cm²   spots whose centroid lies in the region
        ``spot_area_pct``   %         share of the region covered by spots
        ``melanin_index``   a.u.      100 x melanin excess summed over spot pixels, per
                                      region pixel: the pigment load of the spots
        ``ita_deg``         degrees   ITA° of the median L*, b*: the skin-tone class, a
                                      descriptor rather than a better/worse score
        ``tone_evenness``   a.u.      100 x (99th percentile − median) of the local melanin
                                      excess: how far the darkest skin stands out of the
                                      typical tone
        ==================  ========  =====================================================

        Maps: ``melanin`` (working resolution), ``spots`` (photo resolution).

    References
    ----------
    .. [1] Chardon A. et al. (1991) Skin colour typology and suntanning pathways. Int J Cosmet Sci
       13(4):191–208.
    """
    mm_per_px = check_scale(mm_per_px)
    full = skin_image(rgb, mm_per_px)
    masks = as_masks(mask, full.shape)
    img = full.at(work_px_per_mm)
    mel = np.ascontiguousarray(img.chromophores[..., 1])
    mm_w = img.mm_per_px
    small = resize_masks(full, masks, mel.shape)
    union = np.logical_or.reduce(list(small.values()))
    mel = fill_clipped(mel, img, union)
    bg = masked_blur(mel, union, background_mm / mm_w)
    # The area averaging down to the working grid already blurred the melanin a little: that
    # counts towards the 0.25 mm smoothing.
    excess = blur_to(mel, 0.25 / mm_w, prior_var_px=img.blur_var_px) - bg
    spots = ((excess > spot_threshold) & union).astype(np.uint8)
    n, lab, stats, cent = cv2.connectedComponentsWithStats(spots, connectivity=8)
    d_mm = 2 * np.sqrt(stats[:, cv2.CC_STAT_AREA] / np.pi) * mm_w
    keep = (d_mm >= diameter_mm[0]) & (d_mm <= diameter_mm[1])
    keep &= _elongation(lab, n) <= max_elongation
    # A spot lies wholly on skin: a component touching the mask's edge is the dark thing beside
    # the skin (hair, brows, a nostril's shadow) showing through the mask's coarse rim. The rim is
    # 0.25 mm wide at any resolution (one working pixel; one pixel at full resolution would be a
    # third as wide, and which spots touch it would depend on the resolution), and pinholes in the
    # mask (a dark pixel of noise) are not its edge: they are closed first, over the same 0.25 mm.
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(int(round(0.25 / mm_w)), 1) + 1,) * 2)
    closed = cv2.morphologyEx(union.view(np.uint8), cv2.MORPH_CLOSE, disc)
    rim = union & ~cv2.erode(closed, disc).view(bool)
    keep[np.unique(lab[rim & (lab > 0)])] = False
    keep[0] = False
    spot_mask = keep[lab]
    load = np.where(spot_mask, excess, 0.0)
    cx = np.clip(np.round(cent[keep, 0]).astype(int), 0, mel.shape[1] - 1)
    cy = np.clip(np.round(cent[keep, 1]).astype(int), 0, mel.shape[0] - 1)
    # Skin tone from every other pixel of the photo itself: the reduced copy mixes hair and skin
    # at the regions' edges, which moves the median of dark skin.
    st = max(int(round(mm_w / mm_per_px / 2)), 1)
    tone_img = SkinImage(np.ascontiguousarray(full.rgb[::st, ::st]), gains=full.gains)
    lab_img = tone_img.lab
    # L* and b* planes of their own: gathering one plane under a mask is twice as fast as
    # gathering (L*, a*, b*) triplets and slicing them.
    tone_l, tone_b = np.ascontiguousarray(lab_img[..., 0]), np.ascontiguousarray(lab_img[..., 2])
    tone_masks = {k: m[::st, ::st] for k, m in masks.items()}
    values = {}
    for k, ms in small.items():
        a_cm2 = np.count_nonzero(ms) * mm_w ** 2 / 100.0
        if a_cm2 == 0:
            values[k] = dict.fromkeys(family("pigmentation").keys, float("nan"))
            continue
        tm = tone_masks[k]
        ex = excess[ms]
        mid, hi = np.percentile(ex, [50, 99])
        values[k] = {
            "spot_density": float(np.count_nonzero(ms[cy, cx]) / a_cm2),
            "spot_area_pct": 100.0 * float(np.count_nonzero(spot_mask & ms)) / np.count_nonzero(ms),
            "melanin_index": 100.0 * float(load[ms].mean()),
            "ita_deg": float(ita_degrees(np.median(tone_l[tm]), np.median(tone_b[tm]))),
            "tone_evenness": 100.0 * float(hi - mid),
        }
    # Each spot: its centre in the photo's pixels, its equivalent diameter, its mean melanin excess.
    fx, fy = full.shape[1] / mel.shape[1], full.shape[0] / mel.shape[0]
    mean_excess = np.bincount(lab.reshape(-1), weights=load.reshape(-1), minlength=n) / np.maximum(
        stats[:, cv2.CC_STAT_AREA], 1)
    found = detections((cent[keep, 0] + 0.5) * fx - 0.5, (cent[keep, 1] + 0.5) * fy - 0.5, diameter_mm=d_mm[keep],
                       strength=mean_excess[keep])
    return MetricResult(values, maps={"melanin": mel, "spots": resize_mask(spot_mask, full.shape)},
                        detections={"spot": found})
