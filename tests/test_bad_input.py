"""Bad input: a corpus of broken, odd and hostile files, made here (no binary fixtures), through the real command.

Each file has one expected outcome: analysed, analysed with a named quality flag, or skipped with a
one-line reason that names the file and says what to do. The batch over the whole corpus must finish
with exit code 1 (partial failure) and no Python traceback.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from skinscan.geometry import estimate_scale
from skinscan.validation.phantom import turn_head

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLE = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut" / "2026-01-05" / "IMG_20260105_100412.jpg"
WIDTH = 400  # px: about 2.6 px/mm, plenty for the landmarker; the face is only needed to be found
SESSION = "2026-01-05"
NON_UTF8 = b"caf\xe9.jpg"  # Latin-1 "café": not decodable as UTF-8
NON_UTF8_SHOWN = "caf\\xe9.jpg"  # how skinscan shows and stores it
ADVICE = "; "  # every reason goes on with what to do after a semicolon

# MediaPipe mesh: the eye contours (subject's right, left).
_EYES = ([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
         [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398])

# name -> (status, text expected in the reason (skipped) or in the quality flags (analysed), or None)
EXPECTED = {
    "good.jpg": ("analysed", None),
    "empty.jpg": ("skipped", "file is empty (0 bytes)"),
    "truncated.jpg": ("skipped", "image data is truncated or damaged"),
    "notes.jpg": ("skipped", "it is a text file"),
    "document.jpg": ("skipped", "it is a PDF document"),
    "bad_crc.png": ("skipped", "damaged PNG file"),
    "bomb.png": ("skipped", "pixels, over the limit"),
    "one_pixel.png": ("skipped", "no face found"),
    "tiny_32.png": ("skipped", "at least 80 px are needed"),  # the landmarker still finds the face, 28 px wide
    "gray.png": ("analysed", None),
    "gray16.png": ("analysed", None),
    "cmyk.jpg": ("analysed", None),
    "animated.gif": ("analysed", None),          # first frame
    "multipage.tif": ("analysed", None),         # first page
    "odd_brand.heic": ("analysed", None),        # HEIF only in the compatible brands
    "damaged.heic": ("skipped", "damaged HEIF file"),
    "clip.mp4": ("skipped", "a video"),
    "clip_as_photo.jpg": ("skipped", "it is a video"),
    "no_face.png": ("skipped", "no face found"),
    "two_faces.png": ("analysed", "face_count"),
    "cut_off.png": ("analysed", None),           # no flag yet: see test_face_cut_off_at_the_edge
    "profile.png": ("analysed", "head_yaw"),
    "eyes_closed.png": ("analysed", "scale_source"),  # millimetres from the eye corners, not the iris
    "small_face.png": ("skipped", "at least 80 px are needed"),
    "loop.jpg": ("skipped", "symbolic link that is broken or loops"),
    "2026-01-06 loop": ("skipped", "already scanned"),
    "locked.jpg": ("skipped", "permission denied"),
    NON_UTF8_SHOWN: ("analysed", None),
    # libjpeg only warns on these and fills the rest with grey: refused all the same
    "cut_short.jpg": ("skipped", "image data is truncated or damaged"),   # end marker appended at 70 %
    "zero_filled.jpg": ("skipped", "image data is truncated or damaged"),  # a quarter of the data zeroed
    "extraneous.jpg": ("analysed", None),  # stray bytes before a marker: a harmless warning
    "sideways.jpg": ("analysed", "rotation"),  # turned a quarter, no orientation tag
}


# ----------------------------------------------------------------------------------------- corpus

def _face(width: int = WIDTH) -> tuple[np.ndarray, bytes]:
    im = Image.open(SAMPLE)
    rgb = np.asarray(im.convert("RGB").resize((width, round(im.size[1] * width / im.size[0])), Image.LANCZOS))
    return np.ascontiguousarray(rgb), im.info["exif"]


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header declaring 3.6 gigapixels, with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(1000)))
            + _png_chunk(b"IEND", b""))


def _mp4() -> bytes:
    """The first bytes of an MP4 video: an ftyp box (isom) and the start of its media data."""
    return (struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isommp41"
            + struct.pack(">I", 16) + b"mdat" + bytes(range(8)))


def _eyes_closed(rgb: np.ndarray, face) -> np.ndarray:
    """Both eyes painted over with the skin just below them (a stand-in for closed lids)."""
    out = rgb.astype(np.float32)
    for idx in _EYES:
        pts = face.points[idx]
        c = pts.mean(axis=0)
        hull = cv2.convexHull(((pts - c) * 1.35 + c).astype(np.int32))
        skin = rgb[int(c[1] + 0.9 * (np.ptp(pts[:, 1]) + 10)), int(c[0])].astype(np.float32)
        m = np.zeros(rgb.shape[:2], np.float32)
        cv2.fillConvexPoly(m, hull, 1.0)
        m = cv2.GaussianBlur(m, (0, 0), 2.0)[..., None]
        out = out * (1 - m) + skin * m
    return out.astype(np.uint8)


def build_corpus(session: Path, landmarker) -> None:
    session.mkdir(parents=True)
    rgb, exif = _face()
    face = landmarker.detect(rgb)
    mm_per_px = estimate_scale(face).mm_per_px
    photo = Image.fromarray(rgb)
    jpeg = _encode(photo, "JPEG", quality=90, exif=exif)
    png = lambda a: _encode(Image.fromarray(a), "PNG")  # noqa: E731

    files = {
        "good.jpg": jpeg,
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "notes.jpg": b"Session notes: 1.0 mm needles, forehead and cheeks.\n",
        "document.jpg": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
                         b"trailer\n<< /Root 1 0 R >>\n"),
        "bomb.png": _bomb_png(),
        "one_pixel.png": png(np.full((1, 1, 3), 180, np.uint8)),
        "tiny_32.png": png(cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA)),
        "gray.png": _encode(photo.convert("L"), "PNG"),
        "gray16.png": _encode(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"),
        "cmyk.jpg": _encode(photo.convert("CMYK"), "JPEG", quality=92),
        "animated.gif": _encode(photo, "GIF", save_all=True, append_images=[Image.fromarray(255 - rgb)],
                                duration=100, loop=0),
        "multipage.tif": _encode(photo, "TIFF", save_all=True, append_images=[Image.fromarray(255 - rgb)]),
        "clip.mp4": _mp4(),
        "clip_as_photo.jpg": _mp4(),
        "no_face.png": png(cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, rgb.shape, np.uint8), (0, 0), 5)),
        "two_faces.png": png(np.concatenate([rgb, rgb[:, ::-1]], axis=1)),
        "profile.png": png(turn_head(rgb, face, yaw_deg=40, mm_per_px=mm_per_px)),
        "eyes_closed.png": png(_eyes_closed(rgb, face)),
        "locked.jpg": _encode(photo, "JPEG", quality=80),
        "cut_short.jpg": jpeg[:int(len(jpeg) * 0.7)] + b"\xff\xd9",
        "zero_filled.jpg": jpeg[:len(jpeg) // 3] + bytes(len(jpeg) // 4) + jpeg[len(jpeg) // 3 + len(jpeg) // 4:],
        "sideways.jpg": _encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif),
    }
    dqt = jpeg.find(b"\xff\xdb")  # after the EXIF segment
    files["extraneous.jpg"] = jpeg[:dqt] + b"\x00\x07\x00" + jpeg[dqt:]
    bad_crc = bytearray(_encode(Image.new("RGB", (16, 16), (200, 150, 120)), "PNG"))
    bad_crc[29] ^= 0xFF  # the IHDR chunk's CRC
    files["bad_crc.png"] = bytes(bad_crc)
    x0, _, x1, _ = face.bbox
    files["cut_off.png"] = png(np.ascontiguousarray(rgb[:, : int(x0 + 0.7 * (x1 - x0))]))  # 30 % of the face outside
    small = cv2.resize(rgb, (70, round(rgb.shape[0] * 70 / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 320, 3), 90, np.uint8)
    canvas[100:100 + small.shape[0], 100:170] = small
    files["small_face.png"] = png(canvas)  # a face about 60 px wide

    import pillow_heif

    pillow_heif.register_heif_opener()
    heic = _encode(photo, "HEIF", quality=90)
    size = struct.unpack(">I", heic[:4])[0]
    assert heic[4:8] == b"ftyp" and b"heic" in heic[16:size]
    # A major brand Pillow's HEIF plugin does not know, HEIF only among the compatible brands.
    files["odd_brand.heic"] = heic[:8] + b"MiHE" + heic[12:]
    files["damaged.heic"] = heic[:size] + bytes(range(256))

    for name, data in files.items():
        (session / name).write_bytes(data)
    with open(os.path.join(os.fsencode(session), NON_UTF8), "wb") as fh:
        fh.write(_encode(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=90, exif=exif))
    os.symlink("loop.jpg", session / "loop.jpg")
    os.symlink(session.parent, session.parent / "2026-01-06 loop")  # a session-named link to its own subject
    (session / "locked.jpg").chmod(0)


# A root child process obeys file permissions once it gives up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
# (os.seteuid would do too, but then the interpreter under /root could not import the rest of the stdlib).
_RUN_UNPRIVILEGED = r"""
import ctypes, os, sys
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        sys.exit("capget failed")
    data[0].effective &= ~0b110; data[0].permitted &= ~0b110  # CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2)
    if libc.capset(ctypes.byref(header), data) != 0:
        sys.exit("capset failed")
