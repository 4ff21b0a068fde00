"""The blob detector stage by stage, on discs drawn with a known place, radius and contrast.

The signal is a darkness (larger = darker): a dark pit of the skin is a disc of positive contrast.
For a disc of radius r and contrast c, -s^2 times the Laplacian of its blur at its centre is
c (r^2 / s^2) exp(-r^2 / 2 s^2), which peaks at s = r / sqrt(2) with the value 2c / e; the
detector's response is 4 times that (the scale of OpenCV's 3x3 Laplacian kernel): 8c / e.
"""

from __future__ import annotations

import numpy as np
import pytest

from skinscan._filters import blur
from skinscan.metrics import blobs as B

SHAPE = (160, 200)
SUPER = 8  # discs are drawn on a grid this much finer and area-averaged: edges and centres are exact


def discs(centres, radii, contrast=0.2, *, shape=SHAPE, noise=0.0, seed=0) -> np.ndarray:
    """A flat signal (0) with discs of ``contrast`` at ``centres`` (x, y, px; pixel centres are
    integers) of ``radii`` (px), plus Gaussian noise of SD ``noise``."""
    h, w = shape
    yy, xx = (np.mgrid[:h * SUPER, :w * SUPER] + 0.5) / SUPER - 0.5
    fine = np.zeros((h * SUPER, w * SUPER), np.float32)
    for (cx, cy), r in zip(centres, radii):
        fine[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] += contrast
    img = fine.reshape(h, SUPER, w, SUPER).mean(axis=(1, 3))
    if noise:
        img = img + np.random.default_rng(seed).normal(0, noise, shape)
    return img.astype(np.float32)


def responses(signal, sigmas, laplacian="3x3"):
    return np.stack([B.scale_response(blur(signal, s), s, laplacian=laplacian) for s in sigmas])


SIGMAS = np.geomspace(1.0, 12.0, 15)  # 1.19x steps
PEAK = 8 * 0.2 / np.e  # the response at the centre of a disc of contrast 0.2, at its best scale


@pytest.mark.parametrize("laplacian", ["3x3", "fourth_order"])
def test_the_response_peaks_at_the_disc_scale_with_its_contrast(laplacian):
    r = 7.0
    stack = responses(discs([(100, 80)], [r], contrast=0.2), SIGMAS, laplacian)
    at_centre = stack[:, 80, 100]
    best = int(np.argmax(at_centre))
    assert SIGMAS[best] == pytest.approx(r / np.sqrt(2), rel=0.1)
    assert at_centre[best] == pytest.approx(PEAK, rel=0.04)


def test_the_noise_floor_is_k_robust_sds_of_the_response_or_the_physical_contrast():
    noise = np.random.default_rng(1).normal(0, 0.01, SHAPE).astype(np.float32)
    everywhere = np.arange(noise.size)
    assert B.noise_floor(noise, everywhere, k_sigma=5) == pytest.approx(0.05, rel=0.03)
    assert B.noise_floor(noise, everywhere, k_sigma=5, min_contrast=0.2) == 0.2
    assert B.noise_floor(noise, everywhere[:0], k_sigma=5) == np.inf  # no skin: nothing is over noise


def test_candidates_are_over_the_threshold_on_the_mask_and_optionally_peaks():
    stack = responses(discs([(60, 80), (140, 80)], [5, 5]), [5 / np.sqrt(2)])
    mask = np.ones(SHAPE, bool)
    mask[:, 100:] = False  # the second disc is off the skin
    ys, xs = B.candidates(stack[0], mask, 0.05)
    assert ys.size > 1 and np.all(stack[0][ys, xs] > 0.05) and np.all(xs < 100)
    ys, xs = B.candidates(stack[0], mask, 0.05, peaks_only=True)
    assert (ys.tolist(), xs.tolist()) == ([80], [60])


