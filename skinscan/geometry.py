"""Millimetres per pixel from the iris, cross-checked against the interpupillary distance; from the eye corners when the eyes are closed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CalibrationError
from .landmark_ids import EYE_CORNERS, LEFT_IRIS, RIGHT_IRIS
from .landmarks import FaceLandmarks

__all__ = ["IRIS_DIAMETER_MM", "IRIS_SD_MM", "IPD_MM", "IPD_RANGE_MM", "EYE_CORNERS_MM", "EYE_CORNERS_SD_MM",
           "EYES_CLOSED_BLINK", "Scale", "estimate_scale", "iris_diameters_px", "eyes_closed"]

#: Mean adult horizontal visible iris diameter (white-to-white), mm, and its population SD.
IRIS_DIAMETER_MM = 11.7
IRIS_SD_MM = 0.5
#: Mean adult interpupillary distance, mm, and the range that covers ~99% of adults.
IPD_MM = 63.0
IPD_RANGE_MM = (50.0, 78.0)
#: Mean adult distance between the outer eye corners (exocanthion to exocanthion), mm, and its SD:
#: the mean of Farkas's young adult women (87.8 mm) and men (91.2 mm). The iris is hidden by closed
#: lids (MediaPipe still places one, often far off); the corners are not.
EYE_CORNERS_MM = 89.5
EYE_CORNERS_SD_MM = 3.5
#: Eyes count as closed when a blink blendshape reaches this (open eyes score under 0.1 on the
#: sample series, the closed eyes of the real close-up 0.66-0.71).
EYES_CLOSED_BLINK = 0.5


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
    source : str
        What set the scale: ``"iris"``, or ``"eye_corners"`` (eyes closed, or an implausible iris).
    uncertainty_pct : float
        The scale's relative uncertainty, %: the population SD of the anatomy it assumes (about 4%
        either way); a person's own anatomy does not change between sessions.
    reason : str
        Why the eye corners were used (empty for the iris).
    """

    mm_per_px: float
    iris_diameter_px: tuple[float, float]
    ipd_px: float
    ipd_mm: float
    ipd_agreement: float
    iris_asymmetry: float
    source: str = "iris"
    uncertainty_pct: float = 100.0 * IRIS_SD_MM / IRIS_DIAMETER_MM
    reason: str = ""

    @property
    def px_per_mm(self) -> float:
        return 1.0 / self.mm_per_px


def iris_diameters_px(face: FaceLandmarks) -> np.ndarray:
    """Diameters of both irises in pixels, shape (2, 2): rows (right, left), columns (horizontal, vertical).

    The four limbus points of each iris are east, north, west, south of its centre; the two
    diameters are the distances between opposite points.

    Parameters
    ----------
    face : FaceLandmarks
        Landmarks with the 10 iris points, px.

    Returns
    -------
    ndarray, shape (2, 2)
        Diameters, px (not corrected for head turn).
    """
    out = np.empty((2, 2))
    for row, ids in enumerate((RIGHT_IRIS, LEFT_IRIS)):
        p = face.points[ids[1:]]
        out[row, 0] = np.linalg.norm(p[0] - p[2])
        out[row, 1] = np.linalg.norm(p[1] - p[3])
    return out


def eyes_closed(face: FaceLandmarks) -> float:
    """The larger of the two blink blendshapes, 0-1 (NaN without blendshapes): closed from
    :data:`EYES_CLOSED_BLINK` on.

    Parameters
    ----------
    face : FaceLandmarks
        Landmarks with their blendshapes (``eyeBlinkLeft``, ``eyeBlinkRight``).

    Returns
    -------
    float
    """
    blinks = [face.blendshapes[k] for k in ("eyeBlinkLeft", "eyeBlinkRight") if k in face.blendshapes]
    return float(max(blinks)) if blinks else float("nan")


