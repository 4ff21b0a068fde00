"""Named facial skin regions as pixel masks, drawn from face-mesh landmarks, and a skin-colour mask.

Every region is a polygon over MediaPipe face-mesh landmark ids, so the same definitions serve a
photo (landmarks in pixels) and the canonical frame (canonical-mesh vertices scaled to pixels).
Eyes, brows, lips and the nostrils are cut out of every region with a margin in millimetres, and
where two polygons overlap the region earlier in :data:`PRECEDENCE` keeps the pixels, so the
eight named regions never share a pixel and ``face`` is their union.

"Left" and "right" are the subject's own: ``cheek_left`` is on the image right of an unmirrored
frontal photo.
"""

from __future__ import annotations

from types import MappingProxyType

import cv2
import numpy as np

from ._filters import mask_box, shrink
from .color import lightness
from .inputs import (
    as_float_rgb,
    check_image_shape,
    check_length_mm,
    check_rgb,
    check_scale,
)
from .landmark_ids import LEFT_BROW, LEFT_EYE, LIPS, N_MESH, RIGHT_BROW, RIGHT_EYE
from .landmarks import FaceLandmarks

__all__ = [
    "REGION_NAMES",
    "REGION_COLORS",
    "REGION_POLYGONS",
    "EXCLUSION_POLYGONS",
    "PRECEDENCE",
    "FOREHEAD_TOP",
    "skin_mask",
    "SKIN_PX_PER_MM",
    "polygon_masks",
    "region_masks",
    "canonical_region_masks",
    "draw_regions",
]

REGION_NAMES = ("face", "forehead", "cheek_left", "cheek_right", "nose", "chin",
                "periorbital_left", "periorbital_right", "perioral")

# --------------------------------------------------------------------------------------------
# Region polygons: landmark ids of the MediaPipe 468-point face mesh, in drawing order around
# each outline. They were chosen on a rendering of the canonical mesh with its ids and checked
# on photos. Each left list is the mirror image of the right one (the canonical mesh is exactly
# symmetric), so the two sides always have the same extent. The features cut out of them (eyes,
# brows, lips) are the mesh's own anatomy, named in :mod:`skinscan.landmark_ids`.
# --------------------------------------------------------------------------------------------

#: The mesh's upper edge (temple to temple over the forehead) with how far, as a fraction of
#: ``forehead_extension_mm``, each point is pushed up towards the hairline. The temples are pushed
#: less because the hairline curves down there.
FOREHEAD_TOP = MappingProxyType({
    21: 0.35, 54: 0.75, 103: 1.0, 67: 1.0, 109: 1.0, 10: 1.0,
    338: 1.0, 297: 1.0, 332: 1.0, 284: 0.75, 251: 0.35,
})

#: Forehead: the (extended) upper mesh edge, down the temples to the brow tails, along the upper
#: brow edges and, between the brows, down over the glabella to the nasion (168).
FOREHEAD = (21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251,
            301, 300, 293, 334, 296, 336, 285, 417, 168, 193, 55, 107, 66, 105, 63, 70, 71)

#: Periorbital (subject's right): upper lid skin from the lower brow edge, the medial canthus,
#: the under-eye (tear trough and lid-cheek junction, about 1.5 cm below the lower lid) and the
#: lateral canthal area (crow's feet) out to the brow tail. The eye and brow are cut out.
PERIORBITAL_RIGHT = (34, 139, 71, 70, 46, 53, 52, 65, 55, 193, 245, 188, 128, 121, 120, 119,
                     118, 117, 116)
PERIORBITAL_LEFT = (264, 368, 301, 300, 276, 283, 282, 295, 285, 417, 465, 412, 357, 350, 349,
                    348, 347, 346, 345)

#: Nose: bridge from the nasion, side walls down to the alar creases (129/358), and the tip and
#: alae above the nostrils; the lower edge runs along the top of the nostril openings.
NOSE = (168, 193, 245, 188, 114, 217, 198, 209, 49, 129, 64, 219, 218, 79, 237, 44, 1,
        274, 457, 309, 438, 439, 294, 358, 279, 429, 420, 437, 343, 412, 465, 417)