def test_each_disc_is_one_maximum_in_scale_space_at_its_centre_and_scale():
    centres, radii = [(50, 50), (130, 90)], [3.0, 8.0]
    stack = responses(discs(centres, radii), SIGMAS)
    scale, y, x = np.nonzero(stack > 0.01)
    keep = B.scale_space_maxima(stack, scale, y, x)
    found = sorted(zip(x[keep].tolist(), y[keep].tolist(), SIGMAS[scale[keep]]))
    assert [(fx, fy) for fx, fy, _ in found] == centres
    for (_, _, s), r in zip(found, radii):
        assert s == pytest.approx(r / np.sqrt(2), rel=0.1)


def _shape_ok(signal, x, y, sigma, **tests):
    smooth = blur(signal, sigma)
    ys, xs = np.array([y]), np.array([x])
    got = B.sample_points(smooth, B.scale_response(smooth, sigma), ys, xs, sigma, ring=True)
    return bool(B.shape_test(got["nb"], got["ring"], **tests)[0])


def test_the_shape_test_keeps_round_pits_and_drops_lines_and_the_edges_of_shadows():
    s = 5 / np.sqrt(2)
    assert _shape_ok(discs([(100, 80)], [5]), 100, 80, s, max_elongation=2.0, ring_min=6)
    line = np.zeros(SHAPE, np.float32)
    line[78:83, 20:180] = 0.2  # a fine line 5 px wide: a ridge, not a pit
    assert not _shape_ok(line, 100, 80, s, max_elongation=2.0)
    assert _shape_ok(discs([(100, 80)], [5]), 100, 80, s, max_elongation=np.inf)  # any elongation: a dip both ways
    shadow = discs([(100, 80)], [5])
    shadow[:, 100:] += 0.3  # the disc sits on the edge of a shadow: the shadow's side is darker still
    assert _shape_ok(shadow, 100, 80, s, max_elongation=2.0)
    assert not _shape_ok(shadow, 100, 80, s, max_elongation=2.0, ring_min=6)


def test_the_scale_is_refined_between_the_sampled_scales():
    coarse = np.geomspace(1.0, 12.0, 7)  # 1.51x steps
    for r in (4.0, 5.5, 7.0):
        stack = responses(discs([(100, 80)], [r]), coarse)
        i = int(np.argmax(stack[:, 80, 100]))
        sigma = B.refine_scale(stack, np.array([i]), np.array([80]), np.array([100]), coarse)[0]
        assert abs(np.log(sigma / (r / np.sqrt(2)))) < abs(np.log(coarse[i] / (r / np.sqrt(2)))) + 1e-9
        assert sigma == pytest.approx(r / np.sqrt(2), rel=0.06)


@pytest.mark.parametrize("exact", [False, True])
def test_a_blob_whose_support_leaves_the_skin_or_the_image_is_dropped(exact):
    mask = np.ones(SHAPE, bool)
    mask[:, 120:] = False
    x = np.array([100.0, 100.0, 60.0, 5.0])
    y = np.array([80.0, 80.0, 80.0, 80.0])
    radius = np.array([15.0, 25.0, 25.0, 8.0])  # reaches 115, 125 (off the skin), 85, -3 (off the image)
    assert B.support_on_mask(mask, x, y, radius, exact=exact).tolist() == [True, False, True, False]


def test_of_two_blobs_nearer_than_their_size_the_stronger_is_kept():
    x, y = np.array([50.0, 54.0, 120.0]), np.array([50.0, 50.0, 50.0])
    keep = B.strongest_nearby(x, y, np.array([5.0, 3.0, 5.0]), np.array([0.1, 0.3, 0.05]))
    assert keep.tolist() == [False, True, True]


SCAR_LIKE = {"laplacian": "fourth_order", "subpixel": True, "ring_min": 6, "merge_sigmas": 1.0}


