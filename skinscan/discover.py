"""Finding subjects, sessions and their photos in a folder of phone photos.

Layouts understood (a subject is a person, a session is one visit or treatment day):

==========================================  ===============================================
layout                                      subject / session
==========================================  ===============================================
``root/<subject>/<session>/*.jpg``          folder names; a session folder is named
                                            ``2026-03-14``, ``2026-03-14 anything`` or
                                            ``session-N`` (dated from its photos' EXIF)
``root/<subject>/*.jpg``                    folder name / EXIF capture day
``root/*.jpg``                              ``root``'s name / EXIF capture day
``root/<session>/*.jpg``                    ``root`` is taken as the subject when it holds
                                            session folders
``path/to/photo.jpg``                       parent folder (grandparent when the parent is a
                                            session folder) / as above
==========================================  ===============================================

Subject and session labels are the folder names as text; they may contain anything a file
system allows, so :func:`safe_name` must be used before building an output path from them.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .errors import ImageLoadError, SkinscanError
from .io import is_photo_file, read_capture_time

__all__ = ["PhotoEntry", "SessionInfo", "Discovery", "SessionsFileError", "discover", "safe_name",
           "read_sessions_csv", "parse_session_folder", "treatment_dates", "printable", "UNDATED_SESSION",
           "NO_DATE_REASON"]

#: Files that live beside photos on purpose and are never reported as skipped.
SIDECAR_FILES = frozenset({"sessions.csv", "ground_truth.json", "readme.md"})
#: The session of loose photos that carry no capture date: analysed and listed, left out of timelines.
UNDATED_SESSION = "(undated)"
NO_DATE_REASON = ("no capture date (EXIF DateTimeOriginal): put the photo in a session folder named by date "
                  "(2026-03-14), or use --allow-file-time")

_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATED_FOLDER = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ _.\-].*)?", re.DOTALL)
_NUMBERED_FOLDER = re.compile(r"session[-_ ]?(\d+)", re.IGNORECASE)
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                               *(f"LPT{i}" for i in range(10))})
_MAX_NAME = 80
#: Unicode categories a terminal would act on instead of showing: controls, format characters
#: (bidirectional overrides), line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".avi", ".mkv", ".webm"})


class SessionsFileError(SkinscanError, ValueError):
    """A ``sessions.csv`` file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class PhotoEntry:
    """One photo found, placed in its subject's series.

    Attributes
    ----------
    subject, session : str
        Labels taken from folder names (or the ISO capture day for loose photos).
    session_index : int
        0-based position of the session in the subject's series, in date order.
    date : datetime.date or None
        The session's date; None for a ``session-N`` folder whose photos carry no capture time and
        that ``sessions.csv`` does not date, and for loose photos without a capture time (session
        :data:`UNDATED_SESSION`).
    path : Path
        Absolute (symbolic links kept as given).
    date_source : str
        Where ``date`` came from: ``"folder"`` (its name), ``"exif"`` (capture time),
        ``"sessions_csv"`` (the row of ``sessions.csv`` whose ``session`` names the folder),
        ``"file_time"`` (file modification time, only with ``allow_file_time``) or ``"none"``.
    capture_time : datetime or None
        The photo's own EXIF capture time.
    """

    subject: str
    session: str
    session_index: int
    date: date | None
    path: Path
    date_source: str
    capture_time: datetime | None = None

    @property
    def undated(self) -> bool:
        """True for a loose photo with no date: analysed and listed, but placed on no timeline."""
        return self.session == UNDATED_SESSION and self.date is None

    def as_dict(self) -> dict:
        """The fields :meth:`skinscan.store.ResultStore.add_photo` expects of an entry."""
        return {"subject": self.subject, "session": self.session, "session_index": self.session_index,
                "date": self.date.isoformat() if self.date else None, "path": _text(str(self.path)),
                "date_source": self.date_source}