#: Perioral: upper-lip skin from under the nostrils, the nasolabial folds and the commissures,
#: and the marionette areas down to about 2 cm below the mouth corners. The lips are cut out;
#: below the middle of the lower lip the chin begins.
PERIORAL = (2, 97, 98, 64, 129, 203, 206, 216, 212, 202, 204, 194, 182, 181, 84, 17,
            314, 405, 406, 418, 424, 422, 432, 436, 426, 423, 358, 294, 327, 326)

#: Chin: below the lower lip, between the marionette areas, down to the jaw line.
CHIN = (17, 84, 181, 182, 194, 32, 140, 176, 148, 152, 377, 400, 369, 262, 418, 406, 405, 314)

#: Cheek (subject's right): from the lower edge of the periorbital region down to the jaw,
#: lateral to the nose and perioral region, medial to a ring just inside the face outline (the
#: outermost band is foreshortened and often shows background or hair).
CHEEK_RIGHT = (34, 227, 137, 177, 215, 138, 136, 150, 149, 176, 140, 32, 194, 204, 202, 212,
               216, 206, 203, 129, 49, 209, 198, 217, 114, 188, 128, 121, 120, 119, 118, 117, 116)
CHEEK_LEFT = (264, 447, 366, 401, 435, 367, 365, 379, 378, 400, 369, 262, 418, 424, 422, 432,
              436, 426, 423, 358, 279, 429, 420, 437, 343, 412, 357, 350, 349, 348, 347, 346, 345)

REGION_POLYGONS = MappingProxyType({
    "forehead": FOREHEAD,
    "cheek_left": CHEEK_LEFT,
    "cheek_right": CHEEK_RIGHT,
    "nose": NOSE,
    "chin": CHIN,
    "periorbital_left": PERIORBITAL_LEFT,
    "periorbital_right": PERIORBITAL_RIGHT,
    "perioral": PERIORAL,
})

#: Where polygons overlap, the region named first keeps the pixels: small, specific regions
#: before the large ones that surround them.
PRECEDENCE = ("periorbital_right", "periorbital_left", "nose", "perioral", "chin",
              "cheek_right", "cheek_left", "forehead")

#: Non-skin features cut out of every region, grown by ``exclusion_margin_mm``: the eye openings
#: (lid margins), the brows, the outer lip line, and the sub-nasal band between the nose's lower
#: edge and the perioral region's upper edge (both nostrils and the columella).
EXCLUSION_POLYGONS = MappingProxyType({
    "eye_right": RIGHT_EYE,
    "eye_left": LEFT_EYE,
    "brow_right": RIGHT_BROW,
    "brow_left": LEFT_BROW,
    "lips": LIPS,
    "nostrils": (64, 219, 218, 79, 237, 44, 1, 274, 457, 309, 438, 439, 294, 327, 326, 2, 97, 98),
})

#: Overlay colour of each region, RGB uint8.
REGION_COLORS = MappingProxyType({
    "face": (255, 255, 255),
    "forehead": (255, 196, 0),
    "cheek_left": (235, 70, 55),
    "cheek_right": (55, 115, 235),
    "nose": (0, 205, 205),
    "chin": (165, 90, 225),
    "periorbital_left": (60, 200, 80),
    "periorbital_right": (200, 235, 50),
    "perioral": (255, 115, 200),
})

_LABELS = {"forehead": "forehead", "cheek_left": "cheek L", "cheek_right": "cheek R", "nose": "nose",
           "chin": "chin", "periorbital_left": "periorb L", "periorbital_right": "periorb R",
           "perioral": "perioral"}

_SHIFT = 4  # fillPoly fractional bits: vertices at 1/16 px
_CHIN_ID, _FOREHEAD_ID = 152, 10


# --------------------------------------------------------------------------------------------
# Landmarks at the door (images, scales and lengths are checked by skinscan.inputs)
# --------------------------------------------------------------------------------------------

def _check_points(points) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < N_MESH:
        raise ValueError(f"expected landmark points of shape (468 or 478, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts[:N_MESH])):
        raise ValueError("landmark points contain NaN or inf")
    return pts


def _disk(radius_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))


# --------------------------------------------------------------------------------------------
# Skin colour
# --------------------------------------------------------------------------------------------

#: Working resolution of the skin-colour classification in the analysis.
SKIN_PX_PER_MM = 5.0

_ROBUST_FLOOR = np.array([1.0, 1.0, 1.0, 2.0])  # minimum sigma of L*, a*, b*, hue (deg)