@pytest.mark.parametrize("options", [{}, SCAR_LIKE], ids=["pixel", "subpixel"])
def test_drawn_discs_are_found_at_their_place_and_size(options):
    centres = [(40.3, 40.0), (100.0, 60.6), (150.4, 110.7)]
    radii = [3.0, 5.0, 8.0]
    signal = discs(centres, radii, contrast=0.2, noise=0.01)
    found = B.detect_dark_blobs(signal, np.ones(SHAPE, bool), sigmas_px=SIGMAS, k_sigma=5.0, max_elongation=2.0,
                                **options)
    assert len(found["x"]) == 3
    order = np.argsort(found["x"])
    tol = 0.25 if options else 0.5  # the pixel detector places a blob at its pixel
    for i, (cx, cy), r in zip(order, centres, radii):
        assert abs(found["x"][i] - cx) <= tol and abs(found["y"][i] - cy) <= tol
        assert 2 * np.sqrt(2) * found["sigma"][i] == pytest.approx(2 * r, rel=0.1)
        assert found["response"][i] == pytest.approx(PEAK, rel=0.1)


def test_blobs_under_the_smallest_scale_go_before_the_merge():
    """A small, stronger dip on the edge of a larger blob: merged, only the dip is left; dropped by
    its size first (as the scars drop dips under 1 mm, the pores' size), the larger blob is found."""
    signal = discs([(100.0, 80.0)], [8.0], contrast=0.2, noise=0.01) + discs([(108.0, 80.0)], [2.0], contrast=0.6)
    kw = {"sigmas_px": SIGMAS, "k_sigma": 5.0, "max_elongation": 2.0, **SCAR_LIKE}
    merged = B.detect_dark_blobs(signal, np.ones(SHAPE, bool), **kw)
    assert len(merged["x"]) == 1 and 2 * np.sqrt(2) * merged["sigma"][0] == pytest.approx(4.0, rel=0.15)
    found = B.detect_dark_blobs(signal, np.ones(SHAPE, bool), min_sigma_px=4.0, **kw)
    assert len(found["x"]) == 1 and 2 * np.sqrt(2) * found["sigma"][0] == pytest.approx(16.0, rel=0.1)
    assert abs(found["x"][0] - 100.0) < 3 and abs(found["y"][0] - 80.0) < 0.5


@pytest.mark.parametrize("options", [{}, SCAR_LIKE], ids=["pixel", "subpixel"])
def test_noise_alone_gives_no_blobs(options):
    noise = discs([], [], noise=0.01, seed=3)
    found = B.detect_dark_blobs(noise, np.ones(SHAPE, bool), sigmas_px=SIGMAS, k_sigma=5.0, **options)
    assert len(found["x"]) == 0


def test_a_line_gives_no_blobs():
    line = discs([], [], noise=0.005)
    line[78:83, 20:180] += 0.2
    found = B.detect_dark_blobs(line, np.ones(SHAPE, bool), sigmas_px=SIGMAS, k_sigma=5.0, max_elongation=2.0)
    assert len(found["x"]) == 0


def test_blob_statistics_per_region_in_physical_units():
    blobs = {"x": np.array([10.0, 60.0]), "y": np.array([10.0, 10.0]), "sigma": np.array([2.0, 2.0]) / np.sqrt(2),
             "response": np.array([0.1, 0.2])}
    left = np.zeros((50, 100), bool)
    left[:, :50] = True
    stats = B.blobs_per_region(blobs, {"left": left}, mm_per_px=0.1)["left"]
    assert stats["count"] == 1
    assert stats["density_per_cm2"] == pytest.approx(1 / 0.25)  # 50 x 50 px of 0.1 mm: 0.25 cm^2
    assert stats["diameter_mm"] == pytest.approx(0.4)  # 2 sqrt 2 sigma = 4 px
    assert stats["area_pct"] == pytest.approx(100 * np.pi * 0.2 ** 2 / 25)
    covered = B.blob_mask(blobs, (50, 100))
    yy, xx = np.mgrid[:50, :100]
    near = np.minimum(np.hypot(xx - 10, yy - 10), np.hypot(xx - 60, yy - 10))
    assert covered[near <= 1.5].all() and not covered[near > 2.5].any()  # discs of radius 2 px
