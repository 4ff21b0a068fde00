"""The whole pipeline on the generated sample series, against its ground truth."""

import json
from pathlib import Path

import numpy as np
import pytest

from skinscan import REGION_NAMES, analyse_photo
from skinscan.errors import NoFaceError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"
TRUTH = json.loads((SAMPLES / "ground_truth.json").read_text())
PHOTOS = [(s["session"], p) for s in TRUTH["sessions"] for p in s["photos"]]


def _matrix(p):
    return np.array(p["matrix_master_to_photo"])


@pytest.fixture(scope="module")
def analysed(landmarker):
    """Sessions 0 and 4, both photos each; the first photo is the reference."""
    chosen = [p for s, p in PHOTOS if s in (0, 4)]
    ref = analyse_photo(SAMPLES / chosen[0]["file"], landmarker=landmarker)
    out = [ref] + [analyse_photo(SAMPLES / p["file"], landmarker=landmarker, reference=ref) for p in chosen[1:]]
    return chosen, out


def test_scale_matches_the_known_zoom(analysed):
    chosen, res = analysed
    for p, a in zip(chosen, res):
        expected = TRUTH["px_per_mm"] * np.sqrt(abs(np.linalg.det(_matrix(p)[:, :2])))
        assert a.photo_px_per_mm == pytest.approx(expected, rel=0.05), p["file"]
        assert a.scale.px_per_mm == pytest.approx(a.photo_px_per_mm, rel=1e-9)  # under 20 px/mm: not reduced
        assert a.capture_time is not None and a.capture_time.strftime("%Y:%m:%d %H:%M:%S") == p["datetime_original"]


def test_alignment_to_the_reference_within_half_a_mm(analysed):
    chosen, res = analysed
    ref_m = np.vstack([_matrix(chosen[0]), [0, 0, 1]])
    for p, a in zip(chosen[1:], res[1:]):
        # Truth: photo -> master -> reference photo; compare in the reference photo's crop frame.
        m = np.vstack([_matrix(p), [0, 0, 1]])
        truth = ref_m @ np.linalg.inv(m)
        pts = a.to_photo(a.face.points[:468])  # full-photo pixels
        ref_photo = pts @ truth[:2, :2].T + truth[:2, 2]
        to_ref = res[0].photo_to_crop
        exp = ref_photo @ to_ref[:, :2].T + to_ref[:, 2]
        got = a.face.points[:468] @ a.alignment.matrix[:, :2].T + a.alignment.matrix[:, 2]
        rms_mm = np.sqrt(np.mean(np.sum((got - exp) ** 2, axis=1))) * res[0].scale.mm_per_px
        assert rms_mm < 0.5, (p["file"], rms_mm)
        assert a.alignment.refined


def test_regions_have_the_same_physical_area_in_every_photo(analysed):
    _, res = analysed
    # The brightest photo loses its blown-out skin to the skin mask: compare the others.
    usable = [a for a, p in zip(res, analysed[0]) if p["exposure_ev"] < 0.15]
    assert len(usable) >= 3
    for name in REGION_NAMES:
        areas = np.array([a.region_area_mm2[name] for a in usable])
        assert areas.min() > 300, name
        # Her blond fringe hangs over the forehead band above the mesh; colour alone tells it from
        # skin only in part, so the forehead (and the face it belongs to) varies more.
        limit = 2.0 if name in ("forehead", "face") else 1.2
        assert areas.max() / areas.min() < limit, (name, areas)
    # The named regions are disjoint and make up the face.
    a = res[0]
    total = sum(int(a.masks[k].sum()) for k in REGION_NAMES if k != "face")
    assert total == int(a.masks["face"].sum())


def test_light_is_normalised_on_the_sclera_and_quality_is_reported(analysed):
    chosen, res = analysed
    for p, a in zip(chosen, res):
        assert a.light_source == "sclera"
        # The gains undo the photo's exposure and white balance (up to the reference's own).
        applied = np.array(p["wb_gains"]) * 2 ** p["exposure_ev"]
        rel = a.gains * applied / (res[0].gains * np.array(chosen[0]["wb_gains"]) * 2 ** chosen[0]["exposure_ev"])
        np.testing.assert_allclose(rel, 1.0, atol=0.07)
        names = {q.name for q in a.quality}
        assert {"resolution", "sharpness", "clipped_highlights", "head_yaw", "expression"} <= names
        assert a.excluded_by == []  # no blocking check fails; she smiles in every photo (a warning)
        # The white-balance mismatch is the true one between the two photos' casts.
        wb, wb0 = np.array(p["wb_gains"]), np.array(chosen[0]["wb_gains"])
        true_pct = 100 * np.abs(np.log(wb[[0, 2]] / wb[1]) - np.log(wb0[[0, 2]] / wb0[1])).max()
        measured = next(q for q in a.quality if q.name == "white_balance_mismatch").value if a is not res[0] else 0.0
        assert measured == pytest.approx(true_pct, abs=1.0)
        clipped = next(q for q in a.quality if q.name == "clipped_highlights").value
        # The brightest photo (+0.19 EV) blows out part of her cheeks: more clipped skin than the other.
        if p["exposure_ev"] > 0.15:
            assert clipped > 3.0
    assert {"pose_difference", "white_balance_mismatch"} <= {q.name for q in res[1].quality}


def test_metrics_see_the_injected_improvement(analysed):
    """Session 0 has more of every concern than session 4; its mean over two photos must say so."""
    _, res = analysed
    s0, s4 = res[:2], res[2:]

    def mean(rs, region, metric):
        return np.mean([r.metrics[region][metric] for r in rs])

    for region, metric in [("cheek_left", "pore_density"), ("cheek_right", "scar_density"),
                           ("face", "a_star"), ("periorbital_left", "wrinkle_density"),
                           ("cheek_left", "spot_density"), ("face", "roughness")]:
        assert mean(s0, region, metric) > mean(s4, region, metric), (region, metric)


def test_no_face_is_a_typed_error(landmarker):
    with pytest.raises(NoFaceError):
        analyse_photo(np.full((400, 300, 3), 180, np.uint8), landmarker=landmarker)


def test_full_resolution_changes_the_metrics_grids_not_the_skin_mask(landmarker):
    # Skin colour is classified on 0.2 mm pixels in both modes: classified on the photo's own
    # pixels, noise scattered the face's shaded rim in and out of the mask and moved the colour
    # means by up to 3% between the two, which the working resolutions were blamed for.
    path = SAMPLES / PHOTOS[0][1]["file"]
    work = analyse_photo(path, landmarker=landmarker, families=["redness"])
    full = analyse_photo(path, landmarker=landmarker, families=["redness"], full_resolution=True)
    for name in work.masks:
        assert np.array_equal(work.masks[name], full.masks[name]), name
    # The redness itself is then read on 4 px/mm against full resolution, within 2%.
    for key in ("a_star", "erythema_index"):
        assert full.metrics["face"][key] == pytest.approx(work.metrics["face"][key], rel=0.02), key
