"""The SQLite results store: uniqueness, atomic idempotent writes, NaN, frames, export, two writers at once."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinscan.errors import SkinscanError
from skinscan.store import SCHEMA_VERSION, ResultStore, StoreBusyError

VERSION = "0.1.0"
UNITS = {"redness_a": "a*", "pore_density_per_cm2": "1/cm2", "roughness_mm": "mm"}


def entry(subject="anna", session="2026-03-14", index=0, day="2026-03-14", path=None, content_hash="h0",
          version=VERSION):
    return {"subject": subject, "session": session, "session_index": index, "date": day,
            "path": path or f"/photos/{subject}/{session}/{content_hash}.jpg", "content_hash": content_hash,
            "pipeline_version": version}


def metrics(seed: float = 1.0) -> dict:
    return {"cheek_left": {"redness_a": 12.5 * seed, "pore_density_per_cm2": float("nan"), "roughness_mm": None},
            "forehead": {"redness_a": 9.25 * seed, "pore_density_per_cm2": 40.0 * seed, "roughness_mm": 0.011}}


def quality() -> list[dict]:
    return [{"name": "sharpness", "value": 0.2, "threshold": 0.35, "comparison": ">=", "unit": "", "passed": False,
             "detail": "blurred"},
            {"name": "reference", "value": float("nan"), "threshold": 1.0, "comparison": "<=", "unit": "mm",
             "passed": True, "detail": "no reference photo"}]


def record(content_hash="h0", **extra) -> dict:
    return {"photo": "/ignored/in/favour/of/entry.jpg", "content_hash": content_hash, "capture_time": "",
            "width": 640, "height": 480, "faces": 1, "mm_per_px": 0.125, "px_per_mm": 8.0, "ipd_mm": float("nan"),
            "yaw_deg": np.float32(3.5), "light_source": "sclera", "quality_flags": "sharpness",
            "q_sharpness": 0.2, "area_mm2_forehead": 2500.0, **extra}


def add(store: ResultStore, **kw) -> int:
    e = entry(**kw)
    return store.add_photo(e, record=record(e["content_hash"]), metrics=metrics(), quality=quality(),
                           status="analysed", units=UNITS)


def text(column: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in column]


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def db(tmp_path):
    return tmp_path / "out" / "skinscan.sqlite"


# --------------------------------------------------------------------------- schema


def test_new_store_has_versioned_schema_wal_and_timeouts(db):
    with ResultStore(db, busy_timeout=2.5) as store:
        conn = store._conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert store.integrity_ok()
    with ResultStore(db) as store:  # reopening keeps the data and does not recreate tables
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000


def test_store_from_a_newer_skinscan_is_refused(db):
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SkinscanError, match="newer than this skinscan"):
        ResultStore(db)


# --------------------------------------------------------------------------- uniqueness and idempotence


def test_is_done_matches_content_version_subject_and_session(db):
    with ResultStore(db) as store:
        assert not store.is_done("h0", VERSION, "anna", "2026-03-14")
        add(store)
        assert store.is_done("h0", VERSION, "anna", "2026-03-14")
        assert not store.is_done("h0", "0.2.0", "anna", "2026-03-14")
        assert not store.is_done("h0", VERSION, "ben", "2026-03-14")
        assert not store.is_done("h0", VERSION, "anna", "2026-04-01")
        assert not store.is_done("h1", VERSION, "anna", "2026-03-14")


def test_readding_a_photo_replaces_it_with_all_its_rows(db):
    with ResultStore(db) as store:
        first = add(store)
        e = entry()
        again = store.add_photo(e, record=record(), metrics={"forehead": {"redness_a": 7.0}},
                                quality=quality()[:1], status="analysed", units=UNITS)
        assert count(db, "photos") == 1 and count(db, "measurements") == 1 and count(db, "quality") == 1
        assert again == first  # the freed id is reused; nothing refers to the old rows any more
        values = store.values_frame()
        assert values[["region", "metric", "value"]].values.tolist() == [["forehead", "redness_a", 7.0]]

        # a file is one row: analysed again under another session (moved), it leaves the old one
        path = entry()["path"]
        add(store, session="2026-04-01", index=1, day="2026-04-01", path=path)
        assert store.photos_frame()[["session", "photo"]].values.tolist() == [["2026-04-01", path]]
        # the same bytes in other files are other rows
        add(store, path="/photos/anna/copy of it.jpg")
        add(store, subject="ben")
        assert count(db, "photos") == 3
        assert store.integrity_ok()


def test_a_file_skipped_then_analysed_has_one_row(db):
    with ResultStore(db) as store:
        store.add_photo(entry(subject="(unsorted)", session="(none)", path="/p/a.jpg", content_hash="path:x"),
                        status="skipped", error="no capture date")
        add(store, path="/p/a.jpg")
        assert store.photos_frame()[["subject", "status"]].values.tolist() == [["anna", "analysed"]]


def test_duplicates_are_listed_and_never_count_as_the_stored_result(db):
    with ResultStore(db) as store:
        add(store, path="/p/first.jpg")
        store.add_photo(entry(path="/p/second.jpg"), record={"photo": "/p/second.jpg", "duplicate_of": "/p/first.jpg"},
                        status="duplicate", error="same content as first.jpg")
        frame = store.photos_frame()
        assert frame["status"].tolist() == ["analysed", "duplicate"]
        assert frame["duplicate_of"].tolist()[1] == "/p/first.jpg"
        assert count(db, "measurements") == 6  # the duplicate has none
        assert store.stored("h0", VERSION, "anna", "2026-03-14") == [("/p/first.jpg", "sharpness")]
        assert not store.is_done("h0", VERSION, "anna", "2026-03-14", path="/p/second.jpg")
        assert store.is_done("h0", VERSION, "anna", "2026-03-14", path="/p/first.jpg")


def test_a_renamed_file_keeps_its_result(db):
    with ResultStore(db) as store:
        add(store, path="/p/IMG_1.jpg")
        store.move("/p/IMG_1.jpg", "/p/before.jpg")
        frame = store.photos_frame()
        assert frame["photo"].tolist() == ["/p/before.jpg"] and count(db, "measurements") == 6
        assert store.is_done("h0", VERSION, "anna", "2026-03-14", path="/p/before.jpg")


def test_forget_missing_only_below_the_folders_scanned(db, tmp_path):
    with ResultStore(db) as store:
        for path, h in (("/photos/anna/2026-03-14/a.jpg", "a"), ("/photos/anna/2026-03-14/gone.jpg", "g"),
                        ("/photos/anna/2026-04-01/locked/x.jpg", "x"), ("/photos/annabel/y.jpg", "y"),
                        ("/elsewhere/z.jpg", "z")):
            add(store, path=path, content_hash=h)
        gone = store.forget_missing(["/photos/anna"], ["/photos/anna/2026-03-14/a.jpg"],
                                    unscanned=["/photos/anna/2026-04-01/locked"])
        assert gone == ["/photos/anna/2026-03-14/gone.jpg"]  # not /photos/annabel: a prefix is not a folder
        assert sorted(store.photos_frame()["photo"]) == ["/elsewhere/z.jpg", "/photos/anna/2026-03-14/a.jpg",
                                                         "/photos/anna/2026-04-01/locked/x.jpg", "/photos/annabel/y.jpg"]
        assert store.count_below("/photos") == 3 and count(db, "measurements") == 4 * 6


def test_treatment_calendars_are_stored_per_subject(db):
    with ResultStore(db) as store:
        store.set_treatments("anna", [{"date": date(2026, 3, 14), "session": "first", "treatment": "mn",
                                       "needle_depth_mm": 0.5, "notes": "=cmd"}])
        store.set_treatments("ben", [{"date": "2026-04-01", "treatment": ""}])
        store.set_treatments("anna", [{"date": date(2026, 3, 15), "treatment": "mn"}])  # replaced, not added
        frame = store.treatments_frame()
    assert frame[["subject", "date", "treatment"]].values.tolist() == [["anna", date(2026, 3, 15), "mn"],
                                                                         ["ben", date(2026, 4, 1), ""]]


def test_a_store_of_schema_1_is_migrated_keeping_every_result(db):
    """Version 1 keyed photos by content; a moved file could hold two rows, of which the newer is kept."""
    db.parent.mkdir(parents=True)
    v1 = """
    CREATE TABLE photos(id INTEGER PRIMARY KEY, subject TEXT NOT NULL, session TEXT NOT NULL,
        session_index INTEGER NOT NULL, date TEXT, path TEXT NOT NULL, content_hash TEXT NOT NULL,
        pipeline_version TEXT NOT NULL, status TEXT NOT NULL CHECK(status IN ('analysed', 'skipped')), error TEXT,
        quality_flags TEXT, record_json TEXT, analysed_at TEXT NOT NULL, UNIQUE(subject, session, content_hash));
    CREATE INDEX photos_path ON photos(subject, session, path);
    CREATE TABLE measurements(photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE, region TEXT NOT NULL,
        metric TEXT NOT NULL, value REAL, unit TEXT, PRIMARY KEY(photo_id, region, metric)) WITHOUT ROWID;
    CREATE TABLE quality(photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE, name TEXT NOT NULL,
        value REAL, threshold REAL, comparison TEXT, unit TEXT, passed INTEGER, detail TEXT,
        PRIMARY KEY(photo_id, name)) WITHOUT ROWID;
    INSERT INTO photos VALUES (1, 'anna', 's1', 0, NULL, '/p/a.jpg', 'h', '0.3.8', 'analysed', NULL, '', NULL, 't');
    INSERT INTO photos VALUES (2, 'anna', 's2', 1, NULL, '/p/a.jpg', 'h', '0.3.8', 'analysed', NULL, '', NULL, 't');
    INSERT INTO photos VALUES (3, 'anna', 's2', 1, NULL, '/p/b.jpg', 'k', '0.3.8', 'analysed', NULL, '', NULL, 't');
    INSERT INTO measurements VALUES (1, 'face', 'a_star', 1.0, 'a*'), (2, 'face', 'a_star', 2.0, 'a*'),
                                    (3, 'face', 'a_star', 3.0, 'a*');
    PRAGMA user_version = 1;
    """
    with sqlite3.connect(db) as conn:
        conn.executescript(v1)
    with ResultStore(db) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.values_frame()[["session", "photo", "value"]].values.tolist() == [
            ["s2", "/p/a.jpg", 2.0], ["s2", "/p/b.jpg", 3.0]]
        assert store.integrity_ok() and store.treatments_frame().empty
        add(store, path="/p/c.jpg", content_hash="h")  # the new key: same content, another file
        assert count(db, "photos") == 3


@pytest.mark.parametrize("damage", ["not a database", "garbage pages"])
def test_a_damaged_store_is_named_with_what_to_do(db, damage):
    with ResultStore(db) as store:
        for i in range(40):
            add(store, path=f"/p/{i}.jpg", content_hash=f"h{i}")
    data = bytearray(db.read_bytes()) if damage == "garbage pages" else bytearray(b"this is not sqlite " * 300)
    if damage == "garbage pages":  # the schema page intact, the tables' pages overwritten
        data[4096:] = (bytes(range(256)) * (len(data) // 256 + 1))[:len(data) - 4096]
    db.write_bytes(bytes(data))
    for wal in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        wal.unlink(missing_ok=True)
    with pytest.raises(SkinscanError) as info:
        with ResultStore(db) as store:
            store.values_frame()
            store.photos_frame()
    assert info.value.path == db and "damaged" in info.value.reason and "move it aside" in info.value.reason


def test_new_pipeline_version_replaces_the_old_result(db):
    with ResultStore(db) as store:
        add(store)
        add(store, version="0.2.0")
        frame = store.photos_frame()
        assert frame["pipeline_version"].tolist() == ["0.2.0"]
        assert store.is_done("h0", "0.2.0", "anna", "2026-03-14")
        assert not store.is_done("h0", VERSION, "anna", "2026-03-14")
        assert count(db, "measurements") == 6


def test_edited_file_at_the_same_path_replaces_the_old_content(db):
    with ResultStore(db) as store:
        add(store, path="/p/a.jpg", content_hash="before-edit")
        add(store, path="/p/a.jpg", content_hash="after-edit")
        assert store.photos_frame()["content_hash"].tolist() == ["after-edit"]


def test_failed_write_leaves_the_previous_rows_untouched(db):
    with ResultStore(db) as store:
        add(store)
        with pytest.raises(ValueError):
            store.add_photo(entry(), metrics={"forehead": {"redness_a": "not a number"}}, status="analysed")
        assert count(db, "photos") == 1 and count(db, "measurements") == 6 and count(db, "quality") == 2
        assert store.values_frame()["value"].notna().sum() == 4


def test_bad_entries_are_refused(db):
    with ResultStore(db) as store:
        with pytest.raises(ValueError, match="status"):
            store.add_photo(entry(), status="done")
        with pytest.raises(ValueError, match="content_hash"):
            store.add_photo({**entry(), "content_hash": None}, status="skipped")
        with pytest.raises(ValueError, match="subject"):
            store.add_photo({**entry(), "subject": ""}, status="skipped")
        # the hash may come from the record instead of the entry
        store.add_photo({**entry(), "content_hash": None}, record={"content_hash": "from-record"}, status="skipped")
        assert store.is_done("from-record", VERSION, "anna", "2026-03-14")


# --------------------------------------------------------------------------- frames


def test_frames_have_columns_dtypes_and_nan(db):
    with ResultStore(db) as store:
        add(store, content_hash="h1")
        store.add_photo(entry(session="session-2", index=1, day=None, content_hash="h2"), status="skipped",
                        error="no face found", quality=quality())
        photos, values = store.photos_frame(), store.values_frame()

    assert list(photos.columns[:12]) == ["subject", "session", "session_index", "date", "photo", "status", "error",
                                         "quality_flags", "date_source", "content_hash", "pipeline_version",
                                         "analysed_at"]
    assert {"width", "mm_per_px", "ipd_mm", "yaw_deg", "light_source", "q_sharpness"} <= set(photos.columns)
    assert photos.columns.is_unique  # the record's photo/content_hash/quality_flags do not repeat
    assert photos["status"].tolist() == ["analysed", "skipped"]
    assert photos["photo"][0] == "/photos/anna/2026-03-14/h1.jpg"
    assert photos["session_index"].dtype == np.int64
    assert photos["date"].dtype == "datetime64[ns]"
    assert photos["date"][0] == pd.Timestamp(2026, 3, 14) and pd.isna(photos["date"][1])
    assert photos["mm_per_px"].dtype == np.float64 and math.isnan(photos["ipd_mm"][0])
    assert photos["yaw_deg"][0] == pytest.approx(3.5)
    assert photos["quality_flags"].tolist() == ["sharpness", "sharpness"]  # from the checks when no record
    assert pd.isna(photos["error"][0]) and photos["error"][1] == "no face found"
    assert pd.isna(photos["mm_per_px"][1])

    assert list(values.columns) == ["subject", "session", "session_index", "date", "photo", "region", "metric",
                                    "value", "unit", "se"]
    assert values["value"].dtype == np.float64 and values["session_index"].dtype == np.int64
    by_key = values.set_index(["region", "metric"])
    assert by_key.loc[("forehead", "redness_a"), "value"] == 9.25
    assert by_key.loc[("forehead", "redness_a"), "unit"] == "a*"
    assert math.isnan(by_key.loc[("cheek_left", "pore_density_per_cm2"), "value"])  # NaN in, NaN out
    assert math.isnan(by_key.loc[("cheek_left", "roughness_mm"), "value"])  # None in, NaN out
    assert len(values) == 6


def test_quality_frame_round_trips_checks(db):
    with ResultStore(db) as store:
        add(store)
        q = store.quality_frame()
    assert q[["name", "passed", "detail"]].values.tolist() == [
        ["reference", True, "no reference photo"], ["sharpness", False, "blurred"]]
    assert math.isnan(q["value"][0]) and q["threshold"].tolist() == [1.0, 0.35]


def test_empty_store_gives_empty_frames_with_columns(db):
    with ResultStore(db) as store:
        assert list(store.values_frame().columns)[-3:] == ["value", "unit", "se"] and store.values_frame().empty
        assert "quality_flags" in store.photos_frame().columns and store.photos_frame().empty


def test_session_indices_follow_a_later_discovery_and_missing_photos_are_forgotten(db):
    with ResultStore(db) as store:
        add(store, content_hash="a", session="2026-03-14", index=0)
        add(store, content_hash="b", session="2026-04-01", index=1, day="2026-04-01")
        store.update_sessions([{"subject": "anna", "session": "2026-03-14", "session_index": 1,
                                "date": date(2026, 3, 14)},
                               {"subject": "anna", "session": "2026-04-01", "session_index": 2, "date": "2026-04-01"}])
        assert store.photos_frame()["session_index"].tolist() == [1, 2]
        assert store.forget_missing(["/photos/anna"], ["/photos/anna/2026-04-01/b.jpg"]) == [
            "/photos/anna/2026-03-14/a.jpg"]
        assert store.photos_frame()["content_hash"].tolist() == ["b"]
        assert count(db, "measurements") == 6 and store.integrity_ok()


def test_odd_values_are_stored_as_text_json_can_hold(db):
    undecodable = "/photos/caf\udce9.jpg"  # a non-UTF-8 file name as Python's os functions return it
    with ResultStore(db) as store:
        store.add_photo({**entry(path=undecodable), "date": date(2026, 3, 14)},
                        record=record(n=np.int64(3), when=datetime(2026, 3, 14, 10, 0), where=Path("/x"),
                                      inf=float("inf")), status="analysed")
        photos = store.photos_frame()
        store.export(db.parent / "export")
    assert photos["photo"][0] == "/photos/caf\\xe9.jpg"
    assert photos["n"][0] == 3 and photos["when"][0] == "2026-03-14T10:00:00" and photos["where"][0] == "/x"
    assert photos["inf"][0] == math.inf


# --------------------------------------------------------------------------- export


def test_export_files_read_back_equal(db, tmp_path):
    with ResultStore(db) as store:
        for i in range(3):
            e = entry(content_hash=f"h{i}", session=f"2026-0{i + 1}-01", index=i, day=f"2026-0{i + 1}-01")
            found = {"kind": np.array(["pore", "line"], object), "region": np.array(["nose", "=face"], object),
                     "x_px": np.array([10.5, 20.0]), "y_px": np.array([3.25, 4.0]),
                     "diameter_mm": np.array([0.42, np.nan]), "length_mm": np.array([np.nan, 3.5]),
                     "strength": np.array([0.05, 0.02 * i])}
            store.add_photo(e, record=record(f"h{i}", mm_per_px=0.1 / 3 * (i + 1), odd="text" if i == 0 else i), metrics=metrics(1 + i / 7),
                            quality=quality(), status="analysed", units=UNITS, detections=found)
        store.add_photo(entry(content_hash="h9", day=None, session="session-9", index=3), status="skipped",
                        error="image data is truncated")
        written = store.export(tmp_path / "export")
        frames = {"results": store.values_frame(), "photos": store.photos_frame(), "detections": store.detections_frame()}

    assert text(frames["photos"]["odd"]) == ["text", "1", "2", ""]  # text in one record: text in all
    assert sorted(written) == ["detections.csv", "detections.parquet", "photos.csv", "photos.parquet", "results.csv",
                               "results.parquet"]
    assert len(frames["detections"]) == 6 and frames["detections"]["kind"].tolist()[:2] == ["line", "pore"]
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(written)  # no temporary left
    for stem, frame in frames.items():
        pd.testing.assert_frame_equal(pd.read_parquet(written[f"{stem}.parquet"]), frame)
        back = pd.read_csv(written[f"{stem}.csv"], parse_dates=["date"] if "date" in frame else None)
        assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
        for col in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
                np.testing.assert_allclose(back[col].to_numpy(float), frame[col].to_numpy(float),
                                           rtol=1e-12 if stem != "detections" else 1e-6, equal_nan=True, err_msg=col)
            elif col == "date":
                assert back[col].equals(frame[col].astype(back[col].dtype)), col
            else:  # CSV cannot tell an empty string from a missing one; a formula-like text is made inert
                assert text(back[col]) == [("'" + v if v.startswith("=") else v) for v in text(frame[col])], col


# --------------------------------------------------------------------------- concurrency


def test_locked_store_raises_a_clear_busy_error(db):
    ResultStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with ResultStore(db, busy_timeout=0.2) as store:
            start = time.monotonic()
            with pytest.raises(StoreBusyError, match="another skinscan process is writing") as err:
                add(store)
            assert time.monotonic() - start >= 0.15  # it waited before giving up
            assert isinstance(err.value, SkinscanError)
            assert "--out" in str(err.value)
            assert store.photos_frame().empty  # readers are not blocked by the writer (WAL)
    finally:
        holder.rollback()
        holder.close()
    with ResultStore(db) as store:
        add(store)
        assert len(store.photos_frame()) == 1


def _writer(path: str, worker: int, n: int, barrier) -> None:
    """Runs in a spawned process: n photos of its own plus five both writers add."""
    with ResultStore(path) as store:
        barrier.wait(timeout=60)
        for i in range(n):
            e = entry(subject=f"s{i % 4}", session=f"2026-03-{1 + i % 5:02d}", content_hash=f"w{worker}-{i}")
            store.add_photo(e, record=record(e["content_hash"]), metrics=metrics(i), quality=quality(),
                            status="analysed", units=UNITS)
            if i % 10 == 0:
                shared = entry(subject="shared", content_hash=f"shared-{i}")
                store.add_photo(shared, metrics=metrics(worker), status="analysed")


def test_two_processes_write_one_store_without_loss_or_duplicates(db):
    ResultStore(db).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(db), w, 50, barrier)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    with ResultStore(db) as store:
        assert store.integrity_ok()
        photos = store.photos_frame()
        assert len(photos[photos["subject"] != "shared"]) == 100
        assert sorted(photos.loc[photos["subject"] == "shared", "content_hash"]) == [f"shared-{i}" for i in
                                                                                     range(0, 50, 10)]
        assert not photos.duplicated(["subject", "session", "content_hash"]).any()
        assert len(store.values_frame()) == 105 * 6
        assert count(db, "quality") == 100 * 2
