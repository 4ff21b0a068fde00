"""Each photo's own uncertainty of its measurements: what a single photo can say about how sure its numbers are.

The minimal detectable change of a series comes first from repeated photos within its sessions
(:func:`skinscan.series.summarise`); a series with one photo per session falls back on these
standard errors, and a metric whose single photo says nothing about its own noise is left
"not determinable" rather than given a constant taken from another face.

=====================================  =========================================================
metric                                 standard error of one photo's value
=====================================  =========================================================
``pore_density``, ``scar_density``,    Poisson: value / sqrt(N), with N the features counted in
``spot_density``                       the region (pores from 0.3 mm; one count per region area
                                       when none was)
``pore_area_pct``, ``scar_area_pct``,  value / sqrt(N) (sums over N features; none without one)
``spot_area_pct``, ``scar_severity``,
``melanin_index``, ``wrinkle_density``
``pore_diameter_mm``                   SD of the N diameters / sqrt(N), N >= 2
``a_star``, ``erythema_index``,        the light reference's own uncertainty carried through the
``ita_deg``                            colour conversion (``colour_se``, computed by the analysis)
the rest (``red_area_pct``,            not determinable from one photo: their photo-to-photo
``tone_evenness``, ``roughness``)      noise is the light and the pose, which one photo cannot show
=====================================  =========================================================
"""

from __future__ import annotations

import numpy as np

from .metrics.pores import COUNTED_MIN_DIAMETER_MM

__all__ = ["COUNTED", "measurement_se"]

#: Metric -> the kind of detection it counts, and how its error follows from the count.
COUNTED = {
    "pore_density": ("pore", "density"), "scar_density": ("scar", "density"), "spot_density": ("spot", "density"),
    "pore_area_pct": ("pore", "sum"), "scar_area_pct": ("scar", "sum"), "spot_area_pct": ("spot", "sum"),
    "scar_severity": ("scar", "sum"), "melanin_index": ("spot", "sum"), "wrinkle_density": ("line", "sum"),
    "pore_diameter_mm": ("pore", "mean"),
}
#: Metric -> the least diameter (mm) of the detections it counts, where it counts only some.
COUNTED_FROM_MM = {"pore_density": COUNTED_MIN_DIAMETER_MM}


def measurement_se(values: dict, detections: dict, region_area_mm2: dict, *, colour_se: dict | None = None) -> dict:
    """Standard error of each measurement of one photo (see the module's table); NaN where none can be said.

    Parameters
    ----------
    values : dict
        ``{region: {metric: value}}`` (``PhotoAnalysis.metrics``).
    detections : dict of columns
        ``PhotoAnalysis.detections`` (``kind``, ``region``, ``diameter_mm``...).
    region_area_mm2 : dict
        Each region's skin area.
    colour_se : dict, optional
        ``{metric: se}`` of the absolute colour metrics from the light reference, the same for
        every region.

    Returns
    -------
    dict
        ``{region: {metric: se}}`` with the keys of ``values``.
    """
    kind = np.asarray(detections.get("kind", []), dtype=object)
    where = np.asarray(detections.get("region", []), dtype=object)
    diameter = np.asarray(detections.get("diameter_mm", []), dtype=np.float64)
    colour_se = colour_se or {}
    out = {}
    for region, metrics in values.items():
        inside = np.ones(kind.shape, bool) if region == "face" else where == region
        area_cm2 = region_area_mm2.get(region, np.nan) / 100.0
        se = {}
        for metric, value in metrics.items():
            if metric in colour_se:
                se[metric] = float(colour_se[metric])
                continue
            if metric not in COUNTED or not np.isfinite(value):
                se[metric] = float("nan")
                continue
            k, how = COUNTED[metric]
            sel = inside & (kind == k)
            if metric in COUNTED_FROM_MM:
                sel &= diameter >= COUNTED_FROM_MM[metric]
            n = int(np.count_nonzero(sel))
            if how == "density":  # value / sqrt(N) = sqrt(N) / the area the family counted in
                se[metric] = float(abs(value) / np.sqrt(n)) if n else float(1.0 / area_cm2) if area_cm2 > 0 else float("nan")
            elif how == "sum":
                se[metric] = float(abs(value) / np.sqrt(n)) if n else float("nan")
            else:
                se[metric] = float(np.std(diameter[sel], ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")
        out[region] = se
    return out
