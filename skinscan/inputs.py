"""Checks at the door: the images, scales, lengths and masks a caller hands to regions and metrics.

Each check converts what it accepts to the form the code behind it relies on and raises a
``TypeError`` (not the kind of thing expected) or a ``ValueError`` (the right kind, a wrong shape
or value) whose message names what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["MaskArg", "as_float_rgb", "as_masks", "check_image_shape", "check_length_mm", "check_rgb", "check_scale"]

#: One mask, or masks by region name.
MaskArg = np.ndarray | Mapping[str, np.ndarray]


def check_rgb(rgb) -> np.ndarray:
    """An RGB image as an array, unchanged.

    Parameters
    ----------
    rgb : array-like, shape (H, W, 3)
        sRGB, uint8 or float in [0, 1].

    Returns
    -------
    ndarray
        ``rgb`` itself when it is an array.

    Raises
    ------
    ValueError
        Not of shape (H, W, 3).
    TypeError
        Neither uint8 nor floating point.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"expected an RGB uint8 or float array in [0, 1], got {arr.dtype}")
    return arr


def as_float_rgb(rgb) -> np.ndarray:
    """An RGB image as float32 in [0, 1]: uint8 is scaled, floats are taken as already in [0, 1].

    Parameters
    ----------
    rgb : array-like, shape (H, W, 3)
        sRGB, uint8 or float.

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
    """
    arr = check_rgb(rgb)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(1 / 255)
    return arr.astype(np.float32, copy=False)


def check_scale(mm_per_px) -> float:
    """A photo's scale as a float.

    Parameters
    ----------
    mm_per_px : float
        Millimetres per pixel at the face.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        Not a number.
    ValueError
        Not positive and finite.
    """
    try:
        value = float(mm_per_px)
    except (TypeError, ValueError):
        raise TypeError(f"mm_per_px must be a positive number, got {mm_per_px!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"mm_per_px must be a positive finite number, got {mm_per_px!r}")
    return value


def check_length_mm(value, name: str) -> float:
    """A length in millimetres (0 allowed) as a float.

    Parameters
    ----------
    value : float
        The length, mm.
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        Not a number.
    ValueError
        Negative, NaN or infinite.
    """
    try:
        length = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of millimetres, got {value!r}") from None
    if not (np.isfinite(length) and length >= 0):
        raise ValueError(f"{name} must be a finite length >= 0 mm, got {value!r}")
    return length


def check_image_shape(image_shape) -> tuple[int, int]:
    """An image's (height, width) as two positive ints.

    Parameters
    ----------
    image_shape : sequence of int
        (height, width, ...); anything after the first two is ignored.

    Returns
    -------
    (int, int)
    """
    try:
        h, w = (int(v) for v in tuple(image_shape)[:2])
    except (TypeError, ValueError):
        raise TypeError(f"image_shape must be (height, width), got {image_shape!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"image_shape must be positive (height, width), got {image_shape!r}")
    return h, w


def as_masks(mask: MaskArg, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Region masks as a dict of boolean arrays of the image's shape.

    Parameters
    ----------
    mask : ndarray of bool, or mapping of str to such arrays
        One mask (it becomes region ``"region"``) or masks by region name.
    shape : (int, int)
        The image's (height, width).

    Returns
    -------
    dict of str to ndarray of bool
        Views where the masks already are boolean.

    Raises
    ------
    ValueError
        A mask whose shape is not the image's.
    """
    masks = {"region": mask} if isinstance(mask, np.ndarray) else dict(mask)
    for k, m in masks.items():
        if m.shape != shape:
            raise ValueError(f"mask {k!r} has shape {m.shape}, expected the image's {shape}")
    return {k: m.astype(bool, copy=False) for k, m in masks.items()}
