"""The injected skin changes and photo nuisances have the physical size the ground truth says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinscan import phantom as ph
from skinscan.color import linear_to_srgb8, luminance, rgb_to_lab, srgb_to_linear


def rgb_to_lab_lin(lin):
    return rgb_to_lab(lin, linear=True)

SKIN = (200, 150, 130)


def _lab(rgb, mask):
    return rgb_to_lab_lin(srgb_to_linear(rgb[mask])).mean(axis=0)


def _grey_od(before, after):
    """Grey optical density added per pixel, from luminance."""
    return np.log10(luminance(before)) - np.log10(luminance(after))


@pytest.fixture(scope="module")
def patch():
    """A 600 x 600 skin-coloured patch with mild noise and a centred disk mask of radius 250 px."""
    rng = np.random.default_rng(7)
    rgb = np.clip(np.asarray(SKIN) + rng.normal(0, 2.0, (600, 600, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:600, :600]
    return rgb, (xx - 300) ** 2 + (yy - 300) ** 2 < 250**2


@pytest.fixture(scope="module")
def textured(patch):
    """The patch with baseline micro-texture, so the 0.2-2 mm band has energy to scale."""
    rgb, mask = patch
    out, _ = ph.skin_microtexture(rgb, np.ones(mask.shape, bool), mm_per_px=0.05, rng=np.random.default_rng(3))
    return out, mask


def test_srgb_decode_encode_is_exact():
    v = np.arange(256, dtype=np.uint8)
    assert np.array_equal(linear_to_srgb8(srgb_to_linear(v)), v)


def test_lab_of_known_colours():
    lab = rgb_to_lab_lin(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red, published


@pytest.mark.parametrize("target", [1.0, 3.0, 6.0])
def test_redness_for_delta_a_hits_target(patch, target):
    rgb, mask = patch
    out, rec = ph.redness_for_delta_a(rgb, mask, target)
    d = _lab(out, mask) - _lab(rgb, mask)
    assert d[1] == pytest.approx(target, abs=0.1)
    assert rec["delta_a_star"] == pytest.approx(d[1], abs=1e-3)
    assert abs(d[0]) < 0.7 * target  # blood darkens a little, mostly reddens
    assert np.array_equal(out[~cv2.dilate(mask.astype(np.uint8), np.ones((25, 25))).astype(bool)],
                          rgb[~cv2.dilate(mask.astype(np.uint8), np.ones((25, 25))).astype(bool)])


def test_add_redness_raises_a_star_and_is_feathered(patch):
    rgb, mask = patch
    out = ph.add_redness(rgb, mask, hb_od=0.1)
    assert (_lab(out, mask) - _lab(rgb, mask))[1] > 2.0
    a_star = [rgb_to_lab_lin(srgb_to_linear(img[300, 30:71]))[:, 1] for img in (rgb, out)]
    rise = a_star[1] - a_star[0]  # across the mask edge at x = 50
    assert rise[0] < 0.3 and rise[-1] > 2.0
    assert np.abs(np.diff(rise)).max() < 0.35 * rise[-1]  # no hard seam: a* climbs over several px


def test_pores_count_and_diameter(patch):
    rgb, mask = patch
    mm_per_px, density = 0.02, 60.0
    flat = np.full_like(rgb, SKIN)
    out, rec = ph.add_pores(flat, mask, mm_per_px=mm_per_px, density_per_cm2=density,
                            rng=np.random.default_rng(1))
    expected = density * mask.sum() * mm_per_px**2 / 100
    assert abs(rec["count"] - expected) < 3 * np.sqrt(expected)
    assert rec["area_cm2"] == pytest.approx(mask.sum() * mm_per_px**2 / 100)
    nominal = np.mean((0.15, 0.3)) / mm_per_px
    assert rec["diameters_px"].mean() == pytest.approx(nominal, rel=0.15)
    assert np.all(mask[np.round(rec["centres_px"][:, 1]).astype(int), np.round(rec["centres_px"][:, 0]).astype(int)])
    # Measured on the image: half-depth threshold, isolated pores only (overlaps merge).
    od = _grey_od(flat, out)
    n, _, stats, _ = cv2.connectedComponentsWithStats((od > 0.04).astype(np.uint8), connectivity=8)
    diam = 2 * np.sqrt(stats[1:, cv2.CC_STAT_AREA] / np.pi)
    single = stats[1:, cv2.CC_STAT_AREA] < 2.2 * np.pi * (0.15 / mm_per_px) ** 2  # below two max pores
    assert n - 1 >= 0.8 * rec["count"]
    assert diam[single].mean() == pytest.approx(nominal, rel=0.15)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((od > 0.01).astype(np.uint8), connectivity=8)
    peak = np.zeros(n)
    np.maximum.at(peak, labels.ravel(), od.ravel())
    assert np.median(peak[1:]) == pytest.approx(0.08, abs=0.01)  # core OD = depth


def test_pores_placement_reuses_a_subset(patch):
    rgb, mask = patch
    _, first = ph.add_pores(rgb, mask, mm_per_px=0.05, density_per_cm2=40, rng=np.random.default_rng(2))
    _, half = ph.add_pores(rgb, mask, mm_per_px=0.05, density_per_cm2=20, placement=first)
    k = half["count"]
    assert k == pytest.approx(first["count"] / 2, abs=np.sqrt(first["count"]))
    np.testing.assert_array_equal(half["centres_px"], first["centres_px"][:k])


def test_scars_are_shaded_pits(patch):
    _, mask = patch
    flat = np.full((600, 600, 3), SKIN, np.uint8)
    rec = {"centres_px": np.array([[300.0, 300.0]]), "diameters_px": np.array([60.0]), "shape": np.zeros((1, 4))}
    out, got = ph.add_scars(flat, mask, mm_per_px=0.05, density_per_cm2=100, depth=0.08, placement=rec)
    assert got["count"] == 1
    od = _grey_od(flat, out)
    assert od[300, 300] == pytest.approx(0.04, abs=0.01)  # floor: depth / 2
    assert od[270, 300] > 0.08  # wall towards the light (above) is darker
    assert od[330, 300] < -0.02  # the opposite rim is lighter
    assert abs(od[300, 270] - od[300, 330]) < 0.005  # symmetric across the light direction


def test_scars_density(patch):
    rgb, mask = patch
    out, rec = ph.add_scars(rgb, mask, mm_per_px=0.05, density_per_cm2=3.0, rng=np.random.default_rng(4))
    expected = 3.0 * rec["area_cm2"]
    assert abs(rec["count"] - expected) < 3 * np.sqrt(expected)
    assert np.all((rec["diameters_mm"] >= 1) & (rec["diameters_mm"] <= 3))
    assert _grey_od(rgb, out)[mask].mean() > 0.001


@pytest.mark.parametrize("density", [5.0, 20.0])
def test_lines_length_density(patch, density):
    rgb, mask = patch
    out, rec = ph.add_lines(rgb, mask, mm_per_px=0.05, density_mm_per_cm2=density, rng=np.random.default_rng(5))
    assert rec["total_length_mm"] / rec["area_cm2"] == pytest.approx(density, rel=0.10)
    assert rec["lengths_mm"].sum() == pytest.approx(rec["total_length_mm"])
    od = _grey_od(rgb, out)
    assert od[~mask].max() < 0.01
    # Integrated darkness = depth x Gaussian cross-section x length.
    sigma_mm = rec["widths_px"] * 0.05 / 2.355
    expected = np.sum(0.1 * sigma_mm * np.sqrt(2 * np.pi) * rec["lengths_mm"]) / 0.05**2
    assert od.sum() == pytest.approx(expected, rel=0.25)


def test_lines_placement_prefix(patch):
    rgb, mask = patch
    _, full = ph.add_lines(rgb, mask, mm_per_px=0.05, density_mm_per_cm2=20, rng=np.random.default_rng(6))
    _, part = ph.add_lines(rgb, mask, mm_per_px=0.05, density_mm_per_cm2=8, placement=full)
    assert part["density_mm_per_cm2"] == pytest.approx(8, rel=1e-3)
    np.testing.assert_allclose(part["polylines_px"][:-1], full["polylines_px"][: part["count"] - 1])


def test_spots_darken_blue_more_than_red(patch):
    rgb, mask = patch
    out, rec = ph.add_spots(rgb, mask, mm_per_px=0.05, density_per_cm2=4, melanin_od=0.2,
                            rng=np.random.default_rng(8))
    assert rec["count"] > 10
    od = np.log10(srgb_to_linear(rgb).astype(np.float64)) - np.log10(srgb_to_linear(out).astype(np.float64))
    core = od[..., 2] > 0.15
    ratio = od[core].mean(axis=0)
    assert ratio[2] > ratio[1] > ratio[0] > 0
    np.testing.assert_allclose(ratio / ratio[2], ph.MELANIN_OD / ph.MELANIN_OD[2], atol=0.05)


@pytest.mark.parametrize("gain", [0.15, 0.5])
def test_texture_energy_gain(textured, gain):
    rgb, mask = textured
    out, rec = ph.add_texture(rgb, mask, mm_per_px=0.05, energy_gain=gain, rng=np.random.default_rng(9))
    def energy(img):
        return ph._band(ph._log_lum(srgb_to_linear(img)), 0.05)[mask].var()
    assert energy(out) / energy(rgb) - 1 == pytest.approx(gain, abs=0.02)
    assert rec["energy_gain"] == pytest.approx(gain, abs=0.02)


def test_darken_to_ita(patch):
    rgb, mask = patch
    out, rec = ph.darken_to_ita(rgb, mask, ita_deg=5.0)
    lab = _lab(out, mask)
    ita = np.degrees(np.arctan2(lab[0] - 50, lab[2]))
    assert rec["ita_before"] > 30
    assert ita < 5.0 and ita == pytest.approx(rec["ita_after"], abs=1e-3)
    assert ita > 3.0  # no darker than needed


def test_exposure_doubles_linear_light():
    grey = np.full((8, 8, 3), 100, np.uint8)
    up = ph.exposure(grey, 1.0)
    np.testing.assert_allclose(srgb_to_linear(up) / srgb_to_linear(grey), 2.0, rtol=0.01)
    assert np.array_equal(ph.exposure(grey, 0.0), grey)


def test_white_balance_gains_on_grey():
    grey = np.full((8, 8, 3), 120, np.uint8)
    out = ph.white_balance(grey, (1.04, 1.0, 0.96))
    np.testing.assert_allclose((srgb_to_linear(out) / srgb_to_linear(grey))[0, 0], (1.04, 1.0, 0.96), atol=0.006)


def test_jpeg_roundtrip_keeps_channel_order():
    img = np.zeros((64, 64, 3), np.uint8)
    img[..., 0] = 220  # pure-ish red
    out = ph.jpeg_roundtrip(img, 90)
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 20


def test_sensor_noise_scales_with_signal():
    rng = np.random.default_rng(0)
    dark, bright = np.full((200, 200, 3), 60, np.uint8), np.full((200, 200, 3), 200, np.uint8)
    sd = [np.std(srgb_to_linear(ph.sensor_noise(x, 0.02, rng)) - srgb_to_linear(x)) for x in (dark, bright)]
    expected = [0.02 * np.sqrt(srgb_to_linear(np.uint8(v))) for v in (60, 200)]
    np.testing.assert_allclose(sd, expected, rtol=0.1)


def test_similarity_matrix_maps_a_known_point():
    img = np.zeros((300, 300, 3), np.uint8)
    img[50:54, 80:84] = 255  # a bright dot centred at (81.5, 51.5)
    out, mat = ph.similarity(img, angle_deg=90.0, scale=1.0, shift_px=(5.0, -3.0), center=(150.0, 150.0))
    # 90 deg counter-clockwise about (150, 150): (x, y) -> (150 + (y - 150), 150 - (x - 150)), then shift.
    np.testing.assert_allclose(mat @ [81.5, 51.5, 1], [150 - 98.5 + 5, 150 + 68.5 - 3], atol=1e-9)
    ys, xs = np.nonzero(out[..., 0] > 128)
    np.testing.assert_allclose([xs.mean(), ys.mean()], mat @ [81.5, 51.5, 1], atol=0.6)


def test_rejects_wrong_input():
    with pytest.raises(TypeError):
        ph.exposure(np.zeros((4, 4, 3), np.float32), 1.0)
    with pytest.raises(ValueError):
        ph.add_redness(np.zeros((4, 4, 3), np.uint8), np.ones((5, 5), bool), hb_od=0.1)
    with pytest.raises(TypeError):
        ph.add_pores(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool), mm_per_px=0.1, density_per_cm2=1)
