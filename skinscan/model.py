"""Where the MediaPipe Face Landmarker bundle lives, its checksum, and the canonical face mesh it carries."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ModelError

__all__ = [
    "MODEL_SHA256",
    "MODEL_SIZE",
    "MODEL_ENV_VAR",
    "CanonicalMesh",
    "resolve_model_path",
    "verify_model",
    "canonical_mesh",
]

MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_SIZE = 3_758_596
MODEL_ENV_VAR = "SKINSCAN_MODEL"
_MESH_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"

_verified: set[tuple[str, float, int]] = set()
_verify_lock = threading.Lock()


def _shipped_model() -> Path:
    return Path(str(resources.files("skinscan") / "_model" / "face_landmarker.task"))


def resolve_model_path(model_path: str | os.PathLike | None = None) -> Path:
    """Return the model bundle to use: the argument, else ``$SKINSCAN_MODEL``, else the shipped copy.

    The path is not checked here; :func:`verify_model` does that.

    Parameters
    ----------
    model_path : str or PathLike, optional
        A ``face_landmarker.task`` bundle chosen by the caller.

    Returns
    -------
    Path
    """
    if model_path is not None:
        return Path(model_path)
    env = os.environ.get(MODEL_ENV_VAR)
    if env:
        return Path(env)
    return _shipped_model()


def verify_model(model_path: str | os.PathLike | None = None) -> Path:
    """Resolve the model and check its SHA-256 once per process (and per file version).

    Parameters
    ----------
    model_path : str or PathLike, optional
        As for :func:`resolve_model_path`. A file version is its resolved path, modification
        time and size: a file replaced in place is checked again.

    Returns
    -------
    Path
        The verified model path.

    Raises
    ------
    ModelError
        When the file is missing, unreadable, or its checksum is not the expected one.
    """
    path = resolve_model_path(model_path)
    expected = f"expected the MediaPipe face_landmarker.task (float16 v1), SHA-256 {MODEL_SHA256}"
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelError(f"model file not found ({exc.strerror}); {expected}", path) from None
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    with _verify_lock:
        if key in _verified:
            return path
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ModelError(f"model file unreadable ({exc.strerror}); {expected}", path) from None
        if digest != MODEL_SHA256:
            raise ModelError(
                f"model checksum is {digest}, {expected}; restore models/face_landmarker.task "
                f"or point {MODEL_ENV_VAR} at a good copy",
                path,
            )
        _verified.add(key)
    return path


@dataclass(frozen=True)
class CanonicalMesh:
    """MediaPipe's canonical face mesh, read from the model bundle.

    Attributes
    ----------
    vertices : ndarray, shape (468, 3), float64
        x (towards the subject's left, i.e. the image right of a frontal unmirrored photo),
        y (up), z (towards the camera), in centimetres.
    uv : ndarray, shape (468, 2), float64
        Texture coordinates in [0, 1], v pointing down the face.
    triangles : ndarray, shape (898, 3), int32
        Vertex indices of the mesh's triangles.
    procrustes_ids : ndarray, shape (33,), int32
        Landmarks MediaPipe weights in its Procrustes pose fit (stable, rigid points).
    procrustes_weights : ndarray, shape (33,), float64
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """Yield (field_number, wire_type, value) of a protobuf message; value is int or bytes."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i : i + n], i + n
        else:
            raise ModelError(f"unexpected protobuf wire type {wire} in {_MESH_MEMBER}")
        yield field, wire, value


def _packed_or_single(wire: int, value, fmt: str) -> list:
    if wire == 2:  # packed repeated
        if fmt == "f":
            return list(struct.unpack(f"<{len(value) // 4}f", value))
        out, i = [], 0
        while i < len(value):
            v, i = _read_varint(value, i)
            out.append(v)
        return out
    if wire == 5:
        return [struct.unpack("<f", value)[0]] if fmt == "f" else [struct.unpack("<I", value)[0]]
    return [value]


@lru_cache(maxsize=4)
def _canonical_mesh_cached(path_str: str) -> CanonicalMesh:
    try:
        with zipfile.ZipFile(path_str) as zf:
            blob = zf.read(_MESH_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {_MESH_MEMBER} from the model bundle: {exc}", path_str) from None
    vbuf: list[float] = []
    ibuf: list[int] = []
    ids: list[int] = []
    weights: list[float] = []
    for field, _, value in _fields(blob):
        if field == 1:
            for f2, w2, v2 in _fields(value):
                if f2 == 3:
                    vbuf += _packed_or_single(w2, v2, "f")
                elif f2 == 4:
                    ibuf += _packed_or_single(w2, v2, "I")
        elif field == 2:
            lid, wt = 0, 0.0
            for f2, w2, v2 in _fields(value):
                if f2 == 1:
                    lid = int(v2)
                elif f2 == 2:
                    wt = _packed_or_single(w2, v2, "f")[0]
            ids.append(lid)
            weights.append(wt)
    v = np.asarray(vbuf, dtype=np.float64).reshape(-1, 5)
    tri = np.asarray(ibuf, dtype=np.int32).reshape(-1, 3)
    if v.shape[0] != 468 or tri.shape[0] != 898:
        raise ModelError(f"canonical mesh has {v.shape[0]} vertices / {tri.shape[0]} triangles, expected 468 / 898", path_str)
    return CanonicalMesh(
        vertices=v[:, :3].copy(),
        uv=v[:, 3:5].copy(),
        triangles=tri,
        procrustes_ids=np.asarray(ids, dtype=np.int32),
        procrustes_weights=np.asarray(weights, dtype=np.float64),
    )


def canonical_mesh(model_path: str | os.PathLike | None = None) -> CanonicalMesh:
    """Return the canonical face mesh stored in the (verified) model bundle.

    Parameters
    ----------
    model_path : str or PathLike, optional
        As for :func:`resolve_model_path`; the mesh read is cached per path.

    Returns
    -------
    CanonicalMesh

    Raises
    ------
    ModelError
        As for :func:`verify_model`.

    Examples
    --------
    >>> mesh = canonical_mesh()
    >>> mesh.vertices.shape, mesh.triangles.shape
    ((468, 3), (898, 3))
    """
    return _canonical_mesh_cached(str(verify_model(model_path)))