def estimate_scale(face: FaceLandmarks, *, iris_diameter_mm: float = IRIS_DIAMETER_MM, source: str = "auto") -> Scale:
    """Estimate millimetres per pixel from the iris landmarks, or from the eye corners.

    The horizontal iris diameter shrinks by cos(yaw) when the head turns, the vertical one does
    not, so the horizontal diameters are divided by cos(yaw) before the four are averaged. With
    the eyes closed (a blink blendshape of :data:`EYES_CLOSED_BLINK` or more) the iris is not
    seen, and MediaPipe's iris is a guess: the scale then comes from the distance between the
    outer eye corners (:data:`EYE_CORNERS_MM`, also divided by cos(yaw)), as it does when the
    iris implies an interpupillary distance no adult has.

    Parameters
    ----------
    face : FaceLandmarks
        Landmarks of one face, in pixels.
    iris_diameter_mm : float
        The assumed physical iris diameter (default: adult mean 11.7 mm).
    source : {"auto", "iris", "eye_corners"}
        ``"auto"`` chooses as above; the others force one (e.g. to compare them on open eyes).

    Returns
    -------
    Scale

    Raises
    ------
    CalibrationError
        When the eyes are under 4 px (iris) or 40 px (corners) across, too small to measure, or
        with ``source="iris"`` when the implied interpupillary distance is outside the adult range.

    References
    ----------
    .. [1] Rüfer F. et al. (2005) White-to-white corneal diameter: normal values in healthy
       humans. Cornea 24(3):259–261 (mean 11.71 mm).
    .. [2] Dodgson N. A. (2004) Variation and extrema of human interpupillary distance. Proc.
       SPIE 5291:36–46 (adult mean about 63 mm).
    .. [3] Farkas L. G. (1994) Anthropometry of the Head and Face, 2nd ed. Raven Press
       (exocanthion-exocanthion width of young adults: women 87.8 mm, men 91.2 mm).
    """
    if source not in ("auto", "iris", "eye_corners"):
        raise ValueError(f"source must be 'auto', 'iris' or 'eye_corners', got {source!r}")
    if source == "eye_corners":
        return _corner_scale(face, "asked for")
    blink = eyes_closed(face)
    if source == "auto" and blink >= EYES_CLOSED_BLINK:
        return _corner_scale(face, f"eyes closed (blink {blink:.2f}): the iris is hidden")
    try:
        return _iris_scale(face, iris_diameter_mm)
    except CalibrationError as e:
        if source == "iris" or "too small" in e.reason:
            raise
        return _corner_scale(face, f"the iris is implausible ({e.reason.split(':')[0]})")


def _iris_scale(face: FaceLandmarks, iris_diameter_mm: float) -> Scale:
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


def _corner_scale(face: FaceLandmarks, reason: str) -> Scale:
    """The scale from the outer eye corners (see :func:`estimate_scale`)."""
    cos_yaw = max(np.cos(np.radians(face.yaw_deg)), 0.5)
    corners_px = float(np.linalg.norm(face.points[EYE_CORNERS[0]] - face.points[EYE_CORNERS[1]])) / cos_yaw
    if not np.isfinite(corners_px) or corners_px < 40.0:
        raise CalibrationError(f"the eyes are {corners_px:.0f} px apart, too small to set a millimetre scale "
                               "(the face is too small in the frame)")
    mm_per_px = EYE_CORNERS_MM / corners_px
    d = iris_diameters_px(face).mean(axis=1)
    ipd_px = float(np.linalg.norm(face.points[RIGHT_IRIS[0]] - face.points[LEFT_IRIS[0]]))
    ipd_mm = ipd_px / cos_yaw * mm_per_px
    return Scale(mm_per_px=mm_per_px, iris_diameter_px=(float(d[0]), float(d[1])), ipd_px=ipd_px, ipd_mm=ipd_mm,
                 ipd_agreement=ipd_mm / IPD_MM, iris_asymmetry=float(abs(d[0] - d[1]) / max(d.mean(), 1e-9)),
                 source="eye_corners", uncertainty_pct=100.0 * EYE_CORNERS_SD_MM / EYE_CORNERS_MM, reason=reason)