@dataclass(frozen=True)
class SessionInfo:
    """One row of a subject's ``sessions.csv``: what was done on a date."""

    date: date
    label: str = ""
    treatment: str = ""
    needle_depth_mm: float | None = None
    notes: str = ""


@dataclass
class Discovery:
    """What :func:`discover` found.

    Attributes
    ----------
    entries : list of PhotoEntry
        Sorted by subject, session order, capture time, file name.
    skipped : list of (Path, str)
        Files and folders not used, each with a one-line reason.
    sessions_csv : dict of str to list of SessionInfo
        Parsed ``sessions.csv`` per subject that has one.
    scanned : list of Path
        The folders given that were listed (absolute): every photo below them was found, except
        below ``unscanned``. A photo stored from below them that is not among ``entries`` is gone.
    unscanned : list of Path
        Folders below ``scanned`` whose photos were not looked at this time (unreadable, a
        subject whose ``sessions.csv`` is invalid, a folder inside a session folder...).
    """

    entries: list[PhotoEntry] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    sessions_csv: dict[str, list[SessionInfo]] = field(default_factory=dict)
    scanned: list[Path] = field(default_factory=list)
    unscanned: list[Path] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        """Subject labels with at least one photo, sorted."""
        return sorted({e.subject for e in self.entries})

    def sessions(self, subject: str) -> list[str]:
        """The subject's session labels in series order.

        Parameters
        ----------
        subject : str
            Subject label.

        Returns
        -------
        list of str
            Empty for an unknown subject.
        """
        return list(dict.fromkeys(e.session for e in self.entries if e.subject == subject))

    def treatment_dates(self, subject: str) -> list[date]:
        """Sorted treatment days of the subject's ``sessions.csv`` (see :func:`treatment_dates`).

        Parameters
        ----------
        subject : str
            Subject label.

        Returns
        -------
        list of date
            Empty when the subject has no ``sessions.csv``.
        """
        return treatment_dates(self.sessions_csv.get(subject, []))


def treatment_dates(rows: Iterable[SessionInfo]) -> list[date]:
    """Sorted dates of the ``sessions.csv`` rows that record a treatment.

    A row counts when its ``treatment`` is filled in (and not ``none``); when every row's
    ``treatment`` is blank (or there is no such column) the file is a plain list of treatment days
    and every row counts.

    Parameters
    ----------
    rows : iterable of SessionInfo
        Rows of one ``sessions.csv`` (:func:`read_sessions_csv`).

    Returns
    -------
    list of date
        Each day once.
    """
    rows = list(rows)
    treated = [r for r in rows if r.treatment.strip().lower() not in ("", "none")]
    return sorted({r.date for r in (treated if any(r.treatment.strip() for r in rows) else rows)})


# --------------------------------------------------------------------------- names


