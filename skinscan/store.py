"""The results store: one SQLite file of per-photo records, measurements and quality checks, exported as tidy CSV/Parquet.

The store knows nothing of the pipeline: it receives plain dicts (an entry, a photo's record, its
``{region: {metric: value}}`` metrics and its quality checks as dicts) and hands back pandas frames.

Uniqueness
----------
A photo row is identified by its file's path: a file has one row, whatever happened to it
(skipped in one run and analysed in the next, moved to another session, edited). The content
hash says whether a stored result still holds: :meth:`ResultStore.is_done` matches content,
pipeline version, subject and session, so a new pipeline version re-analyses a photo and its new
row *replaces* the old one, and the store never mixes two versions' numbers for one photo. Two
files with the same content in one session are both listed: the second with status
``duplicate`` and no measurements (one photo must not count twice in a session's median and
spread). :meth:`ResultStore.forget_missing` removes the rows of files that are gone from the
folders a run scanned.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ._write import atomic_write, output_error, write_csv
from .errors import OutputError, SkinscanError

__all__ = ["ResultStore", "StoreBusyError", "SCHEMA_VERSION", "STATUSES", "STORE_NAME"]

#: The store's file name in an output folder.
STORE_NAME = "skinscan.db"

SCHEMA_VERSION = 2
STATUSES = ("analysed", "skipped", "duplicate")

_PHOTOS_TABLE = """
CREATE TABLE photos(
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    session TEXT NOT NULL,
    session_index INTEGER NOT NULL,
    date TEXT,
    date_source TEXT,
    path TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    pipeline_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('analysed', 'skipped', 'duplicate')),
    error TEXT,
    quality_flags TEXT,
    record_json TEXT,
    analysed_at TEXT NOT NULL
)"""
_SCHEMA = _PHOTOS_TABLE + """;
CREATE INDEX photos_content ON photos(subject, session, content_hash);
CREATE TABLE treatments(
    subject TEXT NOT NULL,
    date TEXT NOT NULL,
    session TEXT,
    treatment TEXT,
    needle_depth_mm REAL,
    notes TEXT
);
CREATE TABLE detections(
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    x_px REAL,
    y_px REAL,
    diameter_mm REAL,
    length_mm REAL,
    strength REAL
);
CREATE INDEX detections_photo ON detections(photo_id);
CREATE TABLE measurements(
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    unit TEXT,
    se REAL,
    PRIMARY KEY(photo_id, region, metric)
) WITHOUT ROWID;
CREATE TABLE quality(
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL,
    threshold REAL,
    comparison TEXT,
    unit TEXT,
    passed INTEGER,
    detail TEXT,
    PRIMARY KEY(photo_id, name)
) WITHOUT ROWID;
"""

#: Version 1 keyed photos by (subject, session, content hash); version 2 by path. SQLite's way to
#: change a table others refer to: build the new one, drop the old, rename the new into its place
#: (renaming the old one instead would point the measurements' keys at it).
_MIGRATE_1_TO_2 = [
    _PHOTOS_TABLE.replace("CREATE TABLE photos(", "CREATE TABLE photos_v2("),
    "INSERT INTO photos_v2(id, subject, session, session_index, date, path, content_hash, pipeline_version, status,"
    " error, quality_flags, record_json, analysed_at) SELECT id, subject, session, session_index, date, path,"
    " content_hash, pipeline_version, status, error, quality_flags, record_json, analysed_at FROM photos"
    " WHERE id IN (SELECT max(id) FROM photos GROUP BY path)",
    "DROP TABLE photos",
    "ALTER TABLE photos_v2 RENAME TO photos",
    "CREATE INDEX photos_content ON photos(subject, session, content_hash)",
    "CREATE TABLE treatments(subject TEXT NOT NULL, date TEXT NOT NULL, session TEXT, treatment TEXT,"
    " needle_depth_mm REAL, notes TEXT)",
    "CREATE TABLE detections(photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE, kind TEXT NOT NULL,"
    " region TEXT NOT NULL, x_px REAL, y_px REAL, diameter_mm REAL, length_mm REAL, strength REAL)",
    "CREATE INDEX detections_photo ON detections(photo_id)",
    "ALTER TABLE measurements ADD COLUMN se REAL",
    "DELETE FROM measurements WHERE photo_id NOT IN (SELECT id FROM photos)",
    "DELETE FROM quality WHERE photo_id NOT IN (SELECT id FROM photos)",
]
_TREATMENT_COLUMNS = ["subject", "date", "session", "treatment", "needle_depth_mm", "notes"]
_DETECTION_COLUMNS = ["kind", "region", "x_px", "y_px", "diameter_mm", "length_mm", "strength"]
_KEY_COLUMNS = ["subject", "session", "session_index", "date", "photo"]
_PHOTO_COLUMNS = _KEY_COLUMNS + ["status", "error", "quality_flags", "date_source", "content_hash",
                                 "pipeline_version", "analysed_at"]
_VALUE_COLUMNS = _KEY_COLUMNS + ["region", "metric", "value", "unit", "se"]
_ORDER = "p.subject, p.session_index, p.session, p.path"


class StoreBusyError(SkinscanError):
    """The store stayed locked by another writer for longer than the busy timeout."""


class ResultStore:
    """Per-photo results in one SQLite file, safe to share between processes.

    Parameters
    ----------
    path : str or PathLike
        The database file; created (with its folder) when missing.
    busy_timeout : float, optional
        Seconds a write waits for another process's transaction before :class:`StoreBusyError`.

    Notes
    -----
    The file is in WAL mode: readers never block the writer, and each :meth:`add_photo` is one
    ``BEGIN IMMEDIATE`` transaction, so concurrent writers queue instead of failing or
    interleaving. WAL needs a local file system (not a network share).

    Examples
    --------
    A batch fills the store (:func:`skinscan.batch.run_batch`); its frames are the tables:

    >>> import tempfile
    >>> from skinscan import METRIC_UNITS
    >>> from skinscan.batch import run_batch
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = run_batch(["sample_images/astronaut/2026-01-05"], out, progress=False, overlays=False)
    ...     with ResultStore(f"{out}/skinscan.db") as store:
    ...         values = store.values_frame()
    >>> result.n_analysed, len(values["photo"].unique()), values.loc[0, "unit"] == METRIC_UNITS[values.loc[0, "metric"]]
    (2, 2, True)
    """

    def __init__(self, path: str | os.PathLike, *, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened explicitly, as BEGIN IMMEDIATE.
            self._conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise SkinscanError(f"cannot open the results store ({e})", self.path) from e
        try:
            for pragma in (f"busy_timeout = {int(self.busy_timeout * 1000)}", "foreign_keys = ON",
                           "journal_mode = WAL", "synchronous = NORMAL"):  # NORMAL: durable enough in WAL
                self._read(f"PRAGMA {pragma}")
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self):
        return _Transaction(self)

    def _busy(self, e: sqlite3.Error) -> Exception:
        """The user-facing error for an error SQLite raised."""
        code = getattr(e, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(e):
            return StoreBusyError(
                f"the results store stayed locked for over {self.busy_timeout:g} s: another skinscan "
                "process is writing the same store; wait for it to finish or use another --out", self.path)
        if primary == sqlite3.SQLITE_FULL or "disk is full" in str(e):
            return OutputError(f"cannot write the results store ({e}); the disk is full: free some space on the "
                               f"disk holding {self.path.parent} and run again", self.path)
        if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or not isinstance(e, sqlite3.OperationalError):
            return self._damaged(str(e))
        return SkinscanError(f"results store error ({e})", self.path)

    def _damaged(self, why: str) -> SkinscanError:
        return SkinscanError(
            f"the results store is damaged ({why}); move it aside (rename {self.path.name} to "
            f"{self.path.name}.damaged) and run skinscan again: every photo is then analysed anew", self.path)

    def _migrate(self) -> None:
        version = self._read("PRAGMA user_version")[0][0]
        if version == 0:  # new file: create the tables unless another process just did
            with self._write() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    version = SCHEMA_VERSION
        if version == 1:
            # Rebuilding a table that others refer to: foreign keys off (they cannot change inside a
            # transaction), the new table renamed into place, orphans dropped, keys checked.
            self._read("PRAGMA foreign_keys = OFF")
            try:
                with self._write() as conn:
                    if conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                        for statement in _MIGRATE_1_TO_2:
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            finally:
                self._read("PRAGMA foreign_keys = ON")
            version = SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise SkinscanError(f"the results store has schema version {version}, newer than this skinscan's "
                                f"{SCHEMA_VERSION}; upgrade skinscan or use another --out", self.path)

    # ------------------------------------------------------------------ writing

    def is_done(self, content_hash: str, pipeline_version: str, subject: str, session: str, *,
                path: str | os.PathLike | None = None) -> bool:
        """True when this content is stored for this subject and session by this pipeline version
        (for this file, when ``path`` is given; a duplicate row does not count).

        Parameters
        ----------
        content_hash : str
            SHA-256 of the photo's bytes (:func:`skinscan.batch.file_hash`).
        pipeline_version : str
            :data:`skinscan.analysis.PIPELINE_VERSION` of the analysis wanted.
        subject, session : str
            The photo's labels.
        path : str or PathLike, optional
            The file, spelled as stored.

        Returns
        -------
        bool
        """
        sql = ("SELECT 1 FROM photos WHERE subject = ? AND session = ? AND content_hash = ? AND pipeline_version = ?"
               " AND status != 'duplicate'")
        params: tuple = (_text(subject), _text(session), content_hash, pipeline_version)
        if path is not None:
            sql, params = sql + " AND path = ?", params + (_text(os.fspath(path)),)
        return bool(self._read(sql, params))

    def stored(self, content_hash: str, pipeline_version: str, subject: str, session: str) -> list[tuple[str, str]]:
        """``(path, quality_flags)`` of the files whose result for this content, subject, session
        and pipeline version is stored (duplicates and photos to retry left out).

        Parameters
        ----------
        content_hash : str
            SHA-256 of the photo's bytes (:func:`skinscan.batch.file_hash`).
        pipeline_version : str
            :data:`skinscan.analysis.PIPELINE_VERSION` of the analysis wanted.
        subject, session : str
            The photo's labels.

        Returns
        -------
        list of (str, str)
            In the order they were stored; ``quality_flags`` is ';'-joined, '' for none.
        """
        return [(p, f or "") for p, f in self._read(
            "SELECT path, quality_flags FROM photos WHERE subject = ? AND session = ? AND content_hash = ?"
            " AND pipeline_version = ? AND status != 'duplicate' ORDER BY id",
            (_text(subject), _text(session), content_hash, pipeline_version))]

    def move(self, old_path: str | os.PathLike, new_path: str | os.PathLike) -> None:
        """Give a stored photo the path its file has now (renamed within its session).

        Parameters
        ----------
        old_path : str or PathLike
            The path stored.
        new_path : str or PathLike
            The file's path now; a row already stored at it is replaced.
        """
        old, new = _text(os.fspath(old_path)), _text(os.fspath(new_path))
        with self._write() as conn:
            conn.execute("DELETE FROM photos WHERE path = ?", (new,))
            conn.execute("UPDATE photos SET path = ? WHERE path = ?", (new, old))
            row = conn.execute("SELECT record_json FROM photos WHERE path = ?", (new,)).fetchone()
            if row and row[0]:
                record = json.loads(row[0])
                if "photo" in record:
                    record["photo"] = new
                    conn.execute("UPDATE photos SET record_json = ? WHERE path = ?", (json.dumps(record), new))

    def add_photo(self, entry: Mapping, *, record: Mapping | None = None,
                  metrics: Mapping[str, Mapping[str, float]] | None = None,
                  quality: Iterable[Mapping] | None = None, status: str = "analysed",
                  error: str | None = None, units: Mapping[str, str] | None = None,
                  detections: Mapping[str, Iterable] | None = None,
                  se: Mapping[str, Mapping[str, float]] | None = None) -> int:
        """Store one photo with its measurements and quality checks, in one transaction.

        Parameters
        ----------
        entry : mapping
            ``subject``, ``session``, ``session_index``, ``date`` (ISO string, date or None),
            ``path`` (or ``photo``), ``pipeline_version`` and ``content_hash`` (taken from ``record``
            when absent), optionally ``date_source``. ``PhotoEntry.as_dict()`` plus those two keys
            is enough.
        record : mapping, optional
            The photo's flat record (``PhotoAnalysis.record()``); kept as JSON.
        metrics : mapping, optional
            ``{region: {metric: value}}``; NaN and None are stored as NULL.
        quality : iterable of mapping, optional
            Dicts with ``name``, ``value``, ``threshold``, ``comparison``, ``unit``, ``passed``, ``detail``.
        status : {"analysed", "skipped", "duplicate"}
        error : str, optional
            Why a skipped photo was skipped (of a duplicate: which file it repeats).
        units : mapping, optional
            ``{metric: unit}`` (``skinscan.metrics.METRIC_UNITS``) for the measurements' unit column.
        se : mapping, optional
            ``{region: {metric: standard error}}`` of the photo's own values (NaN: unknown).
        detections : mapping of columns, optional
            ``kind``, ``region``, ``x_px``, ``y_px``, ``diameter_mm``, ``length_mm``, ``strength``
            of equal length (``PhotoAnalysis.detections``): one row per detected feature.

        Returns
        -------
        int
            The photo's row id. The row of the same path (whatever its subject, session, content
            or pipeline version) is replaced with its measurements and checks.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        record = dict(record or {})
        missing = [k for k in ("subject", "session", "pipeline_version") if entry.get(k) in (None, "")]
        content_hash = entry.get("content_hash") or record.get("content_hash")
        if not content_hash:
            missing.append("content_hash")
        if missing:
            raise ValueError(f"the photo entry lacks {', '.join(missing)}")
        subject, session = _text(entry["subject"]), _text(entry["session"])
        path = _text(str(entry.get("path") or entry.get("photo") or record.get("photo") or ""))
        day = entry.get("date")
        day = day.isoformat() if isinstance(day, (date, datetime)) else (str(day) if day else None)
        quality = [dict(q) for q in quality or []]
        flags = record.get("quality_flags")
        if flags is None:
            flags = ";".join(q["name"] for q in quality if not q.get("passed", True))
        record_json = json.dumps({_text(str(k)): _plain(v) for k, v in record.items()}) if record else None
        units = units or {}
        with self._write() as conn:
            conn.execute("DELETE FROM photos WHERE path = ?", (path,))
            photo_id = conn.execute(
                "INSERT INTO photos(subject, session, session_index, date, date_source, path, content_hash,"
                " pipeline_version, status, error, quality_flags, record_json, analysed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (subject, session, int(entry.get("session_index", 0)), day, entry.get("date_source"), path,
                 content_hash,
                 str(entry["pipeline_version"]), status, None if error is None else _text(str(error)),
                 _text(flags), record_json, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            ).lastrowid
            se = se or {}
            conn.executemany(
                "INSERT INTO measurements(photo_id, region, metric, value, unit, se) VALUES (?,?,?,?,?,?)",
                [(photo_id, str(region), str(metric), _real(value), units.get(metric),
                  _real(se.get(region, {}).get(metric)))
                 for region, values in (metrics or {}).items() for metric, value in values.items()])
            if detections is not None and len(detections["kind"]):
                conn.executemany(
                    "INSERT INTO detections(photo_id, kind, region, x_px, y_px, diameter_mm, length_mm, strength)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    [(photo_id, str(k), str(r), *map(_real, row)) for k, r, *row in
                     zip(*(detections[c] for c in _DETECTION_COLUMNS))])
            conn.executemany(
                "INSERT INTO quality(photo_id, name, value, threshold, comparison, unit, passed, detail)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [(photo_id, str(q["name"]), _real(q.get("value")), _real(q.get("threshold")), q.get("comparison"),
                  q.get("unit"), None if q.get("passed") is None else int(bool(q["passed"])), q.get("detail"))
                 for q in quality])
        return photo_id

    def update_sessions(self, entries: Iterable[Mapping]) -> None:
        """Rewrite stored ``session_index`` and ``date`` from a fresh discovery.

        A session added later (or earlier) shifts the others' indices, and photos skipped by
        :meth:`is_done` are not rewritten; call this once per run with every entry found.

        Parameters
        ----------
        entries : iterable of mapping
            ``subject``, ``session``, ``session_index`` and ``date`` (date, ISO string or None) of
            each photo found (``PhotoEntry.as_dict()``); every stored photo of a session gets them.
        """
        rows = {}
        for e in entries:
            day = e.get("date")
            day = day.isoformat() if isinstance(day, (date, datetime)) else (str(day) if day else None)
            rows[_text(e["subject"]), _text(e["session"])] = (int(e["session_index"]), day)
        with self._write() as conn:
            conn.executemany("UPDATE photos SET session_index = ?, date = ? WHERE subject = ? AND session = ?",
                             [(i, day, subject, session) for (subject, session), (i, day) in rows.items()])

    def forget_missing(self, scanned: Iterable[str | os.PathLike], present: Iterable[str | os.PathLike], *,
                       unscanned: Iterable[str | os.PathLike] = ()) -> list[str]:
        """Delete the photos stored from below the ``scanned`` folders whose path is not ``present``
        (files deleted, renamed or moved since they were stored), except below ``unscanned``
        folders (or at ``unscanned`` files), whose files were not looked at. Rows from other folders
        are untouched. Returns the paths deleted.

        Parameters
        ----------
        scanned : iterable of str or PathLike
            Folders whose photos were all listed, spelled as the stored paths are (absolute).
        present : iterable of str or PathLike
            The photo paths found there now.
        unscanned : iterable of str or PathLike
            Folders or files below ``scanned`` that were not looked at.

        Returns
        -------
        list of str
            The stored paths deleted.
        """
        inside = [_folder_prefix(p) for p in scanned]
        outside = [_folder_prefix(p) for p in unscanned]
        present = {_text(os.fspath(p)) for p in present}
        gone = [p for (p,) in self._read("SELECT path FROM photos")
                if p not in present and any(p.startswith(f) for f in inside)
                and not any(p.startswith(f) or p + os.sep == f for f in outside)]
        with self._write() as conn:
            conn.executemany("DELETE FROM photos WHERE path = ?", [(p,) for p in gone])
        return gone

    def fingerprint(self, *, per_subject: bool = False):
        """A digest of what the store holds (every photo's key, content, pipeline version, outcome
        and analysis time, and the treatment calendars): equal digests, equal tables. With
        ``per_subject``: ``{subject: digest}`` of the subjects with an analysed photo.

        Parameters
        ----------
        per_subject : bool
            One digest per subject instead of one for the store.

        Returns
        -------
        str or dict of str to str
            SHA-256 hex digest(s).
        """
        import hashlib

        photos = self._read("SELECT subject, session, session_index, date, path, content_hash, pipeline_version,"
                            " status, quality_flags, analysed_at FROM photos ORDER BY subject, path")
        calendars = self._read("SELECT subject, date, session, treatment FROM treatments ORDER BY subject, date, rowid")
        if not per_subject:
            return hashlib.sha256(json.dumps([photos, calendars]).encode()).hexdigest()
        by_subject: dict[str, list] = {}
        for row in photos:
            by_subject.setdefault(row[0], [[], []])[0].append(row)
        for row in calendars:
            if row[0] in by_subject:
                by_subject[row[0]][1].append(row)
        return {s: hashlib.sha256(json.dumps(rows).encode()).hexdigest() for s, rows in by_subject.items()
                if any(r[7] == "analysed" for r in rows[0])}

    def count_below(self, folder: str | os.PathLike) -> int:
        """How many photos are stored from below ``folder``.

        Parameters
        ----------
        folder : str or PathLike
            Spelled as the stored paths are (absolute).

        Returns
        -------
        int
        """
        prefix = _folder_prefix(folder)
        return sum(p.startswith(prefix) for (p,) in self._read("SELECT path FROM photos"))

    def set_treatments(self, subject: str, rows: Iterable[Mapping]) -> None:
        """Replace a subject's treatment calendar (its ``sessions.csv`` rows: ``date``, ``session``,
        ``treatment``, ``needle_depth_mm``, ``notes``), so reports can be rebuilt from the store alone.

        Parameters
        ----------
        subject : str
            Subject label.
        rows : iterable of mapping
            The calendar's rows; ``date`` (date or ISO string) is required, the others may be
            missing. An empty iterable clears the calendar.
        """
        values = []
        for r in rows:
            day = r["date"]
            values.append((_text(subject), day.isoformat() if isinstance(day, (date, datetime)) else str(day),
                           _text(r.get("session") or ""), _text(r.get("treatment") or ""),
                           _real(r.get("needle_depth_mm")), _text(r.get("notes") or "")))
        with self._write() as conn:
            conn.execute("DELETE FROM treatments WHERE subject = ?", (_text(subject),))
            conn.executemany("INSERT INTO treatments VALUES (?,?,?,?,?,?)", values)

    def treatments_frame(self) -> pd.DataFrame:
        """Every subject's stored treatment calendar: ``subject, date, session, treatment,
        needle_depth_mm, notes`` (``date`` a datetime.date)."""
        rows = self._read("SELECT subject, date, session, treatment, needle_depth_mm, notes FROM treatments"
                          " ORDER BY subject, date, rowid")
        frame = pd.DataFrame(rows, columns=_TREATMENT_COLUMNS)
        frame["date"] = [date.fromisoformat(d) for d in frame["date"]]
        return frame

    # ------------------------------------------------------------------ reading

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._retrying(lambda: self._conn.execute(sql, params).fetchall())

    def _retrying(self, fn):
        """``fn()``, again while SQLite says the store is busy, until ``busy_timeout`` has passed.

        SQLite's busy handler does not cover every case: a second process opening the store while
        the first switches it to WAL or recovers its WAL index gets "database is locked" at once
        (seen when two batches start on the same new store on a loaded machine). Any other SQLite
        error becomes a :class:`~skinscan.errors.SkinscanError` naming the store (a damaged file,
        a full disk).
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.Error as e:
                err = self._busy(e)
                if not isinstance(err, StoreBusyError) or time.monotonic() >= deadline:
                    raise err from None
                time.sleep(0.02)

    def photos_frame(self) -> pd.DataFrame:
        """One row per stored photo.

        Columns: ``subject, session, session_index, date, photo, status, error, quality_flags,
        date_source, content_hash, pipeline_version, analysed_at``, then the record's fields (those named like a
        column above are left out). ``date`` is datetime64 (NaT when undated), NaN stays NaN.
        """
        rows = self._read(f"SELECT p.subject, p.session, p.session_index, p.date, p.path, p.status, p.error,"
                          f" p.quality_flags, p.date_source, p.content_hash, p.pipeline_version, p.analysed_at,"
                          f" p.record_json FROM photos p ORDER BY {_ORDER}")
        base = pd.DataFrame([r[:-1] for r in rows], columns=_PHOTO_COLUMNS)
        records = [{k: v for k, v in json.loads(r[-1]).items() if k not in _PHOTO_COLUMNS} if r[-1] else {}
                   for r in rows]
        extra = pd.DataFrame.from_records(records, index=base.index) if records else pd.DataFrame(index=base.index)
        frame = pd.concat([base, extra], axis=1)
        for col in extra.columns:
            frame[col] = _uniform(frame[col])
        return _typed(frame)

    def values_frame(self) -> pd.DataFrame:
        """Tidy measurements, one row per photo, region and metric.

        Columns: ``subject, session, session_index, date, photo, region, metric, value, unit, se``;
        ``value`` is float64 with NaN where the metric could not be measured; ``se`` is the
        photo's own standard error of it, NaN where one photo cannot tell.
        """
        rows = self._read(f"SELECT p.subject, p.session, p.session_index, p.date, p.path, m.region, m.metric,"
                          f" m.value, m.unit, m.se FROM measurements m JOIN photos p ON p.id = m.photo_id"
                          f" ORDER BY {_ORDER}, m.region, m.metric")
        frame = _typed(pd.DataFrame(rows, columns=_VALUE_COLUMNS))
        frame[["value", "se"]] = frame[["value", "se"]].astype("float64")
        return frame

    def detections_frame(self) -> pd.DataFrame:
        """Every detected feature, one row each: ``photo, kind, region, x_px, y_px, diameter_mm,
        length_mm, strength`` (the photo's subject, session and date are in :meth:`photos_frame`:
        a face holds thousands of pores, and repeating them on every row tripled the table)."""
        rows = self._read(f"SELECT p.path, d.kind, d.region, d.x_px, d.y_px, d.diameter_mm, d.length_mm, d.strength"
                          f" FROM detections d JOIN photos p ON p.id = d.photo_id ORDER BY {_ORDER}, d.kind, d.rowid")
        frame = pd.DataFrame(rows, columns=["photo"] + _DETECTION_COLUMNS)
        numeric = _DETECTION_COLUMNS[2:]
        frame[numeric] = frame[numeric].astype("float64")
        return frame

    def quality_frame(self) -> pd.DataFrame:
        """Quality checks, one row per photo and check, with the photo's key columns."""
        rows = self._read(f"SELECT p.subject, p.session, p.session_index, p.date, p.path, q.name, q.value,"
                          f" q.threshold, q.comparison, q.unit, q.passed, q.detail FROM quality q"
                          f" JOIN photos p ON p.id = q.photo_id ORDER BY {_ORDER}, q.name")
        frame = _typed(pd.DataFrame(rows, columns=_KEY_COLUMNS + ["name", "value", "threshold", "comparison",
                                                                  "unit", "passed", "detail"]))
        frame[["value", "threshold"]] = frame[["value", "threshold"]].astype("float64")
        frame["passed"] = frame["passed"].astype("boolean")
        return frame

    def export(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``results.csv``/``.parquet`` (:meth:`values_frame`), ``photos.csv``/``.parquet``
        (:meth:`photos_frame`) and ``detections.csv``/``.parquet`` (:meth:`detections_frame`) into
        ``out_dir``; returns their paths by file name.

        Each file is written beside its target and renamed over it, so a reader never sees half a
        file; text cells of the CSV files are made inert for spreadsheets (:func:`skinscan._write.inert_text`).

        Parameters
        ----------
        out_dir : str or PathLike
            Folder to write into (created if missing).

        Returns
        -------
        dict of str to Path
            The six files, by file name (``results.csv``, ``results.parquet``...).

        Raises
        ------
        OutputError
            A file cannot be written.
        """
        out_dir = Path(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise output_error(e, out_dir / "results.csv", "table") from None
        frames = {"results": self.values_frame(), "photos": self.photos_frame(), "detections": self.detections_frame()}
        written = {}
        for stem, frame in frames.items():
            csv_path, parquet_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"
            # Detections to 6 significant digits (a hundredth of a pixel, a micrometre): a face's
            # thousands of rows at float64's 17 digits were most of the output folder.
            digits = {"float_format": "%.6g"} if stem == "detections" else {}
            written[csv_path.name] = write_csv(frame, csv_path, date_format="%Y-%m-%d", **digits)
            written[parquet_path.name] = atomic_write(parquet_path, lambda tmp: frame.to_parquet(tmp, index=False),
                                                      what="table")
        return written

    def integrity_ok(self) -> bool:
        """True when ``PRAGMA integrity_check`` says ``ok`` and no foreign key is dangling."""
        return (self._read("PRAGMA integrity_check") == [("ok",)]
                and not self._read("PRAGMA foreign_key_check"))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error), with lock timeouts as StoreBusyError.

    IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes can
    fail at once in WAL mode, without waiting, when another process wrote in between.
    """

    def __init__(self, store: ResultStore):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._retrying(lambda: self.store._conn.execute("BEGIN IMMEDIATE"))
        return self.store._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        conn = self.store._conn
        if exc_type is not None:
            if conn.in_transaction:
                conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise self.store._busy(exc) from None
            return
        try:
            conn.commit()
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.rollback()
            raise self.store._busy(e) from None


def _folder_prefix(folder) -> str:
    """``folder`` as the prefix every path below it starts with."""
    return _text(os.path.join(os.fspath(folder), ""))


def _text(value) -> str:
    """Text that SQLite, CSV and Parquet accept: undecodable file-name bytes become ``\\xNN``."""
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _real(value) -> float | None:
    """A REAL for SQLite: NaN and None become NULL (read back as NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _plain(value):
    """A record value as JSON can hold it (NaN and inf are kept, as JSON's common extension)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _text(value)


def _uniform(column: pd.Series) -> pd.Series:
    """A record column Parquet round-trips: mixed types (a field that is text in one record and a
    number in another) become text, and a missing value is None, as Parquet gives it back."""
    if column.dtype != object:
        return column
    present = column.notna()
    if column[present].map(type).nunique() > 1:
        column = column.map(str)
    return column.where(present, None)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["session_index"] = frame["session_index"].astype("int64")
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d").astype("datetime64[ns]")
    return frame
