"""A reduced run of the phantom protocol, asserting its thresholds.

Both faces (the sample face with real skin's pores, the real close-up), both tones, 4 nuisance draws
per dose (the command's default is 8), squints and smiles among the nuisances. Every metric must
respond monotonically to its own concern's four doses, detectably through photo noise, and
specifically (under 30% of its own response under any other concern), but the descriptors: ITA stays
stable and the pore diameter rises with its dose. The close-up, whose eyes are closed, must refuse the
absolute colour metrics rather than report them from a light nobody knows.
"""

import numpy as np
import pytest

from skinscan.validation import phantom
from skinscan.validation.protocol import CONCERNS, FACES, inject, run_validation

pytestmark = pytest.mark.slow  # not in `make quick`

CONCERNS_BY_NAME = {c.name: c for c in CONCERNS}
N_DRAWS = 4


@pytest.fixture(scope="module")
def report():
    return run_validation(n_draws=N_DRAWS, faces=FACES, tones=("light", "deep"), jobs=2, progress=False)


#: Rows that miss a threshold, with why (docs/validation.md shows the measurement): kept visible here
#: and in the table, not hidden.
KNOWN_GAPS: dict[tuple[str, str], set[str]] = {}


def _gaps(report):
    return [f for f in report.failures()
            if f.split(": ")[1] not in KNOWN_GAPS.get((f.split("/")[0], f.split(": ")[0].split("/")[2]), ())]


def test_every_metric_meets_every_threshold(report):
    assert not _gaps(report), "\n".join(_gaps(report)) + "\n" + report.table()


def test_pore_size_is_a_descriptor_that_rises_with_the_dose(report):
    """Pore diameter is reported without change labels: through squints, smiles and 10-16 px/mm its
    smallest growth (0.05 mm) is not 3 SDs (the table shows by how much), but it must still rise
    with the growth, on both faces and tones."""
    from skinscan.metrics import metric

    assert not metric("pore_diameter_mm").higher_is_worse
    rows = [r for r in report.rows if r.metric == "pore_diameter_mm"]
    assert len(rows) == 4 and all(r.passed == {"monotonic": True} for r in rows)
    assert all(0 < r.responses[0] < r.responses[-1] for r in rows)
    assert "descriptor (no change label), monotonic: yes" in report.table()


def test_the_protocol_covers_every_metric_on_both_faces_and_tones(report):
    metrics = {m for c in CONCERNS for m, _ in c.metrics}
    assert len(metrics) == 16
    for face in FACES:
        for tone in ("light", "deep"):
            assert {r.metric for r in report.rows if (r.face, r.tone) == (face, tone)} == metrics


def test_the_eyes_closed_close_up_refuses_absolute_colour(report):
    """No sclera, no chart, no background: a*, erythema index and ITA are NaN in every photo of the
    close-up (and the rows say why), while the sample face's are measured; red area, which
    compares skin with skin, is measured on both (but in photos a series leaves out: over 15% of
    the skin clipped, and the like)."""
    for r in report.rows:
        if r.metric in ("a_star", "erythema_index", "ita_deg"):
            if r.face == "closeup":
                assert r.refused.startswith("no trustworthy light reference") and r.missing == 5 * N_DRAWS
                assert np.isnan(r.nuisance_mean) and all(r.passed.values())
            else:
                assert not r.refused and np.isfinite(r.nuisance_mean)
        if r.metric == "red_area_pct":
            blocked = sum(report.left_out.get(f"{r.face}/{r.tone}", {}).values())
            assert not r.refused and r.missing <= blocked


def test_expressions_are_among_the_nuisances(report):
    """The draws hold squints and smiles; the close-up, whose mouth corners are on its frame's edge,
    is never given a smile."""
    seen = {s: {p["expression"] for p in photos} for s, photos in report.photos.items()}
    assert {"squint", "smile"} <= seen["sample/light"]
    assert "smile" not in seen["closeup/light"] and "smile" not in seen["closeup/deep"]
    assert report.settings["expressions"] == {"sample/light": True, "sample/deep": True,
                                              "closeup/light": False, "closeup/deep": False}


