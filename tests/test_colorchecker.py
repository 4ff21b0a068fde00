"""A ColorChecker in the frame as the light reference: real cv2.mcc detection on a chart drawn into the astronaut."""

import cv2
import numpy as np
import pytest

from skinscan import analyse_photo
from skinscan.validation import phantom
from skinscan.color import srgb_to_linear
from skinscan.light import LightReference, choose_light, detect_colorchecker

# Two lighting nuisances (white balance gains, exposure in EV), both applied in linear light.
NUISANCE_A = (np.array([1.12, 1.0, 0.88]), -0.3)
NUISANCE_B = (np.array([0.90, 1.0, 1.15]), 0.25)  # also clips the white patch's blue
PATCH_PX, GAP_PX = 96, 21  # about 32 px per patch in the detector's 640 px copy
CHART_AT = (1030, 40)  # right of the face in the 1536 px astronaut, over the shuttle


def _reference_srgb8() -> np.ndarray:
    """OpenCV's 24 reference colours of the ColorChecker Classic (sRGB uint8, RGB order), shape (24, 3)."""
    det = cv2.mcc.CCheckerDetector_create()
    det.setColorChartType(cv2.mcc.MCC24)
    return np.asarray(det.getRefColors(), dtype=np.uint8).reshape(24, 3)[:, ::-1]


def _draw_chart(rgb, x0, y0, *, patch=PATCH_PX, gap=GAP_PX, quarter_turns=0):
    """The photo with a 6 x 4 ColorChecker drawn at (x0, y0) (turned counter-clockwise by 90° steps),
    and the true centre (x, y) of each of its 24 patches in the photo, shape (24, 2)."""
    h, w = 4 * patch + 5 * gap, 6 * patch + 7 * gap
    chart = np.full((h, w, 3), 20, np.uint8)  # the chart's black surround
    row, col = np.divmod(np.arange(24), 6)
    ys, xs = gap + row * (patch + gap), gap + col * (patch + gap)
    inside = np.arange(patch)
    chart[(ys[:, None, None] + inside[None, :, None]), (xs[:, None, None] + inside[None, None, :])] = \
        _reference_srgb8()[:, None, None, :]
    cx, cy = xs + (patch - 1) / 2, ys + (patch - 1) / 2
    # np.rot90 (counter-clockwise) moves (x, y) to (y, w-1-x), then to (w-1-x, h-1-y), then (h-1-y, x).
    for _ in range(quarter_turns % 4):
        chart, cx, cy, (h, w) = np.rot90(chart), cy, w - 1 - cx, (w, h)
    out = rgb.copy()
    out[y0:y0 + h, x0:x0 + w] = chart
    return out, np.stack([x0 + cx, y0 + cy], axis=1)


def _light(rgb, nuisance):
    """Exposure and white balance as one multiplication in linear light (two 8-bit steps would clip in
    the first what the second brings back below 250)."""
    wb, ev = nuisance
    return phantom.white_balance(rgb, wb * 2.0 ** ev)


def _applied(nuisance):
    wb, ev = nuisance
    return wb * 2.0 ** ev


@pytest.fixture(scope="module")
def with_chart(astronaut_big):
    img, _ = _draw_chart(astronaut_big, *CHART_AT, quarter_turns=1)
    return img


@pytest.fixture(scope="module")
def analysed_pair(landmarker, with_chart):
    """The photo with a chart under nuisances A and B; B analysed against A as its reference."""
    img_a, img_b = _light(with_chart, NUISANCE_A), _light(with_chart, NUISANCE_B)
    a = analyse_photo(img_a, landmarker=landmarker, metrics=False)
    b = analyse_photo(img_b, landmarker=landmarker, metrics=False, reference=a)
    return (img_a, a), (img_b, b)


# ---------------------------------------------------------------------------------- the detector
@pytest.mark.parametrize("where, quarter_turns", [((40, 1020), 0), (CHART_AT, 3)])
def test_detector_finds_the_patches_and_reads_the_neutrals(astronaut_big, where, quarter_turns):
    img, centres = _draw_chart(astronaut_big, *where, quarter_turns=quarter_turns)
    chart = detect_colorchecker(img)
    assert chart is not None
    # Every patch in the chart's own order, its centre within a quarter of a patch of the truth.
    found = chart.patches.mean(axis=1)
    assert np.linalg.norm(found - centres, axis=1).max() < 0.25 * PATCH_PX
    # The chart's outline encloses all its patches.
    outline = chart.box.astype(np.float32).reshape(-1, 1, 2)
    assert all(cv2.pointPolygonTest(outline, tuple(map(float, c)), False) > 0 for c in centres)
    # Neutrals read in linear light as drawn (the drawn colours are the reference ones).
    assert chart.usable.all()
    np.testing.assert_allclose(chart.neutral_rgb, srgb_to_linear(_reference_srgb8()[18:24]), rtol=0.005)
    np.testing.assert_allclose(chart.reference_rgb, srgb_to_linear(_reference_srgb8()[18:24]), rtol=1e-6)
    np.testing.assert_allclose(chart.gains, 1.0, atol=0.005)


@pytest.mark.parametrize("nuisance", [NUISANCE_A, NUISANCE_B, (np.array([1.25, 1.0, 0.8]), -1.0)])
def test_detector_gains_undo_a_known_cast_and_exposure(with_chart, nuisance):
    chart = detect_colorchecker(_light(with_chart, nuisance))
    assert chart is not None and chart.usable.sum() >= 5
    np.testing.assert_allclose(chart.gains * _applied(nuisance), 1.0, atol=0.01)