def _robust_stats(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and sigma = 1.4826 MAD (floored) per column of an (N, 4) sample of L*, a*, b*, hue.

    Hair and shadow sit below the skin in L* and above it in hue, so the spread of those two is
    taken from the clean side of the median only (brighter for L*, redder for hue), where they
    cannot inflate it.
    """
    med = np.median(sample, axis=0)
    dev = sample - med
    sigma = 1.4826 * np.median(np.abs(dev), axis=0)
    for col, side in ((0, 1.0), (3, -1.0)):
        clean = dev[:, col][side * dev[:, col] >= 0]
        if clean.size >= 10:
            sigma[col] = 1.4826 * np.median(np.abs(clean))
    return med, np.maximum(sigma, _ROBUST_FLOOR)


def _classify(light, a, b, hue, chroma, rgbf, med, sig, k):
    """Boolean (dark, glare, off_hue, soft) non-skin maps of Lab pixels given the skin's robust stats.

    ``soft`` holds the tests that noise can trip inside ordinary skin (dull and hair-coloured
    pixels); the caller keeps them only where they come in masses.
    """
    m_l, m_a, m_b, m_h = (float(v) for v in med)
    s_l, s_a, s_b, s_h = (float(v) for v in sig)
    m_c = float(np.hypot(m_a, m_b))
    dark = light < m_l - max(k * s_l, 0.30 * m_l)
    dull = (light < m_l - max(2.5 * s_l, 0.12 * m_l)) & (chroma < 0.55 * m_c)
    # Clipped (250 and up in 8 bits) in two or more channels: a highlight. Bright red skin clips
    # its red channel alone first; those pixels stay (the colour metrics recover the channel,
    # see SkinImage.at): dropping them took the brightest, reddest skin out of brighter photos.
    glare = (rgbf > 249.5 / 255).sum(axis=-1) >= 2
    glare |= (light > m_l + max(k * s_l, 0.12 * m_l)) & (chroma < 0.6 * m_c)
    off_hue = (np.abs(b - m_b) > max(k * s_b, 12.0)) | (a < m_a - max(k * s_a, 12.0))
    # Hair that is brown or blond rather than black: darker *and* yellower than the skin, summed
    # in robust sigmas, or much yellower alone. Only the yellow side of hue counts: erythema turns
    # skin redder, never yellower. Hue is used rather than a*, b* because shading scales those.
    z_dark = np.maximum(m_l - light, 0) / max(s_l, 0.10 * m_l)
    z_yellow = np.maximum(hue - m_h, 0) / max(s_h, 5.0)
    hairlike = ((z_dark + z_yellow > 0.75 * k) & (z_yellow > 1.0) & (light < 0.9 * m_l)) | (z_yellow > 0.75 * k)
    hairlike &= chroma > 0.5 * m_c  # hue means nothing on grey pixels
    return dark, glare, off_hue, dull | hairlike


def skin_mask(rgb, candidate_mask, *, mm_per_px: float | None = None, k_sigma: float = 4.0,
              work_px_per_mm: float | None = None) -> np.ndarray:
    """Pixels of ``candidate_mask`` whose colour is the subject's skin in this photo.

    The reference is the subject's own skin: the median and sigma (1.4826 MAD) of CIELAB L*, a*,
    b* and hue angle over the candidate pixels, computed twice, the second time over the pixels
    the first pass kept, so that a good part of the candidate may be hair or shadow (the sigmas
    of L* and hue come from the side of the median that hair and shadow do not reach). With
    ``k`` = ``k_sigma``, a pixel is dropped when it is

    * dark: ``L* < med_L - max(k sigma_L, 0.30 med_L)`` (black hair, brows, deep shadow);
    * dull: darker than ``med_L - max(2.5 sigma_L, 0.12 med_L)`` with chroma under 0.55 of the
      skin's (beard shadow, grey hair, cast shadow);
    * glare: two or more channels >= 250/255 (clipped), or ``L* > med_L + max(k sigma_L, 0.12
      med_L)`` with chroma under 0.6 of the skin's (specular highlights); a pixel with one channel
      clipped (bright red skin clips its red first) stays;
    * hair-coloured: with chroma over half the skin's, darker and yellower in hue than the skin
      by ``0.75 k`` robust sigmas together (at least 1 sigma of it in hue, and ``L* < 0.9
      med_L``), or yellower in hue alone by ``0.75 k`` sigmas (brown and blond hair);
    * off-hue: off in b* by ``max(k sigma_b, 12)``, or greener in a* by ``max(k sigma_a, 12)``.

    Dull and hair-coloured pixels are dropped only where most pixels of a ~0.3 mm window agree
    (a median filter), so that noise inside a brown spot or a shadowed fold does not punch holes.

    Redness is never bounded above (a* up, hue down), and the dark bounds sit far below the skin
    median, so erythema, pinpoint bleeding, freckles and most pigmented spots stay in the mask.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        uint8, or float in [0, 1].
    candidate_mask : ndarray of bool, shape (H, W)
        Where skin may be (e.g. the union of the face regions).
    mm_per_px : float, optional
        Scale of the photo; when given, glare blobs are grown by 0.3 mm, and pixels within 0.1 mm
        of dark ones are dropped when they are moderately dark (``L* < med_L - max(2 sigma_L,
        0.15 med_L)``), to take the blurred rims of both.
    k_sigma : float
        Robust sigmas a pixel may lie from the skin median before it is dropped.
    work_px_per_mm : float or None
        With ``mm_per_px``, a photo finer than this is classified on a copy reduced to it (hair
        masses, shadow and glare are millimetre-sized; :data:`SKIN_PX_PER_MM` is what the analysis
        uses) and the result enlarged back; dark pixels (single hairs) and clipped pixels are
        still found at full resolution. None: all at full resolution.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on skin; always False outside ``candidate_mask``, on NaN pixels, and everywhere when
        the candidate is empty.

    Notes
    -----
    CIELAB is OpenCV's, from float RGB (sRGB, D65): L* in [0, 100], a* and b* about [-127, 127],
    hue = atan2(b*, a*) in degrees; hue sigma is floored at 5 degrees and the L* sigma used for
    hair at 0.1 med_L. Colour alone cannot separate skin from hair of nearly the same hue and
    lightness (light blond hair over a light forehead, or skin in warm shade next to brown
    hair); such hair stays in the mask and such shade may leave it.

    References
    ----------
    Leys, C., Ley, C., Klein, O., Bernard, P. and Licata, L. (2013). Detecting outliers: do not
    use standard deviation around the mean, use absolute deviation around the median. Journal of
    Experimental Social Psychology 49(4), 764-766.

    Examples
    --------
    >>> rgb = np.full((40, 40, 3), (200, 150, 130), np.uint8)
    >>> rgb[10:12, :] = (40, 30, 25)                       # a dark hair across the patch
    >>> keep = skin_mask(rgb, np.ones((40, 40), bool))
    >>> int(keep.sum()), bool(keep[10:12].any())
    (1520, False)
    """
    arr = check_rgb(rgb)
    cand = np.asarray(candidate_mask, dtype=bool)
    if cand.shape != arr.shape[:2]:
        raise ValueError(f"candidate_mask shape {cand.shape} does not match the image {arr.shape[:2]}")
    scale = None if mm_per_px is None else check_scale(mm_per_px)
    out = np.zeros(cand.shape, dtype=bool)
    # Work in the candidate's bounding box only (a face is a fraction of a 12 MP photo).
    box = mask_box(cand, 1 if scale is None else int(np.ceil(0.3 / scale)) + 1)
    if box is None:
        return out
    cand_box, rgb_box = cand[box], arr[box]
    sub, c, f, scale_w = _classification_copy(rgb_box, cand_box, scale, work_px_per_mm)
    planes = _lab_planes(sub)
    reference = _skin_reference(planes, sub, c, k_sigma)
    if reference is None:
        return out
    med, sig = reference
    keep = c & ~_not_skin(planes, sub, med, sig, k_sigma=k_sigma, mm_per_px=scale_w)
    if f < 1.0:
        keep = _full_resolution_tests(keep, rgb_box, cand_box, med, sig, k_sigma=k_sigma, mm_per_px=scale_w * f)
    out[box] = keep
    return out


def _classification_copy(rgb_box: np.ndarray, cand_box: np.ndarray, mm_per_px: float | None,
                         work_px_per_mm: float | None) -> tuple[np.ndarray, np.ndarray, float, float | None]:
    """What :func:`skin_mask` classifies: the box's pixels as float RGB in [0, 1] and its candidate,
    reduced to ``work_px_per_mm`` when the photo is finer by more than 1.25x, non-finite pixels out
    of the candidate; and that copy's reduction factor and scale (mm per px, or None)."""
    f = 1.0 if mm_per_px is None or work_px_per_mm is None else min(1.0, work_px_per_mm * mm_per_px)
    sub_in, c, scale = rgb_box, cand_box, mm_per_px
    if f < 0.8:
        bh, bw = cand_box.shape
        size = (max(round(bw * f), 1), max(round(bh * f), 1))
        sub_in = shrink(rgb_box, size)
        c = cv2.resize(cand_box.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)
        scale = mm_per_px * bw / size[0]
    else:
        f = 1.0
    sub = as_float_rgb(sub_in)
    if rgb_box.dtype != np.uint8:  # floats may hold NaN/inf or stray outside [0, 1]
        c = c & np.isfinite(sub).all(axis=2)
        sub = np.clip(np.nan_to_num(sub), 0.0, 1.0)
    return sub, c, f, scale


def _lab_planes(sub: np.ndarray) -> tuple[np.ndarray, ...]:
    """(L*, a*, b*, hue in degrees, chroma) planes of float RGB, OpenCV's CIELAB (D65)."""
    lab = cv2.cvtColor(np.ascontiguousarray(sub), cv2.COLOR_RGB2Lab)
    light, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    hue *= np.float32(180 / np.pi)
    return light, a, b, hue, chroma


def _skin_reference(planes: tuple[np.ndarray, ...], sub: np.ndarray, cand: np.ndarray,
                    k_sigma: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The subject's skin colour: robust median and sigma of L*, a*, b*, hue over the candidate, the
    second time over the pixels the first pass kept (None for an empty candidate)."""
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        return None
    idx = idx[:: max(1, idx.size // 50_000)]  # the median of 50 k pixels is within 0.6% of a sigma
    flat = [v.reshape(-1)[idx] for v in planes]
    sample = np.stack(flat[:4], axis=1).astype(np.float64)
    med, sig = _robust_stats(sample)
    kept = ~np.logical_or.reduce(_classify(*flat, sub.reshape(-1, 3)[idx], med, sig, k_sigma))
    if kept.sum() >= 50:
        med, sig = _robust_stats(sample[kept])
    return med, sig


def _not_skin(planes: tuple[np.ndarray, ...], sub: np.ndarray, med: np.ndarray, sig: np.ndarray, *,
              k_sigma: float, mm_per_px: float | None) -> np.ndarray:
    """Pixels that are not the skin of :func:`_skin_reference`: dark, glare, off-hue, and dull or
    hair-coloured in masses; with a scale, glare blobs with their halo and dark pixels with their rim."""
    light = planes[0]
    dark, glare, off_hue, soft = _classify(*planes, sub, med, sig, k_sigma)
    # Brown or blond hair and cast shadow come in masses (fringe, hairline, beard shadow); a
    # majority vote over ~0.3 mm keeps those and lets go of the scattered pixels that noise
    # pushes over the line inside a brown spot.
    size = 3 if mm_per_px is None else int(np.clip(2 * round(0.15 / mm_per_px) + 1, 3, 7))
    soft = cv2.medianBlur(soft.view(np.uint8) * np.uint8(255), size) > 127
    if mm_per_px is not None:
        r_glare, r_dark = round(0.3 / mm_per_px), round(0.1 / mm_per_px)
        if r_glare >= 1:
            # Halo only around glare blobs: an opening first, so that scattered clipped pixels
            # (noise on bright skin) are dropped alone instead of punching discs into the mask.
            seeds = cv2.morphologyEx(glare.view(np.uint8), cv2.MORPH_OPEN, _disk(1))
            glare = glare | cv2.dilate(seeds, _disk(r_glare)).view(bool)
        if r_dark >= 1:
            # Hysteresis: the blurred rim of a hair is taken where it is at least moderately dark.
            m_l, s_l = float(med[0]), float(sig[0])
            rim = cv2.dilate(dark.view(np.uint8), _disk(r_dark)).view(bool)
            dark |= rim & (light < m_l - max(2.0 * s_l, 0.15 * m_l))
    return dark | glare | off_hue | soft


def _full_resolution_tests(keep: np.ndarray, rgb_box: np.ndarray, cand_box: np.ndarray, med: np.ndarray,
                           sig: np.ndarray, *, k_sigma: float, mm_per_px: float) -> np.ndarray:
    """A mask classified on a reduced copy, enlarged back, less what vanished in the copy: thin dark
    hairs (on L* from luminance alone, with their rims) and pixels clipped in two channels or more."""
    keep = cv2.resize(keep.view(np.uint8), (cand_box.shape[1], cand_box.shape[0]),
                      interpolation=cv2.INTER_NEAREST).view(bool) & cand_box
    light_full = lightness(rgb_box if rgb_box.dtype == np.uint8 else np.clip(np.nan_to_num(rgb_box), 0, 1))
    m_l, s_l = float(med[0]), float(sig[0])
    dark_full = light_full < m_l - max(k_sigma * s_l, 0.30 * m_l)
    r_dark = round(0.1 / mm_per_px)
    if r_dark >= 1:
        rim = cv2.dilate(dark_full.view(np.uint8), _disk(r_dark)).view(bool)
        dark_full |= rim & (light_full < m_l - max(2.0 * s_l, 0.15 * m_l))
    keep &= ~dark_full
    if rgb_box.dtype == np.uint8:  # pixels clipped in two channels or more, which averaging would hide
        n_clip = cv2.add(cv2.add((rgb_box[..., 0] >= 250).view(np.uint8), (rgb_box[..., 1] >= 250).view(np.uint8)),
                         (rgb_box[..., 2] >= 250).view(np.uint8))
        keep &= n_clip < 2
    else:
        keep &= (as_float_rgb(rgb_box) > 249.5 / 255).sum(axis=2) < 2
    return keep


# --------------------------------------------------------------------------------------------
# Polygons to masks
# --------------------------------------------------------------------------------------------

def _region_outlines(pts: np.ndarray, mm_per_px: float, forehead_extension_mm: float) -> dict[str, np.ndarray]:
    """Pixel outlines of the eight regions, the forehead's top pushed up along the face's vertical."""
    outlines = {name: pts[list(ids)] for name, ids in REGION_POLYGONS.items()}
    if forehead_extension_mm:
        up = pts[_FOREHEAD_ID] - pts[_CHIN_ID]  # the face's own "up", so roll is followed
        norm = float(np.hypot(*up))
        if norm > 0:
            up /= norm
            ids = np.array(FOREHEAD)
            weights = np.array([FOREHEAD_TOP.get(int(i), 0.0) for i in ids])
            outlines["forehead"] = outlines["forehead"] + np.outer(weights, up) * (forehead_extension_mm / mm_per_px)
    return outlines


def _fixed(poly: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.round((poly - offset) * (1 << _SHIFT)).astype(np.int32)


def polygon_masks(points, image_shape, *, mm_per_px: float, forehead_extension_mm: float = 15.0,
                  exclusion_margin_mm: float = 1.0) -> dict[str, np.ndarray]:
    """Rasterise the region polygons of landmark positions ``points`` (geometry only, no colour).

    Parameters
    ----------
    points : ndarray, shape (468, 2) or (478, 2)
        Landmark (x, y) in pixels: a photo's landmarks, or canonical-mesh vertices mapped to a
        canonical frame.
    image_shape : tuple of int
        (height, width) of the masks.
    mm_per_px : float
        Scale, for the forehead extension and the exclusion margin.
    forehead_extension_mm : float
        How far the forehead's top edge is pushed above the mesh towards the hairline, in mm.
    exclusion_margin_mm : float
        How far eyes, brows, lips and nostrils are grown before they are cut out, in mm.

    Returns
    -------
    dict of str to ndarray of bool, shape (H, W)
        One mask per name in :data:`REGION_NAMES`; the eight named regions are disjoint and
        ``face`` is their union. Only the face's bounding box is rasterised.
    """
    pts = _check_points(points)
    h, w = check_image_shape(image_shape)
    scale = check_scale(mm_per_px)
    extension_mm = check_length_mm(forehead_extension_mm, "forehead_extension_mm")
    margin_px = check_length_mm(exclusion_margin_mm, "exclusion_margin_mm") / scale
    outlines = _region_outlines(pts, scale, extension_mm)

    # Rasterise only the bounding box of the outlines (a 12 MP photo's face is a fraction of it).
    allp = np.concatenate(list(outlines.values()))
    x0, y0 = np.floor(allp.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(allp.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    masks = {name: np.zeros((h, w), dtype=bool) for name in REGION_NAMES}
    if x1 <= x0 or y1 <= y0:
        return masks
    offset = np.array([x0, y0], dtype=np.float64)

    # A label map painted from the lowest precedence up resolves overlaps in one pass.
    label = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    codes = {name: i + 1 for i, name in enumerate(PRECEDENCE)}
    for name in reversed(PRECEDENCE):
        cv2.fillPoly(label, [_fixed(outlines[name], offset)], codes[name], cv2.LINE_8, _SHIFT)

    cut = np.zeros_like(label)
    polys = [_fixed(pts[list(ids)], offset) for ids in EXCLUSION_POLYGONS.values()]
    cv2.fillPoly(cut, polys, 1, cv2.LINE_8, _SHIFT)
    thickness = int(round(2 * margin_px))
    if thickness >= 1:  # a thick outline with round ends grows each polygon by margin_px
        cv2.polylines(cut, polys, True, 1, thickness, cv2.LINE_8, _SHIFT)
    label[cut.view(bool)] = 0

    for name, code in codes.items():
        masks[name][y0:y1, x0:x1] = label == code
    masks["face"][y0:y1, x0:x1] = label > 0
    return masks


def region_masks(landmarks: FaceLandmarks, *, mm_per_px: float, rgb=None, forehead_extension_mm: float = 15.0,
                 exclusion_margin_mm: float = 1.0, apply_skin_mask: bool = True, return_candidate: bool = False,
                 skin_px_per_mm: float | None = None):
    """Masks of the named skin regions of one photo.

    Parameters
    ----------
    landmarks : FaceLandmarks
        The face, in the pixels of ``rgb``.
    mm_per_px : float
        Scale of the photo at the face (e.g. from the iris).
    rgb : ndarray, shape (H, W, 3), optional
        The photo (uint8, or float in [0, 1]); when given and ``apply_skin_mask``, pixels that are
        not skin (hair, glare, shadow, see :func:`skin_mask`) are removed from every region.
    forehead_extension_mm, exclusion_margin_mm : float
        See :func:`polygon_masks`.
    apply_skin_mask : bool
        Whether to apply the colour mask when ``rgb`` is given.
    return_candidate : bool
        Also return the union of the regions before the colour mask (where skin may be).
    skin_px_per_mm : float, optional
        Working resolution of the colour classification (see :func:`skin_mask`); default: the
        photo's own.

    Returns
    -------
    dict of str to ndarray of bool, shape ``landmarks.image_shape``
        One mask per name in :data:`REGION_NAMES`; the named regions are disjoint and ``face`` is
        their union. With ``return_candidate``, a tuple (masks, candidate).

    Examples
    --------
    >>> import skimage.data
    >>> from skinscan import detect_landmarks
    >>> rgb = skimage.data.astronaut()
    >>> face = detect_landmarks(rgb)
    >>> masks = region_masks(face, mm_per_px=1.5, rgb=rgb)
    >>> sorted(masks) == sorted(REGION_NAMES)
    True
    """
    shape = check_image_shape(landmarks.image_shape)
    masks = polygon_masks(landmarks.points, shape, mm_per_px=mm_per_px,
                          forehead_extension_mm=forehead_extension_mm, exclusion_margin_mm=exclusion_margin_mm)
    if rgb is not None and apply_skin_mask:
        arr = np.asarray(rgb)
        if arr.shape[:2] != shape:
            raise ValueError(f"rgb is {arr.shape[:2]} but the landmarks refer to an image of {shape}")
        candidate = masks["face"].copy() if return_candidate else None
        skin = skin_mask(arr, masks["face"], mm_per_px=mm_per_px, work_px_per_mm=skin_px_per_mm)
        skin &= _without_islands(masks["face"] & skin, mm_per_px)
        for m in masks.values():
            m &= skin
        return (masks, candidate) if return_candidate else masks
    return (masks, masks["face"].copy()) if return_candidate else masks


#: Skin cut off from the face's skin (specks between the hairs above a hairline, at the jaw's edge)
#: smaller than this, or than 1% of the largest piece, is not measured: an island of a few mm2 is
#: hair's gaps and shadow rims, not a place to read skin from.
MIN_ISLAND_MM2 = 25.0


def _without_islands(mask: np.ndarray, mm_per_px: float) -> np.ndarray:
    """``mask`` without its small 8-connected pieces (see :data:`MIN_ISLAND_MM2`)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    area = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], area >= max(MIN_ISLAND_MM2 / mm_per_px ** 2, 0.01 * area.max())])
    return keep[labels]


