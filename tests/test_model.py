import hashlib
import shutil

import numpy as np
import pytest

from skinscan import model
from skinscan.errors import ModelError


def test_shipped_model_is_the_official_bundle():
    path = model.verify_model()
    data = path.read_bytes()
    assert len(data) == model.MODEL_SIZE == 3_758_596
    assert hashlib.sha256(data).hexdigest() == model.MODEL_SHA256


def test_resolution_order_argument_then_env_then_shipped(tmp_path, monkeypatch):
    monkeypatch.delenv(model.MODEL_ENV_VAR, raising=False)
    shipped = model.resolve_model_path()
    assert shipped.name == "face_landmarker.task" and shipped.exists()
    env_copy = tmp_path / "env.task"
    monkeypatch.setenv(model.MODEL_ENV_VAR, str(env_copy))
    assert model.resolve_model_path() == env_copy
    arg = tmp_path / "arg.task"
    assert model.resolve_model_path(arg) == arg


def test_missing_model_names_path_and_checksum(tmp_path):
    missing = tmp_path / "nope.task"
    with pytest.raises(ModelError) as err:
        model.verify_model(missing)
    assert str(missing) in str(err.value) and model.MODEL_SHA256 in str(err.value)


def test_corrupt_model_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "bad.task"
    shutil.copy(model._shipped_model(), bad)
    raw = bytearray(bad.read_bytes())
    raw[1000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    monkeypatch.setenv(model.MODEL_ENV_VAR, str(bad))
    with pytest.raises(ModelError) as err:
        model.verify_model()
    assert "checksum" in str(err.value) and str(bad) in str(err.value)


def test_canonical_mesh_layout():
    m = model.canonical_mesh()
    assert m.vertices.shape == (468, 3) and m.uv.shape == (468, 2) and m.triangles.shape == (898, 3)
    assert m.triangles.min() == 0 and m.triangles.max() == 467
    assert len(m.procrustes_ids) == 33 and np.all(m.procrustes_weights > 0)
    # The canonical face is about 15.5 cm wide and mirror-symmetric about x = 0.
    width_cm = np.ptp(m.vertices[:, 0])
    assert 14.0 < width_cm < 17.0
    assert abs(m.vertices[33, 0] + m.vertices[263, 0]) < 1e-4  # eye corners mirror each other
    assert m.vertices[33, 0] < 0 < m.vertices[263, 0]  # subject's right eye at negative x
    assert np.all((m.uv >= 0) & (m.uv <= 1))
