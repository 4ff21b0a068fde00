"""What a metric family returns: its values per region, with maps, notes and the features it counted."""

from __future__ import annotations

import numpy as np

__all__ = ["DETECTION_FIELDS", "MetricResult", "detections"]

#: The columns of a family's detections (see :func:`detections`).
DETECTION_FIELDS = ("x", "y", "diameter_mm", "length_mm", "strength")


def detections(x, y, *, strength, diameter_mm=None, length_mm=None) -> dict[str, np.ndarray]:
    """One family's detected features as columns: centre ``x``, ``y`` (px of the image the family was
    given), ``diameter_mm`` (pores, scars, spots) or ``length_mm`` (lines), NaN for the other, and
    ``strength`` (the feature's contrast, in the family's own signal units).

    Parameters
    ----------
    x, y : array-like, shape (N,)
        Centres, px of the image the family was given.
    strength : array-like, shape (N,)
        Each feature's contrast, in the family's signal units.
    diameter_mm, length_mm : array-like, shape (N,), optional
        Size of round features or length of lines, mm.

    Returns
    -------
    dict of str to ndarray of float64, shape (N,)
        The columns :data:`DETECTION_FIELDS`.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    nan = np.full(x.shape, np.nan)
    return {"x": x, "y": np.asarray(y, dtype=np.float64).reshape(-1),
            "diameter_mm": nan if diameter_mm is None else np.asarray(diameter_mm, dtype=np.float64).reshape(-1),
            "length_mm": nan if length_mm is None else np.asarray(length_mm, dtype=np.float64).reshape(-1),
            "strength": np.asarray(strength, dtype=np.float64).reshape(-1)}


class MetricResult(dict):
    """``{region: {metric: value}}`` plus ``maps`` (name -> image-sized array), ``notes`` (why a value
    is NaN) and ``detections`` (kind -> :func:`detections` columns: every pore, scar, spot or line
    found, from which the values are measured)."""

    def __init__(self, values=None, *, maps=None, notes=None, detections=None):
        super().__init__(values or {})
        self.maps: dict[str, np.ndarray] = maps or {}
        self.notes: dict[str, str] = notes or {}
        self.detections: dict[str, dict[str, np.ndarray]] = detections or {}

    @property
    def value(self) -> dict[str, float]:
        """The values of a single-mask call (region ``"region"``)."""
        return self["region"]