def canonical_region_masks(shape_hw, vertices_px, *, mm_per_px: float, forehead_extension_mm: float = 15.0,
                           exclusion_margin_mm: float = 1.0) -> dict[str, np.ndarray]:
    """The same regions in a canonical frame, from 2-D positions of the canonical mesh's vertices.

    Parameters
    ----------
    shape_hw : tuple of int
        (height, width) of the canonical frame.
    vertices_px : ndarray, shape (468, 2)
        Vertex (x, y) in frame pixels, e.g. ``canonical_mesh().vertices[:, :2] * [s, -s] + c`` for
        ``s`` px per cm (y flipped so that up is up in the image).
    mm_per_px : float
        Scale of the frame (``10 / s`` for the example above).

    Returns
    -------
    dict of str to ndarray of bool, shape ``shape_hw``
        As :func:`polygon_masks`.
    """
    return polygon_masks(vertices_px, shape_hw, mm_per_px=mm_per_px, forehead_extension_mm=forehead_extension_mm,
                         exclusion_margin_mm=exclusion_margin_mm)


# --------------------------------------------------------------------------------------------
# Inspection overlay
# --------------------------------------------------------------------------------------------

def draw_regions(rgb, masks, *, alpha: float = 0.4) -> np.ndarray:
    """Colour-coded overlay of region masks, with outlines and labels, for inspection.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        uint8, or float in [0, 1].
    masks : dict of str to ndarray of bool, shape (H, W)
        As returned by :func:`region_masks`; names missing from :data:`REGION_COLORS` are skipped.
        ``face`` is drawn as a white outline only.
    alpha : float
        Opacity of the fill in [0, 1].

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new image; the input is not modified.
    """
    arr = check_rgb(rgb)
    if arr.dtype == np.uint8:
        out = arr.copy()
    else:
        out = (np.clip(np.nan_to_num(as_float_rgb(arr)), 0, 1) * 255 + 0.5).astype(np.uint8)
    alpha = float(np.clip(alpha, 0.0, 1.0))
    h, w = out.shape[:2]
    names = [n for n in REGION_NAMES if n in masks and n in REGION_COLORS]
    for name in names:
        if np.asarray(masks[name]).shape != (h, w):
            raise ValueError(f"mask {name!r} is {np.asarray(masks[name]).shape}, the image is {(h, w)}")

    # Each region is blended, outlined and labelled in its own bounding box (a 12 MP photo's face
    # is a fraction of it), in the order named.
    boxes = {}
    for name in names:
        m = np.asarray(masks[name], dtype=bool)
        b = mask_box(m)
        if b is not None:
            boxes[name] = (b, np.ascontiguousarray(m[b]))
    if not boxes:
        return out
    for name, (b, m) in boxes.items():
        if name == "face":
            continue
        v = out[b]
        colour = np.empty_like(v)
        colour[:] = REGION_COLORS[name]
        np.copyto(v, cv2.addWeighted(v, 1 - alpha, colour, alpha, 0.0), where=m[..., None])

    # Lines and labels sized by the regions' joint width.
    extent = max(b[1].stop for b, _ in boxes.values()) - min(b[1].start for b, _ in boxes.values())
    line = max(1, int(round(extent / 400)))
    font = max(0.35, extent / 700)
    for name, (b, m) in boxes.items():
        contours, _ = cv2.findContours(m.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, REGION_COLORS[name], line, cv2.LINE_AA,
                         offset=(b[1].start, b[0].start))
    for name, (b, m) in boxes.items():
        if name == "face":
            continue
        mom = cv2.moments(m.view(np.uint8), binaryImage=True)
        if mom["m00"] == 0:
            continue
        text = _LABELS.get(name, name)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        org = (int(b[1].start + mom["m10"] / mom["m00"] - tw / 2), int(b[0].start + mom["m01"] / mom["m00"] + th / 2))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 3 * line, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font, REGION_COLORS[name], line, cv2.LINE_AA)
    return out
