import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import similarity_matrix
from skinscan.errors import NoFaceError
from skinscan.landmarks import FaceLandmarks, pose_from_matrix


def test_finds_one_face_with_478_landmarks(landmarker, astronaut):
    f = landmarker.detect(astronaut)
    assert isinstance(f, FaceLandmarks)
    assert f.points.shape == (478, 2) and f.n_faces == 1 and f.image_shape == (512, 512)
    x0, y0, x1, y1 = f.bbox
    # The astronaut's face sits in the upper middle of the photo.
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 260
    assert len(f.blendshapes) == 52 and all(0.0 <= v <= 1.0 for v in f.blendshapes.values())
    # Subject's right iris (468) is on the image left of the left iris (473).
    assert f.points[468, 0] < f.points[473, 0]


@pytest.mark.parametrize("angle,scale,shift", [(12, 1.0, (0, 0)), (-15, 0.8, (25, -10)), (0, 1.25, (-30, 20))])
def test_landmarks_follow_known_transforms(landmarker, astronaut_big, angle, scale, shift):
    ref = landmarker.detect(astronaut_big)
    m = similarity_matrix(angle, scale, (700, 520), shift)
    moved = cv2.warpAffine(astronaut_big, m, (1536, 1536), borderMode=cv2.BORDER_REFLECT)
    f = landmarker.detect(moved)
    expected = ref.points @ m[:, :2].T + m[:, 2]
    eye_dist = np.linalg.norm(expected[33] - expected[263])
    err = np.linalg.norm(f.points - expected, axis=1)
    # Median landmark error below 2% of the eye-corner distance (about 1.5 mm).
    assert np.median(err) < 0.02 * eye_dist
    # Roll follows the image rotation: a counter-clockwise turn on screen is a negative roll.
    assert f.roll_deg - ref.roll_deg == pytest.approx(-angle, abs=2.0)


def test_mirror_flips_yaw_and_roll(landmarker, astronaut):
    f = landmarker.detect(astronaut)
    g = landmarker.detect(np.ascontiguousarray(astronaut[:, ::-1]))
    assert g.roll_deg == pytest.approx(-f.roll_deg, abs=1.5)
    assert g.yaw_deg == pytest.approx(-f.yaw_deg, abs=2.5)


def test_pose_from_matrix_decomposes_a_known_rotation():
    def rx(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    def ry(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def rz(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    m = np.eye(4)
    m[:3, :3] = rz(np.radians(7)) @ ry(np.radians(-12)) @ rx(np.radians(20))
    yaw, pitch, roll = pose_from_matrix(m)
    assert (yaw, pitch, roll) == pytest.approx((-12, 20, -7), abs=1e-6)


def test_no_face_is_a_typed_error(landmarker, astronaut):
    # The lower right of the photo holds the spacesuit and flag, no face.
    with pytest.raises(NoFaceError):
        landmarker.detect(np.ascontiguousarray(astronaut[300:, 300:]))
    with pytest.raises(NoFaceError):
        landmarker.detect(np.full((300, 300, 3), 128, np.uint8))


def test_two_people_analyses_the_larger_face_and_counts_two(landmarker, astronaut):
    # BlazeFace short-range finds faces that fill a fair part of the frame, as in a selfie of two.
    face = astronaut[20:300, 120:340]
    big = cv2.resize(face, None, fx=1.4, fy=1.4, interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(face, None, fx=1.1, fy=1.1, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((480, 760, 3), 200, np.uint8)
    canvas[10:10 + big.shape[0], 10:10 + big.shape[1]] = big
    canvas[60:60 + small.shape[0], 750 - small.shape[1]:750] = small
    f = landmarker.detect(canvas)
    assert f.n_faces == 2
    assert f.bbox[2] < 10 + big.shape[1]  # the chosen face lies in the big copy
    # and its width is the big copy's: 1.4 / 1.1 times the small one's (about 91 px at 1x).
    assert f.bbox[2] - f.bbox[0] == pytest.approx(1.4 * 91, rel=0.12)


def test_rejects_non_rgb_input(landmarker):
    with pytest.raises(TypeError):
        landmarker.detect(np.zeros((100, 100), np.uint8))
    with pytest.raises(TypeError):
        landmarker.detect(np.zeros((100, 100, 3), np.float32))


def test_non_contiguous_view_gives_the_same_landmarks(landmarker, astronaut_big):
    view = astronaut_big[::2, ::2]  # strided view
    assert not view.flags.c_contiguous
    a = landmarker.detect(view)
    b = landmarker.detect(np.ascontiguousarray(view))
    assert np.abs(a.points - b.points).max() < 1e-6


def test_a_script_that_never_closes_its_landmarker_exits_cleanly(tmp_path):
    # Left to MediaPipe's __del__ at interpreter teardown, an open landmarker printed
    # "Exception ignored in FaceLandmarker.__del__" and a traceback after the script's output.
    script = ("import numpy as np\nfrom skinscan import FaceLandmarker\n"
              "lm = FaceLandmarker()\nkept = [FaceLandmarker(), FaceLandmarker()]\nkept[1].close()\n"
              "try:\n    lm.detect(np.full((64, 64, 3), 128, np.uint8))\nexcept Exception as e:\n"
              "    assert type(e).__name__ == 'NoFaceError', e\n"
              "print('done')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr


def test_a_process_forked_from_one_with_an_open_landmarker_exits(tmp_path):
    # The child inherits the exit callback and the landmarker but not MediaPipe's pool thread:
    # closing its copy at exit would wait for that thread for ever.
    script = ("import multiprocessing as mp\nfrom skinscan import FaceLandmarker\n"
              "lm = FaceLandmarker()\n"
              "def work():\n    return None\n"
              "if __name__ == '__main__':\n"
              "    p = mp.get_context('fork').Process(target=work)\n    p.start()\n    p.join(60)\n"
              "    print('child', p.exitcode)\n")
    (tmp_path / "fork_child.py").write_text(script)
    run = subprocess.run([sys.executable, "fork_child.py"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "child 0", (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
