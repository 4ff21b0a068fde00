"""Statistics the metric families reduce their maps with: a robust spread and the mean over each region."""

from __future__ import annotations

import numpy as np

__all__ = ["region_means", "robust_sigma"]


def robust_sigma(values: np.ndarray, *, max_samples: int = 50_000) -> float:
    """1.4826 x median absolute deviation: the spread of the dense part, blind to sparse outliers.

    Large inputs are subsampled on a regular stride (the MAD of 50,000 values has a relative
    standard error of about 0.5%).

    Parameters
    ----------
    values : ndarray
        Any shape; read flat.
    max_samples : int
        Largest number of values read.

    Returns
    -------
    float
        In the units of ``values``; NaN for no values. For Gaussian values, their SD.
    """
    if values.size == 0:
        return float("nan")
    if values.size > max_samples:
        values = values[:: values.size // max_samples]
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def region_means(values: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of a map over each mask, ignoring non-finite values.

    Parameters
    ----------
    values : ndarray, shape (H, W)
    masks : dict of str to ndarray of bool, shape (H, W)

    Returns
    -------
    dict of str to float
        NaN for a mask with no finite value under it.
    """
    out = {}
    finite = np.isfinite(values)
    for k, m in masks.items():
        sel = m & finite
        n = np.count_nonzero(sel)
        out[k] = float(values[sel].mean()) if n else float("nan")
    return out
