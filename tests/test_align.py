from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import similarity_matrix
from skinscan.align import (align_to_reference, canonical_frame, fit_similarity, warp_piecewise,
                            warp_to_canonical, warp_to_reference)
from skinscan.geometry import estimate_scale


def test_fit_similarity_exact_and_robust_to_outliers():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (33, 2))
    m_true = similarity_matrix(17.0, 1.3, (250, 250), (12, -7))
    dst = src @ m_true[:, :2].T + m_true[:, 2]
    m, inl = fit_similarity(src, dst)
    assert np.abs(m - m_true).max() < 1e-6 and inl.all()
    dst_bad = dst.copy()
    dst_bad[:4] += rng.uniform(40, 80, (4, 2))  # four badly placed landmarks
    m_rob, inl = fit_similarity(src, dst_bad)
    m_ls, _ = fit_similarity(src, dst_bad, robust=False)
    err = lambda mm: np.abs(src @ mm[:, :2].T + mm[:, 2] - dst).max()  # noqa: E731
    assert err(m_rob) < 0.01 < 1.0 < err(m_ls)
    assert not inl[:4].any() and inl[4:].all()


@pytest.mark.parametrize("angle,scale,shift", [(10, 1.0, (0, 0)), (-8, 0.8, (40, -25)), (5, 1.25, (-20, 30))])
def test_alignment_recovers_known_similarity_within_half_a_mm(landmarker, astronaut_big, angle, scale, shift):
    ref = landmarker.detect(astronaut_big)
    mm_per_px = estimate_scale(ref).mm_per_px
    m = similarity_matrix(angle, scale, (700, 520), shift)
    moved = cv2.warpAffine(astronaut_big, m, (1536, 1536), borderMode=cv2.BORDER_REFLECT)
    f = landmarker.detect(moved)
    x0, y0, x1, y1 = (int(v) for v in ref.bbox)
    face_box = np.zeros(astronaut_big.shape[:2], bool)
    face_box[y0:y1, x0:x1] = True
    truth = cv2.invertAffineTransform(m)
    p = f.points[:468]

    def rms_mm(al):
        err = np.linalg.norm((p @ al.matrix[:, :2].T + al.matrix[:, 2]) - (p @ truth[:, :2].T + truth[:, 2]), axis=1)
        return np.sqrt(np.mean(err ** 2)) * mm_per_px

    coarse = align_to_reference(f, ref, reference_mm_per_px=mm_per_px)
    al = align_to_reference(f, ref, reference_mm_per_px=mm_per_px, image=moved, reference_image=astronaut_big,
                            reference_mask=face_box)
    # Landmarks alone: within a millimetre (MediaPipe's mesh jitters by a fraction of a mm);
    # refined on the image: within 0.5 mm (in practice a few hundredths).
    assert rms_mm(coarse) < 1.0 and not coarse.refined
    assert al.refined and rms_mm(al) < 0.5
    assert al.scale == pytest.approx(1 / scale, rel=0.005)
    assert al.residual_rms_mm < 1.0 and al.n_inliers >= 25
    back = warp_to_reference(moved, al, astronaut_big.shape)
    assert back.shape == astronaut_big.shape


def test_piecewise_warp_reproduces_a_global_affine():
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (200, 240)).astype(np.float32), (0, 0), 3)
    grid = np.stack(np.meshgrid(np.linspace(30, 210, 6), np.linspace(30, 170, 5)), -1).reshape(-1, 2)
    from scipy.spatial import Delaunay

    tri = Delaunay(grid).simplices.astype(np.int32)
    a = np.array([[0.9, -0.1, 12.0], [0.12, 1.05, -6.0]])
    dst = grid @ a[:, :2].T + a[:, 2]
    warped, valid = warp_piecewise(img, grid, dst, tri, (220, 260))
    ref = cv2.warpAffine(img, a, (260, 220), flags=cv2.INTER_LINEAR)
    inner = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inner.sum() > 20000
    assert np.abs(warped[inner] - ref[inner]).max() < 0.05 * np.ptp(img)


def test_canonical_frame_is_in_millimetres():
    fr = canonical_frame(4.0)
    v = fr.vertices[:468] / fr.px_per_mm
    # Face width (ear to ear) about 155 mm; eyes outer corners about 89 mm apart.
    assert np.ptp(v[:, 0]) == pytest.approx(154.9, abs=1.0)
    assert np.linalg.norm(v[33] - v[263]) == pytest.approx(88.9, abs=1.0)
    assert fr.mask.mean() > 0.6 and fr.triangle_index.max() == len(fr.triangles) - 1


def test_only_the_canonical_frames_covered_pixels_are_kept():
    import skinscan.align as A

    A._COVERED.clear()
    fr = canonical_frame(4.0)
    img = np.random.default_rng(0).integers(0, 255, (*fr.shape, 3), dtype=np.uint8)
    # A one-off label image (the phantom's turned head makes one per photo) is not kept: nine of
    # them at phone resolution held a gigabyte in each protocol worker.
    once = fr.triangle_index.copy()
    out, _ = warp_piecewise(img, fr.vertices, fr.vertices, fr.triangles, fr.shape, triangle_index=once)
    assert len(A._COVERED) == 0
    # The frame's own (read-only, shared) label image is kept, and the warp is the same.
    same, _ = warp_piecewise(img, fr.vertices, fr.vertices, fr.triangles, fr.shape, triangle_index=fr.triangle_index)
    assert len(A._COVERED) == 1 and not fr.triangle_index.flags.writeable
    np.testing.assert_array_equal(same, out)


