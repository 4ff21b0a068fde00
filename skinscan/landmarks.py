"""The MediaPipe Face Landmarker, wrapped: one reusable instance, landmarks in pixels, pose and expression."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import weakref
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import NoFaceError, SkinscanError
from .landmark_ids import LEFT_IRIS, N_LANDMARKS, RIGHT_IRIS
from .model import verify_model

__all__ = [
    "FaceLandmarks",
    "FaceLandmarker",
    "shared_landmarker",
    "detect_landmarks",
    "pose_from_matrix",
    "N_LANDMARKS",
    "RIGHT_IRIS",
    "LEFT_IRIS",
]

#: Photos are searched for faces at this longest side at most (see :meth:`FaceLandmarker.detect`).
DETECT_MAX_SIDE = 1920
#: MediaPipe's mesh model sees the face at 256 x 256 px.
_MESH_INPUT_PX = 256


@dataclass(frozen=True)
class FaceLandmarks:
    """One face as found by the landmarker.

    Attributes
    ----------
    points : ndarray, shape (478, 2), float64
        Landmark (x, y) in pixels of the photo given to the landmarker (468 mesh + 10 iris).
    z : ndarray, shape (478,), float64
        Relative depth in pixels (MediaPipe's normalised z times the image width); smaller is nearer.
    yaw_deg, pitch_deg, roll_deg : float
        Head pose from the facial transformation matrix, in degrees. Yaw > 0: the face turns
        towards the image right; pitch > 0: chin up; roll > 0: the face rotates clockwise in the image.
    matrix : ndarray, shape (4, 4)
        MediaPipe's facial transformation matrix (canonical mesh, cm, to camera space).
    blendshapes : dict of str to float
        The 52 expression scores in [0, 1].
    n_faces : int
        How many faces the photo holds; these landmarks are of the largest.
    image_shape : tuple of int
        (height, width) of the photo the landmarks refer to.
    """

    points: np.ndarray
    z: np.ndarray
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    matrix: np.ndarray
    blendshapes: dict[str, float] = field(default_factory=dict)
    n_faces: int = 1
    image_shape: tuple[int, int] = (0, 0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the 468 mesh points, in pixels."""
        p = self.points[:468]
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())

    def blendshape_vector(self) -> np.ndarray:
        """Blendshape scores as a vector in name order (for expression differences)."""
        return np.array([self.blendshapes[k] for k in sorted(self.blendshapes)], dtype=np.float64)

    def transformed(self, affine: np.ndarray, image_shape: tuple[int, int] | None = None) -> "FaceLandmarks":
        """The same landmarks after a 2x3 affine map of the photo (z scaled by its scale).

        Parameters
        ----------
        affine : ndarray, shape (2, 3)
            Maps the photo's pixels (x, y, 1) to the new image's pixels.
        image_shape : tuple of int, optional
            (height, width) of the new image, px (default: unchanged).

        Returns
        -------
        FaceLandmarks
            Pose, matrix and blendshapes are copied unchanged.
        """
        a = np.asarray(affine, dtype=np.float64)
        pts = self.points @ a[:, :2].T + a[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
        return FaceLandmarks(pts, self.z * scale, self.yaw_deg, self.pitch_deg, self.roll_deg, self.matrix,
                             dict(self.blendshapes), self.n_faces, image_shape or self.image_shape)


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from MediaPipe's facial transformation matrix.

    The rotation is decomposed as R = Rz(roll) Ry(yaw) Rx(pitch) in MediaPipe's camera frame
    (x right, y up, z towards the viewer); signs are then set so that yaw > 0 turns the face to
    the image right, pitch > 0 lifts the chin and roll > 0 turns the face clockwise in the image.

    Parameters
    ----------
    matrix : ndarray, shape (4, 4) or (3, 3)
        The facial transformation matrix; its upper-left 3 x 3 block is used, with its uniform
        scale divided out.

    Returns
    -------
    yaw, pitch, roll : float
        Degrees.
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.cbrt(max(np.linalg.det(r), 1e-12))
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(-roll)


#: Where libcurl is sent while a landmarker is open: a SOCKS proxy on a Unix socket that cannot exist
#: (``/dev/null`` is no folder), so the connection fails on this machine before any name is looked up.
OFFLINE_PROXY = "socks5h://localhost/dev/null/skinscan-offline"
_PROXY_VARS = ("https_proxy", "no_proxy", "NO_PROXY")
_offline_lock = threading.Lock()
_offline_users = 0
_saved_proxy: dict[str, str | None] = {}


def _go_offline() -> None:
    """Keep MediaPipe's built-in usage logger off the network while a landmarker is open.

    The ``mediapipe`` wheel links a usage-statistics uploader into its native library: every
    landmarker posts counts and timings (no image data) to https://play.googleapis.com/log from a
    native thread, through a libcurl of its own, when it is closed and every minute or so while it
    detects. No option, flag or variable of MediaPipe turns it off, and Python's sockets never see
    it. libcurl reads the standard proxy variables at each request, so while any landmarker of
    this process is open ``https_proxy`` points at :data:`OFFLINE_PROXY` and ``no_proxy`` is
    unset; the user's values come back when the last one is closed (its upload is attempted, and
    fails locally, before ``close`` returns). Child processes started meanwhile inherit the setting.
    """
    global _offline_users
    with _offline_lock:
        if _offline_users == 0:
            if os.environ.get("https_proxy") != OFFLINE_PROXY or not _saved_proxy:  # else: forked while offline
                _saved_proxy.clear()
                _saved_proxy.update({k: os.environ.get(k) for k in _PROXY_VARS})
            os.environ["https_proxy"] = OFFLINE_PROXY
            os.environ.pop("no_proxy", None)
            os.environ.pop("NO_PROXY", None)
        _offline_users += 1


def _back_online() -> None:
    """One landmarker fewer; the last restores the proxy variables (see :func:`_go_offline`)."""
    global _offline_users
    with _offline_lock:
        _offline_users = max(_offline_users - 1, 0)
        if _offline_users == 0 and _saved_proxy:
            for k, v in _saved_proxy.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            _saved_proxy.clear()


def _forget_offline_users() -> None:
    global _offline_users
    _offline_users = 0  # a forked child holds none of its parent's landmarkers (nor their threads)


os.register_at_fork(after_in_child=_forget_offline_users)

#: Set (to anything) to see MediaPipe's own start-up log (``skinscan --debug`` sets it).
DEBUG_ENV_VAR = "SKINSCAN_DEBUG"


@contextlib.contextmanager
def native_log_silenced():
    """Silence what native code writes to the process's standard error (file descriptor 2) meanwhile.

    MediaPipe's C++ logs a few lines when a landmarker starts and on its first detection ("Logging
    before InitGoogle()", XNNPACK, the feedback manager), once per process: in every worker of a
    batch and in notebook cells. No option, flag or environment variable of MediaPipe turns them
    off, so skinscan points descriptor 2 at the null device around those two calls only (Python's
    own ``sys.stderr`` writes from other threads in that instant are lost too). With
    ``$SKINSCAN_DEBUG`` set, nothing is silenced.
    """
    if os.environ.get(DEBUG_ENV_VAR):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to silence (an embedded interpreter)
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: This process's landmarkers, closed when it exits. A forked child inherits the set (and the exit
#: callback) but not MediaPipe's pool thread: closing a copy there would wait for that thread for
#: ever, so the child starts with the set empty.
_OPEN: "weakref.WeakSet[FaceLandmarker]" = weakref.WeakSet()
os.register_at_fork(after_in_child=_OPEN.clear)
_exit_hook = False


def _close_at_exit(landmarker: "FaceLandmarker") -> None:
    """Close ``landmarker`` (if still open) when the interpreter starts to exit.

    MediaPipe's landmarker closes itself through a thread pool. Left open, it is closed by its
    ``__del__`` during teardown, after that pool has shut down, and a script that never called
    :meth:`FaceLandmarker.close` ended with "Exception ignored in FaceLandmarker.__del__" and a
    traceback. Closing it with the exit callbacks of threads (they run before the pools shut
    down: last registered, first called) avoids that; ``atexit`` would be too late.
    """
    global _exit_hook
    _OPEN.add(landmarker)
    register = getattr(threading, "_register_atexit", None)  # CPython 3.9+
    if register is None or _exit_hook:
        return
    with contextlib.suppress(RuntimeError):  # raised once the interpreter is shutting down
        register(_close_open_landmarkers)
        _exit_hook = True


def _close_open_landmarkers() -> None:
    for lm in list(_OPEN):
        with contextlib.suppress(Exception):  # one failure must not skip the other exit callbacks
            lm.close()


class FaceLandmarker:
    """A MediaPipe Face Landmarker created once and reused.

    Use it as a context manager, or call :meth:`close`. MediaPipe's C library is not
    thread-safe, so calls to :meth:`detect` are serialised by a lock; for parallel work use one
    instance per process (see :func:`shared_landmarker`).

    Parameters
    ----------
    model_path : str or Path, optional
        The ``face_landmarker.task`` bundle; default ``$SKINSCAN_MODEL`` then the shipped copy.
    max_faces : int
        How many faces to look for; the largest is analysed and the count recorded.
    min_confidence : float
        Face detection and presence confidence.

    Examples
    --------
    >>> from skinscan import FaceLandmarker, load_photo
    >>> with FaceLandmarker() as lm:
    ...     face = lm.detect(load_photo("sample_images/astronaut/2026-01-05/IMG_20260105_100412.jpg").rgb)
    ...     face.points.shape
    (478, 2)
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, max_faces: int = 4,
                 min_confidence: float = 0.5):
        path = verify_model(model_path)
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=int(max_faces),
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        _go_offline()
        try:
            with native_log_silenced():
                self._impl = vision.FaceLandmarker.create_from_options(opts)
        except Exception as exc:  # MediaPipe raises RuntimeError/ValueError with C++ text
            from .errors import ModelError

            _back_online()
            raise ModelError(f"MediaPipe could not load the model: {exc}", path) from None
        self._lock = threading.Lock()
        self._quiet_first = True  # the first detection logs too (the feedback manager)
        self.model_path = path
        _close_at_exit(self)

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release MediaPipe's resources; :meth:`detect` then raises. Safe to call more than once."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the landmarker existed
            return
        with lock:  # not while another thread is detecting
            impl, self._impl = self._impl, None
        if impl is not None:
            try:
                impl.close()
            finally:
                _back_online()

    def detect(self, rgb: np.ndarray, *, max_side: int | None = DETECT_MAX_SIDE) -> FaceLandmarks:
        """Find the largest face in an RGB uint8 image.

        Parameters
        ----------
        rgb : ndarray, shape (H, W, 3), uint8
        max_side : int or None
            Photos larger than this (longest side, px) are searched at this size and the landmarks
            scaled back: MediaPipe fits the mesh on a 256-pixel face crop whatever the photo's size,
            so a 12 MP photo only costs time. A face smaller than that crop in the reduced photo is
            searched again at full resolution around where it was found. None: never reduce.

        Returns
        -------
        FaceLandmarks
            Of the largest face, in ``rgb``'s pixels.

        Raises
        ------
        NoFaceError
            When no face is found.
        """
        if max_side is None or max(rgb.shape[:2]) <= max_side:
            return self._detect(rgb)
        h, w = rgb.shape[:2]
        f = max_side / max(h, w)
        small = cv2.resize(rgb, (max(round(w * f), 1), max(round(h * f), 1)), interpolation=cv2.INTER_LINEAR)
        face = self._detect(small)
        s = np.array([w / small.shape[1], h / small.shape[0]])
        face = dataclasses.replace(face, points=face.points * s, z=face.z * s[0], image_shape=(h, w))
        x0, y0, x1, y1 = face.bbox
        if (x1 - x0) * f >= _MESH_INPUT_PX:
            return face
        # A small face: look again in a full-resolution window around it.
        m = max(x1 - x0, y1 - y0)
        bx0, by0 = max(int(x0 - m), 0), max(int(y0 - m), 0)
        bx1, by1 = min(int(x1 + m) + 1, w), min(int(y1 + m) + 1, h)
        try:
            near = self._detect(rgb[by0:by1, bx0:bx1])
        except NoFaceError:
            return face
        near = dataclasses.replace(near, n_faces=max(near.n_faces, face.n_faces))
        return near.transformed(np.array([[1.0, 0, bx0], [0, 1.0, by0]]), image_shape=(h, w))

    def _detect(self, rgb: np.ndarray) -> FaceLandmarks:
        import mediapipe as mp

        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
            raise TypeError(f"expected an RGB uint8 array of shape (H, W, 3), got {getattr(rgb, 'dtype', type(rgb))} "
                            f"{getattr(rgb, 'shape', '')}")
        # mp.Image reads the raw buffer: a non-contiguous view gives silently wrong pixels.
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        with self._lock:
            if self._impl is None:
                raise SkinscanError("this FaceLandmarker is closed")
            if self._quiet_first:
                with native_log_silenced():
                    res = self._impl.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
                self._quiet_first = False
            else:
                res = self._impl.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not res.face_landmarks:
            raise NoFaceError("no face found in the photo")
        pts = [np.array([(p.x * w, p.y * h, p.z * w) for p in face], dtype=np.float64) for face in res.face_landmarks]
        areas = [np.ptp(p[:468, 0]) * np.ptp(p[:468, 1]) for p in pts]
        k = int(np.argmax(areas))
        matrix = np.asarray(res.facial_transformation_matrixes[k], dtype=np.float64)
        yaw, pitch, roll = pose_from_matrix(matrix)
        shapes = {c.category_name: float(c.score) for c in res.face_blendshapes[k]} if res.face_blendshapes else {}
        return FaceLandmarks(
            points=pts[k][:, :2].copy(),
            z=pts[k][:, 2].copy(),
            yaw_deg=yaw,
            pitch_deg=pitch,
            roll_deg=roll,
            matrix=matrix,
            blendshapes=shapes,
            n_faces=len(pts),
            image_shape=(h, w),
        )


_shared: FaceLandmarker | None = None
_shared_lock = threading.Lock()


def shared_landmarker(model_path: str | os.PathLike | None = None) -> FaceLandmarker:
    """The process-wide landmarker, created on first use (one per process, reused by every call).

    Parameters
    ----------
    model_path : str or PathLike, optional
        The model bundle. None takes the landmarker as it is (created with the default model if
        there is none yet); another path than the current one's closes it and loads a new one.

    Returns
    -------
    FaceLandmarker
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared._impl is None or (
            model_path is not None and os.fspath(model_path) != os.fspath(_shared.model_path)
        ):
            if _shared is not None:
                _shared.close()
            _shared = FaceLandmarker(model_path)
        return _shared


def detect_landmarks(rgb: np.ndarray, *, model_path: str | os.PathLike | None = None) -> FaceLandmarks:
    """Landmarks of the largest face in ``rgb`` using the process-wide landmarker.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        The photo.
    model_path : str or PathLike, optional
        The model bundle (see :func:`shared_landmarker`).

    Returns
    -------
    FaceLandmarks
        In ``rgb``'s pixels.

    Raises
    ------
    NoFaceError
        When no face is found.
    """
    return shared_landmarker(model_path).detect(rgb)
