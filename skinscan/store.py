"""The results store: one SQLite file of per-photo records, measurements and quality checks, exported as tidy CSV/Parquet.

The store knows nothing of the pipeline: it receives plain dicts (an entry, a photo's record, its
``{region: {metric: value}}`` metrics and its quality checks as dicts) and hands back pandas frames.

Uniqueness
----------
A photo row is identified by ``(subject, session, content_hash)``: the same bytes in the same
session are one photo whatever the file is called, and the same bytes filed under two sessions
are two rows. ``pipeline_version`` is not part of the key but is checked by :meth:`ResultStore.is_done`,
so a new pipeline version re-analyses a photo and its new row *replaces* the old one; the store
never mixes two versions' numbers for one photo. Re-adding a path of the same session with new
content (an edited file) also replaces that path's old row.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SkinscanError

__all__ = ["ResultStore", "StoreBusyError", "SCHEMA_VERSION", "STATUSES"]

SCHEMA_VERSION = 1
STATUSES = ("analysed", "skipped")

_SCHEMA = """
CREATE TABLE photos(
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    session TEXT NOT NULL,
    session_index INTEGER NOT NULL,
    date TEXT,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    pipeline_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ('analysed', 'skipped')),
    error TEXT,
    quality_flags TEXT,
    record_json TEXT,
    analysed_at TEXT NOT NULL,
    UNIQUE(subject, session, content_hash)
);
CREATE INDEX photos_path ON photos(subject, session, path);
CREATE TABLE measurements(
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    unit TEXT,
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

_KEY_COLUMNS = ["subject", "session", "session_index", "date", "photo"]
_PHOTO_COLUMNS = _KEY_COLUMNS + ["status", "error", "quality_flags", "content_hash", "pipeline_version",
                                 "analysed_at"]
_VALUE_COLUMNS = _KEY_COLUMNS + ["region", "metric", "value", "unit"]
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
    >>> with ResultStore("out/skinscan.sqlite") as store:                      # doctest: +SKIP
    ...     if not store.is_done(h, PIPELINE_VERSION, "anna", "2026-03-14"):
    ...         store.add_photo(entry, record=a.record(), metrics=a.metrics, units=METRIC_UNITS,
    ...                         quality=[q.as_dict() for q in a.quality], status="analysed")
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

    def _busy(self, e: sqlite3.OperationalError) -> Exception:
        code = getattr(e, "sqlite_errorcode", None)
        if (code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)) or "locked" in str(e):
            return StoreBusyError(
                f"the results store stayed locked for over {self.busy_timeout:g} s: another skinscan "
                "process is writing the same store; wait for it to finish or use another --out", self.path)
        return SkinscanError(f"results store error ({e})", self.path)

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
        if version > SCHEMA_VERSION:
            raise SkinscanError(f"the results store has schema version {version}, newer than this skinscan's "
                                f"{SCHEMA_VERSION}; upgrade skinscan or use another --out", self.path)

    # ------------------------------------------------------------------ writing

    def is_done(self, content_hash: str, pipeline_version: str, subject: str, session: str) -> bool:
        """True when this content is stored for this subject and session by this pipeline version."""
        row = self._read("SELECT 1 FROM photos WHERE subject = ? AND session = ? AND content_hash = ? "
                         "AND pipeline_version = ?", (_text(subject), _text(session), content_hash,
                                                      pipeline_version))
        return bool(row)

    def add_photo(self, entry: Mapping, *, record: Mapping | None = None,
                  metrics: Mapping[str, Mapping[str, float]] | None = None,
                  quality: Iterable[Mapping] | None = None, status: str = "analysed",
                  error: str | None = None, units: Mapping[str, str] | None = None) -> int:
        """Store one photo with its measurements and quality checks, in one transaction.

        Parameters
        ----------
        entry : mapping
            ``subject``, ``session``, ``session_index``, ``date`` (ISO string, date or None),
            ``path`` (or ``photo``), ``pipeline_version`` and ``content_hash`` (taken from ``record``
            when absent). ``PhotoEntry.as_dict()`` plus those two keys is enough.
        record : mapping, optional
            The photo's flat record (``PhotoAnalysis.record()``); kept as JSON.
        metrics : mapping, optional
            ``{region: {metric: value}}``; NaN and None are stored as NULL.
        quality : iterable of mapping, optional
            Dicts with ``name``, ``value``, ``threshold``, ``comparison``, ``unit``, ``passed``, ``detail``.
        status : {"analysed", "skipped"}
        error : str, optional
            Why a skipped photo was skipped.
        units : mapping, optional
            ``{metric: unit}`` (``skinscan.metrics.METRIC_UNITS``) for the measurements' unit column.

        Returns
        -------
        int
            The photo's row id. Any row of the same subject, session and content hash (any pipeline
            version), or of the same path, is replaced with its measurements and checks.
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
            conn.execute("DELETE FROM photos WHERE subject = ? AND session = ? AND (content_hash = ? OR path = ?)",
                         (subject, session, content_hash, path))
            photo_id = conn.execute(
                "INSERT INTO photos(subject, session, session_index, date, path, content_hash, pipeline_version,"
                " status, error, quality_flags, record_json, analysed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (subject, session, int(entry.get("session_index", 0)), day, path, content_hash,
                 str(entry["pipeline_version"]), status, None if error is None else _text(str(error)),
                 _text(flags), record_json, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            ).lastrowid
            conn.executemany(
                "INSERT INTO measurements(photo_id, region, metric, value, unit) VALUES (?,?,?,?,?)",
                [(photo_id, str(region), str(metric), _real(value), units.get(metric))
                 for region, values in (metrics or {}).items() for metric, value in values.items()])
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
        """
        rows = {}
        for e in entries:
            day = e.get("date")
            day = day.isoformat() if isinstance(day, (date, datetime)) else (str(day) if day else None)
            rows[_text(e["subject"]), _text(e["session"])] = (int(e["session_index"]), day)
        with self._write() as conn:
            conn.executemany("UPDATE photos SET session_index = ?, date = ? WHERE subject = ? AND session = ?",
                             [(i, day, subject, session) for (subject, session), (i, day) in rows.items()])

    def prune(self, keep: Iterable[tuple[str, str, str]]) -> int:
        """Delete photos whose ``(subject, session, content_hash)`` is not in ``keep`` (files removed
        or moved since they were stored); returns how many were deleted."""
        keep = {(_text(s), _text(t), h) for s, t, h in keep}
        rows = self._read("SELECT id, subject, session, content_hash FROM photos")
        gone = [(i,) for i, *key in rows if tuple(key) not in keep]
        with self._write() as conn:
            conn.executemany("DELETE FROM photos WHERE id = ?", gone)
        return len(gone)

    # ------------------------------------------------------------------ reading

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._retrying(lambda: self._conn.execute(sql, params).fetchall())

    def _retrying(self, fn):
        """``fn()``, again while SQLite says the store is busy, until ``busy_timeout`` has passed.

        SQLite's busy handler does not cover every case: a second process opening the store while
        the first switches it to WAL or recovers its WAL index gets "database is locked" at once
        (seen when two batches start on the same new store on a loaded machine).
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                err = self._busy(e)
                if not isinstance(err, StoreBusyError) or time.monotonic() >= deadline:
                    raise err from e
                time.sleep(0.02)

    def photos_frame(self) -> pd.DataFrame:
        """One row per stored photo.

        Columns: ``subject, session, session_index, date, photo, status, error, quality_flags,
        content_hash, pipeline_version, analysed_at``, then the record's fields (those named like a
        column above are left out). ``date`` is datetime64 (NaT when undated), NaN stays NaN.
        """
        rows = self._read(f"SELECT p.subject, p.session, p.session_index, p.date, p.path, p.status, p.error,"
                          f" p.quality_flags, p.content_hash, p.pipeline_version, p.analysed_at, p.record_json"
                          f" FROM photos p ORDER BY {_ORDER}")
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

        Columns: ``subject, session, session_index, date, photo, region, metric, value, unit``;
        ``value`` is float64 with NaN where the metric could not be measured.
        """
        rows = self._read(f"SELECT p.subject, p.session, p.session_index, p.date, p.path, m.region, m.metric,"
                          f" m.value, m.unit FROM measurements m JOIN photos p ON p.id = m.photo_id"
                          f" ORDER BY {_ORDER}, m.region, m.metric")
        frame = _typed(pd.DataFrame(rows, columns=_VALUE_COLUMNS))
        frame["value"] = frame["value"].astype("float64")
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
        """Write ``results.csv``/``.parquet`` (:meth:`values_frame`) and ``photos.csv``/``.parquet``
        (:meth:`photos_frame`) into ``out_dir``; returns their paths by file name.

        Each file is written beside its target and renamed over it, so a reader never sees half a file.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        frames = {"results": self.values_frame(), "photos": self.photos_frame()}
        written = {}
        for stem, frame in frames.items():
            for suffix in (".csv", ".parquet"):
                target = out_dir / f"{stem}{suffix}"
                # Not mkstemp: its files are private (0600); an export gets the usual permissions (umask).
                tmp = out_dir / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"
                try:
                    if suffix == ".csv":
                        frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
                    else:
                        frame.to_parquet(tmp, index=False)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written[target.name] = target
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
            conn.rollback()
            if isinstance(exc, sqlite3.OperationalError):
                raise self.store._busy(exc) from exc
            return
        try:
            conn.commit()
        except sqlite3.OperationalError as e:
            conn.rollback()
            raise self.store._busy(e) from e


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
