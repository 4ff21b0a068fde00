"""Discovery of subjects and sessions in folder trees built here from tiny real JPEGs."""

from __future__ import annotations

import os
import sys
import threading
import unicodedata
from datetime import date, datetime
from pathlib import Path

import pytest
from PIL import Image

from skinscan.discover import (UNDATED_SESSION, PhotoEntry, SessionInfo, discover, parse_session_folder,
                               printable, read_sessions_csv, safe_name)


def jpeg(path: Path, when: str | None = None, *, offset: str | None = None) -> Path:
    """An 8 x 8 JPEG, with EXIF DateTimeOriginal ``when`` ("YYYY:MM:DD HH:MM:SS") when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (8, 8), (200, 150, 120))
    if when is None:
        img.save(path)
        return path
    exif = Image.Exif()
    exif[0x0132] = when  # Pillow drops an Exif whose main IFD is empty
    exif.get_ifd(0x8769)[0x9003] = when
    if offset:
        exif.get_ifd(0x8769)[0x9011] = offset
    img.save(path, exif=exif.tobytes())
    return path


def layout(entries: list[PhotoEntry]) -> list[tuple]:
    return [(e.subject, e.session, e.session_index, e.date, e.date_source, e.path.name) for e in entries]


def reasons(found, path: Path) -> list[str]:
    return [r for p, r in found.skipped if Path(p) == path]


# --------------------------------------------------------------------------- layouts


def test_subject_session_folders_are_ordered_by_date_then_undated_by_name(tmp_path):
    jpeg(tmp_path / "anna" / "2026-03-14" / "a.jpg", "2026:03:14 10:00:00")
    jpeg(tmp_path / "anna" / "2026-01-02 first visit" / "b.jpg")  # no EXIF: the folder dates it
    jpeg(tmp_path / "anna" / "2026-02-01_after" / "c.jpg", "2026:02:01 18:00:00")
    jpeg(tmp_path / "anna" / "2026-02-01_before" / "d.jpg", "2026:02:01 09:00:00")
    jpeg(tmp_path / "ben" / "session-2" / "x.jpg", "2026:05:01 09:00:00")
    jpeg(tmp_path / "ben" / "session-2" / "y.jpg", "2026:04:30 23:00:00")  # earliest capture dates the folder
    jpeg(tmp_path / "ben" / "Session_10" / "z.jpg", "2026:04:01 09:00:00")
    jpeg(tmp_path / "ben" / "session12" / "u.jpg")
    jpeg(tmp_path / "ben" / "session3" / "v.jpg")

    found = discover(tmp_path)

    assert found.subjects == ["anna", "ben"]
    assert layout(found.entries) == [
        ("anna", "2026-01-02 first visit", 0, date(2026, 1, 2), "folder", "b.jpg"),
        # same date: the earlier first capture goes first, whatever the names say
        ("anna", "2026-02-01_before", 1, date(2026, 2, 1), "folder", "d.jpg"),
        ("anna", "2026-02-01_after", 2, date(2026, 2, 1), "folder", "c.jpg"),
        ("anna", "2026-03-14", 3, date(2026, 3, 14), "folder", "a.jpg"),
        ("ben", "Session_10", 0, date(2026, 4, 1), "exif", "z.jpg"),
        ("ben", "session-2", 1, date(2026, 4, 30), "exif", "y.jpg"),
        ("ben", "session-2", 1, date(2026, 4, 30), "exif", "x.jpg"),
        ("ben", "session3", 2, None, "none", "v.jpg"),  # undated last, in natural order: 3 before 12
        ("ben", "session12", 3, None, "none", "u.jpg"),
    ]
    assert found.entries[3].capture_time == datetime(2026, 3, 14, 10, 0, 0)
    assert found.entries[0].capture_time is None
    assert found.sessions("ben") == ["Session_10", "session-2", "session3", "session12"]
    assert found.skipped == []


def test_loose_photos_are_grouped_by_capture_day(tmp_path):
    cara = tmp_path / "cara"
    jpeg(cara / "1.jpg", "2026:03:14 08:00:00")
    jpeg(cara / "2.jpg", "2026:03:14 21:30:00", offset="+02:00")  # aware and naive times mix
    jpeg(cara / "3.jpg", "2026:04:02 12:00:00")
    nodate = jpeg(cara / "4.jpg")

    found = discover(tmp_path)

    assert layout(found.entries) == [
        ("cara", "2026-03-14", 0, date(2026, 3, 14), "exif", "1.jpg"),
        ("cara", "2026-03-14", 0, date(2026, 3, 14), "exif", "2.jpg"),
        ("cara", "2026-04-02", 1, date(2026, 4, 2), "exif", "3.jpg"),
        # no date: analysed all the same, in a session of its own placed on no timeline
        ("cara", UNDATED_SESSION, 2, None, "none", "4.jpg"),
    ]
    assert found.entries[1].capture_time.utcoffset().total_seconds() == 7200
    assert [e.undated for e in found.entries] == [False, False, False, True]
    assert found.entries[3].path == nodate and found.skipped == []


def test_a_flat_folder_of_undated_photos_is_found_whole(tmp_path):
    """PNGs, photos saved from messaging apps, exports: no EXIF date at all."""
    flat = tmp_path / "saved"
    for name in ("a.png", "b.jpg", "c.png"):
        jpeg(flat / name)

    found = discover(flat)

    assert layout(found.entries) == [("saved", UNDATED_SESSION, 0, None, "none", n) for n in ("a.png", "b.jpg", "c.png")]
    assert found.skipped == [] and found.scanned == [flat]


def test_a_session_folder_is_dated_by_sessions_csv_when_neither_its_name_nor_its_photos_are(tmp_path):
    gil = tmp_path / "gil"
    jpeg(gil / "session-1" / "a.jpg")                          # no EXIF: the csv's row "session-1"
    jpeg(gil / "Session 2" / "b.jpg", "2026:02:03 10:00:00")    # EXIF comes before the csv
    jpeg(gil / "session-3" / "c.jpg")                          # in no row: undated
    (gil / "sessions.csv").write_text("date,session,treatment\n2026-01-05,SESSION-1,mn\n2026-02-01,session 2,mn\n")

    found = discover(tmp_path)

    assert layout(found.entries) == [
        ("gil", "session-1", 0, date(2026, 1, 5), "sessions_csv", "a.jpg"),
        ("gil", "Session 2", 1, date(2026, 2, 3), "exif", "b.jpg"),
        ("gil", "session-3", 2, None, "none", "c.jpg"),
    ]


def test_file_time_dates_photos_without_exif_only_when_allowed(tmp_path):
    cara = tmp_path / "cara"
    jpeg(cara / "1.jpg", "2026:03:14 08:00:00")
    nodate = jpeg(cara / "4.jpg")
    stamp = datetime(2026, 3, 14, 12, 0).timestamp()  # local noon: same local day everywhere
    os.utime(nodate, (stamp, stamp))

    found = discover(tmp_path, allow_file_time=True)

    assert layout(found.entries) == [
        ("cara", "2026-03-14", 0, date(2026, 3, 14), "exif", "1.jpg"),
        ("cara", "2026-03-14", 0, date(2026, 3, 14), "file_time", "4.jpg"),
    ]
    assert found.skipped == []


def test_photos_directly_in_root_belong_to_the_root_folder(tmp_path):
    root = tmp_path / "dana"
    jpeg(root / "a.jpg", "2026:01:05 10:00:00")
    jpeg(root / "b.jpg", "2026:02:05 10:00:00")

    found = discover(str(root))

    assert layout(found.entries) == [("dana", "2026-01-05", 0, date(2026, 1, 5), "exif", "a.jpg"),
                                     ("dana", "2026-02-05", 1, date(2026, 2, 5), "exif", "b.jpg")]


def test_root_holding_session_folders_is_one_subject(tmp_path):
    anna = tmp_path / "anna"
    jpeg(anna / "2026-03-14" / "a.jpg")
    jpeg(anna / "loose.jpg", "2026:03:14 11:00:00")  # same day as the folder: same session
    jpeg(anna / "2026-04-01" / "b.jpg")

    found = discover(anna)

    assert found.subjects == ["anna"]
    assert [(e.session, e.session_index, e.date_source) for e in found.entries] == [
        ("2026-03-14", 0, "exif"), ("2026-03-14", 0, "folder"), ("2026-04-01", 1, "folder")]
    # within a session: by capture time, photos without one last


def test_single_photos_and_lists_of_paths(tmp_path):
    flat = jpeg(tmp_path / "eve" / "x.jpg", "2026:06:01 10:00:00")
    dated = jpeg(tmp_path / "fay" / "2026-07-01" / "y.jpg")
    numbered = jpeg(tmp_path / "fay" / "session-1" / "z.jpg", "2026:05:01 10:00:00")

    found = discover([flat, dated, numbered, dated, tmp_path / "missing.jpg", tmp_path / "notes.txt"])

    assert layout(found.entries) == [
        ("eve", "2026-06-01", 0, date(2026, 6, 1), "exif", "x.jpg"),
        ("fay", "session-1", 0, date(2026, 5, 1), "exif", "z.jpg"),
        ("fay", "2026-07-01", 1, date(2026, 7, 1), "folder", "y.jpg"),  # given twice, found once
    ]
    assert found.skipped == [(tmp_path / "missing.jpg", "not found"), (tmp_path / "notes.txt", "not found")]


# --------------------------------------------------------------------------- what is skipped


def test_skipped_files_and_folders_have_reasons_and_sidecars_are_silent(tmp_path):
    anna = tmp_path / "anna"
    jpeg(anna / "2026-03-14" / "a.jpg")
    for name in ("notes.txt", "noext", ".DS_Store", "sessions.csv", "ground_truth.json", "README.md"):
        (anna / "2026-03-14" / name).write_text("date\n")
    (anna / "2026-03-14" / "edited").mkdir()
    (anna / "misc").mkdir()
    (anna / "2026-13-40").mkdir()  # not a real date
    (anna / ".thumbnails").mkdir()
    (anna / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "empty").mkdir()

    found = discover(tmp_path)

    session = anna / "2026-03-14"
    assert [e.path for e in found.entries] == [session / "a.jpg"]
    assert reasons(found, session / "notes.txt") == ["not a photo file type (.txt)"]
    assert reasons(found, session / "noext") == ["not a photo file type (no extension)"]
    assert reasons(found, session / "edited") == ["folder inside a session folder (not scanned)"]
    assert reasons(found, anna / "misc")[0].startswith("not a session folder")
    assert reasons(found, anna / "2026-13-40")[0].startswith("not a session folder")
    assert reasons(found, anna / "broken.jpg")[0].startswith("not an image file")
    assert reasons(found, tmp_path / "empty") == ["no photos found"]
    assert len(found.skipped) == 7  # hidden files and sidecars are not reported


def test_unreadable_folder_is_skipped_with_a_reason(tmp_path, monkeypatch):
    jpeg(tmp_path / "anna" / "2026-03-14" / "a.jpg")
    locked = tmp_path / "anna" / "2026-04-01"
    jpeg(locked / "b.jpg")
    real_scandir = os.scandir

    def scandir(path):  # chmod 000 does not stop root, who runs some CI containers
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover(tmp_path)

    assert [e.path.name for e in found.entries] == ["a.jpg"]
    assert found.skipped == [(locked, "cannot read the folder (permission denied)")]
    assert found.unscanned == [locked]  # what the store holds from it is not forgotten


def test_symlink_loops_terminate(tmp_path):
    anna = tmp_path / "anna"
    jpeg(anna / "2026-03-14" / "a.jpg")
    try:
        os.symlink(anna, anna / "2026-03-14" / "up")       # a folder inside a session, pointing back
        os.symlink(anna, anna / "2026-03-15")              # a session-named link to its own subject
        os.symlink(tmp_path, tmp_path / "loop")            # a "subject" that is the root again
        os.symlink(tmp_path / "self", tmp_path / "self")   # a link to itself
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available")
    result = []
    worker = threading.Thread(target=lambda: result.append(discover(tmp_path)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "discover() did not terminate on a symbolic link loop"

    found = result[0]
    assert layout(found.entries) == [("anna", "2026-03-14", 0, date(2026, 3, 14), "folder", "a.jpg")]
    assert "already scanned" in reasons(found, anna / "2026-03-15")[0]
    assert "already scanned" in reasons(found, tmp_path / "loop")[0]
    assert reasons(found, tmp_path / "self")[0].startswith("not a regular file")


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the file system must accept any bytes in names")
def test_non_utf8_names_do_not_crash(tmp_path):
    subject = tmp_path / os.fsdecode(b"caf\xe9")
    jpeg(subject / "2026-03-14" / os.fsdecode(b"\xff\xfe.jpg"))
    jpeg(subject / "2026-03-14" / "ok.jpg")
    jpeg(tmp_path / "zed" / "2026-03-14" / "ok.jpg")
    (subject / "2026-03-14" / os.fsdecode(b"\xff.txt")).write_text("x")

    found = discover(tmp_path)

    assert found.subjects == ["caf\\xe9", "zed"]
    assert all(e.subject.encode("utf-8") and e.session.encode("utf-8") for e in found.entries)
    assert all(e.path.exists() for e in found.entries)  # the paths still reach the files
    assert [r for _, r in found.skipped] == ["not a photo file type (.txt)"]
    print(found.entries, found.skipped)  # printable under pytest's capture
    assert safe_name(found.subjects[0]).startswith("caf_xe9-")


def test_session_folder_names():
    assert parse_session_folder("2026-03-14") == (date(2026, 3, 14), True)
    assert parse_session_folder("2026-03-14 second session") == (date(2026, 3, 14), True)
    assert parse_session_folder("2026-03-14_after") == (date(2026, 3, 14), True)
    for name in ("session-3", "Session_3", "SESSION3", "session 3"):
        assert parse_session_folder(name) == (None, True), name
    for name in ("2026-02-30", "20260314", "2026-03-14after", "sessions", "session-", "misc", "my session-1"):
        assert parse_session_folder(name) is None, name


# --------------------------------------------------------------------------- sessions.csv


def test_sessions_csv_is_parsed_and_gives_treatment_dates(tmp_path):
    anna = tmp_path / "anna"
    jpeg(anna / "2026-03-14" / "a.jpg")
    (anna / "sessions.csv").write_text(
        "\ufeffDate,Session,treatment,needle_depth_mm,notes,extra\n"
        "# baseline photo only\n"
        "2026-03-01,baseline,,,\"before, no needling\",x\n"
        "\n"
        "2026-03-14,first,microneedling,0.5,numbing cream\n"
        "2026-04-11,second,Microneedling, 1.0 ,\n"
        "2026-05-09,,none,,\n", encoding="utf-8")

    found = discover(tmp_path)

    assert found.sessions_csv["anna"] == [
        SessionInfo(date(2026, 3, 1), "baseline", "", None, "before, no needling"),
        SessionInfo(date(2026, 3, 14), "first", "microneedling", 0.5, "numbing cream"),
        SessionInfo(date(2026, 4, 11), "second", "Microneedling", 1.0, ""),
        SessionInfo(date(2026, 5, 9), "", "none", None, ""),
    ]
    assert found.treatment_dates("anna") == [date(2026, 3, 14), date(2026, 4, 11)]
    assert found.treatment_dates("nobody") == []


def test_sessions_csv_without_treatments_lists_treatment_days(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text("date\n2026-04-11\n2026-03-14\n")
    jpeg(tmp_path / "2026-03-14" / "a.jpg")
    found = discover(tmp_path)
    assert found.treatment_dates(tmp_path.name) == [date(2026, 3, 14), date(2026, 4, 11)]


@pytest.mark.parametrize("text, message", [
    ("date,treatment\n2026-03-14,mn\n14/03/2026,mn\n", "line 3: date '14/03/2026' is not an ISO date"),
    ("date,needle_depth_mm\n2026-03-14,deep\n", "line 2: needle_depth_mm 'deep' is not a number"),
    ("date,needle_depth_mm\n2026-03-14,-1\n", "line 2: needle_depth_mm -1.0 must be a number >= 0"),
    ("date,needle_depth_mm\n2026-03-14,nan\n", "line 2: needle_depth_mm nan must be"),
    ("when,treatment\n2026-03-14,mn\n", "line 1: no 'date' column"),
    ("date\n\n#c\n2026-03-14\n\n", None),
])
def test_malformed_sessions_csv_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "sessions.csv"
    path.write_text(text)
    if message is None:
        assert read_sessions_csv(path) == [SessionInfo(date(2026, 3, 14))]
        return
    with pytest.raises(ValueError, match="sessions.csv") as err:
        read_sessions_csv(path)
    assert message in str(err.value)
    jpeg(tmp_path / "2026-03-14" / "a.jpg")
    found = discover(tmp_path)  # a wrong treatment calendar does not pass silently: the subject waits
    assert found.entries == [] and found.unscanned == [tmp_path]
    assert len(found.skipped) == 1 and found.skipped[0][0] == path
    assert message in found.skipped[0][1] and "correct the file" in found.skipped[0][1]


def test_one_bad_sessions_csv_skips_its_subject_and_the_others_go_on(tmp_path):
    jpeg(tmp_path / "anna" / "2026-03-14" / "a.jpg")
    jpeg(tmp_path / "ben" / "2026-03-14" / "b.jpg")
    jpeg(tmp_path / "ben" / "loose.jpg", "2026:03:20 10:00:00")
    (tmp_path / "ben" / "sessions.csv").write_text("date,treatment\n2026-03-14,mn\n14/03/2026,mn\n")

    found = discover(tmp_path)

    assert [(e.subject, e.path.name) for e in found.entries] == [("anna", "a.jpg")]
    assert found.skipped == [(tmp_path / "ben" / "sessions.csv",
                              "line 3: date '14/03/2026' is not an ISO date like 2026-03-14; the photos of 'ben' "
                              "were not analysed: correct the file and run again")]
    assert found.unscanned == [tmp_path / "ben"]


def test_text_in_unused_columns_never_stops_a_run(tmp_path):
    """A spreadsheet's export: Windows-1252 accents in the notes, an unquoted comma, columns of its own."""
    path = tmp_path / "sessions.csv"
    path.write_bytes("date,treatment,notes,clinic\n2026-03-14,mn,peeling léger, rougeur,Paris\n"
                     "2026-04-11,mn,crème,\n".encode("cp1252"))
    assert read_sessions_csv(path) == [SessionInfo(date(2026, 3, 14), "", "mn", None, "peeling léger"),
                                       SessionInfo(date(2026, 4, 11), "", "mn", None, "crème")]
    path.write_text("date,notes\n2026-03-14,a,b\n")  # more fields than the header: the rest is the notes'
    assert read_sessions_csv(path) == [SessionInfo(date(2026, 3, 14), notes="a,b")]
    path.write_bytes("date,notes\n2026-03-14,crème\n".encode("utf-16"))  # with its byte-order mark
    assert read_sessions_csv(path) == [SessionInfo(date(2026, 3, 14), notes="crème")]


