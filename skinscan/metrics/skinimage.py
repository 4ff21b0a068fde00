"""One photo's colour planes for the metric families, computed once: linear light, CIELAB, chromophores, relief.

A :class:`SkinImage` holds the photo, its light gains and its scale, and computes each plane the
families ask for once; coarser copies for colour and millimetre-scale features come from
:meth:`SkinImage.at`, and region masks follow them through :meth:`SkinImage.masks_at`.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from .._filters import blur, shrink, wide_blur
from ..color import (
    CHROMOPHORE_UNMIXING,
    HAEMOGLOBIN_OD,
    MELANIN_OD,
    luminance,
    rgb_to_lab,
    srgb_to_linear,
    unmix_chromophores,
)
from ..inputs import check_rgb

__all__ = ["SkinImage", "fill_clipped", "resize_mask", "resize_masks", "skin_image", "work_scale"]

#: :attr:`SkinImage.clipped` not computed yet.
_NOT_READ = object()


def work_scale(mm_per_px: float, px_per_mm: float) -> float:
    """Resize factor taking a photo to a working resolution (never upsampling).

    Parameters
    ----------
    mm_per_px : float
        The photo's scale, mm per pixel.
    px_per_mm : float
        The working resolution, pixels per mm.

    Returns
    -------
    float
        In (0, 1].
    """
    return min(1.0, px_per_mm * mm_per_px)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask on another grid, nearest neighbour (itself when the grid is its own).

    Parameters
    ----------
    mask : ndarray of bool (or 0/1), shape (H, W)
    shape : (int, int)
        The grid's (height, width).

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), (shape[1], shape[0]),
                      interpolation=cv2.INTER_NEAREST).view(bool)


def resize_masks(img: SkinImage, masks: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """``masks`` of ``img`` on another grid: :meth:`SkinImage.masks_at`.

    Parameters
    ----------
    img : SkinImage
        The photo the masks belong to (it keeps the resized masks for the other families).
    masks : dict of str to ndarray of bool
    shape : (int, int)
        The grid's (height, width).

    Returns
    -------
    dict of str to ndarray of bool, shape ``shape``
    """
    return img.masks_at(masks, shape)


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
        exposure), measured on references that are not skin (see :mod:`skinscan.light`).
    mm_per_px : float, optional
        The photo's scale; needed by :meth:`at`. It is fixed for the object's life: a photo given
        without one gets it from :meth:`with_scale`, which returns a scaled image.
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
        self._clipped: np.ndarray | None | object = _NOT_READ
        #: The variance (in this image's pixels^2) of the blur that made it: 0 for a photo, the
        #: area averaging's box for a reduced copy (:meth:`at`), to be taken out of a blur in mm.
        self.blur_var_px = 0.0

    def with_scale(self, mm_per_px: float | None) -> SkinImage:
        """This photo with a scale: itself when it has one already (or ``mm_per_px`` is None), else a
        copy with that scale that shares its colour planes (none of them depends on the scale).

        Parameters
        ----------
        mm_per_px : float or None
            Millimetres per pixel at the face.

        Returns
        -------
        SkinImage
        """
        if self.mm_per_px is not None or mm_per_px is None:
            return self
        scaled = copy.copy(self)  # shallow: the same pixels and the same cache of colour planes
        scaled.mm_per_px = mm_per_px
        return scaled

    def masks_at(self, masks: dict[str, np.ndarray], shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """``masks`` resized (nearest neighbour) to another grid of this photo, such as :meth:`at`'s.

        Kept with the photo's colour planes: the families share a few coarse grids and the same
        masks, so each mask is resized once per grid (a mask is known by its identity).

        Parameters
        ----------
        masks : dict of str to ndarray of bool, shape :attr:`shape`
        shape : (int, int)
            The grid's (height, width).

        Returns
        -------
        dict of str to ndarray of bool, shape ``shape``
        """
        out = {}
        for k, m in masks.items():
            key = ("mask", id(m), shape)
            hit = self._cache.get(key)
            if hit is None or hit[0] is not m:  # the id of a mask since freed may have been reused
                hit = (m, resize_mask(m, shape))
                self._cache[key] = hit
            out[k] = hit[1]
        return out

    @property
    def clipped(self) -> np.ndarray | None:
        """The share of each pixel that was clipped (a channel at 250+ in 8 bits), float32 (H, W)
        in [0, 1], or None when nothing was: 0 or 1 in a photo, the share of the photo's pixels
        averaged into each pixel in a reduced copy from :meth:`at` (see :func:`fill_clipped`)."""
        if self._clipped is _NOT_READ:
            flags = self._clip_flags()
            self._clipped = None if flags is None else flags.astype(np.float32) / 255
        return self._clipped

    def _lut(self, kind: str) -> np.ndarray:
        """(1, 256, 3) float32 table from an 8-bit channel value: linear light after the gains
        (clipped to [0, 1]), or its optical density."""
        key = ("lut", kind)
        if key not in self._cache:
            lin = np.clip(srgb_to_linear(np.arange(256, dtype=np.uint8))[:, None] * self.gains[None, :], 0, 1)
            table = lin if kind == "lin" else -np.log10(np.maximum(lin, 1e-4))
            self._cache[key] = np.ascontiguousarray(table.reshape(1, 256, 3), dtype=np.float32)
        return self._cache[key]

    @property
    def lin(self) -> np.ndarray:
        """Linear RGB after the light gains, float32 in [0, 1], shape (H, W, 3)."""
        if "lin" not in self._cache:
            if self.rgb.dtype == np.uint8:
                lin = cv2.LUT(self.rgb, self._lut("lin"))
            else:
                lin = srgb_to_linear(self.rgb)
                if not np.all(self.gains == 1):
                    lin = np.clip(lin * self.gains.reshape(1, 1, 3), 0, 1)
            self._cache["lin"] = lin
        return self._cache["lin"]

    def at(self, px_per_mm: float) -> SkinImage:
        """This photo at a coarser working resolution (itself when it is not finer than that).

        The copy is reduced with area averaging in 8 bits and keeps the light gains; its
        :attr:`clipped` holds the share of each of its pixels that was clipped (see :func:`fill_clipped`),
        and :attr:`blur_var_px` the blur the averaging added. Copies are kept: every family asks
        for one of a few working resolutions.

        Parameters
        ----------
        px_per_mm : float
            The working resolution, pixels per mm at the face.

        Returns
        -------
        SkinImage
            With its own ``mm_per_px`` (the photo's times the reduction, rounded to whole pixels).
        """
        if self.mm_per_px is None:
            raise ValueError("SkinImage.at needs the photo's mm_per_px")
        f = work_scale(self.mm_per_px, px_per_mm)
        if f >= 0.999 or self.full_resolution:
            return self
        key = ("at", round(f, 6))
        if key not in self._cache:
            h, w = self.shape
            size = (max(round(w * f), 1), max(round(h * f), 1))
            small = shrink(self.rgb, size)
            reduced = SkinImage(small, gains=self.gains, mm_per_px=self.mm_per_px * w / size[0])
            # Each copy pixel averages a box of 1/f photo pixels: (1 - f^2) / 12 of its pixel^2 more
            # than the photo's own pixel.
            reduced.blur_var_px = (1 - (self.mm_per_px / reduced.mm_per_px) ** 2) / 12
            flags = self._clip_flags()
            # The share of the pixels averaged in that had a channel clipped: the copy's own 8-bit
            # values cannot tell a clipped pixel averaged with darker ones from an unclipped one.
            reduced._clipped = None if flags is None else shrink(flags, size).astype(np.float32) / 255
            self._cache[key] = reduced
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
        """CIELAB (D65) after the light gains, float32, shape (H, W, 3)."""
        if "lab" not in self._cache:
            self._cache["lab"] = rgb_to_lab(self.lin, linear=True)
        return self._cache["lab"]

    @property
    def chromophores(self) -> np.ndarray:
        """(haemoglobin, melanin, shading) densities, shape (H, W, 3)."""
        if "chromo" not in self._cache:
            if self.rgb.dtype == np.uint8:  # optical densities straight from a table, then the 3x3 unmixing
                self._cache["chromo"] = cv2.transform(cv2.LUT(self.rgb, self._lut("od")), CHROMOPHORE_UNMIXING)
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
            self._cache["shading"] = cv2.transform(cv2.LUT(self.rgb, self._lut("od")), CHROMOPHORE_UNMIXING[2:3])
        return self._cache["shading"]

    def relief(self, mm_per_px: float, *, smooth_mm: float = 0.3, pigment_px_per_mm: float = 4.0) -> np.ndarray:
        """Grey relief at full resolution: :attr:`darkness` less the darkening by haemoglobin and melanin.

        Luminance keeps the photo's full resolution (JPEG stores colour at half of it), but a brown
        spot or a red patch darkens it too. Their contribution, from the unmixed densities
        smoothed at ``smooth_mm`` and weighted by how much each channel contributes to luminance at
        that place, is taken out, so pores, lines and texture are measured on relief alone. The
        pigment term is smooth, so it is computed at ``pigment_px_per_mm`` and interpolated.

        Parameters
        ----------
        mm_per_px : float
            The photo's scale (its own, when it has one, sets the pigment's working grid).
        smooth_mm : float
            Gaussian sigma of the pigment densities, mm.
        pigment_px_per_mm : float
            Resolution the pigment term is computed at, px per mm.

        Returns
        -------
        ndarray of float32, shape :attr:`shape`
            Grey optical density (larger = darker).
        """
        key = f"relief{mm_per_px:.6g}/{smooth_mm}/{pigment_px_per_mm}"
        if key not in self._cache:
            scaled = self.with_scale(mm_per_px)
            src = scaled.at(pigment_px_per_mm)
            sig = max(smooth_mm / src.mm_per_px, 0.5)
            w = blur(src.lin, sig) * np.array([0.2126, 0.7152, 0.0722], np.float32)
            w /= np.maximum(w.sum(axis=2, keepdims=True), 1e-6)
            chromo = src.chromophores
            pigment = (w @ HAEMOGLOBIN_OD) * blur(np.ascontiguousarray(chromo[..., 0]), sig) \
                + (w @ MELANIN_OD) * blur(np.ascontiguousarray(chromo[..., 1]), sig)
            if src is not scaled:
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
            lin = self._cache.get("lin")
            if lin is None:  # the gains' table straight to luminance: no linear-RGB copy is kept
                lin = cv2.LUT(self.rgb, self._lut("lin")) if self.rgb.dtype == np.uint8 else self.lin
            y = luminance(lin, linear=True)
            self._cache["dark"] = cv2.log(np.maximum(y, np.float32(1e-4))) * np.float32(-1 / np.log(10))
        return self._cache["dark"]



def fill_clipped(values: np.ndarray, img: SkinImage, skin: np.ndarray, *, sigma_mm: float = 3.0) -> np.ndarray:
    """A colour map (haemoglobin, melanin, a*) with clipped pixels filled from unclipped skin nearby.

    A channel at 250+ in 8 bits holds a floor, not a value, so a clipped pixel's colour is not
    known; dropping such pixels instead takes the brightest skin (lit cheekbones, which are also
    the reddest) out of brighter photos only. Chromophore densities do not depend on how brightly
    a place is lit, so each pixel that is mostly clipped (``img.clipped`` >= 0.5: a reduced pixel
    is then decided as the full-resolution pixels under it mostly are) takes the
    normalised-convolution mean of the unclipped ``skin`` within ~``sigma_mm``, or far inside a
    large clipped area the mean over all unclipped skin.

    Parameters
    ----------
    values : ndarray of float32, shape (h, w)
        The colour map, on ``img``'s grid.
    img : SkinImage
        The image the map was computed on (usually a reduced copy from :meth:`SkinImage.at`).
    skin : ndarray of bool, shape (h, w)
        The skin the fill may be taken from.
    sigma_mm : float
        Reach of the fill, Gaussian sigma in mm.

    Returns
    -------
    ndarray of float32, shape (h, w)
        ``values`` itself when nothing is clipped or no unclipped skin is left.
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
    """The :class:`SkinImage` a metric family works on: ``rgb`` itself with a scale, or a new one.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), or SkinImage
        sRGB (uint8 or float in [0, 1]), or a photo already wrapped (its planes are shared).
    mm_per_px : float, optional
        The scale to give a photo that has none.

    Returns
    -------
    SkinImage
    """
    if isinstance(rgb, SkinImage):
        return rgb.with_scale(mm_per_px)
    return SkinImage(rgb, mm_per_px=mm_per_px)
