"""The names this module held before it was split by concept, for code that still imports them from here.

Import them from where they live: the blob detector and its statistics from
:mod:`skinscan.metrics.blobs`, the skin image and its colour planes from
:mod:`skinscan.metrics.skinimage`, ``MetricResult`` and ``detections`` from
:mod:`skinscan.metrics.results`, ``robust_sigma`` and ``region_means`` from
:mod:`skinscan.metrics.stats`, the input checks from :mod:`skinscan.inputs` and ``masked_blur``
from ``skinscan._filters``.
"""

from .._filters import blur, masked_blur, shrink, wide_blur
from ..inputs import MaskArg, as_masks, check_rgb, check_scale
from .blobs import blob_mask, blobs_per_region, detect_dark_blobs, strongest_nearby
from .results import DETECTION_FIELDS, MetricResult, detections
from .skinimage import (
           SkinImage,
           fill_clipped,
           resize_mask,
           resize_masks,
           skin_image,
           work_scale,
)
from .stats import region_means, robust_sigma

__all__ = ["DETECTION_FIELDS", "MaskArg", "MetricResult", "SkinImage", "as_masks", "blob_mask", "blobs_per_region",
           "blur", "check_rgb", "check_scale", "detect_dark_blobs", "detections", "fill_clipped", "masked_blur",
           "region_means", "resize_mask", "resize_masks", "robust_sigma", "shrink", "skin_image",
           "strongest_nearby", "wide_blur", "work_scale"]
