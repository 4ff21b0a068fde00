import cv2
import numpy as np
import pytest

from skinscan.validation import phantom
from skinscan.geometry import estimate_scale
from skinscan.light import choose_light, light_reference, sclera_mask
from skinscan.quality import QualityThresholds, assess_quality, sharpness


@pytest.fixture(scope="module")
def face_and_skin(landmarker, astronaut_big):
    f = landmarker.detect(astronaut_big)
    x0, y0, x1, y1 = (int(v) for v in f.bbox)
    skin = np.zeros(astronaut_big.shape[:2], bool)
    skin[int(y0 + 0.55 * (y1 - y0)):int(y0 + 0.7 * (y1 - y0)), x0 + 20:x1 - 20] = True
    return f, skin


def test_sclera_lies_in_the_eyes_and_is_bright(landmarker, astronaut_big, face_and_skin):
    f, _ = face_and_skin
    m = sclera_mask(astronaut_big, f)
    assert m.sum() > 100
    ys, xs = np.nonzero(m)
    eye_y = f.points[[468, 473], 1].mean()
    assert abs(ys.mean() - eye_y) < 0.3 * np.linalg.norm(f.points[468] - f.points[473])
    # Sclera is brighter than the face skin around it.
    assert astronaut_big[m].mean() > astronaut_big[face_and_skin[1]].mean()


@pytest.mark.parametrize("gains", [(1.08, 1.0, 1.0), (1.0, 1.0, 0.92), (0.95, 1.0, 1.06)])
def test_white_balance_change_is_measured_on_the_sclera(landmarker, astronaut_big, face_and_skin, gains):
    f, skin = face_and_skin
    ref = light_reference(astronaut_big, f)
    img = phantom.white_balance(astronaut_big, gains)
    g = landmarker.detect(img)
    checks = {q.name: q for q in assess_quality(img, g, estimate_scale(g), skin, reference_face=f,
                                                reference_light=ref)}
    expected = 100 * max(abs(np.log(gains[0] / gains[1])), abs(np.log(gains[2] / gains[1])))
    assert checks["white_balance_mismatch"].value == pytest.approx(expected, abs=1.5)
    assert checks["white_balance_mismatch"].passed == (checks["white_balance_mismatch"].value <= 6.0)
    # The gains that normalise the light undo the cast to within 2%.
    skin_colour = np.array([0.35, 0.22, 0.17])
    g0 = choose_light(ref, skin_colour).gains
    c1 = choose_light(light_reference(img, g), skin_colour)
    g1, src = c1.gains, c1.source
    assert src == "sclera"
    np.testing.assert_allclose((g1 / g0) * np.array(gains), 1.0, atol=0.02)


def test_exposure_mismatch_in_ev(landmarker, astronaut_big, face_and_skin):
    f, skin = face_and_skin
    ref = light_reference(astronaut_big, f)
    img = phantom.exposure(astronaut_big, -0.5)
    g = landmarker.detect(img)
    q = {c.name: c for c in assess_quality(img, g, estimate_scale(g), skin, reference_face=f, reference_light=ref)}
    assert q["exposure_mismatch"].value == pytest.approx(0.5, abs=0.1)


def test_sharpness_falls_with_blur(face_and_skin, astronaut_big):
    _, skin = face_and_skin
    gray = cv2.cvtColor(astronaut_big, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    values = [sharpness(cv2.GaussianBlur(gray, (0, 0), s) if s else gray, skin, mm_per_px=0.49) for s in (0, 1, 2, 4)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] < 0.5 * values[0]


def test_checks_report_pose_clipping_resolution_and_faces(landmarker, astronaut_big, face_and_skin):
    f, skin = face_and_skin
    img = astronaut_big.copy()
    img[skin] = 255  # a blown-out band of skin
    checks = {q.name: q for q in assess_quality(img, f, estimate_scale(f), skin)}
    assert checks["clipped_highlights"].value == pytest.approx(100.0) and not checks["clipped_highlights"].passed
    assert not checks["resolution"].passed and checks["resolution"].value == pytest.approx(2.0, rel=0.15)
    assert checks["face_count"].passed and checks["head_yaw"].passed
    assert "pose_difference" not in checks  # needs a reference
    strict = QualityThresholds(max_abs_pitch_deg=1.0)
    assert not {q.name: q for q in assess_quality(img, f, estimate_scale(f), skin, thresholds=strict)}["head_pitch"].passed