def test_responses_are_in_physical_units(report):
    row = {(r.face, r.tone, r.metric): r for r in report.rows}
    # Redness is injected as a known rise of mean a* over its zone, 1.5 to 6, on the face as exposed.
    # a* grows with lightness, and the sclera's normalisation brings the face (exposed 0.3 EV down, as
    # a phone meters it) back up by about that much: read 1.62, 3.38, 5.03, 6.70 (x 1.08-1.13).
    np.testing.assert_allclose(row["sample", "light", "a_star"].responses, [1.5, 3.0, 4.5, 6.0], rtol=0.15)
    for face in FACES:
        for tone in ("light", "deep"):
            # Lines: 5-20 mm per cm2 of forehead and periorbital skin, faint; 0.3.7 read 72-88% of them on
            # the smooth face. On the real close-up's own relief, deep, the densest dose reads 53% (4 draws;
            # 58% with 8); why it reads fewer there is not yet measured.
            lines = np.array(row[face, tone, "wrinkle_density"].responses) / np.array(CONCERNS_BY_NAME["lines"].doses)
            assert np.all((0.45 < lines) & (lines < 1.1)), (face, tone, lines)
            # Pores like the skin's own, 15-60 per cm2 on skin with ~60 of its own: about two fifths
            # are counted (0.38-0.41 with 8 draws): a quarter are under the detector's contrast, as a
            # quarter of real pores are, and of those found about half read under the 0.3 mm counted.
            pores = np.array(row[face, tone, "pore_density"].responses) / np.array(CONCERNS_BY_NAME["pores"].doses)
            assert np.all((0.3 < pores) & (pores < 0.6)), (face, tone, pores)
            # Every visible pore grown by 0.05-0.125 mm: the detected pores' mean diameter grows by
            # about 40-50% of it (a quarter of the detections are dips that did not grow, and the
            # grown pores near the contrast threshold join the detections at their smaller size).
            size = np.array(row[face, tone, "pore_diameter_mm"].responses) / np.array(CONCERNS_BY_NAME["pore_size"].doses)
            assert np.all((0.3 < size) & (size < 0.8)), (face, tone, size)


def _clean_skin():
    """Flat skin with real skin's microtexture, 6 x 6 cm at 12 px/mm, as region masks."""
    mm = 1 / 12
    rgb = phantom.sensor_noise(np.full((720, 720, 3), (200, 150, 130), np.uint8), 0.004, np.random.default_rng(0))
    mask = np.zeros(rgb.shape[:2], bool)
    mask[30:-30, 30:-30] = True
    rgb, rec = phantom.skin_microtexture(rgb, mask, mm_per_px=mm, rng=np.random.default_rng(1))
    masks = {"cheek_left": mask, "cheek_right": np.zeros_like(mask), "nose": np.zeros_like(mask)}
    pores = {"centres_px": rec["pores"]["centres_px"], "diameters_px": rec["pores"]["diameters_px"],
             "avoid_px": np.concatenate([rec["pores"]["centres_px"], rec["faint_pores"]["centres_px"]])}
    return rgb, masks, mask, pores, mm


