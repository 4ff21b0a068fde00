"""Put photos in one frame: a robust similarity onto a reference photo, and a piecewise-affine warp into the canonical face."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ._filters import shrink, shrink_matrix
from .landmark_ids import FACE_OVAL, N_MESH
from .landmarks import FaceLandmarks
from .model import canonical_mesh

__all__ = [
    "Alignment",
    "CanonicalFrame",
    "fit_similarity",
    "align_to_reference",
    "warp_to_reference",
    "canonical_frame",
    "warp_to_canonical",
    "warp_piecewise",
    "stable_landmarks",
    "rasterise_triangles",
    "triangle_affines",
    "photo_vertices",
]



def stable_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """Ids and weights of the 33 landmarks MediaPipe itself uses for its Procrustes pose fit."""
    m = canonical_mesh()
    return m.procrustes_ids, m.procrustes_weights


def _weighted_umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src to dst, as 2x3."""
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = u @ np.diag(d) @ vt
    var_s = float(w @ (s0 ** 2).sum(axis=1))
    scale = float((sig * d).sum() / var_s)
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def fit_similarity(src: np.ndarray, dst: np.ndarray, *, weights: np.ndarray | None = None,
                   robust: bool = True, n_iter: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Fit a 2-D similarity transform taking ``src`` points to ``dst`` points.

    Weighted Umeyama least squares, made robust by iteratively reweighting with Tukey's biweight
    on the residuals (scale from their median absolute deviation), so that a few badly placed
    landmarks (an occluded cheek, a moved brow) do not pull the fit.

    Parameters
    ----------
    src, dst : ndarray, shape (N, 2)
        Corresponding points, N >= 2.
    weights : ndarray, shape (N,), optional
        Prior weights (default equal).
    robust : bool
        Reweight against outliers.
    n_iter : int
        At most this many reweighting rounds (fewer when the fit converges).

    Returns
    -------
    matrix : ndarray, shape (2, 3)
        Maps src (x, y, 1) to dst.
    inliers : ndarray of bool, shape (N,)
        Points whose final robust weight is above zero.

    References
    ----------
    .. [1] Umeyama S. (1991) Least-squares estimation of transformation parameters between two
       point patterns. IEEE TPAMI 13(4):376–380.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"expected two (N, 2) point arrays with N >= 2, got {src.shape} and {dst.shape}")
    prior = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = prior.copy()
    m = _weighted_umeyama(src, dst, w)
    inliers = np.ones(len(src), dtype=bool)
    if not robust:
        return m, inliers
    for _ in range(n_iter):
        r = np.linalg.norm(src @ m[:, :2].T + m[:, 2] - dst, axis=1)
        sigma = 1.4826 * np.median(r) + 1e-9
        c = 4.685 * max(sigma, 1e-3 * np.ptp(dst, axis=0).max())
        tukey = np.where(r < c, (1 - (r / c) ** 2) ** 2, 0.0)
        if tukey.sum() < 2 or np.count_nonzero(tukey) < 3:
            break
        w = prior * tukey
        m_new = _weighted_umeyama(src, dst, w)
        converged = np.abs(m_new - m).max() < 1e-9
        m = m_new
        if converged:
            break
    inliers = w > 0
    return m, inliers


@dataclass(frozen=True)
class Alignment:
    """A photo's similarity transform onto a reference photo.

    Attributes
    ----------
    matrix : ndarray, shape (2, 3)
        Maps this photo's pixels to the reference photo's pixels.
    scale, rotation_deg : float
        The transform's scale and rotation (counter-clockwise on screen is negative, as image y points down).
    residual_rms_mm, residual_max_mm : float
        Residual distances of the stable landmarks after the fit, in the reference's millimetres:
        what a similarity cannot explain (pose and expression differences, landmark jitter).
    n_inliers : int
        Stable landmarks kept by the robust fit.
    refined : bool
        True when intensity registration refined the landmark fit.
    """

    matrix: np.ndarray
    scale: float
    rotation_deg: float
    residual_rms_mm: float
    residual_max_mm: float
    n_inliers: int
    refined: bool = False


