"""Colour helpers shared by quality checks and metrics: exact sRGB decoding, CIELAB in float, luminance."""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = ["srgb_to_linear", "linear_to_srgb", "linear_to_srgb8", "rgb_to_lab", "luminance", "lightness", "as_float01",
           "HAEMOGLOBIN_OD", "MELANIN_OD", "CHROMOPHORE_UNMIXING", "optical_density", "unmix_chromophores"]

# sRGB (IEC 61966-2-1) primaries, D65 white.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_LUT = None


def as_float01(rgb: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float input is passed through as float32.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        uint8, or float in [0, 1].

    Returns
    -------
    ndarray of float32, same shape
    """
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * np.float32(1 / 255)
    return np.asarray(rgb, dtype=np.float32)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Decode sRGB to linear light, float32 in [0, 1]. uint8 input uses an exact lookup table.

    Parameters
    ----------
    rgb : ndarray
        sRGB values, uint8 or float in [0, 1] (any shape: an image, a list of colours, one channel).

    Returns
    -------
    ndarray of float32, same shape
        Linear light (IEC 61966-2-1).
    """
    global _LUT
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        if _LUT is None:
            v = np.arange(256, dtype=np.float64) / 255
            _LUT = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)
        return _LUT[rgb]
    v = np.asarray(rgb, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB float32 in [0, 1] (clipped).

    Parameters
    ----------
    lin : ndarray
        Linear light, any shape.

    Returns
    -------
    ndarray of float32, same shape
    """
    v = np.clip(np.asarray(lin, dtype=np.float32), 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055).astype(np.float32)


def linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB uint8 (clipped, rounded): the exact inverse of the uint8 decoding table.

    Parameters
    ----------
    lin : ndarray
        Linear light, any shape.

    Returns
    -------
    ndarray of uint8, same shape
    """
    return (linear_to_srgb(lin) * 255 + 0.5).astype(np.uint8)


def rgb_to_lab(rgb: np.ndarray, *, linear: bool = False) -> np.ndarray:
    """CIELAB (D65, 2°) from sRGB (uint8 or float in [0, 1]) or from linear RGB with ``linear=True``.

    Computed in float32 from linearised sRGB; unlike OpenCV's 8-bit Lab, L* is in [0, 100] and
    a*, b* are unscaled, so values can be compared with published ones.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        sRGB (uint8 or float in [0, 1]), or linear RGB.
    linear : bool
        ``rgb`` is linear light already.

    Returns
    -------
    ndarray of float32, shape (..., 3)
        L* in [0, 100], a*, b*.
    """
    lin = np.asarray(rgb, dtype=np.float32) if linear else srgb_to_linear(rgb)
    shape = lin.shape
    flat = np.ascontiguousarray(lin.reshape(-1, 1, 3))
    xyz = cv2.transform(flat, (_RGB_TO_XYZ / _D65[:, None]).astype(np.float32))
    eps, kappa = 216 / 24389, 24389 / 27
    f = cv2.pow(np.maximum(xyz, 0.0), 1 / 3)
    small = xyz <= eps
    if small.any():  # the linear segment near black (L* < 8)
        f[small] = (kappa * xyz[small] + 16) / 116
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lab = np.empty_like(f)
    lab[..., 0] = 116 * fy - 16
    lab[..., 1] = 500 * (fx - fy)
    lab[..., 2] = 200 * (fy - fz)
    return lab.reshape(shape)


def luminance(rgb: np.ndarray, *, linear: bool = False) -> np.ndarray:
    """Relative luminance Y in [0, 1] (linear light) from sRGB or linear RGB, float32.

    An (H, W, 3) image goes through OpenCV in two passes (8-bit input through the sRGB lookup
    table); any other (..., 3) array through numpy.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        sRGB (uint8 or float in [0, 1]), or linear RGB.
    linear : bool
        ``rgb`` is linear light already.

    Returns
    -------
    ndarray of float32, shape (...)
    """
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[0] > 1 and arr.shape[1] > 1:
        if not linear and arr.dtype == np.uint8:
            lin = cv2.LUT(np.ascontiguousarray(arr), _lut3())
        else:
            lin = np.ascontiguousarray(arr if linear else srgb_to_linear(arr), dtype=np.float32)
        return cv2.transform(lin, _RGB_TO_XYZ[1:2])
    lin = np.asarray(arr, dtype=np.float32) if linear else srgb_to_linear(arr)
    return lin @ _RGB_TO_XYZ[1]


def lightness(rgb: np.ndarray, *, linear: bool = False) -> np.ndarray:
    """CIELAB L* (D65) from luminance alone: the L* of :func:`rgb_to_lab` without a* and b*.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        sRGB (uint8 or float in [0, 1]), or linear RGB.
    linear : bool
        ``rgb`` is linear light already.

    Returns
    -------
    ndarray of float32, shape (...)
        L* in [0, 100].
    """
    y = luminance(rgb, linear=linear)
    eps, kappa = 216 / 24389, 24389 / 27
    light = 116 * cv2.pow(np.maximum(y, np.float32(eps)), 1 / 3) - 16
    low = y < eps
    if low.any():  # the linear segment near black
        light[low] = kappa * y[low]
    return light


@functools.lru_cache(maxsize=1)
def _lut3() -> np.ndarray:
    """The uint8 sRGB decoding table as a (1, 256, 3) float32 table for ``cv2.LUT``."""
    table = srgb_to_linear(np.arange(256, dtype=np.uint8)).reshape(1, 256, 1)
    return np.ascontiguousarray(np.repeat(table, 3, axis=2))


#: Optical-density (−log10 reflectance) spectra of the two skin chromophores in the sRGB channels,
#: per unit density. Haemoglobin: oxy-haemoglobin extinction (Prahl's compilation) averaged over
#: camera bands, about 0.05 : 1 : 0.8, with blue lowered for its shorter path in skin; melanin:
#: mu_a ~ lambda^-3.5 (Jacques 1998) flattened by broad channels. In line with the vectors that
#: Tsumura et al. (2003) extract from skin photos by independent component analysis.
HAEMOGLOBIN_OD = np.array([0.08, 0.80, 0.45], dtype=np.float32)
MELANIN_OD = np.array([0.45, 0.70, 1.00], dtype=np.float32)
#: The 3x3 matrix taking a pixel's optical densities (R, G, B) to its (haemoglobin, melanin, grey
#: shading) densities: the inverse of the columns HAEMOGLOBIN_OD, MELANIN_OD, (1, 1, 1) (see
#: :func:`unmix_chromophores`). A row of it alone gives one density, e.g. ``[2:3]`` the shading.
CHROMOPHORE_UNMIXING = np.linalg.inv(np.stack([HAEMOGLOBIN_OD, MELANIN_OD, np.ones(3, np.float32)],
                                              axis=1)).astype(np.float32)
CHROMOPHORE_UNMIXING.flags.writeable = False


def optical_density(lin: np.ndarray, *, floor: float = 1e-4) -> np.ndarray:
    """OD = −log10(reflectance) per channel from linear RGB.

    Parameters
    ----------
    lin : ndarray
        Linear light (reflectance), any shape.
    floor : float
        Reflectance below this reads as this (black would be an infinite density).

    Returns
    -------
    ndarray of float32, same shape
    """
    return -np.log10(np.maximum(np.asarray(lin, dtype=np.float32), np.float32(floor)))


def unmix_chromophores(lin: np.ndarray) -> np.ndarray:
    """Split each pixel's optical density into haemoglobin, melanin and grey shading.

    Solves OD = h·HAEMOGLOBIN_OD + m·MELANIN_OD + s·(1, 1, 1) per pixel (a fixed 3x3 inverse), so
    that exposure and shading (equal in all channels) land in ``s`` and leave ``h`` and ``m``
    alone.

    Parameters
    ----------
    lin : ndarray, shape (..., 3)
        Linear RGB in (0, 1].

    Returns
    -------
    ndarray, shape (..., 3), float32
        (haemoglobin, melanin, shading) densities.

    References
    ----------
    .. [1] Tsumura N. et al. (2003) Image-based skin color and texture analysis/synthesis by
       extracting hemoglobin and melanin information in the skin. ACM TOG 22(3):770–779.
    """
    return optical_density(lin) @ CHROMOPHORE_UNMIXING.T
