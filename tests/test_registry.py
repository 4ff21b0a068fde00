"""The metric registry: each metric declared once, and everything that lists metrics agrees with it."""

from __future__ import annotations

import re
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest

from skinscan.validation import phantom
from skinscan.chartdata import METRIC_ORDER, metric_label, unit_text
from skinscan.metrics import (
    FAMILIES,
    METRIC_UNITS,
    METRICS,
    Measurements,
    compute_metrics,
    family,
    metric,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "metrics.md"
MM = 1 / 12  # 12 px/mm: above every family's floor


@pytest.fixture(scope="module")
def each_family():
    """Each family run alone on a phantom patch of skin: its ``Measurements``, by family name."""
    rng = np.random.default_rng(0)
    h = w = 360
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < 170 ** 2
    rgb = phantom.sensor_noise(np.full((h, w, 3), (200, 150, 130), np.uint8), 0.01, rng)
    rgb, _ = phantom.skin_microtexture(rgb, mask, mm_per_px=MM, rng=rng)
    masks = {"face": mask, "left": mask & (xx < w / 2)}
    return {f.name: compute_metrics(rgb, masks, mm_per_px=MM, families=[f.name]) for f in FAMILIES}


def test_every_metric_is_declared_once_in_a_declared_family():
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys)) == 16
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    assert {m.family for m in METRICS} == set(names)
    # Each family's metrics are consecutive in the display order (charts group them).
    runs = [f for f, _ in groupby(m.family for m in METRICS)]
    assert len(runs) == len(set(runs))
    assert METRIC_ORDER == tuple(keys) and list(METRIC_UNITS) == keys


def test_each_family_produces_exactly_its_declared_metrics(each_family):
    for name, found in each_family.items():
        assert isinstance(found, Measurements)
        assert set(found.values) == {"face", "left"}
        for region, values in found.values.items():
            assert tuple(values) == family(name).keys, (name, region)
        assert np.isfinite(found.values["face"][family(name).keys[0]]), name


def test_what_a_family_leaves_out_is_found_by_a_family_run_before_it(each_family):
    for i, fam in enumerate(FAMILIES):
        before = set().union(*(each_family[f.name].maps for f in FAMILIES[:i]))
        assert set(fam.excludes) <= before, fam.name
    assert family("texture").excludes == ("scar_blobs", "lines", "spots")
    assert family("pores").excludes == ("scar_blobs", "spots")


def test_below_a_floor_the_family_is_nan_with_its_reason(each_family):
    rgb = np.full((60, 60, 3), 180, np.uint8)
    found = compute_metrics(rgb, {"face": np.ones((60, 60), bool)}, mm_per_px=1 / 3.0, families=["pores", "redness"])
    assert all(np.isnan(found.values["face"][k]) for k in family("pores").keys)
    assert found.notes["pores"] == ("pores not measured at 3.0 px/mm: they need 8 px/mm or more (move closer or "
                                    "use the rear camera)")
    assert set(found.values["face"]) == set(family("pores").keys) | set(family("redness").keys)
    with pytest.raises(KeyError, match="the families are pigmentation, scars"):
        compute_metrics(rgb, {"face": np.ones((60, 60), bool)}, mm_per_px=0.1, families=["freckles"])


def test_units_have_one_spelling():
    # Stored units are plain text; the shown spelling (cm², °) is derived from them by one function,
    # and no two stored spellings show as the same unit.
    units = {m.unit for m in METRICS}
    assert all(u.isascii() and u == u.strip() for u in units)
    assert len({unit_text(u) for u in units}) == len(units)
    assert unit_text(metric("pore_density").unit) == "per cm²" and unit_text(metric("ita_deg").unit) == "°"
    assert METRIC_UNITS["wrinkle_density"] == "mm per cm2"  # as results.csv has always stored it
    assert metric_label("wrinkle_density") == "Fine-line density (mm per cm²)"


def test_directions_key_metrics_and_floors():
    # The descriptors: the skin-tone angle (no direction is better) and the pore diameter (not
    # detectable at its smallest growth through photo nuisances: docs/validation.md).
    assert [m.key for m in METRICS if not m.higher_is_worse] == ["pore_diameter_mm", "ita_deg"]
    ranks = sorted(m.key_rank for m in METRICS if m.key_rank is not None)
    assert ranks == list(range(1, len(ranks) + 1))
    from skinscan.report import INTERVAL_METRICS, KEY_METRICS

    assert KEY_METRICS == ("a_star", "pore_density", "roughness", "scar_density", "wrinkle_density", "spot_density")
    assert INTERVAL_METRICS == {"a_star", "erythema_index", "ita_deg"}
    assert metric("pore_density").floor_px_per_mm == 8.0
    from skinscan.quality import QualityThresholds

    assert QualityThresholds().min_px_per_mm == family("pores").floor_px_per_mm


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="no metric 'pores_density'; the metrics are a_star"):
        metric("pores_density")
    with pytest.raises(KeyError, match="no metric family 'pore'"):
        family("pore")


def test_tables_keyed_by_metric_name_only_registry_metrics():
    from skinscan.validation.floors import NEAR_ZERO_TOLERANCE
    from skinscan.light import ABSOLUTE_COLOUR
    from skinscan.uncertainty import COUNTED

    for table in (COUNTED, NEAR_ZERO_TOLERANCE, ABSOLUTE_COLOUR):
        assert set(table) <= set(METRIC_UNITS)


def _docs_table() -> list[list[str]]:
    text = DOCS.read_text(encoding="utf-8").split("\n## Metrics\n", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert header[:4] == ["concern", "metric", "unit", "floor (px/mm)"]
    return [[c.strip() for c in r.strip().strip("|").split(" | ")] for r in rows[2:]]


def test_the_docs_table_is_the_registry():
    rows = _docs_table()
    keys = [re.fullmatch(r"`(\w+)`", r[1]).group(1) for r in rows]
    assert keys == [m.key for m in METRICS]
    for row, m in zip(rows, METRICS):
        assert row[2] == unit_text(m.unit), m.key
        assert float(row[3]) == m.floor_px_per_mm, m.key


def test_the_readme_lists_the_registry_metrics_in_order():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| concern | metrics"):].split("\n\n", 1)[0]
    assert re.findall(r"`(\w+)`", table) == [m.key for m in METRICS]
