"""Each photo's own standard errors, on detections built here with known counts, and on a real analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinscan.uncertainty import measurement_se

SAMPLE = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut" / "2026-01-05" / "IMG_20260105_100412.jpg"


def _found(kinds_regions_diameters):
    k, r, d = zip(*kinds_regions_diameters)
    n = len(k)
    return {"kind": np.array(k, object), "region": np.array(r, object), "x_px": np.zeros(n), "y_px": np.zeros(n),
            "diameter_mm": np.array(d, float), "length_mm": np.full(n, np.nan), "strength": np.ones(n)}


def test_counts_are_poisson_and_sizes_are_standard_errors_of_the_mean():
    found = _found([("pore", "nose", 0.3)] * 16 + [("pore", "chin", 0.5), ("pore", "chin", 0.3)] + [("spot", "nose", 2.0)]
                   + [("pore", "nose", 0.2)] * 4)  # found, not counted (under 0.3 mm), but in the pore area
    values = {"face": {"pore_density": 9.0, "pore_diameter_mm": 0.32, "pore_area_pct": 1.2, "red_area_pct": 10.0},  # 18 in 2 cm2
              "nose": {"pore_density": 16.0, "spot_density": 1.0, "spot_area_pct": 0.5},
              "chin": {"pore_density": 2.0, "pore_diameter_mm": 0.4, "scar_density": 0.0, "scar_area_pct": 0.0}}
    areas = {"face": 200.0, "nose": 100.0, "chin": 100.0}  # mm2
    se = measurement_se(values, found, areas, colour_se={"a_star": 0.3})
    assert se["face"]["pore_density"] == pytest.approx(np.sqrt(18) / 2.0)     # 18 pores in 2 cm2
    assert se["nose"]["pore_density"] == pytest.approx(4.0)                   # sqrt(16) / 1 cm2
    assert se["chin"]["scar_density"] == pytest.approx(1.0)                   # none counted: one count's worth
    assert np.isnan(se["chin"]["scar_area_pct"])                              # nothing to scale from
    assert se["face"]["pore_area_pct"] == pytest.approx(1.2 / np.sqrt(22))
    assert se["chin"]["pore_diameter_mm"] == pytest.approx(np.std([0.5, 0.3], ddof=1) / np.sqrt(2))
    assert se["nose"]["spot_area_pct"] == pytest.approx(0.5)                  # one spot: 100 %
    assert np.isnan(se["face"]["red_area_pct"])                               # one photo cannot tell


def test_a_real_analysis_carries_the_standard_errors_of_its_counts(landmarker):
    from skinscan import analyse_photo

    a = analyse_photo(SAMPLE, landmarker=landmarker)
    pores = (a.detections["kind"] == "pore") & (a.detections["region"] == "cheek_left") & (a.detections["diameter_mm"] >= 0.3)
    n, area_cm2 = int(pores.sum()), a.region_area_mm2["cheek_left"] / 100.0
    assert n > 10
    density = a.metrics["cheek_left"]["pore_density"]  # counted on the skin left when scars and spots are out
    assert n / area_cm2 < density < 1.2 * n / area_cm2
    assert a.uncertainty["cheek_left"]["pore_density"] == pytest.approx(density / np.sqrt(n), rel=1e-9)
    assert set(a.uncertainty) == set(a.metrics)
    assert np.isnan(a.uncertainty["face"]["roughness"])