from skinscan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _permissions_enforceable() -> bool:
    return os.name == "posix" and (os.geteuid() != 0 or sys.platform.startswith("linux"))


if not _permissions_enforceable():  # root elsewhere than Linux reads everything: no unreadable file
    del EXPECTED["locked.jpg"]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, landmarker):
    root = tmp_path_factory.mktemp("corpus")
    photos, out = root / "photos", root / "out"
    build_corpus(photos / "anna" / SESSION, landmarker)
    if "locked.jpg" not in EXPECTED:
        (photos / "anna" / SESSION / "locked.jpg").unlink()
    try:
        r = subprocess.run([sys.executable, "-c", _RUN_UNPRIVILEGED, "analyse", str(photos), "--out", str(out),
                            "--quiet"], capture_output=True, text=True, timeout=300)
    finally:
        if "locked.jpg" in EXPECTED:
            (photos / "anna" / SESSION / "locked.jpg").chmod(0o644)
    with open(out / "photos.csv", newline="", encoding="utf-8") as fh:
        rows = {Path(row["photo"]).name: row for row in csv.DictReader(fh)}
    return {"r": r, "rows": rows, "photos": photos, "out": out}


def test_the_corpus_batch_finishes_with_a_partial_failure(corpus_run):
    r, rows = corpus_run["r"], corpus_run["rows"]
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    lines = r.stdout.splitlines()
    n_ok = sum(status == "analysed" for status, _ in EXPECTED.values())
    assert lines == [lines[0]] and lines[0].startswith(f"skinscan: {n_ok} of {len(EXPECTED)} photos analysed")
    assert f"{len(EXPECTED) - n_ok} skipped" in lines[0]
    assert sorted(rows) == sorted(EXPECTED)  # every file and folder has its row in photos.csv
    assert "analysing [" not in r.stderr  # --quiet after the command works
    with closing(sqlite3.connect(f"file:{corpus_run['out'] / 'skinscan.db'}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outcome_per_file(corpus_run, name):
    status, text = EXPECTED[name]
    row = corpus_run["rows"][name]
    assert row["status"] == status, row["error"]
    if status == "skipped":
        assert text in row["error"] and "\n" not in row["error"]
    elif text is not None:
        assert text in row["quality_flags"].split(";")
    if status == "analysed":  # the 400 px copies: about 2.6 px/mm (the turned head's iris reads smaller)
        assert float(row["px_per_mm"]) == pytest.approx(2.6, rel=0.25 if name == "profile.png" else 0.1)


def test_every_skipped_file_is_named_with_what_to_do(corpus_run):
    stderr = corpus_run["r"].stderr
    skipped = {name: row for name, row in corpus_run["rows"].items() if row["status"] == "skipped"}
    for name, row in skipped.items():
        line = f"  skipped {row['photo']}: {row['error']}"
        assert line in stderr.splitlines(), name
        if name != "2026-01-06 loop":  # a folder seen twice needs nothing done
            assert ADVICE in row["error"], f"{name}: {row['error']!r} does not say what to do"


def test_non_utf8_file_name_is_analysed_and_exported(corpus_run):
    row = corpus_run["rows"][NON_UTF8_SHOWN]
    assert row["status"] == "analysed"
    assert [p.name for p in (corpus_run["out"] / "regions").glob("*caf*")] != []


def test_face_cut_off_at_the_edge(corpus_run):
    """Analysed on what is in the frame; no quality check flags the missing part yet (a follow-up):
    the cheek on the cut side is smaller than in the whole photo."""
    rows = corpus_run["rows"]
    cut, whole = rows["cut_off.png"], rows["good.jpg"]
    assert cut["status"] == "analysed"
    ratio = float(cut["area_mm2_cheek_left"]) / float(whole["area_mm2_cheek_left"])
    assert ratio < 0.9


def test_report_written_even_when_every_photo_is_left_out_of_the_trends(corpus_run):
    """At 3 px/mm every photo fails the blocking sharpness check; the subject still gets its report."""
    html = (corpus_run["out"] / "report_anna.html").read_text(encoding="utf-8")
    assert "sharpness" in html


# ----------------------------------------------------------------------------------------- clear failures

def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "skinscan.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


@pytest.fixture
def damaged_store(tmp_path):
    folder = tmp_path / "photos" / "anna"
    (folder / SESSION).mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(folder / SESSION / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "skinscan.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    return tmp_path


@pytest.mark.parametrize("debug", [None, ["analyse", "--debug"]], ids=["plain", "debug-after-the-command"])
def test_expected_failure_is_one_line_unless_debug(damaged_store, debug):
    photos, out = damaged_store / "photos", damaged_store / "out"
    r = _cli(*(debug or ["analyse"]), str(photos), "--out", str(out))
    assert r.returncode == 2
    if debug is None:
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        assert r.stderr.count("\n") == 1 and str(out / "skinscan.db") in r.stderr
        assert "damaged" in r.stderr and "move it aside" in r.stderr  # names the file and what to do
    else:
        assert "Traceback" in r.stderr and "SkinscanError" in r.stderr


def test_a_bad_sessions_csv_skips_its_subject_and_the_others_go_on(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    rgb, exif = _face(360)
    for subject in ("anna", "ben"):
        (photos / subject / SESSION).mkdir(parents=True)
        Image.fromarray(rgb).save(photos / subject / SESSION / "a.jpg", exif=exif)
    csv_path = photos / "ben" / "sessions.csv"
    csv_path.write_text("date,treatment,notes\n2026-01-05,mn,ok\n14/03/2026,microneedling,\n")
    (photos / "anna" / "sessions.csv").write_bytes("date,treatment,notes\n2026-01-05,mn,crème apaisante\n"
                                                   .encode("cp1252"))  # a spreadsheet's encoding, in notes
    r = _cli("analyse", str(photos), "--out", str(out), "--no-report", "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stdout.startswith("skinscan: 1 of 2 photos analysed")
    skipped = [line for line in r.stderr.splitlines() if "skipped" in line]
    assert skipped == [f"  skipped {csv_path}: line 3: date '14/03/2026' is not an ISO date like 2026-03-14; "
                       "the photos of 'ben' were not analysed: correct the file and run again"]


def test_quiet_before_and_after_the_command_parse_alike():
    from skinscan.cli import build_parser

    p = build_parser()
    for argv in (["--quiet", "analyse", "x"], ["analyse", "--quiet", "x"], ["analyse", "x", "--quiet"]):
        args = p.parse_args(argv)
        assert args.quiet is True and args.debug is False, argv
    args = p.parse_args(["--debug", "--model", "m.task", "report"])
    assert args.debug is True and args.model == "m.task" and args.quiet is False
    args = p.parse_args(["report", "--debug", "--model", "n.task"])
    assert args.debug is True and args.model == "n.task"


def test_an_unexpected_error_costs_one_photo_and_is_retried(tmp_path):
    """A bug met on one photo (here injected: the real pipeline has none we know) becomes that photo's
    skipped row with an 'internal error ... please report' reason; the batch goes on, and the next
    run analyses the photo again."""
    from skinscan.analysis import analyse_photo
    from skinscan.batch import run_batch
    from skinscan.executors import SerialExecutor

    session = tmp_path / "photos" / "anna" / SESSION
    session.mkdir(parents=True)
    rgb, exif = _face(360)
    Image.fromarray(rgb).save(session / "a.jpg", exif=exif)
    Image.fromarray(rgb[:, ::-1]).save(session / "b.jpg", exif=exif)

    def buggy(source, **kw):
        if Path(source).name == "b.jpg":
            raise ZeroDivisionError("float division by zero\nin a kernel")
        return analyse_photo(source, **kw)

    res = run_batch(tmp_path / "photos", tmp_path / "out", executor=SerialExecutor(analyse=buggy), progress=False)
    assert res.n_analysed == 1 and len(res.failures) == 1
    path, reason = res.failures[0]
    assert Path(path).name == "b.jpg"
    assert reason == "internal error (ZeroDivisionError): float division by zero in a kernel — please report"

    res = run_batch(tmp_path / "photos", tmp_path / "out", progress=False)
    assert (res.n_cached, res.n_analysed, res.failures) == (1, 1, [])
    with open(tmp_path / "out" / "photos.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((Path(r["photo"]).name, r["status"]) for r in rows) == [("a.jpg", "analysed"), ("b.jpg", "analysed")]