def test_printable_escapes_what_a_terminal_would_act_on():
    assert printable("a\nb\x1b[2J.jpg") == "a\\nb\\x1b[2J.jpg"
    assert printable("x\u202etxt.jpg") == "x\\u202etxt.jpg"  # right-to-left override
    assert printable("café 1.jpg") == "café 1.jpg"


def test_entry_as_dict_feeds_the_store(tmp_path):
    jpeg(tmp_path / "anna" / "2026-03-14" / "a.jpg")
    entry = discover(tmp_path).entries[0]
    assert entry.as_dict() == {"subject": "anna", "session": "2026-03-14", "session_index": 0,
                               "date": "2026-03-14", "path": str(tmp_path / "anna" / "2026-03-14" / "a.jpg"),
                               "date_source": "folder"}


# --------------------------------------------------------------------------- safe names


HOSTILE = ["../../etc", "/abs", "/", "..", ".", "a/b", "a\\b", "a_b", "a b", "\x00", "a\x00b", "CON", "con",
           "nul.txt", "LPT1", ".hidden", "...", "-rf", "", " ", "x" * 300, "C:\\Windows", "~", "$HOME",
           "a\nb", "\u202etxt.exe", os.fsdecode(b"caf\xe9"), "日本語 セッション", "..\u2215etc"]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_name_is_one_harmless_path_component(name):
    slug = safe_name(name)
    assert slug and len(slug) <= 80
    assert not slug.startswith((".", "-")) and ".." not in slug
    assert not any(c in slug for c in "/\\\x00:\n~$")
    assert Path(slug).name == slug and not Path(slug).is_absolute()
    assert slug.upper() not in ("CON", "NUL", "LPT1")
    slug.encode("utf-8")
    assert safe_name(slug) == slug  # a slug is its own slug


def test_safe_name_keeps_clean_names_and_separates_distinct_ones():
    for clean in ("anna", "2026-03-14", "session_3", "Zoë", "日本語"):
        assert safe_name(clean) == clean
    slugs = [safe_name(n) for n in HOSTILE]
    assert len(set(slugs)) == len(HOSTILE)
    assert safe_name("a b").startswith("a_b-") and safe_name("a_b") == "a_b"
    assert safe_name("../../etc").startswith("etc-")
    nfd = unicodedata.normalize("NFD", "Zoë")
    assert safe_name(nfd) == "Zoë"  # macOS spells names decomposed: the same name, the same slug
    assert len(safe_name("x" * 300)) == 80 and safe_name("x" * 300) != safe_name("x" * 301)
