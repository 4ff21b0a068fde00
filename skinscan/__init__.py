"""skinscan: measure facial skin change across microneedling sessions from ordinary photos."""

from .errors import (CalibrationError, FaceTooSmallError, ImageLoadError, ModelError, NoFaceError,
                     SkinscanError)
from .landmarks import FaceLandmarker, FaceLandmarks, detect_landmarks
from .model import canonical_mesh, resolve_model_path, verify_model

__version__ = "0.1.0"
