"""Light references and their own uncertainty: which one is trusted, and what it costs the absolute colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinscan.light import (
    ESTIMATE_SPREAD_95,
    MAX_A_STAR_SE,
    LightReference,
    choose_light,
    colour_se,
    reference_uncertainty,
)

SKIN = np.array([0.35, 0.22, 0.17])  # a light skin's linear RGB
NAN3 = (np.nan,) * 3


def _light(eyes=((0.5, 0.55, 0.6), (0.5, 0.55, 0.6)), sides=(), chart=NAN3, patches=0, closed=False, residual=NAN3):
    sclera = tuple(np.mean(eyes, axis=0))
    bg = tuple(np.mean(sides, axis=0)) if sides else NAN3
    return LightReference(sclera, bg, 500, 400 if sides else 0, chart_rgb=chart, chart_patches=patches,
                          sclera_eyes_rgb=eyes, background_sides_rgb=sides, chart_residual=residual,
                          eyes_closed=closed)


def test_the_sclera_uncertainty_is_the_two_eyes_disagreement():
    # The right eye 4% brighter and 2% redder than the left: exposure 2%, red/green 1% (half of each).
    gains, u = reference_uncertainty(_light(eyes=((0.52 * 1.02, 0.52, 0.52), (0.5, 0.5, 0.5))), "sclera")
    np.testing.assert_allclose(u, [np.log(1.04) / 2, np.log(1.02) / 2, 0.0], atol=1e-12)


def test_colour_se_is_the_first_order_propagation():
    # No uncertainty, no error; an exposure error moves a* by about a third of its share (CIELAB's cube root).
    assert colour_se(SKIN, np.ones(3), np.zeros(3)) == {"a_star": 0.0, "erythema_index": 0.0, "ita_deg": 0.0}
    from skinscan.color import rgb_to_lab

    a_star = float(rgb_to_lab(SKIN.astype(np.float32).reshape(1, 1, 3), linear=True)[0, 0, 1])
    se = colour_se(SKIN, np.ones(3), np.array([0.03, 0.0, 0.0]))
    assert se["a_star"] == pytest.approx(a_star * (1.03 ** (1 / 3) - 1), rel=0.05)
    assert colour_se(SKIN, np.ones(3), np.array([0.0, 0.01, 0.0]))["a_star"] > 5 * se["a_star"] / 3  # the balance counts most


def test_an_uncertain_sclera_falls_back_and_closed_eyes_leave_no_reference():
    squint = _light(eyes=((0.60, 0.50, 0.45), (0.45, 0.50, 0.60)))  # lashes and lid shadow: the eyes disagree
    uniform = ((0.40, 0.41, 0.42),) * 3 + ((0.402, 0.41, 0.418),)
    both = LightReference(*(getattr(squint, f) for f in ("sclera_rgb",)), (0.4, 0.41, 0.42), 500, 400,
                          sclera_eyes_rgb=squint.sclera_eyes_rgb, background_sides_rgb=uniform)
    choice = choose_light(both, SKIN)
    assert choice.source == "none" or choice.source == "background"
    assert "sclera too uncertain" in choice.reason
    closed = choose_light(_light(closed=True), SKIN)
    assert closed.source == "none" and "eyes closed" in closed.reason and np.isnan(closed.colour_se["a_star"])
    assert choose_light(_light(), SKIN).source == "sclera"  # two agreeing eyes are trusted
    assert choose_light(_light(), SKIN).colour_se["a_star"] <= MAX_A_STAR_SE


def test_the_eyes_closed_close_up_has_no_absolute_colour_but_its_relative_colour(landmarker):
    """Eyes closed, no chart, the face filling the frame: a*, erythema and ITA are NaN with the reason,
    red area and the pigment metrics are measured."""
    from skinscan import analyse_photo

    a = analyse_photo(Path(__file__).resolve().parent / "data" / "porenet" / "photo.png", landmarker=landmarker,
                      families=("redness", "pigmentation"))
    face = a.metrics["face"]
    assert a.light_source == "none" and a.light.eyes_closed
    assert all(np.isnan(face[k]) for k in ("a_star", "erythema_index", "ita_deg"))
    assert np.isfinite(face["red_area_pct"]) and np.isfinite(face["tone_evenness"])
    assert "no trustworthy light reference" in a.metric_notes["colour"]


def test_a_sclera_is_passed_over_only_when_its_two_eyes_show_it_worse_than_half_an_a_star():
    """Half the eyes' disagreement is an estimate with one degree of freedom: it reads over 1.96 times
    the true uncertainty in 1 photo in 20. Eyes 4% apart in red (+-0.60 a*) are used; 8% apart
    (+-1.2 a*) show, at 95%, a reference worse than 0.5 and are passed over."""
    assert ESTIMATE_SPREAD_95["sclera"] == pytest.approx(1.96) and ESTIMATE_SPREAD_95["chart"] == 1.0
    used = choose_light(_light(eyes=((0.52, 0.5, 0.5), (0.5, 0.5, 0.5))), SKIN)
    assert used.source == "sclera" and 0.5 < used.colour_se["a_star"] < 0.98
    passed = choose_light(_light(eyes=((0.54, 0.5, 0.5), (0.5, 0.5, 0.5))), SKIN)
    assert passed.source == "none" and "sclera too uncertain (+-1.1" in passed.reason