def test_canonical_warp_puts_the_same_skin_point_at_the_same_place(landmarker, astronaut_big):
    img = astronaut_big.copy()
    ref = landmarker.detect(img)
    # A small green marker on the left cheek, between landmarks 425 and 411.
    c = tuple(int(v) for v in (ref.points[425] * 0.5 + ref.points[411] * 0.5))
    cv2.circle(img, c, 4, (0, 255, 0), -1)
    positions = []
    for angle, scale, shift in [(0, 1.0, (0, 0)), (9, 0.85, (30, 10)), (-6, 1.2, (-40, -20))]:
        m = similarity_matrix(angle, scale, (700, 520), shift)
        moved = cv2.warpAffine(img, m, (1536, 1536), borderMode=cv2.BORDER_REFLECT)
        f = landmarker.detect(moved)
        can, valid = warp_to_canonical(moved, f, mm_per_px=estimate_scale(f).mm_per_px)
        green = (can[..., 1].astype(int) - can[..., 0] > 120) & valid
        ys, xs = np.nonzero(green)
        assert len(xs) > 5
        positions.append((xs.mean(), ys.mean()))
    positions = np.array(positions) / canonical_frame().px_per_mm
    spread = np.linalg.norm(positions - positions[0], axis=1)
    assert spread.max() < 1.5  # mm in the canonical frame



SAMPLE = sorted((Path(__file__).resolve().parents[1] / "sample_images" / "astronaut").glob("*/*.jpg"))[0]


@pytest.mark.parametrize("fracs", [(0.46, 0.54), (0.54, 0.46)])
def test_refinement_recovers_a_shift_between_crops_of_any_size(landmarker, fracs):
    # Two crops of one 12 px/mm photo, a known shift apart, whose sizes round in opposite
    # directions at the refinement's working resolution (3 px/mm). With one nominal factor for
    # both, the far side of the face came out 0.3-0.5 mm off and the scale 0.15-0.2% off.
    photo = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    mm_per_px = estimate_scale(landmarker.detect(photo)).mm_per_px
    f = 3.0 * mm_per_px
    assert f < 0.5  # the refinement works on a reduced copy

    def rounding(frac, n):  # the largest size below n whose reduction rounds at frac of a pixel
        while abs((n * f) % 1.0 - frac) > 0.04:
            n -= 1
        return n

    h, w = photo.shape[:2]
    dx, dy = 17, 9
    ref_img = np.ascontiguousarray(photo[:rounding(fracs[0], h - 60), :rounding(fracs[0], w - 60)])
    img = np.ascontiguousarray(photo[dy:dy + rounding(fracs[1], h - 80), dx:dx + rounding(fracs[1], w - 80)])
    ref, face = landmarker.detect(ref_img), landmarker.detect(img)
    mask = np.zeros(ref_img.shape[:2], bool)
    x0, y0, x1, y1 = (int(v) for v in ref.bbox)
    mask[y0:y1, x0:x1] = True
    al = align_to_reference(face, ref, reference_mm_per_px=mm_per_px, image=img, reference_image=ref_img,
                            reference_mask=mask)
    assert al.refined
    p = face.points[:468]
    err_mm = np.linalg.norm(p @ al.matrix[:, :2].T + al.matrix[:, 2] - (p + (dx, dy)), axis=1) * mm_per_px
    assert err_mm.max() < 0.1, err_mm.max()
    assert al.scale == pytest.approx(1.0, abs=0.001)


# (height, width) -> (width, height): two halvings dropping a column, then a resize (the ECC's 3 px/mm
# copy of a 12.4 px/mm crop); one halving; one halving dropping both; a resize alone.
@pytest.mark.parametrize("shape,size", [((2474, 2117), (518, 605)), ((2481, 2133), (1040, 1200)),
                                        ((1001, 777), (333, 251)), ((640, 480), (400, 300))])
def test_shrink_matrix_maps_a_blob_to_where_the_reduction_puts_it(shape, size):
    from skinscan._filters import shrink, shrink_matrix

    m = shrink_matrix(shape, size)
    for yx in [(0.2, 0.3), (0.5, 0.5), (0.9, 0.85)]:
        y, x = yx[0] * shape[0] + 0.3, yx[1] * shape[1] + 0.7
        gy, gx = np.exp(-0.5 * ((np.arange(shape[0]) - y) / 12.0) ** 2), np.exp(-0.5 * ((np.arange(shape[1]) - x) / 12.0) ** 2)
        small = shrink(np.outer(gy, gx).astype(np.float32), size)  # a round blob centred on (x, y)
        ys, xs = np.indices(small.shape)
        cx, cy = (xs * small).sum() / small.sum(), (ys * small).sum() / small.sum()
        ex, ey = m[:2, :2] @ (x, y) + m[:2, 2]
        # Within 0.01 px; the size ratio w' / w is 0.2-0.4 px off where a halving dropped a column.
        assert (cx, cy) == pytest.approx((ex, ey), abs=0.01)
