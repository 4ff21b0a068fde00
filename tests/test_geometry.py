import cv2
import numpy as np
import pytest

from skinscan.errors import CalibrationError
from skinscan.geometry import IPD_MM, estimate_scale


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
        estimate_scale(bad)
