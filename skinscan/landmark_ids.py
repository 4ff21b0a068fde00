"""Landmark ids of MediaPipe's face mesh that name a feature of the face, written once for every room that reads them.

The mesh has 468 points on the face; with iris refinement 10 more sit on the irises (478 in all).
"Right" and "left" are the subject's own: the right eye is on the image left of an unmirrored
frontal photo. A ring lists its points in drawing order around the feature; each left ring is the
mirror image of the right one on the (exactly symmetric) canonical mesh.

The outlines of the measured regions (forehead, cheeks, ...) are skinscan's own choices, not the
mesh's anatomy, and stay with them in :mod:`skinscan.regions`.

Every set is a read-only integer array, so that it indexes an (N, 2) array of points directly
(``face.points[FACE_OVAL]``) and no caller can change it for the others.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EYE_CORNERS", "FACE_OVAL", "LEFT_BROW", "LEFT_EYE", "LEFT_IRIS", "LIPS", "N_LANDMARKS", "N_MESH",
           "RIGHT_BROW", "RIGHT_EYE", "RIGHT_IRIS"]


def _ids(*ids: int) -> np.ndarray:
    a = np.array(ids, dtype=np.intp)
    a.flags.writeable = False
    return a


#: Points of the face mesh proper; the iris points follow them.
N_MESH = 468
#: Points of the mesh with iris refinement (what :class:`skinscan.landmarks.FaceLandmarker` returns).
N_LANDMARKS = 478

#: Iris points: the centre first, then four on the limbus.
RIGHT_IRIS = _ids(468, 469, 470, 471, 472)
LEFT_IRIS = _ids(473, 474, 475, 476, 477)

#: The eye openings: rings along the lid margins, from the outer corner over the upper lid.
RIGHT_EYE = _ids(33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = _ids(263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
#: The outer eye corners (exocanthion), subject's right then left: visible with the lids closed.
EYE_CORNERS = _ids(33, 263)

#: The brows: rings around each brow, from its tail along the upper edge.
RIGHT_BROW = _ids(70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = _ids(300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
#: The lips: the ring of their outer line, from the right mouth corner over the upper lip.
LIPS = _ids(61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)

#: The face outline (MediaPipe's FACE_OVAL order), from the top of the forehead down the subject's left side.
FACE_OVAL = _ids(10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
