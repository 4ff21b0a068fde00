"""The injected skin changes and photo nuisances have the physical size the ground truth says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinscan.validation import phantom as ph
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


# ----------------------------------------------------------------------------- real skin, dense pores
PORENET = __import__("pathlib").Path(__file__).resolve().parent / "data" / "porenet"


@pytest.fixture(scope="module")
def real_closeup():
    """The labelled real close-up: rgb, ROI (image-left half) and its pores' label image."""
    rgb = cv2.cvtColor(cv2.imread(str(PORENET / "photo.png")), cv2.COLOR_BGR2RGB)
    labels = cv2.imread(str(PORENET / "pores_left_half.png"), cv2.IMREAD_GRAYSCALE) > 0
    roi = cv2.imread(str(PORENET / "roi_left_half.png"), cv2.IMREAD_GRAYSCALE) > 0
    roi &= np.arange(roi.shape[1])[None, :] < 787
    return rgb, roi, cv2.connectedComponents(labels.astype(np.uint8), connectivity=8)[1]


def test_real_skin_is_what_the_close_up_measures(real_closeup):
    """REAL_SKIN is the measurement, not a guess: measure_skin of the close-up gives its numbers."""
    rgb, roi, labels = real_closeup
    got = ph.measure_skin(rgb, roi, labels, mm_per_px=1 / 13.3)
    real = ph.REAL_SKIN
    assert got["pore_density_per_cm2"] == pytest.approx(real["pore_density_per_cm2"], rel=0.01)
    for key in ("pore_diameter_mm", "pore_spacing_mm", "pore_contrast_od", "relief_band_od", "relief_dog_od"):
        np.testing.assert_allclose(got[key], real[key], rtol=0.02, err_msg=key)
    assert got["share_over_threshold"] == pytest.approx(real["share_over_threshold"], abs=0.01)
    assert got["noise_od"] == pytest.approx(real["noise_od"], rel=0.02)
    for key, value in real["detector"].items():
        assert got["detector"][key] == pytest.approx(value, rel=0.02), key


@pytest.fixture(scope="module")
def phantom_skin():
    """skin_microtexture's defaults on flat skin of the close-up's colour at 12 px/mm, 6 x 6 cm."""
    mm = 1 / 12
    rgb = np.full((720, 720, 3), (184, 156, 151), np.uint8)
    mask = np.ones(rgb.shape[:2], bool)
    out, rec = ph.skin_microtexture(rgb, mask, mm_per_px=mm, rng=np.random.default_rng(11))
    inner = np.zeros_like(mask)
    inner[40:-40, 40:-40] = True
    return out, inner, rec, mm


def test_the_phantom_skin_reproduces_the_real_close_up(phantom_skin):
    """The same measurement on the phantom's skin (its visible pores as the labels, outlined 1.33x
    their half-depth diameter as people outline real ones) gives the real numbers within tolerances."""
    out, inner, rec, mm = phantom_skin
    labels = ph.pore_labels(inner.shape, rec["pores"]["centres_px"], rec["pores"]["diameters_px"] / 0.75)
    got, real = ph.measure_skin(out, inner, labels, mm_per_px=mm), ph.REAL_SKIN
    assert got["pore_density_per_cm2"] == pytest.approx(real["pore_density_per_cm2"], rel=0.12)
    np.testing.assert_allclose(got["pore_diameter_mm"], real["pore_diameter_mm"], rtol=0.1)
    assert got["pore_spacing_mm"][0] >= 0.44 and got["pore_spacing_mm"][1] == pytest.approx(0.52, rel=0.1)
    np.testing.assert_allclose(got["pore_contrast_od"][:2], real["pore_contrast_od"][:2], rtol=0.15)
    assert 0.04 < got["pore_contrast_od"][2] < real["pore_contrast_od"][2]  # the tail is capped (scars)
    assert got["share_over_threshold"] == pytest.approx(real["share_over_threshold"], abs=0.07)
    assert got["relief_band_od"][0] == pytest.approx(real["relief_band_od"][0], rel=0.2)
    assert got["relief_dog_od"][0] == pytest.approx(real["relief_dog_od"][0], rel=0.3)
    det = got["detector"]
    assert det["density_per_cm2"] == pytest.approx(real["detector"]["density_per_cm2"], rel=0.15)
    assert det["recall"] == pytest.approx(real["detector"]["recall"], abs=0.08)
    assert det["precision"] == pytest.approx(real["detector"]["precision"], abs=0.1)


