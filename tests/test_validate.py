"""A run of the phantom protocol (`skinscan validate --draws 6`, as in the README), asserting its four thresholds.

Every metric must respond monotonically to its own concern's four doses, detectably through
photo noise, and specifically (under 30% of its own response under any other concern), on the
light and the deep-tone face. Six nuisance draws per dose (the command's default is 8). Four were
used until 0.3; with four, the two top scar doses (0.6 and 0.8 scars/cm²) were detected within
noise of each other on the light face (0.255 and 0.248 per cm²). The cause was found in 0.3.1: the
top dose held 32 scars instead of 36, and the scar detector's opening disc flipped between 3 and
5 px with the photo's scale (see the README); both are fixed, and the scar rows now step up by
equal amounts on both tones.
"""

import numpy as np
import pytest

from skinscan.validate import CONCERNS, run_validation

pytestmark = pytest.mark.slow  # not in `make quick`

CONCERNS_BY_NAME = {c.name: c for c in CONCERNS}


@pytest.fixture(scope="module")
def report():
    return run_validation(n_draws=6, tones=("light", "deep"), jobs=2, progress=False)


#: Metrics that do not yet meet every threshold, with the reason (kept visible, not hidden):
#: the mean diameter of the detected pores grows with the pores (pore-size concern) and is
#: specific, but it shifts with the photo's resolution (pores near the detection limit are found
#: in sharper photos only), by more than a third of the smallest growth: not detectable (README).
KNOWN_GAPS = {"pore_diameter_mm"}


def test_every_metric_meets_every_threshold(report):
    missed = [f for f in report.failures() if f.split("/")[1].split(":")[0] not in KNOWN_GAPS]
    assert not missed, "\n" + report.table()


@pytest.mark.xfail(reason="pore diameter: see KNOWN_GAPS", strict=False)
def test_known_gaps_meet_every_threshold(report):
    assert not [f for f in report.failures() if f.split("/")[1].split(":")[0] in KNOWN_GAPS]


def test_the_protocol_covers_every_metric_on_both_tones(report):
    metrics = {m for c in CONCERNS for m, _ in c.metrics}
    assert len(metrics) == 16
    for tone in ("light", "deep"):
        assert {r.metric for r in report.rows if r.tone == tone} == metrics


def test_responses_are_in_physical_units(report):
    row = {(r.tone, r.metric): r for r in report.rows}
    # Redness is injected as a known rise of mean a* over its zone: 1.5, 3, 4.5, 6.
    np.testing.assert_allclose(row["light", "a_star"].responses, [1.5, 3.0, 4.5, 6.0], atol=0.5)
    # Lines are injected at 5-20 mm per cm2 of forehead and periorbital skin (faint, 0.15-0.4 mm
    # wide). Since 0.3.5 (scales in mm, branches judged one by one) the detector reads 84-93% of
    # them on the light face and 77-81% on the deep one (58-74% and 52% before, when two lines that
    # crossed were kept or dropped as one network); since 0.3.7, whose skeleton length no longer
    # counts the zig-zags of a wavering skeleton, 79-88% and 72-77%.
    for tone in ("light", "deep"):
        lines = np.array(row[tone, "wrinkle_density"].responses) / np.array(CONCERNS_BY_NAME["lines"].doses)
        assert np.all((0.65 < lines) & (lines < 1.1)), lines
    # Pore size is dosed by growing a fixed set of pores by 0.025-0.1 mm: the mean diameter of the
    # detected pores must grow by a good part of it (pores grown past the detection limit join
    # the detections at their smaller size, so the mean grows by less than the pores do).
    for tone in ("light", "deep"):
        pores = np.array(row[tone, "pore_diameter_mm"].responses)
        assert np.all((0.4 * np.array(CONCERNS_BY_NAME["pore_size"].doses) < pores)
                      & (pores < 1.05 * np.array(CONCERNS_BY_NAME["pore_size"].doses))), pores


def test_a_concern_dosed_on_a_base_is_read_against_its_base(report):
    """Pore size grows 10 pores/cm2 that the face is first given: its responses, nuisance SD and
    cross-talk are read on that base face (a size measured on a face without pores measures noise),
    and concerns of one family (pore count, pore size) are not each other's cross-talk."""
    row = {(r.tone, r.metric): r for r in report.rows}
    for tone in ("light", "deep"):
        size = row[tone, "pore_diameter_mm"]
        assert size.concern == "pore_size" and size.crosstalk_by not in ("pores", "pore_size")
        # The base face has pores of 0.15-0.3 mm: its mean detected diameter is a pore's, not noise's.
        assert 0.18 < size.nuisance_mean < 0.35
        for metric in ("pore_density", "pore_area_pct"):
            assert row[tone, metric].crosstalk_by not in ("pores", "pore_size")


def test_pore_size_dose_grows_the_same_pores_by_the_dose():
    """The pore-size injection: the same 10/cm2 pores at every dose, each grown by the dose (mm).

    Read back on a clean 12 px/mm phantom by the pore detector: the mean diameter grows by the
    dose within 20%, and the pore density stays at the injected 10/cm2 within 15%.
    """
    from skinscan import phantom
    from skinscan.metrics import pore_metrics
    from skinscan.validate import PORE_BASE, inject

    mm = 1 / 12
    h = w = 720
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < 340 ** 2
    face = phantom.sensor_noise(np.full((h, w, 3), (200, 150, 130), np.uint8), 0.004, np.random.default_rng(0))
    masks = {"cheek_left": mask, "cheek_right": np.zeros_like(mask), "nose": np.zeros_like(mask)}
    size = CONCERNS_BY_NAME["pore_size"]
    got = []
    for dose in (0.0,) + size.doses:
        img = inject(size, face, masks, mm, dose, seed=5)
        got.append(pore_metrics(img, mask, mm_per_px=mm).value)
    n_expected = PORE_BASE["density_per_cm2"]
    for v in got:  # the same pores at every dose, nearly all found on a clean photo
        assert v["pore_density"] == pytest.approx(n_expected, rel=0.15)
    growth = np.array([v["pore_diameter_mm"] for v in got[1:]]) - got[0]["pore_diameter_mm"]
    np.testing.assert_allclose(growth, size.doses, rtol=0.2)


def test_a_photo_not_measured_is_left_out_of_both_sides_of_a_change():
    """A dose's response pairs each dose photo with the null photo of the same nuisance draw.

    Draw 3 reads 0.5 higher in both (its nuisance, not the dose); its dose photo is not measurable.
    Unpaired means would report a change of 0.5 - 0.5 / 4; paired, the change is the dose's 0.5.
    """
    from skinscan.validate import MetricRow, ValidationReport, _paired_change

    null = np.array([1.0, 1.0, 1.0, 1.5])
    dosed = np.array([1.5, 1.5, 1.5, np.nan])
    assert np.nanmean(dosed) - np.nanmean(null) == pytest.approx(0.375)
    assert _paired_change(dosed, null) == pytest.approx(0.5)
    assert np.isnan(_paired_change(np.full(4, np.nan), null))
    row = MetricRow("light", "pores", "pore_density", 1, [0.5] * 4, 0.1, 1.0, 1.0, 5.0, 0.0, "-", 10.0, missing=1)
    table = ValidationReport([row], n_draws=4).table()
    assert "light pore_density 1 of 20" in table.splitlines()[-1]
