"""Resolution floors: the coarsest photo at which each metric still reads what the photo's own resolution reads.

A metric computed on a photo too coarse for it still gives a number (a wrinkle density of 0.01 where
the photo shows lines, an a* pulled by the background), and a number in a table is read as a
measurement. :func:`measure_floors` takes one real photo, reduces it step by step (area averaging,
as a phone's smaller photo or a farther camera would give it), analyses every copy with the full
pipeline, and finds for each metric the lowest resolution from which every finer step stays within
10% of the reference value, or within the metric's tolerance where the value is near zero: its unit
tolerance (:data:`NEAR_ZERO_TOLERANCE`) or twice the photo's own standard error of it (a count of a
few spots moves by more than 10% when one more crosses the threshold). The analysis then reports a
metric as NaN below its floor (:attr:`skinscan.metrics.Family.floor_px_per_mm`), with the reason.

The reference is the photo resampled once by a hair (:data:`REFERENCE_SCALE`), not its own pixels:
any resampling removes the camera's sharpening, which the photo's own pixels carry and no coarser
copy does; on the close-up it alone moves the pore count by 15% (the table shows both), while
between resampled copies the count holds from 12 down to 6 px/mm. That is a finding about pores
(camera sharpening changes how many read as pores), reported in ``docs/validation.md``, not a
resolution effect.

The light normalisation is held fixed (gains of 1) while the floors are measured: a floor is about
sampling, and the photo it is measured on (the eyes-closed close-up) has no trustworthy light
reference for the absolute colour metrics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["NEAR_ZERO_TOLERANCE", "FloorTable", "measure_floors", "DEFAULT_STEPS"]

#: Absolute tolerances of metrics whose value can be near zero, where 10% of it means nothing (units
#: of the metric): 0.3 a* and 1 degree of ITA, under the 0.5 a* a trusted light reference may be off
#: by (:data:`skinscan.light.MAX_A_STAR_SE`). The others: 10% of their full-resolution value.
NEAR_ZERO_TOLERANCE = {"a_star": 0.3, "ita_deg": 1.0}
#: Resolutions tried, px/mm, finest first (the photo's own comes before them).
DEFAULT_STEPS = (12.0, 10.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0)
#: The reference copy: the photo resampled by 1% (see the module).
REFERENCE_SCALE = 0.99


@dataclass
class FloorTable:
    """What :func:`measure_floors` measured.

    Attributes
    ----------
    px_per_mm : list of float
        The resolutions analysed: the photo's own, the reference copy (:data:`REFERENCE_SCALE`),
        then the coarser steps.
    values : dict of str to list of float
        Each metric's whole-face value at each resolution.
    se : dict of str to float
        The reference copy's own standard error of each metric (NaN where one photo cannot tell).
    floors : dict of str to float
        Each metric's floor (px/mm); NaN when even the photo's own resolution is not enough to
        compare (the value is NaN there), or when the photo holds too little of it to tell (its
        tolerance reaches zero).
    """

    px_per_mm: list
    values: dict
    floors: dict
    se: dict

    def markdown(self) -> str:
        head = ("| metric | floor, px/mm | " + " | ".join(f"{p:.1f}" + (" (own)" if i == 0 else " (ref.)" if i == 1 else "")
                                                   for i, p in enumerate(self.px_per_mm)) + " |")
        rule = "|---|---:|" + "---:|" * len(self.px_per_mm)
        rows = [f"| `{m}` | {_fmt(self.floors[m], '.1f')} | " + " | ".join(_fmt(v) for v in vals) + " |"
                for m, vals in self.values.items()]
        return "\n".join([head, rule, *rows])


def _fmt(v: float, spec: str = ".3g") -> str:
    return "NaN" if not np.isfinite(v) else format(v, spec)


def measure_floors(path: str | os.PathLike, *, steps=DEFAULT_STEPS, landmarker=None) -> FloorTable:
    """Each metric's resolution floor on one photo (see the module).

    Parameters
    ----------
    path : path
        A real photo, as fine as possible (the close-up of ``tests/data/porenet`` is about 13.3 px/mm).
    steps : sequence of float
        Coarser resolutions to try, px/mm; those not coarser than the photo are skipped.
    landmarker : FaceLandmarker, optional
    """
    from ..analysis import analyse_photo
    from ..io import load_photo
    from ..metrics import compute_metrics

    from ..uncertainty import measurement_se

    photo = load_photo(path)
    native = analyse_photo(photo, landmarker=landmarker, metrics=False, max_px_per_mm=None).photo_px_per_mm
    resolutions, values, se = [], {}, {}
    for f in [1.0, REFERENCE_SCALE, *[s / native for s in steps if s < native * 0.98]]:
        rgb = photo.rgb if f >= 0.999 else cv2.resize(photo.rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        a = analyse_photo(np.ascontiguousarray(rgb), landmarker=landmarker, metrics=False, max_px_per_mm=None)
        measured = compute_metrics(a.rgb, a.masks, mm_per_px=a.scale.mm_per_px, gains=np.ones(3), min_resolution=False)
        resolutions.append(float(a.scale.px_per_mm))
        for metric, v in measured.values["face"].items():
            values.setdefault(metric, []).append(float(v))
        if f == REFERENCE_SCALE:
            detections = _detections(measured.detections, a.masks)
            se = measurement_se(measured.values, detections, a.region_area_mm2)["face"]
    floors = {m: _floor(m, resolutions[1:], v[1:], se.get(m, np.nan)) for m, v in values.items()}
    return FloorTable(resolutions, values, floors, se)


def _detections(found: dict, masks: dict) -> dict:
    """The metrics' detections with their kind and region, as :func:`skinscan.uncertainty.measurement_se` takes them."""
    parts = {"kind": [], "region": [], "diameter_mm": []}
    for kind, cols in found.items():
        parts["kind"].append(np.full(len(cols["x"]), kind, dtype=object))
        parts["region"].append(np.full(len(cols["x"]), "face", dtype=object))
        parts["diameter_mm"].append(cols["diameter_mm"])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def _floor(metric: str, resolutions: list, values: list, se: float) -> float:
    """The lowest resolution from which every finer step is within tolerance of the first (reference) value."""
    ref = values[0]
    if not np.isfinite(ref):
        return float("nan")
    tol = max(0.1 * abs(ref), NEAR_ZERO_TOLERANCE.get(metric, 0.0), 2 * se if np.isfinite(se) else 0.0)
    if metric not in NEAR_ZERO_TOLERANCE and tol >= abs(ref):
        # The photo holds too little of it to tell (e.g. two scar-sized dips on the close-up): a
        # reading of nothing would be within tolerance, and every resolution would pass.
        return float("nan")
    floor = resolutions[0]
    for r, v in zip(resolutions[1:], values[1:]):
        if not (np.isfinite(v) and abs(v - ref) <= tol):
            break
        floor = r
    return float(floor)


if __name__ == "__main__":  # python -m skinscan.validation.floors PHOTO
    import sys

    from ..landmarks import FaceLandmarker

    with FaceLandmarker() as lm:
        table = measure_floors(sys.argv[1], landmarker=lm)
    print(table.markdown())