def test_pores_keep_their_spacing_and_clear_of_others():
    mask = np.ones((600, 600), bool)
    avoid = np.array([[300.0, 300.0], [100.0, 500.0]])
    _, rec = ph.add_pores(np.full((600, 600, 3), SKIN, np.uint8), mask, mm_per_px=0.05, density_per_cm2=100,
                          spacing_mm=0.5, avoid_px=avoid, rng=np.random.default_rng(3))
    c = rec["centres_px"]
    d = np.linalg.norm(c[:, None] - c[None], axis=2) + np.eye(len(c)) * 1e9
    assert rec["count"] == pytest.approx(100 * 9, rel=0.1)  # 9 cm^2 at 100 per cm^2: room enough
    assert d.min() >= 0.5 / 0.05 - 1e-9
    assert np.linalg.norm(c[:, None] - avoid[None], axis=2).min() >= 10.0


def test_pore_depths_follow_their_diameters_and_colour():
    rng = np.random.default_rng(0)
    law = ph.DepthByDiameter(0.25, 0.4, most=0.08, hi=0.1)
    d = np.full(20000, 0.2)
    assert np.median(law.draw(d, rng)) == pytest.approx(0.05, rel=0.03)
    assert np.median(law.draw(d * 2, rng)) == pytest.approx(0.08, rel=0.03)  # no deeper than ``most``
    assert law.draw(d * 2, rng).max() <= 0.1
    flat = np.full((200, 200, 3), SKIN, np.uint8)
    rec = {"centres_px": np.array([[100.0, 100.0]]), "diameters_px": np.array([30.0]), "shape": np.zeros((1, 4))}
    out, _ = ph.add_pores(flat, np.ones((200, 200), bool), mm_per_px=0.02, density_per_cm2=1e4, depth=0.3,
                          od_rgb=ph.PORE_OD_RGB, edge=1.0, placement=rec)
    od = np.log10(srgb_to_linear(flat)[100, 100] / srgb_to_linear(out)[100, 100])
    np.testing.assert_allclose(od / od[1], ph.PORE_OD_RGB, atol=0.03)
    assert od[1] == pytest.approx(0.3, abs=0.01)  # a bell: full depth at the centre only
    half = np.log10(srgb_to_linear(flat)[100, 115, 1] / srgb_to_linear(out)[100, 115, 1])
    assert half == pytest.approx(0.15, abs=0.01)  # half depth at the diameter


