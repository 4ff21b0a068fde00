"""Scoring detections against features labelled by others: the check that a detector sees what people see.

A phantom tells whether a metric answers to a dose; it cannot tell whether the detector finds what a
person calls a pore. :func:`score_detections` matches detected centres one-to-one with labelled
blobs (Hungarian assignment on their distances, within a tolerance) inside a region of interest,
as the labels' publishers scored theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["LabelScore", "label_centres", "score_detections"]


@dataclass(frozen=True)
class LabelScore:
    """The outcome of matching detections with labels.

    Attributes
    ----------
    labels, detections, matched : int
        Labelled blobs and detections inside the region of interest; pairs matched.
    precision, recall, f1 : float
        ``matched / detections``, ``matched / labels``, their harmonic mean (0 when undefined).
    pairs : ndarray, shape (matched, 2)
        Indices of the matched (label, detection) among those inside the region.
    """

    labels: int
    detections: int
    matched: int
    precision: float
    recall: float
    f1: float
    pairs: np.ndarray

    def __str__(self) -> str:
        return (f"P {self.precision:.3f}  R {self.recall:.3f}  F1 {self.f1:.3f}  "
                f"({self.detections} detected, {self.labels} labelled, {self.matched} matched)")


def label_centres(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (x, y) and equivalent diameters (px) of the 8-connected blobs of a label mask.

    Parameters
    ----------
    labels : ndarray (H, W)
        Label mask; non-zero pixels are labelled.

    Returns
    -------
    centres : ndarray, shape (N, 2)
        Blob centroids (x, y), px.
    diameters : ndarray, shape (N,)
        Diameter of the disc of each blob's area, px.

    Examples
    --------
    >>> labels = np.zeros((10, 10), bool); labels[1:4, 1:4] = True
    >>> centres, diameters = label_centres(labels)
    >>> centres, diameters.round(2)
    (array([[2., 2.]]), array([3.39]))
    """
    n, _, stats, centres = cv2.connectedComponentsWithStats(np.asarray(labels, bool).astype(np.uint8), connectivity=8)
    return centres[1:], 2 * np.sqrt(stats[1:, cv2.CC_STAT_AREA] / np.pi)


def score_detections(detected_xy: np.ndarray, labels: np.ndarray, roi: np.ndarray, *,
                     tolerance_px: float = 3.5) -> LabelScore:
    """Match detected centres with labelled blobs one-to-one, inside ``roi``.

    Parameters
    ----------
    detected_xy : ndarray, shape (N, 2)
        Detected centres (x, y) in the labels' pixels.
    labels : ndarray of bool, shape (H, W)
        The labels: each 8-connected blob is one feature.
    roi : ndarray of bool, shape (H, W)
        Where the labels are complete; labels and detections are scored when their centre
        (rounded to a pixel) lies in it.
    tolerance_px : float
        Largest distance between a matched label's and detection's centres.

    Returns
    -------
    LabelScore

    Examples
    --------
    >>> labels = np.zeros((20, 20), bool); labels[4:7, 4:7] = labels[14:16, 14:16] = True
    >>> s = score_detections(np.array([[5.2, 5.0], [10.0, 10.0]]), labels, np.ones((20, 20), bool))
    >>> (s.labels, s.detections, s.matched, round(s.f1, 2))
    (2, 2, 1, 0.5)
    """
    roi = np.asarray(roi, bool)
    h, w = roi.shape

    def inside(p: np.ndarray) -> np.ndarray:
        if len(p) == 0:
            return np.zeros(0, bool)
        return roi[np.clip(np.rint(p[:, 1]).astype(int), 0, h - 1), np.clip(np.rint(p[:, 0]).astype(int), 0, w - 1)]

    from scipy.optimize import linear_sum_assignment

    centres, _ = label_centres(labels)
    lab = centres[inside(centres)]
    det = np.asarray(detected_xy, dtype=np.float64).reshape(-1, 2)
    det = det[inside(det)]
    pairs = np.zeros((0, 2), int)
    if len(lab) and len(det):
        dist = np.linalg.norm(lab[:, None, :] - det[None, :, :], axis=2)
        close = dist <= tolerance_px
        rows, cols = np.flatnonzero(close.any(1)), np.flatnonzero(close.any(0))
        if rows.size:
            # Only labels and detections with a partner in reach take part; a pair out of reach
            # costs more than any pair in reach, so the assignment maximises the matches.
            sub = np.where(close[np.ix_(rows, cols)], dist[np.ix_(rows, cols)], 1e6)
            r, c = linear_sum_assignment(sub)
            ok = sub[r, c] <= tolerance_px
            pairs = np.stack([rows[r[ok]], cols[c[ok]]], 1)
    tp = len(pairs)
    precision = tp / len(det) if len(det) else 0.0
    recall = tp / len(lab) if len(lab) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScore(len(lab), len(det), tp, precision, recall, f1, pairs)
