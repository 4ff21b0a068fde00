"""Typed errors that skinscan raises at its public boundary.

Every failure a user can meet is one of these, with the file it concerns and a reason in
plain words, never a bare assertion or a ``None`` from deep inside a library.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "SkinscanError",
    "ImageLoadError",
    "ModelError",
    "NoFaceError",
    "FaceTooSmallError",
    "CalibrationError",
    "OutputError",
    "Interrupted",
]


class SkinscanError(Exception):
    """Base class of every error skinscan raises on purpose.

    Parameters
    ----------
    reason : str
        What went wrong, in words a user can act on.
    path : str or Path, optional
        The file concerned, when there is one.
    """

    def __init__(self, reason: str, path: str | Path | None = None):
        self.reason = reason
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class ImageLoadError(SkinscanError):
    """A file could not be read as a photo (missing, empty, truncated, not an image...)."""


class ModelError(SkinscanError):
    """The MediaPipe model bundle is missing, unreadable or not the expected file."""


class NoFaceError(SkinscanError):
    """The landmarker found no face in the photo."""


class FaceTooSmallError(SkinscanError):
    """A face was found but is too small in the frame to measure skin on."""


class CalibrationError(SkinscanError):
    """The millimetre scale could not be estimated (iris landmarks implausible)."""


class OutputError(SkinscanError):
    """An output file (table, chart, report, overlay, store) could not be written: the disk is full,
    the folder is read-only... A batch stops on it: the next photos could not be written either."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (SIGTERM, SIGHUP) the way Ctrl-C stops it: the ``skinscan``
    command raises it from its signal handlers, so every clean-up that Ctrl-C runs runs too.

    Parameters
    ----------
    signal_name : str
        ``"SIGTERM"``, ``"SIGHUP"``...
    """

    def __init__(self, signal_name: str = "SIGINT"):
        self.signal_name = signal_name
        super().__init__(signal_name)