def _text(name: str) -> str:
    """A file name as printable, UTF-8-encodable text (undecodable bytes become ``\\xNN``)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text) -> str:
    """Text as a terminal may show it: control and formatting characters (escape sequences,
    newlines, right-to-left overrides) escaped, so a crafted file name cannot rewrite the screen.

    Parameters
    ----------
    text : object
        Converted with ``str``; undecodable bytes of a file name (surrogate escapes) become ``\\xNN``.

    Returns
    -------
    str

    Examples
    --------
    >>> printable("a\\nb\\x1b[2J.jpg")
    'a\\\\nb\\\\x1b[2J.jpg'
    """
    text = _text(str(text))
    if all(unicodedata.category(c) not in _UNPRINTABLE for c in text):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _UNPRINTABLE else c
                   for c in text)


def safe_name(name: str) -> str:
    """Map any subject or session name to a slug that is safe as one path component.

    Unicode letters, digits and marks, ``-`` and ``_`` are kept (after NFC normalisation); spaces and
    every other character become ``_``, runs of ``_`` collapse, leading and trailing ``_``/``-``
    go. Whenever the slug differs from the name, or is empty, too long (over 80 characters) or a
    Windows device name, ``-`` and 8 hex digits of the name's SHA-1 are appended, so two distinct
    names never share a slug. The result never contains a path separator, ``..``, a leading dot or
    a NUL.

    Parameters
    ----------
    name : str
        A subject or session name (anything else is converted with ``str``).

    Returns
    -------
    str
        At most 80 characters.

    Examples
    --------
    >>> safe_name("2026-03-14")
    '2026-03-14'
    >>> safe_name("../../etc").startswith("etc-")
    True
    """
    name = unicodedata.normalize("NFC", _text(str(name)))
    kept = "".join(c if c in "-_" or unicodedata.category(c)[0] in "LNM" else "_" for c in name)
    slug = re.sub(r"_+", "_", kept).strip("_-")
    if slug == name and slug and len(slug) <= _MAX_NAME and slug.split(".")[0].upper() not in _WINDOWS_RESERVED:
        return slug
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{(slug or 'unnamed')[:_MAX_NAME - 9]}-{digest}"


def parse_session_folder(name: str) -> tuple[date | None, bool] | None:
    """Whether a folder name names a session: ``(date from the name or None, True)``, else None.

    ``2026-03-14``, ``2026-03-14 second session`` and ``2026-03-14_after`` carry their date;
    ``session-3``, ``Session_3`` and ``session3`` carry none (it comes from the photos).
    A name starting with an impossible date (``2026-13-40``) is not a session folder.

    Parameters
    ----------
    name : str
        A folder's name (not a path).

    Returns
    -------
    tuple of (date or None, bool) or None

    Examples
    --------
    >>> parse_session_folder("2026-03-14_after")
    (datetime.date(2026, 3, 14), True)
    >>> parse_session_folder("Session_3"), parse_session_folder("holiday")
    ((None, True), None)
    """
    m = _DATED_FOLDER.fullmatch(name)
    if m:
        try:
            return date.fromisoformat(m[1]), True
        except ValueError:
            return None
    if _NUMBERED_FOLDER.fullmatch(name):
        return None, True
    return None


def _natural_key(text: str) -> tuple:
    """Sort key putting ``session-10`` after ``session-9``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


# --------------------------------------------------------------------------- sessions.csv


def read_sessions_csv(path: str | os.PathLike) -> list[SessionInfo]:
    """Parse a ``sessions.csv``: columns ``date`` (ISO), and optionally ``session``, ``treatment``,
    ``needle_depth_mm``, ``notes``; other columns are ignored, blank lines and lines starting with
    ``#`` skipped.

    The encoding is detected: UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order
    mark, else Windows-1252 (what spreadsheet programs write on Windows), which decodes any byte.
    Only the columns skinscan uses can stop it: a line with more fields than the header (an
    unquoted comma in the notes) keeps the extra text in its last column.

    Parameters
    ----------
    path : str or PathLike
        The ``sessions.csv`` file.

    Returns
    -------
    list of SessionInfo
        One per data line, in file order (empty for a file without any).

    Raises
    ------
    SessionsFileError
        (a ``ValueError``) naming the file and line: no ``date`` column, a bad date, or a needle
        depth that is not a non-negative number.
    """
    path = Path(path)
    try:
        text = _decode_text(path.read_bytes())
    except OSError as e:
        raise SessionsFileError(f"cannot read sessions file ({e.strerror or e})", path) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    reader = csv.reader([line for _, line in lines])
    header = [h.strip().lower() for h in next(reader)]
    if "date" not in header:
        raise SessionsFileError(f"line {lines[0][0]}: no 'date' column in the header {header}", path)
    rows = []
    for (n, _), values in zip(lines[1:], reader):
        if len(values) > len(header):  # the rest belongs to the last column (an unquoted comma)
            values = values[:len(header) - 1] + [",".join(values[len(header) - 1:])]
        row = {k: v.strip() for k, v in zip(header, values)}

        def fail(what: str) -> SessionsFileError:
            return SessionsFileError(f"line {n}: {what}", path)

        try:
            day = date.fromisoformat(row.get("date", ""))
        except ValueError:
            raise fail(f"date {row.get('date', '')!r} is not an ISO date like 2026-03-14") from None
        depth = row.get("needle_depth_mm", "")
        if depth:
            try:
                depth = float(depth)
            except ValueError:
                raise fail(f"needle_depth_mm {depth!r} is not a number") from None
            if not depth >= 0:  # also rejects NaN
                raise fail(f"needle_depth_mm {depth} must be a number >= 0")
        rows.append(SessionInfo(date=day, label=row.get("session", ""),
                                treatment=row.get("treatment", ""),
                                needle_depth_mm=depth if depth != "" else None, notes=row.get("notes", "")))
    return rows


