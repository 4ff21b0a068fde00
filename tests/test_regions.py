"""Region masks on the real landmarker's astronaut, on the canonical mesh, and the skin-colour mask on synthetic skin."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from conftest import similarity_matrix
from skinscan import regions as R
from skinscan.model import canonical_mesh

IRIS_MM = 11.7
NAMED = R.REGION_NAMES[1:]
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def iris_mm_per_px(points: np.ndarray) -> float:
    d = [np.linalg.norm(points[i] - points[j]) for i, j in ((469, 471), (470, 472), (474, 476), (475, 477))]
    return IRIS_MM / float(np.mean(d))


def up_axis(points: np.ndarray) -> np.ndarray:
    v = points[10] - points[152]
    return v / np.linalg.norm(v)


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def filled(points: np.ndarray, ids, shape) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(points[list(ids)]).astype(np.int32)], 1)
    return m.astype(bool)


@pytest.fixture(scope="module")
def astro(landmarker, astronaut_big):
    """The 3x astronaut, its landmarks and its iris scale (one detection for the module)."""
    face = landmarker.detect(astronaut_big)
    return astronaut_big, face, iris_mm_per_px(face.points)


@pytest.fixture(scope="module")
def geom(astro):
    rgb, face, mmpp = astro
    return R.region_masks(face, mm_per_px=mmpp)


@pytest.fixture(scope="module")
def skin(astro):
    rgb, face, mmpp = astro
    return R.region_masks(face, mm_per_px=mmpp, rgb=rgb)


# ------------------------------------------------------------------ polygon definitions

def test_polygon_constants_are_valid_mesh_ids():
    assert set(R.REGION_POLYGONS) == set(NAMED) == set(R.PRECEDENCE)
    for ids in itertools.chain(R.REGION_POLYGONS.values(), R.EXCLUSION_POLYGONS.values()):
        assert all(0 <= i < 468 for i in ids) and len(set(ids)) == len(ids)
    assert set(R.FOREHEAD_TOP) <= set(R.FOREHEAD)
    assert set(R.REGION_COLORS) == set(R.REGION_NAMES)


def test_left_polygons_mirror_the_right_ones():
    v = canonical_mesh().vertices
    mirrored = v * [-1, 1, 1]
    # The canonical mesh is exactly symmetric: each vertex's mirror image is another vertex.
    d = np.linalg.norm(v[None] - mirrored[:, None], axis=2)
    mirror = d.argmin(axis=1)
    assert d.min(axis=1).max() < 1e-4
    for right, left in [(R.CHEEK_RIGHT, R.CHEEK_LEFT), (R.PERIORBITAL_RIGHT, R.PERIORBITAL_LEFT),
                        (R.EXCLUSION_POLYGONS["eye_right"], R.EXCLUSION_POLYGONS["eye_left"]),
                        (R.EXCLUSION_POLYGONS["brow_right"], R.EXCLUSION_POLYGONS["brow_left"])]:
        assert tuple(mirror[list(right)]) == tuple(left)
    for ids in (R.NOSE, R.PERIORAL, R.CHIN, R.FOREHEAD, R.EXCLUSION_POLYGONS["lips"],
                R.EXCLUSION_POLYGONS["nostrils"]):
        assert set(mirror[list(ids)]) == set(ids)
    for i, w in R.FOREHEAD_TOP.items():
        assert R.FOREHEAD_TOP[int(mirror[i])] == w


# ------------------------------------------------------------------ the astronaut

def test_scale_from_iris_is_plausible(astro):
    # 3x the astronaut's ~0.7 px/mm: about 2 px/mm.
    assert 0.4 < astro[2] < 0.6


def test_every_region_has_a_plausible_area(astro, geom, skin):
    mmpp = astro[2]
    expected_mm2 = {"face": (10000, 25000), "forehead": (2500, 7000), "cheek_left": (800, 3000),
                    "cheek_right": (800, 3000), "nose": (500, 2000), "chin": (700, 2500),
                    "periorbital_left": (500, 2000), "periorbital_right": (500, 2000), "perioral": (800, 2500)}
    for name, (lo, hi) in expected_mm2.items():
        assert geom[name].shape == (1536, 1536) and geom[name].dtype == bool
        assert lo < geom[name].sum() * mmpp**2 < hi, name
        # The skin mask removes hair, glare and shadow, never the bulk of a region (except the
        # forehead, which is half covered by the astronaut's fringe).
        kept = skin[name].sum() / geom[name].sum()
        assert (0.4 if name == "forehead" else 0.85) < kept <= 1.0, name


def test_named_regions_are_disjoint_and_face_is_their_union(geom, skin):
    for masks in (geom, skin):
        for a, b in itertools.combinations(NAMED, 2):
            assert not (masks[a] & masks[b]).any(), (a, b)
        union = np.logical_or.reduce([masks[n] for n in NAMED])
        assert np.array_equal(union, masks["face"])
        for n in NAMED:
            assert not (masks[n] & ~geom[n]).any()  # the skin mask only removes pixels


def test_regions_lie_inside_the_face_oval_except_the_forehead_extension(astro, geom):
    rgb, face, mmpp = astro
    p = face.points
    oval = filled(p, FACE_OVAL, geom["face"].shape)
    r = int(round(2.0 / mmpp))
    oval = cv2.dilate(oval.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)).view(bool)
    flat = R.region_masks(face, mm_per_px=mmpp, forehead_extension_mm=0.0)
    for name in NAMED:
        assert not (flat[name] & ~oval).any(), name
        if name != "forehead":
            assert np.array_equal(flat[name], geom[name]), name
    # Forehead pixels outside the oval are only the extension: none lies below the lowest
    # point of the mesh's top edge (the temples, 21 and 251), measured along the face's vertical.
    up = up_axis(p)
    ys, xs = np.nonzero(geom["forehead"] & ~oval)
    assert xs.size > 0
    height_mm = ((np.stack([xs, ys], 1) - p[10]) @ up) * mmpp
    temples_mm = ((p[[21, 251]] - p[10]) @ up).min() * mmpp
    assert height_mm.min() > temples_mm - 1.0
    # Its top reaches the requested 15 mm above landmark 10 along the face's own vertical.
    ys, xs = np.nonzero(geom["forehead"])
    top_mm = (((np.stack([xs, ys], 1) - p[10]) @ up) * mmpp).max()
    assert top_mm == pytest.approx(15.0, abs=1.0)


def test_forehead_extension_follows_the_keyword(astro):
    rgb, face, mmpp = astro
    up = up_axis(face.points)
    tops = []
    for ext in (0.0, 8.0, 20.0):
        m = R.region_masks(face, mm_per_px=mmpp, forehead_extension_mm=ext)["forehead"]
        ys, xs = np.nonzero(m)
        tops.append((((np.stack([xs, ys], 1) - face.points[10]) @ up) * mmpp).max())
    assert tops == pytest.approx([0.0, 8.0, 20.0], abs=1.0)


def test_left_right_symmetry_on_a_frontal_face(astro, geom):
    rgb, face, mmpp = astro
    assert abs(face.yaw_deg) < 10
    assert 0.7 < geom["cheek_left"].sum() / geom["cheek_right"].sum() < 1.4
    assert 0.7 < geom["periorbital_left"].sum() / geom["periorbital_right"].sum() < 1.4
    x = {n: centroid(geom[n])[0] for n in NAMED}
    # Unmirrored photo: the subject's left is the image right.
    assert x["cheek_left"] > x["nose"] > x["cheek_right"]
    assert x["periorbital_left"] > x["nose"] > x["periorbital_right"]
    y = {n: centroid(geom[n])[1] for n in NAMED}
    assert y["forehead"] < y["periorbital_left"] < y["nose"] < y["perioral"] < y["chin"]
    assert y["periorbital_right"] < y["cheek_right"]


def test_eyes_brows_lips_and_nostrils_are_excluded_with_a_margin(astro, geom):
    rgb, face, mmpp = astro
    p = face.points
    # Pupils (iris centres), lid margins, brows, lips, nostril openings.
    for i in (468, 473, 159, 145, 386, 374, 105, 66, 334, 296, 13, 14, 0, 17, 61, 291, 20, 60, 250, 290):
        x, y = np.round(p[i]).astype(int)
        assert not geom["face"][y, x], i
    # No region pixel within 1 mm (less a pixel of rasterisation) of an eye or the lips.
    features = np.zeros(geom["face"].shape, np.uint8)
    for name in ("eye_right", "eye_left", "lips"):
        features |= filled(p, R.EXCLUSION_POLYGONS[name], features.shape).view(np.uint8)
    dist_px = cv2.distanceTransform(1 - features, cv2.DIST_L2, 5)
    assert dist_px[geom["face"]].min() * mmpp > 1.0 - 1.5 * mmpp
    # A wider margin keeps regions further away.
    wide = R.region_masks(face, mm_per_px=mmpp, exclusion_margin_mm=3.0)
    assert dist_px[wide["face"]].min() * mmpp > 3.0 - 1.5 * mmpp
    assert wide["face"].sum() < geom["face"].sum()


def test_skin_mask_removes_injected_hair_and_glare_from_regions(astro, geom):
    rgb, face, mmpp = astro
    p = face.points
    img = rgb.copy()
    stroke = np.zeros(rgb.shape[:2], np.uint8)
    c = np.round(p[50]).astype(int)  # right cheek
    cv2.line(stroke, tuple(c - [25, 10]), tuple(c + [25, 10]), 1, 2)
    blob = np.zeros_like(stroke)
    cl = np.round(p[280]).astype(int)  # left cheek
    cv2.circle(blob, tuple(cl), 6, 1, -1)
    img[stroke.view(bool)] = (45, 35, 30)
    img[blob.view(bool)] = (255, 253, 250)
    masks = R.region_masks(face, mm_per_px=mmpp, rgb=img)
    s, b = stroke.view(bool) & geom["cheek_right"], blob.view(bool) & geom["cheek_left"]
    assert s.sum() > 60 and b.sum() > 80
    assert not (masks["cheek_right"] & s).any()
    assert not (masks["cheek_left"] & b).any()
    # Without the skin mask, or without a photo, the regions are the geometric ones.
    assert np.array_equal(R.region_masks(face, mm_per_px=mmpp, rgb=img, apply_skin_mask=False)["cheek_right"],
                          geom["cheek_right"])


def test_regions_follow_roll(landmarker, astro, geom):
    rgb, face, mmpp = astro
    m = similarity_matrix(25, 1.0, (680, 420))
    turned = landmarker.detect(cv2.warpAffine(rgb, m, (1536, 1536), borderMode=cv2.BORDER_REFLECT))
    masks = R.region_masks(turned, mm_per_px=mmpp)
    for name in NAMED:
        assert masks[name].sum() == pytest.approx(geom[name].sum(), rel=0.12), name
    # The forehead grows along the turned face's vertical, not the image's.
    up = up_axis(turned.points)
    assert np.degrees(np.arccos(up @ up_axis(face.points))) == pytest.approx(25, abs=3)
    ys, xs = np.nonzero(masks["forehead"])
    rel = (np.stack([xs, ys], 1) - turned.points[10]) * mmpp
    assert (rel @ up).max() == pytest.approx(15.0, abs=1.5)
    # The cheeks stay on their sides of the nose along the turned face's horizontal.
    across = np.array([-up[1], up[0]])  # image right for an upright face
    proj = {n: centroid(masks[n]) @ across for n in ("cheek_left", "nose", "cheek_right")}
    assert proj["cheek_left"] > proj["nose"] > proj["cheek_right"]


def test_large_photo_masks_scale_with_area(astro, geom):
    rgb, face, mmpp = astro
    s = 2.5  # a 3840 x 3840 (14.7 MP) frame with the face 2.5x larger
    big = R.polygon_masks(face.points * s, (3840, 3840), mm_per_px=mmpp / s)
    for name in ("face", "cheek_left", "nose", "forehead"):
        assert big[name].sum() / s**2 == pytest.approx(geom[name].sum(), rel=0.03), name


def test_face_partly_outside_the_frame_is_clipped(astro, geom):
    rgb, face, mmpp = astro
    shifted = face.points - [face.points[1, 0], 0]  # the nose tip on the left border
    masks = R.polygon_masks(shifted, (1536, 1536), mm_per_px=mmpp)
    assert masks["cheek_right"].sum() == 0
    assert masks["cheek_left"].sum() == pytest.approx(geom["cheek_left"].sum(), rel=0.01)
    off = R.polygon_masks(face.points + 5000, (1536, 1536), mm_per_px=mmpp)
    assert all(m.shape == (1536, 1536) and not m.any() for m in off.values())


def test_bad_inputs_raise_with_a_message(astro):
    rgb, face, mmpp = astro
    with pytest.raises(ValueError, match="mm_per_px"):
        R.region_masks(face, mm_per_px=0.0)
    with pytest.raises(ValueError, match="mm_per_px"):
        R.region_masks(face, mm_per_px=float("nan"))
    with pytest.raises(ValueError, match="landmark points"):
        R.polygon_masks(face.points[:100], (1536, 1536), mm_per_px=mmpp)
    with pytest.raises(ValueError, match="NaN"):
        R.polygon_masks(np.full((478, 2), np.nan), (1536, 1536), mm_per_px=mmpp)
    with pytest.raises(ValueError, match="rgb"):
        R.region_masks(face, mm_per_px=mmpp, rgb=rgb[:100])
    with pytest.raises(ValueError, match="forehead_extension_mm"):
        R.region_masks(face, mm_per_px=mmpp, forehead_extension_mm=-5)
    with pytest.raises(ValueError, match="exclusion_margin_mm"):
        R.region_masks(face, mm_per_px=mmpp, exclusion_margin_mm=float("inf"))
    with pytest.raises(ValueError, match="mask 'nose'"):
        R.draw_regions(rgb, {"nose": np.zeros((10, 10), bool)})


# ------------------------------------------------------------------ the canonical frame

def test_canonical_regions_are_symmetric_and_sized_like_a_face():
    px_per_cm = 60.0
    v = canonical_mesh().vertices[:, :2] * [px_per_cm, -px_per_cm]
    v += [600, 500]  # about 8.5 cm each side of x = 0, room above for the forehead extension
    masks = R.canonical_region_masks((1300, 1200), v, mm_per_px=10 / px_per_cm)
    mm2 = {n: m.sum() * (10 / px_per_cm) ** 2 for n, m in masks.items()}
    for right, left in [("cheek_right", "cheek_left"), ("periorbital_right", "periorbital_left")]:
        assert mm2[left] == pytest.approx(mm2[right], rel=0.01)
        # Mirror images of each other about the vertical through the mesh's x = 0.
        flipped = masks[left][:, 601:][:, ::-1]  # x -> 1200 - x
        r = masks[right][:, 1:600]
        assert (flipped & r).sum() / (flipped | r).sum() > 0.99
    assert 12000 < mm2["face"] < 30000 and 2000 < mm2["cheek_left"] < 5000
    assert mm2["face"] == pytest.approx(sum(mm2[n] for n in NAMED))


# ------------------------------------------------------------------ skin colour on synthetic skin

SKIN_RGB = (205, 152, 128)


def noisy_skin(shape=(200, 200), sigma=6.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.asarray(SKIN_RGB, np.float64) + rng.normal(0, sigma, shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_skin_mask_keeps_clean_noisy_skin():
    for sigma, seed in ((3.0, 1), (6.0, 2), (10.0, 3)):
        img = noisy_skin(sigma=sigma, seed=seed)
        keep = R.skin_mask(img, np.ones(img.shape[:2], bool), mm_per_px=0.1)
        assert keep.mean() > 0.97, sigma


def test_skin_mask_drops_dark_hair_strokes():
    img = noisy_skin()
    hair = np.zeros(img.shape[:2], np.uint8)
    rng = np.random.default_rng(4)
    for _ in range(12):
        x0, y0, x1, y1 = rng.integers(0, 200, 4)
        cv2.line(hair, (int(x0), int(y0)), (int(x1), int(y1)), 1, 2, cv2.LINE_8)
    hair = hair.view(bool)
    img[hair] = (48, 36, 30)
    keep = R.skin_mask(img, np.ones(img.shape[:2], bool), mm_per_px=0.1)
    assert 0.05 < hair.mean() < 0.3
    assert keep[hair].mean() < 0.02
    # The skin between the strokes stays (the 0.1 mm rim at 0.1 mm/px is one pixel).
    rim = cv2.dilate(hair.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    assert keep[~rim].mean() > 0.97


def test_skin_mask_drops_glare_blobs():
    img = noisy_skin()
    glare = np.zeros(img.shape[:2], np.uint8)
    for (x, y, r) in ((50, 50, 8), (140, 60, 5), (90, 150, 10)):
        cv2.circle(glare, (x, y), r, 1, -1)
    glare = glare.view(bool)
    img[glare] = (255, 255, 255)
    # A soft highlight: near-white, unclipped, low chroma.
    soft = np.zeros_like(glare)
    soft[160:175, 20:40] = True
    img[soft] = (244, 238, 234)
    keep = R.skin_mask(img, np.ones(img.shape[:2], bool), mm_per_px=0.1)
    assert keep[glare].mean() == 0.0 and keep[soft].mean() < 0.02
    # 0.3 mm around each blob goes with it (glare halos); skin further away stays.
    far = ~cv2.dilate((glare | soft).view(np.uint8), np.ones((9, 9), np.uint8)).view(bool)
    assert keep[far].mean() > 0.97


@pytest.mark.parametrize("work_px_per_mm", [None, 5.0])
def test_skin_mask_keeps_skin_whose_red_channel_alone_clips(work_px_per_mm):
    # Bright, lit red skin clips its red channel first: it is skin (its colour is filled in by
    # the colour metrics); a highlight clipped in two channels or more is not.
    img = noisy_skin(shape=(400, 400))
    lit = np.zeros(img.shape[:2], bool)
    lit[40:200, 40:200] = True
    img[lit, 0] = 255
    two = np.zeros_like(lit)
    two[260:300, 260:300] = True
    img[two, 0] = 255
    img[two, 1] = 252
    keep = R.skin_mask(img, np.ones(img.shape[:2], bool), mm_per_px=0.05, work_px_per_mm=work_px_per_mm)
    assert keep[lit].mean() > 0.95
    assert keep[two].mean() == 0.0


@pytest.mark.parametrize("sigma", [3.0, 6.0, 10.0])
def test_skin_mask_keeps_redness_and_pigment_spots(sigma):
    img = noisy_skin(sigma=sigma, seed=int(sigma))
    red = np.zeros(img.shape[:2], bool)
    red[20:80, 20:80] = True
    img[red] = np.clip(img[red].astype(int) + (25, -25, -15), 0, 255)  # erythema: a* up ~ +20
    spot = np.zeros_like(red)
    spot[120:140, 120:140] = True
    img[spot] = (np.asarray(img[spot], float) * 0.82).astype(np.uint8)  # a brown spot, L* about -10
    keep = R.skin_mask(img, np.ones(img.shape[:2], bool), mm_per_px=0.1)
    assert keep[red].mean() > 0.95
    assert keep[spot].mean() > 0.95


@pytest.mark.parametrize("hair_rgb,max_kept", [((140, 112, 62), 0.02), ((120, 95, 60), 0.02), ((100, 75, 50), 0.02),
                                               ((170, 140, 90), 0.3)])
def test_skin_mask_drops_a_mass_of_brown_or_blond_hair(hair_rgb, max_kept):
    # A fringe over 30% of the candidate, noisier than the skin; the lightest (L* 60, skin 67)
    # is dark blond, of which colour alone catches most but not all.
    rng = np.random.default_rng(7)
    img = noisy_skin(sigma=5.0, seed=8).astype(np.float64)
    hair = np.zeros(img.shape[:2], bool)
    hair[:60] = True
    img[hair] = np.asarray(hair_rgb, float) + rng.normal(0, 8, (hair.sum(), 3))
    keep = R.skin_mask(np.clip(img, 0, 255).astype(np.uint8), np.ones(hair.shape, bool), mm_per_px=0.1)
    assert keep[hair].mean() < max_kept
    assert keep[~hair].mean() > 0.99


def test_skin_mask_is_relative_to_the_subjects_own_skin():
    # A darker complexion with black hair: the same rules, relative to its own median.
    rng = np.random.default_rng(5)
    img = np.clip(np.asarray((120, 80, 60), float) + rng.normal(0, 4, (150, 150, 3)), 0, 255).astype(np.uint8)
    hair = np.zeros(img.shape[:2], bool)
    hair[40:44, :] = True
    img[hair] = (18, 14, 12)
    keep = R.skin_mask(img, np.ones(img.shape[:2], bool))
    assert keep[~hair].mean() > 0.97 and keep[hair].mean() < 0.02


def test_skin_mask_respects_the_candidate_and_odd_input():
    img = noisy_skin()
    cand = np.zeros(img.shape[:2], bool)
    cand[50:150, 50:150] = True
    keep = R.skin_mask(img, cand)
    assert not keep[~cand].any() and keep[cand].mean() > 0.97
    assert not R.skin_mask(img, np.zeros_like(cand)).any()
    # Float input in [0, 1] gives the same mask as uint8.
    assert np.array_equal(R.skin_mask(img.astype(np.float32) / 255, cand), keep)
    # NaN pixels do not raise and are not skin.
    f = img.astype(np.float64) / 255
    f[60:70, 60:70] = np.nan
    k = R.skin_mask(f, cand)
    assert not k[60:70, 60:70].any() and k[cand].mean() > 0.95
    with pytest.raises(ValueError, match="candidate_mask"):
        R.skin_mask(img, cand[:10])
    with pytest.raises(ValueError, match="RGB"):
        R.skin_mask(img[..., 0], cand)


# ------------------------------------------------------------------ overlay

def test_draw_regions_overlays_colour_inside_regions(astro, geom):
    rgb, face, mmpp = astro
    before = rgb.copy()
    out = R.draw_regions(rgb, geom, alpha=0.4)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(rgb, before)  # the input is untouched
    diff = np.abs(out.astype(int) - rgb.astype(int)).sum(axis=2)
    for name in NAMED:
        assert np.mean(diff[geom[name]] > 10) > 0.9, name
    # Far from the face nothing changes.
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    assert diff[y1 + 60:, :].max() == 0 and diff[:, : x0 - 60].max() == 0
    # The cheek fill moves towards the region's colour.
    m = geom["cheek_right"] & (diff > 0)
    towards = np.abs(out[m].astype(int) - R.REGION_COLORS["cheek_right"]).sum(1) < \
        np.abs(rgb[m].astype(int) - R.REGION_COLORS["cheek_right"]).sum(1)
    assert towards.mean() > 0.95
    # With alpha 0 only the outlines and labels are drawn.
    bare = np.abs(R.draw_regions(rgb, geom, alpha=0.0).astype(int) - rgb).sum(axis=2)
    assert np.mean(bare[geom["cheek_right"]] > 0) < 0.25


def test_no_islands_of_skin_between_the_hairs(landmarker):
    """Specks of skin colour between the hairs above the hairline (and at the jaw's edge) are not skin
    to measure: every 8-connected piece of the face's skin is at least 25 mm2."""
    from pathlib import Path

    from skinscan import analyse_photo
    from skinscan.regions import MIN_ISLAND_MM2

    photo = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut" / "2026-01-05" / "IMG_20260105_100412.jpg"
    a = analyse_photo(photo, landmarker=landmarker, metrics=False)
    for name in ("face", "forehead"):
        n, _, stats, _ = cv2.connectedComponentsWithStats(a.masks[name].view(np.uint8), connectivity=8)
        areas_mm2 = stats[1:, cv2.CC_STAT_AREA] * a.scale.mm_per_px ** 2
        assert areas_mm2.min() >= MIN_ISLAND_MM2, (name, np.sort(areas_mm2)[:5])
    _, _, stats, _ = cv2.connectedComponentsWithStats(a.masks["forehead"].view(np.uint8), connectivity=8)
    assert len(stats) - 1 <= 3  # the forehead is a piece or two, not a spray
