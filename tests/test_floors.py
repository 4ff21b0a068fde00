"""Resolution floors: measured on the real close-up, they are the floors the analysis applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinscan.validation.floors import measure_floors
from skinscan.metrics import FAMILIES, family

CLOSE_UP = Path(__file__).resolve().parent / "data" / "porenet" / "photo.png"


@pytest.fixture(scope="module")
def table(landmarker):
    return measure_floors(CLOSE_UP, landmarker=landmarker)


def test_the_shipped_floors_are_the_measured_ones(table):
    for fam in FAMILIES:
        measured = [table.floors[k] for k in fam.keys if np.isfinite(table.floors[k])]
        if fam.name == "scars":
            # The close-up has about two scar-sized dips (0.036 per cm^2, SE 0.018): too few to
            # measure a floor on. The scars' floor puts the smallest scar (1 mm) across 2.5 px.
            assert not measured and fam.floor_px_per_mm == 2.5
            continue
        assert fam.floor_px_per_mm == pytest.approx(max(measured), abs=0.05), (fam.name, measured)


def test_below_its_floor_a_family_reads_something_else(table):
    """The floors mean something: one step below, at least one metric of the family is off by more than
    its tolerance (or gone), e.g. the wrinkle density that fell from 2.0 to 0.04 mm/cm2 at 1 px/mm."""
    res = np.array(table.px_per_mm[1:])
    for name in ("wrinkles", "texture", "pores"):
        keys = family(name).keys
        below = np.flatnonzero(res < family(name).floor_px_per_mm - 0.05)[0]
        ref = [table.values[k][1] for k in keys]
        off = [not np.isfinite(table.values[k][1 + below]) or abs(table.values[k][1 + below] - r) > 0.1 * abs(r)
               for k, r in zip(keys, ref)]
        assert any(off), name
    assert table.values["wrinkle_density"][-1] < 0.1 * table.values["wrinkle_density"][1]


def test_colour_holds_to_a_pixel_a_millimetre(table):
    a = np.array(table.values["a_star"][1:])
    assert np.all(np.abs(a - a[0]) <= 0.3) and family("redness").floor_px_per_mm == 1.0