def test_no_chart_no_detection(astronaut, astronaut_big):
    assert detect_colorchecker(astronaut_big) is None
    assert detect_colorchecker(astronaut) is None
    assert detect_colorchecker(np.zeros((300, 400, 3), np.uint8)) is None


def test_detector_rejects_other_input(astronaut_big):
    with pytest.raises(ValueError, match="uint8"):
        detect_colorchecker(astronaut_big.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="RGB"):
        detect_colorchecker(astronaut_big[..., 0])


def test_a_clipped_white_patch_is_left_out(with_chart):
    bright = phantom.exposure(with_chart, 0.5)  # white 0.91 -> 1.29: clipped; light grey 0.59 -> 0.83
    chart = detect_colorchecker(bright)
    assert chart is not None
    assert chart.usable.tolist() == [False, True, True, True, True, True]
    np.testing.assert_allclose(chart.gains * 2 ** 0.5, 1.0, atol=0.01)


def test_the_chart_comes_first_then_the_sclera():
    sclera, eyes = (0.5, 0.55, 0.6), ((0.5, 0.55, 0.6), (0.5, 0.55, 0.6))
    skin = np.array([0.35, 0.22, 0.17])
    chart = LightReference(sclera, (np.nan,) * 3, 100, 0, chart_rgb=(0.8, 1.0, 1.25), chart_patches=5,
                           sclera_eyes_rgb=eyes, chart_residual=(0.002, 0.002, 0.002))
    choice = choose_light(chart, skin)
    assert choice.source == "chart"
    np.testing.assert_allclose(choice.gains, [1.25, 1.0, 0.8])
    one_patch = LightReference(sclera, (np.nan,) * 3, 100, 0, chart_rgb=(0.8, 1.0, 1.25), chart_patches=1,
                               sclera_eyes_rgb=eyes)
    assert choose_light(one_patch, skin).source == "sclera"
    assert choose_light(LightReference(sclera, (np.nan,) * 3, 100, 0, sclera_eyes_rgb=eyes), skin).source == "sclera"


# ---------------------------------------------------------------------------------- analyse_photo
def test_analyse_photo_normalises_the_light_on_the_chart(analysed_pair):
    normalised = []
    for (img, a), nuisance in zip(analysed_pair, (NUISANCE_A, NUISANCE_B)):
        assert a.light_source == "chart"
        assert a.light.chart_patches >= 5
        # The gains undo the applied white balance and exposure: applied x recovered = 1 per channel.
        product = a.gains * _applied(nuisance)
        np.testing.assert_allclose(product, 1.0, atol=0.02)
        assert np.ptp(product) / product.mean() < 0.02
        chart = detect_colorchecker(img)
        normalised.append(chart.neutral_rgb * a.gains)
    # Both copies' neutrals, once normalised, agree (the clipped white of B is not read).
    both = np.all(np.isfinite(normalised[0]), axis=1) & np.all(np.isfinite(normalised[1]), axis=1)
    assert both.sum() >= 5
    np.testing.assert_allclose(normalised[1][both] / normalised[0][both], 1.0, atol=0.02)


def test_lighting_mismatch_is_measured_on_the_chart(analysed_pair):
    (_, a), (_, b) = analysed_pair
    checks = {q.name: q for q in b.quality}
    ratio = _applied(NUISANCE_A) / _applied(NUISANCE_B)
    np.testing.assert_allclose(b.light.gains_to(a.light, use="chart"), ratio, rtol=0.02)
    true_pct = 100 * np.abs(np.log(ratio[[0, 2]] / ratio[1])).max()
    wb = checks["white_balance_mismatch"]
    assert "chart" in wb.detail and wb.value == pytest.approx(true_pct, abs=1.0) and not wb.passed
    ev = checks["exposure_mismatch"]
    assert "chart" in ev.detail and ev.value == pytest.approx(0.55, abs=0.03) and not ev.passed


def test_a_photo_without_a_chart_reads_the_sclera_and_a_real_background(landmarker, astronaut_big):
    # A grey frame round the photo: the background strip lies in it. The upscaled astronaut's two
    # scleras disagree by 2% in their colour balance (about +-0.6 a*): an estimate from two eyes that
    # does not show the sclera to be worse than +-0.5 a* (ESTIMATE_SPREAD_95), so it is used first.
    framed = cv2.copyMakeBorder(astronaut_big, 200, 200, 200, 200, cv2.BORDER_CONSTANT, value=(150, 150, 150))
    a = analyse_photo(_light(framed, NUISANCE_A), landmarker=landmarker, metrics=False)
    assert a.light_source == "sclera" and a.light_reason == "no chart"
    assert a.light.chart_patches == 0 and np.all(np.isnan(a.light.chart_rgb))
    # The background is read in the whole photo, not in the face crop (where it was always empty).
    assert a.light.background_pixels > 1000
    expected = srgb_to_linear(np.uint8(150)) * _applied(NUISANCE_A)
    np.testing.assert_allclose(a.light.background_rgb, expected, rtol=0.01)


def test_analyse_photo_with_a_clipped_white_patch(landmarker, with_chart):
    a = analyse_photo(phantom.exposure(with_chart, 0.5), landmarker=landmarker, metrics=False)
    assert a.light_source == "chart" and a.light.chart_patches == 5
    np.testing.assert_allclose(a.gains * 2 ** 0.5, 1.0, atol=0.02)
