"""Shared fixtures: the real MediaPipe landmarker (one per test session) and test faces built from skimage's astronaut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from skinscan.landmarks import FaceLandmarker


@pytest.fixture(scope="session")
def landmarker():
    with FaceLandmarker() as lm:
        yield lm


@pytest.fixture(scope="session")
def astronaut():
    """The 512 x 512 public-domain astronaut photo (one face, about 0.7 px/mm)."""
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def astronaut_big(astronaut):
    """The astronaut upscaled 3x (1536 x 1536, about 2 px/mm)."""
    return np.ascontiguousarray(cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))


def similarity_matrix(angle_deg: float, scale: float, center: tuple[float, float], shift=(0.0, 0.0)) -> np.ndarray:
    """A 2x3 similarity (OpenCV convention: positive angle turns the image counter-clockwise on screen)."""
    m = cv2.getRotationMatrix2D(center, angle_deg, scale)
    m[:, 2] += shift
    return m
