"""Millimetres per pixel from the iris, cross-checked against the interpupillary distance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CalibrationError
from .landmarks import LEFT_IRIS, RIGHT_IRIS, FaceLandmarks

__all__ = ["IRIS_DIAMETER_MM", "IPD_MM", "IPD_RANGE_MM", "Scale", "estimate_scale", "iris_diameters_px"]

#: Mean adult horizontal visible iris diameter (white-to-white), mm; population SD about 0.5 mm.
IRIS_DIAMETER_MM = 11.7
#: Mean adult interpupillary distance, mm, and the range that covers ~99% of adults.
IPD_MM = 63.0
IPD_RANGE_MM = (50.0, 78.0)


@dataclass(frozen=True)
class Scale:
    """A photo's physical scale.

    Attributes
    ----------
    mm_per_px : float
        Millimetres per pixel at the face, from the mean iris diameter.
    iris_diameter_px : tuple of float
        (right, left) iris diameters in pixels (subject's own sides).
    ipd_px, ipd_mm : float
        Distance between the iris centres in pixels and, at ``mm_per_px``, in mm.
    ipd_agreement : float
        ``ipd_mm / IPD_MM``: 1.0 when the iris scale and the population-mean IPD agree. Adults
        range about 0.8–1.24, so a value outside that points at a bad iris fit.
    iris_asymmetry : float
        |right − left| / mean iris diameter; large values mean one iris fit is off (or yaw).
    """

    mm_per_px: float
    iris_diameter_px: tuple[float, float]
    ipd_px: float
    ipd_mm: float
    ipd_agreement: float
    iris_asymmetry: float

    @property
    def px_per_mm(self) -> float:
        return 1.0 / self.mm_per_px


def iris_diameters_px(face: FaceLandmarks) -> np.ndarray:
    """Diameters of both irises in pixels, shape (2, 2): rows (right, left), columns (horizontal, vertical).

    The four limbus points of each iris are east, north, west, south of its centre; the two
    diameters are the distances between opposite points.
    """
    out = np.empty((2, 2))
    for row, ids in enumerate((RIGHT_IRIS, LEFT_IRIS)):
        p = face.points[ids[1:]]
        out[row, 0] = np.linalg.norm(p[0] - p[2])
        out[row, 1] = np.linalg.norm(p[1] - p[3])
    return out


def estimate_scale(face: FaceLandmarks, *, iris_diameter_mm: float = IRIS_DIAMETER_MM) -> Scale:
    """Estimate millimetres per pixel from the iris landmarks.

    The horizontal iris diameter shrinks by cos(yaw) when the head turns, the vertical one does
    not, so the horizontal diameters are divided by cos(yaw) before the four are averaged.

    Parameters
    ----------
    face : FaceLandmarks
        Landmarks of one face, in pixels.
    iris_diameter_mm : float
        The assumed physical iris diameter (default: adult mean 11.7 mm).

    Returns
    -------
    Scale

    Raises
    ------
    CalibrationError
        When the iris is under 4 px across (too small to measure) or the implied interpupillary
        distance is outside the adult range, i.e. the iris fit cannot be trusted.

    References
    ----------
    .. [1] Rüfer F. et al. (2005) White-to-white corneal diameter: normal values in healthy
       humans. Cornea 24(3):259–261 (mean 11.71 mm).
    .. [2] Dodgson N. A. (2004) Variation and extrema of human interpupillary distance. Proc.
       SPIE 5291:36–46 (adult mean about 63 mm).
    """
    d = iris_diameters_px(face)
    cos_yaw = max(np.cos(np.radians(face.yaw_deg)), 0.5)
    d_corr = d.copy()
    d_corr[:, 0] /= cos_yaw
    per_eye = d_corr.mean(axis=1)
    diameter_px = float(per_eye.mean())
    if not np.isfinite(diameter_px) or diameter_px < 4.0:
        raise CalibrationError(f"the iris is {diameter_px:.1f} px across, too small to set a millimetre scale "
                               "(the face is too small in the frame)")
    mm_per_px = iris_diameter_mm / diameter_px
    ipd_px = float(np.linalg.norm(face.points[RIGHT_IRIS[0]] - face.points[LEFT_IRIS[0]]))
    # The IPD is foreshortened by yaw like the horizontal iris diameter.
    ipd_mm = ipd_px / cos_yaw * mm_per_px
    if not IPD_RANGE_MM[0] <= ipd_mm <= IPD_RANGE_MM[1]:
        raise CalibrationError(
            f"the iris scale ({mm_per_px:.4f} mm/px) implies an interpupillary distance of {ipd_mm:.1f} mm, "
            f"outside the adult range {IPD_RANGE_MM[0]:.0f}-{IPD_RANGE_MM[1]:.0f} mm: the iris fit is unreliable "
            "(closed eyes, glasses glare, or a strongly turned head)")
    return Scale(
        mm_per_px=mm_per_px,
        iris_diameter_px=(float(per_eye[0]), float(per_eye[1])),
        ipd_px=ipd_px,
        ipd_mm=ipd_mm,
        ipd_agreement=ipd_mm / IPD_MM,
        iris_asymmetry=float(abs(per_eye[0] - per_eye[1]) / diameter_px),
    )
