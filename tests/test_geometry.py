import cv2
import numpy as np
import pytest

from pathlib import Path

from skinscan.errors import CalibrationError
from skinscan.geometry import EYE_CORNERS_MM, EYES_CLOSED_BLINK, IPD_MM, estimate_scale
from skinscan.io import load_photo

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"


@pytest.mark.parametrize("factor", [0.5, 0.7, 1.0, 1.4, 2.0])
def test_mm_per_px_scales_with_resolution(landmarker, astronaut_big, factor):
    base = estimate_scale(landmarker.detect(astronaut_big)).mm_per_px
    img = np.ascontiguousarray(cv2.resize(astronaut_big, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
    s = estimate_scale(landmarker.detect(img))
    # Physical size is unchanged, so mm/px must scale by 1/factor, within 5%.
    assert s.mm_per_px * factor == pytest.approx(base, rel=0.05)


def test_scale_is_cross_checked_against_ipd(landmarker, astronaut_big):
    s = estimate_scale(landmarker.detect(astronaut_big))
    assert 0.85 < s.ipd_agreement < 1.15
    assert s.ipd_mm == pytest.approx(s.ipd_agreement * IPD_MM)
    assert s.iris_asymmetry < 0.1
    assert s.px_per_mm == pytest.approx(1 / s.mm_per_px)


def test_implausible_iris_raises(landmarker, astronaut_big):
    f = landmarker.detect(astronaut_big)
    pts = f.points.copy()
    c = pts[468]
    pts[469:473] = c + (pts[469:473] - c) * 3  # an iris three times too large for the eye spacing
    bad = type(f)(pts, f.z, f.yaw_deg, f.pitch_deg, f.roll_deg, f.matrix, f.blendshapes, 1, f.image_shape)
    pts2 = pts.copy()
    pts2[474:478] = pts2[473] + (pts2[474:478] - pts2[473]) * 3
    bad = type(f)(pts2, f.z, f.yaw_deg, f.pitch_deg, f.roll_deg, f.matrix, f.blendshapes, 1, f.image_shape)
    with pytest.raises(CalibrationError, match="interpupillary"):
        estimate_scale(bad, source="iris")
    s = estimate_scale(bad)  # left to choose, the eye corners set the scale, and say why
    assert s.source == "eye_corners" and "iris is implausible" in s.reason
    assert s.mm_per_px == pytest.approx(estimate_scale(f).mm_per_px, rel=0.05)


def test_closed_eyes_take_the_scale_from_the_eye_corners(landmarker, astronaut_big):
    f = landmarker.detect(astronaut_big)
    closed = type(f)(f.points, f.z, f.yaw_deg, f.pitch_deg, f.roll_deg, f.matrix,
                     {**f.blendshapes, "eyeBlinkLeft": 0.7, "eyeBlinkRight": 0.66}, 1, f.image_shape)
    s = estimate_scale(closed)
    assert s.source == "eye_corners" and "eyes closed" in s.reason and s.uncertainty_pct == pytest.approx(3.9, abs=0.1)
    corners_px = np.linalg.norm(f.points[33] - f.points[263]) / np.cos(np.radians(f.yaw_deg))
    assert s.mm_per_px == pytest.approx(EYE_CORNERS_MM / corners_px)
    assert estimate_scale(f).source == "iris" and max(f.blendshapes["eyeBlinkLeft"], f.blendshapes["eyeBlinkRight"]) < \
        EYES_CLOSED_BLINK


def test_the_eye_corner_scale_agrees_with_the_iris_on_open_eyes(landmarker):
    """On every photo of the sample series (eyes open) the scale forced onto the eye corners is within
    5% of the iris scale: the closed-eye path measures the same millimetres."""
    ratios = []
    for path in sorted(SAMPLES.glob("*/*.jpg")):
        face = landmarker.detect(load_photo(path).rgb)
        ratios.append(estimate_scale(face, source="eye_corners").mm_per_px / estimate_scale(face, source="iris").mm_per_px)
    assert len(ratios) == 12
    assert np.max(np.abs(np.array(ratios) - 1)) < 0.05, ratios