@pytest.mark.parametrize("growth_mm", [0.05, 0.1])
def test_grown_pores_are_their_own_profile_larger(growth_mm):
    """grow_pores magnifies each pore about its centre: the profile of a pore d across, grown by g,
    is the profile of a pore d + g across drawn afresh; 0 changes nothing."""
    mm = 1 / 12
    flat = ph.sensor_noise(np.full((300, 300, 3), SKIN, np.uint8), 0.004, np.random.default_rng(0))
    rec = {"centres_px": np.array([[100.3, 120.6], [200.0, 180.0]]), "diameters_px": np.array([4.0, 6.0]),
           "shape": np.zeros((2, 4))}
    kw = dict(mm_per_px=mm, density_per_cm2=1e4, depth=0.1, edge=1.0)
    mask = np.ones((300, 300), bool)
    base, _ = ph.add_pores(flat, mask, placement=rec, **kw)
    assert np.array_equal(ph.grow_pores(base, rec["centres_px"], rec["diameters_px"], growth_mm=0.0, mm_per_px=mm), base)
    grown = ph.grow_pores(base, rec["centres_px"], rec["diameters_px"], growth_mm=growth_mm, mm_per_px=mm)
    redrawn, _ = ph.add_pores(flat, mask, placement={**rec, "diameters_px": rec["diameters_px"] + growth_mm / mm}, **kw)
    diff = np.abs(grown.astype(int) - redrawn.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.1
    assert np.abs(grown.astype(int) - base.astype(int)).max() >= 3  # it did grow


def test_photograph_samples_once_and_maps_like_similarity():
    """Without a face warp, photograph is the similarity (same map), sampled once; fit_frame scales the frame."""
    img = np.zeros((300, 300, 3), np.uint8)
    img[50:54, 80:84] = 255
    out = ph.photograph(img, None, mm_per_px=0.1, angle_deg=90.0, scale=1.0, shift_px=(5.0, -3.0))
    _, mat = ph.similarity(img, angle_deg=90.0, scale=1.0, shift_px=(5.0, -3.0))
    ys, xs = np.nonzero(out[..., 0] > 128)
    np.testing.assert_allclose([xs.mean(), ys.mean()], mat @ [81.5, 51.5, 1], atol=0.6)
    big = ph.photograph(img, None, mm_per_px=0.1, scale=1.2, fit_frame=True)
    assert big.shape == (360, 360, 3)
    ys, xs = np.nonzero(big[..., 0] > 128)
    np.testing.assert_allclose([xs.mean(), ys.mean()], np.array([81.5, 51.5]) * 1.2 + 0.1, atol=0.8)
    assert np.array_equal(ph.photograph(img, None, mm_per_px=0.1), img)  # the identity is exact


@pytest.fixture(scope="module")
def faces():
    """The sample master face and the real close-up, with a landmarker to find them again."""
    from skinscan.landmarks import FaceLandmarker

    with FaceLandmarker() as lm:
        yield ph.master_face(lm), ph.closeup_face(lm), lm


def _openings(face):
    pairs = np.array([p for eye in ph.LID_PAIRS.values() for p in eye])
    return np.linalg.norm(face.points[pairs[:, 1]] - face.points[pairs[:, 0]], axis=1).reshape(2, -1).mean(axis=1)


def _moved_content(face, shape, kind, mm_per_px):
    """Mesh points moved by an expression, and where the warped photo takes its content there from."""
    moved = face.points[:468] + ph.expression_displacement(face, kind, mm_per_px=mm_per_px)
    maps = ph.face_warp_map(face, shape, mm_per_px=mm_per_px, expression=kind)
    src = np.stack([cv2.remap(m, moved[:, :1].astype(np.float32), moved[:, 1:].astype(np.float32),
                              cv2.INTER_LINEAR)[:, 0] for m in maps], 1)
    return moved, src


def test_a_squint_halves_the_eyes_opening(faces):
    master, closeup, lm = faces
    pairs = np.array([p for eye in ph.LID_PAIRS.values() for p in eye])
    moved, src = _moved_content(master.face, master.rgb.shape[:2], "squint", master.mm_per_px)
    # The photo's lids are where the mesh's moved to: the content there is the lids' own.
    np.testing.assert_allclose(src[pairs.ravel()], master.face.points[pairs.ravel()], atol=0.6)
    ratio = (np.linalg.norm(moved[pairs[:, 1]] - moved[pairs[:, 0]], axis=1)
             / np.linalg.norm(master.face.points[pairs[:, 1]] - master.face.points[pairs[:, 0]], axis=1))
    np.testing.assert_allclose(ratio, 0.5, atol=0.01)
    # The lids close over the eye, they do not squash it: the irises' centres keep their content.
    irises = master.face.points[[468, 473]].astype(np.float32)
    maps = ph.face_warp_map(master.face, master.rgb.shape[:2], mm_per_px=master.mm_per_px, expression="squint")
    kept = np.stack([cv2.remap(m, irises[:, :1], irises[:, 1:], cv2.INTER_LINEAR)[:, 0] for m in maps], 1)
    np.testing.assert_allclose(kept, irises, atol=0.01)
    # MediaPipe, finding the squinted face again, sees narrower eyes and a squint (its face model
    # holds the lids back: 0.76 of the opening on this face).
    squint = ph.photograph(master.rgb, master.face, mm_per_px=master.mm_per_px, expression="squint")
    found = lm.detect(squint)
    assert np.all(_openings(found) < 0.85 * _openings(master.face))
    assert found.blendshapes["eyeSquintLeft"] > master.face.blendshapes["eyeSquintLeft"] + 0.1
    # Closed eyes have next to no opening to halve: the close-up's lids move by under 0.5 mm.
    still = ph.expression_displacement(closeup.face, "squint", mm_per_px=closeup.mm_per_px)
    assert np.linalg.norm(still, axis=1).max() * closeup.mm_per_px < 0.5


def test_a_smile_raises_the_mouth_corners_by_3_mm(faces):
    master, closeup, lm = faces
    corners = list(ph.MOUTH_CORNERS)
    moved, src = _moved_content(master.face, master.rgb.shape[:2], "smile", master.mm_per_px)
    up = ph._up(master.face)
    np.testing.assert_allclose((moved[corners] - master.face.points[corners]) @ up * master.mm_per_px,
                               ph.SMILE_RAISE_MM, atol=0.05)
    np.testing.assert_allclose(src[corners], master.face.points[corners], atol=0.5 / master.mm_per_px)
    assert np.abs((moved[[33, 263]] - master.face.points[[33, 263]]) @ up).max() * master.mm_per_px < 0.1
    # MediaPipe finds the corners raised (by 1.6 and 2.4 mm on this face: its model holds them back).
    found = lm.detect(ph.photograph(master.rgb, master.face, mm_per_px=master.mm_per_px, expression="smile"))
    assert np.all((found.points[corners] - master.face.points[corners]) @ up * master.mm_per_px > 1.0)
    # The close-up's mouth corners are on the frame's bottom edge: no smile can be drawn there.
    assert ph.mouth_in_frame(master.face, master.rgb.shape[:2], mm_per_px=master.mm_per_px)
    assert not ph.mouth_in_frame(closeup.face, closeup.rgb.shape[:2], mm_per_px=closeup.mm_per_px)


def test_the_close_up_brings_its_own_pores(faces):
    _, closeup, _ = faces
    assert closeup.fills_frame and closeup.microtexture is None
    area_cm2 = closeup.skin.sum() * closeup.mm_per_px ** 2 / 100
    assert 40 < len(closeup.pores["centres_px"]) / area_cm2 < 80  # its own detected pores, ~60 per cm^2
    assert closeup.mm_per_px == pytest.approx(1 / 13.3, rel=0.04)
