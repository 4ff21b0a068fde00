"""skinscan: measure facial skin change across microneedling sessions from ordinary photos.

The public API: load a photo, analyse it end to end, or call each stage on plain arrays.
"""

from ._version import __version__
from .align import align_to_reference, canonical_frame, warp_to_canonical
from .analysis import PIPELINE_VERSION, PhotoAnalysis, analyse_photo
from .errors import (CalibrationError, FaceTooSmallError, ImageLoadError, ModelError, NoFaceError,
                     SkinscanError)
from .geometry import Scale, estimate_scale
from .io import Photo, load_photo
from .landmarks import FaceLandmarker, FaceLandmarks, detect_landmarks
from .metrics import METRIC_UNITS, METRICS, Measurements, compute_metrics
from .model import canonical_mesh, resolve_model_path, verify_model
from .quality import QualityCheck, QualityThresholds, assess_quality
from .regions import REGION_NAMES, draw_regions, region_masks


__all__ = [
    "PIPELINE_VERSION", "PhotoAnalysis", "analyse_photo", "Photo", "load_photo", "FaceLandmarker",
    "FaceLandmarks", "detect_landmarks", "Scale", "estimate_scale", "REGION_NAMES", "region_masks",
    "draw_regions", "QualityCheck", "QualityThresholds", "assess_quality", "align_to_reference",
    "canonical_frame", "warp_to_canonical", "compute_metrics", "Measurements", "METRICS", "METRIC_UNITS", "canonical_mesh",
    "resolve_model_path", "verify_model", "SkinscanError", "ImageLoadError", "ModelError", "NoFaceError",
    "FaceTooSmallError", "CalibrationError", "__version__",
]