def test_the_pore_count_dose_adds_the_skins_kind_of_pore_clear_of_its_own():
    """Each dose adds exactly round(dose x area) pores, nested, at least 0.45 mm from the skin's own
    pores and from each other; the count takes about two fifths of them (found, and 0.3 mm or more)."""
    from skinscan.metrics import pore_metrics

    rgb, masks, mask, pores, mm = _clean_skin()
    c = CONCERNS_BY_NAME["pores"]
    base = pore_metrics(rgb, mask, mm_per_px=mm).value["pore_density"]
    added = [pore_metrics(inject(c, rgb, masks, mm, d, seed=3, pores=pores), mask, mm_per_px=mm).value["pore_density"]
             - base for d in c.doses]
    np.testing.assert_allclose(np.array(added) / np.array(c.doses), 0.40, atol=0.1)  # counted: 0.3 mm or more
    assert np.all(np.diff(added) > 0)
    _, pool = phantom.add_pores(rgb, mask, mm_per_px=mm, density_per_cm2=1.5 * c.doses[-1], rng=np.random.default_rng(3),
                                avoid_px=pores["avoid_px"], **{k: phantom.SKIN_PORES[k] for k in ("diameter_mm", "depth",
                                                                                                 "spacing_mm")})
    gap = np.linalg.norm(pool["centres_px"][:, None] - pores["avoid_px"][None], axis=2).min()
    assert gap * mm >= 0.45 - 1e-9


def test_the_pore_size_dose_grows_the_skins_own_pores():
    """The size dose magnifies every visible pore by its growth: on a clean 12 px/mm photo the detected
    pores' mean diameter grows by 55% of the dose (a quarter of the detections are faint pores and
    relief dips, which do not grow, and grown pores near the contrast threshold join the detections
    at their smaller size), in proportion, and nothing grows at dose 0."""
    from skinscan.metrics import pore_metrics

    rgb, masks, mask, pores, mm = _clean_skin()
    c = CONCERNS_BY_NAME["pore_size"]
    assert np.array_equal(inject(c, rgb, masks, mm, 0.0, seed=5, pores=pores), rgb)
    d0 = pore_metrics(rgb, mask, mm_per_px=mm).value["pore_diameter_mm"]
    growth = np.array([pore_metrics(inject(c, rgb, masks, mm, d, seed=5, pores=pores), mask, mm_per_px=mm)
                       .value["pore_diameter_mm"] - d0 for d in c.doses])
    np.testing.assert_allclose(growth / np.array(c.doses), 0.55, atol=0.1)
    assert np.all(np.diff(growth) > 0)


def test_a_photo_not_measured_is_left_out_of_both_sides_of_a_change():
    """A dose's response pairs each dose photo with the null photo of the same nuisance draw.

    Draw 3 reads 0.5 higher in both (its nuisance, not the dose); its dose photo is not measurable.
    Unpaired means would report a change of 0.5 - 0.5 / 4; paired, the change is the dose's 0.5.
    """
    from skinscan.validation.protocol import MetricRow, ValidationReport, _paired_change

    null = np.array([1.0, 1.0, 1.0, 1.5])
    dosed = np.array([1.5, 1.5, 1.5, np.nan])
    assert np.nanmean(dosed) - np.nanmean(null) == pytest.approx(0.375)
    assert _paired_change(dosed, null) == pytest.approx(0.5)
    assert np.isnan(_paired_change(np.full(4, np.nan), null))
    row = MetricRow("sample", "light", "pores", "pore_density", 1, [0.5] * 4, 0.1, 1.0, 1.0, 5.0, 0.0, "-", 10.0,
                    missing=1)
    table = ValidationReport([row], n_draws=4).table()
    assert "sample light pore_density 1 of 20" in table.splitlines()[-1]


def test_a_refused_row_fails_when_a_value_is_given():
    from skinscan.validation.protocol import MetricRow

    nan = float("nan")
    refused = MetricRow("closeup", "light", "redness", "a_star", 1, [nan] * 4, nan, nan, 1.0, nan, 0.0, "-", nan,
                        missing=20, refused="no trustworthy light reference")
    assert refused.passed == {"not measured": True}
    given = MetricRow("closeup", "light", "redness", "a_star", 1, [nan] * 4, nan, 0.3, 1.0, nan, 0.0, "-", nan,
                      missing=19, refused="no trustworthy light reference")
    assert given.passed == {"not measured": False}