def _decode_text(data: bytes) -> str:
    """A small text file in whichever of the encodings spreadsheets write it is in (see :func:`read_sessions_csv`)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined: they become U+FFFD (only free text such as notes holds them).
        return data.decode("cp1252", errors="replace")


# --------------------------------------------------------------------------- discovery


@dataclass
class _Found:
    subject: str
    session: str
    date: date | None
    date_source: str
    path: Path
    capture_time: datetime | None


class _Scanner:
    def __init__(self, allow_file_time: bool):
        self.allow_file_time = allow_file_time
        self.found: list[_Found] = []
        self.skipped: list[tuple[Path, str]] = []
        self.sessions_csv: dict[str, list[SessionInfo]] = {}
        self.bad_csv: set[str] = set()
        self.scanned: list[Path] = []
        self.unscanned: list[Path] = []
        self._seen_dirs: set[tuple[int, int]] = set()
        self._seen_files: set[str] = set()

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((path, reason))

    def leave(self, path: Path, reason: str) -> None:
        """Skip a folder whose photos are not looked at: what the store holds from it stays."""
        self.skip(path, reason)
        self.unscanned.append(path)

    def listdir(self, folder: Path) -> tuple[list[Path], list[Path]] | None:
        """(photo files, sub-folders) of a folder, reporting everything else; None when unusable.

        Each real folder is listed once, so a symbolic link back to a parent cannot loop.
        """
        try:
            st = folder.stat()
            key = (st.st_dev, st.st_ino)
            if key in self._seen_dirs:
                self.leave(folder, "folder already scanned (a symbolic link to it or to a parent)")
                return None
            self._seen_dirs.add(key)
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda d: _natural_key(d.name))
        except PermissionError:
            self.leave(folder, "cannot read the folder (permission denied)")
            return None
        except OSError as e:
            self.leave(folder, f"cannot read the folder ({e.strerror or e})")
            return None
        files, dirs = [], []
        for item in items:
            path = Path(item.path)
            if item.name.startswith("."):
                continue
            try:
                is_dir, is_file = item.is_dir(), item.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                dirs.append(path)
            elif not is_file:
                self.skip(path, _not_regular(item))
            elif item.name.lower() in SIDECAR_FILES:
                continue
            elif is_photo_file(path):
                files.append(path)
            else:
                self.skip(path, _not_a_photo(path))
        return files, dirs

    def read_csv(self, subject: str, folder: Path) -> bool:
        """Read the subject's ``sessions.csv`` if it has one; False when it is invalid (then the
        subject is skipped with the file, line and reason, and the other subjects go on)."""
        if subject in self.bad_csv:
            return False
        csv_path = folder / "sessions.csv"
        if csv_path.is_file() and subject not in self.sessions_csv:
            try:
                self.sessions_csv[subject] = read_sessions_csv(csv_path)
            except SessionsFileError as e:
                self.bad_csv.add(subject)
                self.skip(csv_path, f"{e.reason}; the photos of {subject!r} were not analysed: correct the file "
                                    "and run again")
                return False
        return True

    def root(self, root: Path) -> None:
        listing = self.listdir(root)
        if listing is None:
            return
        self.scanned.append(root)
        files, dirs = listing
        if any(parse_session_folder(d.name) for d in dirs):  # root is one subject's folder
            self.subject(root, listing=listing)
            return
        if files:
            if self.read_csv(_subject_name(root), root):
                self.loose(_subject_name(root), files)
            else:
                self.unscanned.extend(files)
        for d in dirs:
            self.subject(d)

    def subject(self, folder: Path, *, listing=None) -> None:
        name = _subject_name(folder)
        listing = listing or self.listdir(folder)
        if listing is None:
            return
        files, dirs = listing
        if not self.read_csv(name, folder):
            self.unscanned.append(folder)
            return
        n_before = len(self.found)
        self.loose(name, files)
        for d in dirs:
            parsed = parse_session_folder(d.name)
            if parsed is None:
                self.leave(d, "not a session folder (name it by date, 2026-03-14, or session-N)")
            else:
                self.session(name, d, parsed[0])
        if len(self.found) == n_before and not files and not dirs:
            self.skip(folder, "no photos found")

    def session(self, subject: str, folder: Path, folder_date: date | None) -> None:
        listing = self.listdir(folder)
        if listing is None:
            return
        files, dirs = listing
        for d in dirs:
            self.leave(d, "folder inside a session folder (not scanned)")
        times = [self.capture_time(f) for f in files]
        day, source = self.session_date(subject, folder.name, folder_date, times)
        label = _text(folder.name)
        for f, t in zip(files, times):
            self.add(_Found(subject, label, day, source, f, t))

    def session_date(self, subject: str, name: str, folder_date: date | None,
                     times: list[datetime | None]) -> tuple[date | None, str]:
        """A session folder's date and where it came from: its name, else its photos' capture
        times, else the subject's ``sessions.csv`` row whose ``session`` is the folder's name."""
        if folder_date is not None:
            return folder_date, "folder"
        days = [t.date() for t in times if t is not None]
        if days:
            return min(days), "exif"
        key = _text(name).strip().casefold()
        listed = [r.date for r in self.sessions_csv.get(subject, []) if r.label.strip().casefold() == key]
        if listed:
            return min(listed), "sessions_csv"
        return None, "none"

    def loose(self, subject: str, files: list[Path]) -> None:
        """Photos not in a session folder: one session per capture day."""
        for f in files:
            try:
                t = read_capture_time(f)
            except ImageLoadError as e:
                self.skip(f, e.reason)
                continue
            if t is not None:
                day, source = t.date(), "exif"  # the day on the clock where the photo was taken
            elif self.allow_file_time:
                try:
                    day, source = datetime.fromtimestamp(f.stat().st_mtime).date(), "file_time"
                except OSError as e:
                    self.skip(f, f"cannot read the file ({e.strerror or e})")
                    continue
            else:  # analysed all the same, in a session of its own that no timeline shows
                self.add(_Found(subject, UNDATED_SESSION, None, "none", f, None))
                continue
            self.add(_Found(subject, day.isoformat(), day, source, f, t))

    def photo(self, path: Path) -> None:
        parent = path.absolute().parent
        parsed = parse_session_folder(parent.name)
        if parsed is not None and parent.parent != parent:
            subject = _subject_name(parent.parent)
            if not self.read_csv(subject, parent.parent):
                self.unscanned.append(path)
                return
            t = self.capture_time(path)
            day, source = self.session_date(subject, parent.name, parsed[0], [t])
            self.add(_Found(subject, _text(parent.name), day, source, path, t))
            return
        if self.read_csv(_subject_name(parent), parent):
            self.loose(_subject_name(parent), [path])
        else:
            self.unscanned.append(path)

    @staticmethod
    def capture_time(path: Path) -> datetime | None:
        try:
            return read_capture_time(path)
        except ImageLoadError:  # the analysis reports the unreadable file with its reason
            return None

    def add(self, found: _Found) -> None:
        key = os.path.abspath(found.path)
        if key not in self._seen_files:
            self._seen_files.add(key)
            self.found.append(found)


def _not_a_photo(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _VIDEO_SUFFIXES:
        return f"not a photo file type ({suffix}: a video); to analyse it, export a still frame as JPEG"
    return f"not a photo file type ({suffix or 'no extension'})"


def _not_regular(item: os.DirEntry) -> str:
    try:
        link = item.is_symlink()
    except OSError:
        link = False
    if link:
        return "not a regular file (a symbolic link that is broken or loops); fix or remove the link"
    return "not a regular file (broken link, device or socket)"


def _subject_name(folder: Path) -> str:
    return _text(folder.absolute().name or str(folder.absolute()))


def _wall_clock(t: datetime | None) -> datetime:
    """Comparable capture time: the local wall clock, whether or not the offset was recorded."""
    return t.replace(tzinfo=None) if t is not None else datetime.max


def discover(root_or_paths: str | os.PathLike | Iterable[str | os.PathLike], *,
             allow_file_time: bool = False) -> Discovery:
    """Find every subject, session and photo under a folder, a photo, or a list of either.

    Parameters
    ----------
    root_or_paths : path or iterable of paths
        A root folder of subjects, one subject's folder, a folder of loose photos, a photo file,
        or a list of any of these (subjects of the same name are merged).
    allow_file_time : bool, optional
        Date loose photos without an EXIF capture time by their file modification time, which
        copying and syncing often reset. Off by default: such photos go to the subject's session
        :data:`UNDATED_SESSION` (analysed and listed, on no timeline).

    Returns
    -------
    Discovery
        Entries in series order: sessions by date (undated ``session-N`` folders last), then by
        their earliest capture time, then by name; ``session_index`` counts from 0 in that order.
        Paths are absolute. A subject whose ``sessions.csv`` is malformed is skipped: the file is
        listed in ``skipped`` with the line and the reason, and the other subjects go on.
    """
    if isinstance(root_or_paths, (str, os.PathLike)):
        root_or_paths = [root_or_paths]
    scan = _Scanner(allow_file_time)
    for p in (Path(os.path.abspath(x)) for x in root_or_paths):
        try:
            mode = p.stat().st_mode
        except OSError as e:
            scan.skip(p, "not found" if isinstance(e, FileNotFoundError) else f"cannot read ({e.strerror or e})")
            continue
        if stat.S_ISDIR(mode):
            scan.root(p)
        elif not is_photo_file(p):
            scan.skip(p, _not_a_photo(p))
        else:
            scan.photo(p)
    return Discovery(entries=_order(scan.found), skipped=scan.skipped, sessions_csv=scan.sessions_csv,
                     scanned=scan.scanned, unscanned=scan.unscanned)


def _order(found: list[_Found]) -> list[PhotoEntry]:
    by_session: dict[tuple[str, str], list[_Found]] = defaultdict(list)
    for f in found:
        by_session[f.subject, f.session].append(f)
    order: dict[str, list[tuple]] = defaultdict(list)
    dates: dict[tuple[str, str], date | None] = {}
    for (subject, session), items in by_session.items():
        days = [f.date for f in items if f.date is not None]
        dates[subject, session] = day = min(days) if days else None
        first = min(_wall_clock(f.capture_time) for f in items)
        order[subject].append((day is None, day or date.min, first, _natural_key(session), session))
    index = {(subject, key[-1]): i for subject, keys in order.items() for i, key in enumerate(sorted(keys))}
    entries = [PhotoEntry(subject=f.subject, session=f.session, session_index=index[f.subject, f.session],
                          date=dates[f.subject, f.session], path=f.path, date_source=f.date_source,
                          capture_time=f.capture_time) for f in found]
    return sorted(entries, key=lambda e: (e.subject, e.session_index, _wall_clock(e.capture_time),
                                          _natural_key(_text(e.path.name))))