_ECC_REFERENCE: dict = {}


def _ecc_refine(image: np.ndarray, reference: np.ndarray, matrix: np.ndarray, mask: np.ndarray,
                mm_per_px: float, *, work_px_per_mm: float = 3.0) -> np.ndarray | None:
    """Refine a similarity (image -> reference pixels) by intensity registration (ECC) on the face.

    Landmarks jitter by a fraction of a millimetre whatever the resolution (the mesh is fitted on a
    256-pixel face crop), so a pixel-exact overlay needs the image itself. The refinement runs at a
    working resolution of ``work_px_per_mm`` on luminance with a band-pass that removes shading,
    and returns None when ECC does not converge or moves far from the landmark fit.
    """
    f = min(1.0, work_px_per_mm * mm_per_px)

    def prep(im):
        """Band-passed luminance at the working resolution, and the map of full-size pixels into it."""
        g = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) if im.ndim == 3 else im
        size = (max(int(round(g.shape[1] * f)), 1), max(int(round(g.shape[0] * f)), 1))
        # Each image's own map: its size rounds to whole pixels in its own way, and one factor
        # f for both put the far side of the face up to 2 px (0.2 mm) off on a pure shift.
        to_small = shrink_matrix(g.shape, size)
        g = shrink(g, size).astype(np.float32)
        return cv2.GaussianBlur(g, (0, 0), 1.0) - cv2.GaussianBlur(g, (0, 0), 8.0), to_small

    # A batch aligns every photo to the same reference: its preparation is kept (by identity).
    hit = _ECC_REFERENCE.get("ref")
    if hit is not None and hit[0] is reference and hit[1] is mask and hit[2] == f:
        ref_s, s_ref, mask_s = hit[3], hit[4], hit[5]
    else:
        ref_s, s_ref = prep(reference)
        mask_s = cv2.resize(mask.astype(np.uint8), (ref_s.shape[1], ref_s.shape[0]), interpolation=cv2.INTER_NEAREST)
        _ECC_REFERENCE["ref"] = (reference, mask, f, ref_s, s_ref, mask_s)
    img_s, s_img = prep(image)
    m3 = np.vstack([matrix, [0, 0, 1]])
    m_small = (s_ref @ m3 @ np.linalg.inv(s_img))[:2].astype(np.float32)
    # ECC's mask marks the valid pixels of the *input* image: the reference's face mask carried
    # into this photo by the landmark fit.
    mask_in = cv2.warpAffine(mask_s, cv2.invertAffineTransform(m_small), (img_s.shape[1], img_s.shape[0]),
                             flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # ECC's warp maps template (reference) coordinates to input coordinates: start from the inverse.
    warp = cv2.invertAffineTransform(m_small).astype(np.float32)
    # ECC stops when its correlation changes by under 1e-4. On 16 shifted copies of the benchmark
    # photo, 1e-6 ran 4 of them to the 100 iterations (330 ms against 12 ms) and was no closer to
    # the known shift: mean error 0.011 mm against 0.010 mm.
    try:
        _, warp = cv2.findTransformECC(ref_s, img_s, warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-4), mask_in, 3)
    except cv2.error:
        return None
    refined = np.vstack([cv2.invertAffineTransform(warp), [0, 0, 1]])
    full = (np.linalg.inv(s_ref) @ refined @ s_img)[:2]
    # Keep only the similarity part (an affine fit on a grid of face points, projected).
    ys, xs = np.nonzero(mask[:: max(mask.shape[0] // 20, 1), :: max(mask.shape[1] // 20, 1)])
    grid = np.stack([xs * max(mask.shape[1] // 20, 1), ys * max(mask.shape[0] // 20, 1)], 1).astype(np.float64)
    if len(grid) < 3:
        return None
    inv_full = cv2.invertAffineTransform(full)
    src = grid @ inv_full[:, :2].T + inv_full[:, 2]
    sim, _ = fit_similarity(src, grid, robust=False)
    moved_mm = np.linalg.norm(src @ sim[:, :2].T + sim[:, 2] - (src @ matrix[:, :2].T + matrix[:, 2]), axis=1) * mm_per_px
    return sim if np.median(moved_mm) < 3.0 else None


def align_to_reference(face: FaceLandmarks, reference: FaceLandmarks, *, reference_mm_per_px: float,
                       image: np.ndarray | None = None, reference_image: np.ndarray | None = None,
                       reference_mask: np.ndarray | None = None) -> Alignment:
    """Fit the similarity taking ``face``'s photo onto ``reference``'s.

    The fit starts on MediaPipe's 33 stable landmarks (robust Umeyama); when both images are
    given it is refined by intensity registration over ``reference_mask`` (the reference's skin),
    which removes the landmarks' sub-millimetre jitter.

    Parameters
    ----------
    face : FaceLandmarks
        Landmarks of the photo to align, px.
    reference : FaceLandmarks
        Landmarks of the reference photo, px.
    reference_mm_per_px : float
        The reference photo's scale, mm/px (residuals are reported in its millimetres).
    image : ndarray (H, W, 3) or (H, W), optional
        The photo to align; with ``reference_image``, enables the intensity refinement.
    reference_image : ndarray (H', W', 3) or (H', W'), optional
        The reference photo.
    reference_mask : ndarray of bool (H', W'), optional
        Where the refinement compares the images (default: the whole reference photo).

    Returns
    -------
    Alignment
        With the residual of the stable landmarks in the reference's millimetres.
    """
    ids, _ = stable_landmarks()
    m, inliers = fit_similarity(face.points[ids], reference.points[ids])
    refined = False
    if image is not None and reference_image is not None:
        mask = reference_mask if reference_mask is not None else np.ones(reference_image.shape[:2], bool)
        r = _ecc_refine(image, reference_image, m, mask, reference_mm_per_px)
        if r is not None:
            m, refined = r, True
    r = np.linalg.norm(face.points[ids] @ m[:, :2].T + m[:, 2] - reference.points[ids], axis=1)
    r_mm = r * reference_mm_per_px
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    return Alignment(
        matrix=m,
        scale=scale,
        rotation_deg=float(np.degrees(np.arctan2(m[1, 0], m[0, 0]))),
        residual_rms_mm=float(np.sqrt(np.mean(r_mm[inliers] ** 2))),
        residual_max_mm=float(r_mm.max()),
        n_inliers=int(inliers.sum()),
        refined=refined,
    )


def warp_to_reference(rgb: np.ndarray, alignment: Alignment, reference_shape: tuple[int, int], *,
                      interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample a photo into its reference photo's pixel grid.

    Parameters
    ----------
    rgb : ndarray (H, W) or (H, W, C)
        The photo, or any per-pixel map of it.
    alignment : Alignment
        Its fit from :func:`align_to_reference`.
    reference_shape : tuple of int
        Shape of the reference photo; its first two entries (height, width) set the output size, px.
    interpolation : int
        OpenCV interpolation flag (``cv2.INTER_NEAREST`` for masks and labels).

    Returns
    -------
    ndarray
        The photo in the reference's pixels, zero outside it.
    """
    h, w = reference_shape[:2]
    return cv2.warpAffine(rgb, alignment.matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)


@dataclass(frozen=True)
class CanonicalFrame:
    """A fixed, frontal face frame in millimetres that every photo can be warped into.

    The frame is the canonical mesh's (x, y) seen from the front, in mm, at ``px_per_mm``, with an
    outer ring of vertices pushed ``extension_mm`` outwards from the face oval (so the upper
    forehead towards the hairline has a place).

    Attributes
    ----------
    px_per_mm : float
    shape : tuple of int
        (height, width) in pixels.
    vertices : ndarray, shape (468 + 36, 2)
        Vertex positions in frame pixels (mesh vertices, then the outer ring).
    triangles : ndarray, shape (898 + 72, 3)
    triangle_index : ndarray, shape ``shape``, int32
        The triangle covering each pixel, -1 outside the face.
    """

    px_per_mm: float
    extension_mm: float
    shape: tuple[int, int]
    vertices: np.ndarray
    triangles: np.ndarray
    triangle_index: np.ndarray

    @property
    def mm_per_px(self) -> float:
        return 1.0 / self.px_per_mm

    @property
    def mask(self) -> np.ndarray:
        return self.triangle_index >= 0


def _ring_triangles(n_mesh: int) -> np.ndarray:
    """Triangles joining the face oval to an outer ring of as many points (ring point i is vertex
    ``n_mesh + i``): the canonical frame extends the mesh outwards from the oval so that the
    forehead up to the hairline has a place in it."""
    k = len(FACE_OVAL)
    ring = n_mesh + np.arange(k)
    a, b = FACE_OVAL, np.roll(FACE_OVAL, -1)
    ra, rb = ring, np.roll(ring, -1)
    return np.concatenate([np.stack([a, b, rb], 1), np.stack([a, rb, ra], 1)]).astype(np.int32)


def _extend_ring(points: np.ndarray, extension: float | np.ndarray) -> np.ndarray:
    """Points of the outer ring: each face-oval point pushed outwards from the oval's centroid."""
    oval = points[FACE_OVAL]
    c = oval.mean(axis=0)
    d = oval - c
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return oval + d * np.asarray(extension).reshape(-1, 1)


def rasterise_triangles(vertices: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Label image: the index of the triangle covering each pixel, -1 elsewhere.

    One fill per triangle (a loop over mesh faces, not pixels), drawn in order so later
    triangles win on shared edges; 8 bits of sub-pixel precision.

    Parameters
    ----------
    vertices : ndarray, shape (V, 2)
        Vertex (x, y) in pixels of the label image.
    triangles : ndarray of int, shape (T, 3)
        Vertex indices of each triangle.
    shape : (int, int)
        (height, width) of the label image.

    Returns
    -------
    ndarray of int32, shape ``shape``
    """
    index = np.full(shape, -1, dtype=np.int32)
    pts = np.round(vertices[triangles] * 256).astype(np.int32)
    for t in range(len(triangles)):
        cv2.fillConvexPoly(index, pts[t], int(t), lineType=cv2.LINE_8, shift=8)
    return index


@lru_cache(maxsize=8)
def canonical_frame(px_per_mm: float = 4.0, *, extension_mm: float = 18.0, margin_mm: float = 4.0) -> CanonicalFrame:
    """The canonical frame at a given resolution (cached).

    Parameters
    ----------
    px_per_mm : float
        Resolution of the frame (4 px/mm gives about 780 x 880 px).
    extension_mm : float
        How far the outer ring reaches beyond the face oval (the forehead towards the hairline).
    margin_mm : float
        Empty border around the extended face.
    """
    mesh = canonical_mesh()
    xy_mm = mesh.vertices[:, :2] * 10.0  # the canonical mesh is in centimetres
    xy_mm[:, 1] *= -1.0  # image y points down
    ring = _extend_ring(xy_mm, extension_mm)
    allv = np.vstack([xy_mm, ring])
    origin = allv.min(axis=0) - margin_mm
    size = allv.max(axis=0) + margin_mm - origin
    verts = (allv - origin) * px_per_mm
    shape = (int(np.ceil(size[1] * px_per_mm)), int(np.ceil(size[0] * px_per_mm)))
    tris = np.vstack([mesh.triangles, _ring_triangles(N_MESH)])
    index = rasterise_triangles(verts, tris, shape)
    index.setflags(write=False)  # shared by every warp into this frame (and marks it for _covered_pixels)
    return CanonicalFrame(px_per_mm, extension_mm, shape, verts, tris, index)


def triangle_affines(src_v: np.ndarray, dst_v: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps from destination positions to source positions.

    Parameters
    ----------
    src_v, dst_v : ndarray, shape (V, 2)
        Vertex (x, y) in the source and the destination image, pixels.
    triangles : ndarray of int, shape (T, 3)
        Vertex indices of each triangle.

    Returns
    -------
    ndarray, shape (T, 2, 3)
        One 2x3 affine per triangle (zero for a degenerate destination triangle).
    """
    d = np.concatenate([dst_v[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # (T, 3, 3)
    s = src_v[triangles]  # (T, 3, 2)
    # Solve d @ A^T = s for each triangle; degenerate triangles get a least-squares answer.
    det = np.linalg.det(d)
    ok = np.abs(det) > 1e-9
    a = np.zeros((len(triangles), 3, 2))
    a[ok] = np.linalg.solve(d[ok], s[ok])
    return np.transpose(a, (0, 2, 1))


def warp_piecewise(image: np.ndarray, src_vertices: np.ndarray, dst_vertices: np.ndarray, triangles: np.ndarray,
                   dst_shape: tuple[int, int], *, triangle_index: np.ndarray | None = None,
                   interpolation: int = cv2.INTER_LINEAR, border_value=0) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp of ``image`` taking each source triangle onto its destination triangle.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
    src_vertices, dst_vertices : ndarray, shape (V, 2)
        Vertex positions (x, y) in source and destination pixels.
    triangles : ndarray, shape (T, 3)
    dst_shape : tuple of int
        (height, width) of the output.
    triangle_index : ndarray, optional
        Precomputed destination label image (see :class:`CanonicalFrame`).

    Returns
    -------
    warped : ndarray
        The output image, ``border_value`` outside the mesh.
    valid : ndarray of bool, shape ``dst_shape``
        Pixels covered by a triangle that faces the camera in the source (a triangle whose
        orientation flips between destination and source is folded away by head turn).
    """
    src_v = np.asarray(src_vertices, dtype=np.float64)
    dst_v = np.asarray(dst_vertices, dtype=np.float64)
    if triangle_index is None:
        triangle_index = rasterise_triangles(dst_v, triangles, tuple(dst_shape))
    elif triangle_index.shape != tuple(dst_shape):
        raise ValueError(f"triangle_index is {triangle_index.shape}, the output is {tuple(dst_shape)}")
    aff = triangle_affines(src_v, dst_v, triangles)
    # Visibility: a triangle facing the camera keeps the sign of its area from dst to src.
    def _signed_area(v):
        p = v[triangles]
        a, b = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    facing = np.sign(_signed_area(src_v)) == np.sign(_signed_area(dst_v))
    flat, xs, ys, t = _covered_pixels(triangle_index)
    # Per covered pixel, its triangle's affine map: one gather per coefficient (a gather of the
    # (T, 2, 3) matrices per pixel cost three times as much). In float64, then rounded once to
    # remap's float32: the same maps as a per-pixel matrix product.
    c = [np.take(aff[:, i, j], t) for i in (0, 1) for j in (0, 1, 2)]
    mx = (c[0] * xs + c[1] * ys + c[2]).astype(np.float32)
    my = (c[3] * xs + c[4] * ys + c[5]).astype(np.float32)
    map_x = np.full(dst_shape, -1.0, dtype=np.float32)
    map_y = np.full(dst_shape, -1.0, dtype=np.float32)
    map_x.reshape(-1)[flat] = mx
    map_y.reshape(-1)[flat] = my
    warped = cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    valid = np.zeros(dst_shape, dtype=bool)
    h, w = image.shape[:2]
    valid.reshape(-1)[flat] = np.take(facing, t) & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, valid


_COVERED: dict = {}


def _covered_pixels(triangle_index: np.ndarray):
    """(flat index, x, y, triangle) of the pixels a label image covers.

    Kept for the few canonical frames in use, whose label images are read-only; a one-off label
    image (a head turned by the phantom) is not kept: at phone resolution each would hold some
    70 MB, and nine were kept.
    """
    hit = _COVERED.get(id(triangle_index))
    if hit is not None and hit[0] is triangle_index:
        return hit[1]
    flat = np.flatnonzero(triangle_index >= 0)
    ys, xs = np.divmod(flat, triangle_index.shape[1])
    out = (flat, xs.astype(np.float64), ys.astype(np.float64), triangle_index.reshape(-1)[flat])
    if triangle_index.flags.writeable:
        return out
    if len(_COVERED) > 8:
        _COVERED.clear()
    _COVERED[id(triangle_index)] = (triangle_index, out)
    return out


def photo_vertices(face: FaceLandmarks, frame: CanonicalFrame, *, mm_per_px: float) -> np.ndarray:
    """The frame's vertices located in a photo: the 468 mesh landmarks plus the outer ring.

    Parameters
    ----------
    face : FaceLandmarks
        The photo's landmarks, px.
    frame : CanonicalFrame
        The frame whose ``extension_mm`` sets how far the outer ring reaches.
    mm_per_px : float
        The photo's scale, mm/px.

    Returns
    -------
    ndarray, shape (468 + 36, 2)
        Vertex (x, y) in photo pixels, in the order of ``frame.vertices``.
    """
    pts = face.points[:N_MESH]
    ring = _extend_ring(pts, frame.extension_mm / mm_per_px)
    return np.vstack([pts, ring])


def warp_to_canonical(image: np.ndarray, face: FaceLandmarks, *, mm_per_px: float,
                      frame: CanonicalFrame | None = None,
                      interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Warp a photo (or a map or mask of it) into the canonical face frame.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        The photo, or any per-pixel map of it (a metric map, a region mask as uint8).
    face : FaceLandmarks
        Its landmarks.
    mm_per_px : float
        The photo's scale (sets how far the outer ring reaches in the photo).
    frame : CanonicalFrame, optional
        Default ``canonical_frame()`` at 4 px/mm.

    Returns
    -------
    warped : ndarray, shape ``frame.shape`` (+ channels)
    valid : ndarray of bool, shape ``frame.shape``
    """
    frame = frame or canonical_frame()
    src = photo_vertices(face, frame, mm_per_px=mm_per_px)
    # A photo much finer than the frame is first reduced to about the frame's resolution: the
    # remap samples one pixel per output pixel, so this is its anti-aliasing (and it is cheaper).
    f = 1.5 * frame.px_per_mm * mm_per_px
    if f < 0.75 and interpolation != cv2.INTER_NEAREST:
        h, w = image.shape[:2]
        size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
        to_small = shrink_matrix(image.shape, size)
        image = shrink(image, size)
        src = src @ to_small[:2, :2].T + to_small[:2, 2]
    return warp_piecewise(image, src, frame.vertices, frame.triangles, frame.shape,
                          triangle_index=frame.triangle_index, interpolation=interpolation)


def canonical_fit_residual_mm(face: FaceLandmarks, *, mm_per_px: float) -> float:
    """RMS distance (mm) of the 468 landmarks from the canonical face after a similarity fit.

    The piecewise warp is exact at the vertices; this says how far the face's shape in the photo
    (pose, expression, build) departs from the canonical one.

    Parameters
    ----------
    face : FaceLandmarks
        The photo's landmarks, px.
    mm_per_px : float
        The photo's scale, mm/px.

    Returns
    -------
    float
        RMS residual, mm.
    """
    frame = canonical_frame()
    src = face.points[:N_MESH] * mm_per_px
    dst = frame.vertices[:N_MESH] / frame.px_per_mm
    m, _ = fit_similarity(src, dst, robust=False)
    r = np.linalg.norm(src @ m[:, :2].T + m[:, 2] - dst, axis=1)
    return float(np.sqrt(np.mean(r ** 2)))
