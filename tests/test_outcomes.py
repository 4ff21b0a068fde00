"""Every photo answered: each outcome of a batch, faults (a full disk, signals, a killed batch), the store
following the folders, inert exports, and reports rebuilt from the store alone.

Photos are sample photos reduced to 15 % (about 1.8 px/mm): these tests need faces, not pores. Runs go
through the real command in a fresh process, as a user's would.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinscan.batch import STORE_NAME, run_batch
from skinscan.discover import UNDATED_SESSION

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"
BASELINE = sorted((SAMPLES / "2026-01-05").glob("*.jpg"))


def small(src: Path, dst: Path, *, scale: float = 0.15, exif: bool = True, rgb=None) -> Path:
    """``src`` (or the array ``rgb``) reduced by ``scale``, saved as ``dst`` (its suffix decides the
    format), with the source's EXIF (capture time) unless ``exif`` is False."""
    im = Image.open(src) if rgb is None else Image.fromarray(rgb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = im.convert("RGB").resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.LANCZOS)
    kw = {"exif": Image.open(src).info["exif"]} if exif and dst.suffix.lower() == ".jpg" else {}
    out.save(dst, **kw)
    return dst


def series(root: Path, sessions=("2026-01-05", "2026-02-06", "2026-03-10"), *, csv_file: bool = False) -> Path:
    """Two photos per session under ``root/astronaut/<session>/``, optionally the sample's sessions.csv."""
    subject = root / "astronaut"
    for session in sessions:
        for src in sorted((SAMPLES / session).glob("*.jpg")):
            small(src, subject / session / src.name)
    if csv_file:
        shutil.copy(SAMPLES / "sessions.csv", subject / "sessions.csv")
    return subject


def cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "skinscan.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def start(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "skinscan.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def photos_csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "photos.csv", keep_default_na=False)


def store_rows(out: Path) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)) as db:
        return db.execute("SELECT path, session, status FROM photos ORDER BY path").fetchall()


def no_internal_error(r) -> None:
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-3000:]


def leftovers(out: Path) -> list[str]:
    """Temporary files anywhere in the output folder (a writer's, or the workers' references)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith(".skinscan-references-"))


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (a batch and the workers it forked)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                status = (proc / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie holds nothing
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_until(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def analysed_count(out: Path) -> int:
    try:
        with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM photos WHERE status = 'analysed'").fetchone()[0]
    except sqlite3.Error:
        return 0


# ------------------------------------------------------------------------------- every outcome of a batch

def _no_face(src: Path) -> np.ndarray:
    """The top of a sample photo: background and hair, no face."""
    rgb = np.asarray(Image.open(src).convert("RGB"))
    return np.ascontiguousarray(rgb[: rgb.shape[0] // 5])


def _outcome_folder(case: str, root: Path) -> Path:
    photos = root / "photos"
    if case == "an empty folder":
        photos.mkdir()
    elif case == "only undated photos":  # PNGs and copies saved from a messaging app: no EXIF at all
        for i, src in enumerate(BASELINE):
            small(src, photos / "saved" / f"photo_{i}.png", exif=False)
        small(BASELINE[0], photos / "saved" / "from_chat.jpg", exif=False)
    elif case == "nothing analysable":
        for i, src in enumerate(BASELINE):
            small(src, photos / "anna" / "2026-01-05" / f"wall_{i}.jpg", rgb=_no_face(src), scale=0.5)
    elif case == "everything flagged":  # at 1.8 px/mm every photo fails the blocking sharpness check
        for src in BASELINE:
            small(src, photos / "anna" / "2026-01-05" / src.name)
    elif case == "one photo":  # at 6 px/mm: used in the trends
        small(BASELINE[0], photos / "anna" / "2026-01-05" / BASELINE[0].name, scale=0.5)
    elif case == "one session":
        for src in BASELINE:
            small(src, photos / "anna" / "2026-01-05" / src.name, scale=0.5)
    return photos


@pytest.mark.parametrize("case", ["an empty folder", "only undated photos", "nothing analysable", "everything flagged",
                                  "one photo", "one session"])
def test_no_internal_error_for_any_outcome_of_a_batch(tmp_path, case):
    photos, out = _outcome_folder(case, tmp_path), tmp_path / "out"
    r = cli("analyse", photos, "--out", out, "--jobs", 1, "--quiet")
    no_internal_error(r)
    assert r.returncode == (1 if case in ("an empty folder", "nothing analysable") else 0), r.stderr
    for name in ("results.csv", "photos.csv", "changes.csv"):
        assert (out / name).is_file(), name
    rows, changes = photos_csv(out), pd.read_csv(out / "changes.csv")
    if case == "an empty folder":
        assert rows.empty and "no photos found" in r.stderr
    elif case == "only undated photos":
        assert r.stdout.startswith("skinscan: 3 of 3 photos analysed") and "3 undated" in r.stdout
        assert set(rows["status"]) == {"analysed"} and set(rows["session"]) == {UNDATED_SESSION}
        assert all("undated" in f.split(";") for f in rows["quality_flags"])
        assert (rows["date_source"] == "none").all()
        assert pd.read_csv(out / "results.csv")["photo"].nunique() == 3  # measured, in every table
        assert changes.empty  # and on no timeline
        html = (out / "report_saved.html").read_text(encoding="utf-8")
        assert "3 undated (no capture date, so on no timeline" in html
    elif case == "nothing analysable":
        assert set(rows["status"]) == {"skipped"} and rows["error"].str.contains("no face found").all()
        assert changes.empty and not list(out.glob("report_*.html"))
    elif case == "everything flagged":
        assert set(rows["status"]) == {"analysed"} and rows["excluded_by"].str.contains("sharpness").all()
        assert changes.empty and (out / "report_anna.html").is_file()
    else:
        n = 1 if case == "one photo" else 2
        assert r.stdout.startswith(f"skinscan: {n} of {n} photos analysed")
        assert set(changes["label"]) == {"baseline"} and changes["n_photos"].max() == n  # NaN (pores) count 0
        assert (out / "report_anna.html").is_file()


def test_a_rerun_counts_the_flags_of_the_photos_it_finds_stored(tmp_path):
    photos = series(tmp_path / "photos", sessions=("2026-01-05",))
    first = run_batch(photos, tmp_path / "out", progress=False)
    again = run_batch(photos, tmp_path / "out", progress=False)
    assert first.n_flagged == 2  # at 1.8 px/mm: resolution, sharpness
    assert (again.n_analysed, again.n_cached, again.n_flagged) == (0, 2, 2)
    assert first.flag_counts == again.flag_counts and {"resolution", "sharpness"} <= set(again.flag_counts)
    assert all(n <= 2 for n in again.flag_counts.values())
    assert "2 with quality flags" in again.summary() and "resolution 2" in again.flags_text()  # which checks


# ------------------------------------------------------------------------------- the store follows the folders

def test_moved_deleted_and_renamed_photos(tmp_path):
    photos, out = series(tmp_path / "photos"), tmp_path / "out"
    assert run_batch(photos, out, progress=False).n_analysed == 6
    a, b = sorted((photos / "2026-02-06").glob("*.jpg"))
    a.rename(photos / "2026-03-10" / a.name)                         # moved to another session
    b.unlink()                                                        # deleted
    c = sorted((photos / "2026-01-05").glob("*.jpg"))[0]
    c.rename(c.with_name("before.jpg"))                               # renamed in its session

    res = run_batch(photos, out, progress=False)

    assert (res.n_analysed, res.n_cached, res.n_removed) == (1, 4, 2)  # only the moved photo is analysed again
    assert {(p, s) for p, s, _ in store_rows(out)} == {(str(f), f.parent.name) for f in photos.glob("*/*.jpg")}
    table = photos_csv(out)
    assert len(table) == 5 and table["photo"].is_unique
    assert "2026-02-06" not in set(pd.read_csv(out / "results.csv")["session"])
    assert (photos / "2026-01-05" / "before.jpg").as_posix() in set(table["photo"])


def test_folders_not_scanned_are_untouched_and_a_missing_or_empty_folder_removes_nothing(tmp_path):
    one, out = series(tmp_path / "a", sessions=("2026-01-05",)), tmp_path / "out"
    two = series(tmp_path / "b", sessions=("2026-02-06",))
    run_batch([one, two], out, progress=False)
    run_batch(one, out, progress=False)  # only the first folder scanned: the second's photos stay
    assert len(store_rows(out)) == 4

    shutil.rmtree(two)
    two.mkdir()  # an unmounted drive's mount point: there, but empty
    res = run_batch(two, out, progress=False)
    assert res.n_removed == 0 and len(store_rows(out)) == 4
    assert any("no photos found in" in n and "the 2 photos stored from it are kept" in n for n in res.notes)

    two.rmdir()  # gone entirely
    res = run_batch([one, two], out, progress=False)
    assert res.n_removed == 0 and len(store_rows(out)) == 4
    assert any("not found: the 2 photos stored from it are kept" in n for n in res.notes)


def test_a_file_analysed_after_being_skipped_has_one_row(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    good = small(BASELINE[0], photos / "anna" / "2026-01-05" / "a.jpg")
    data = good.read_bytes()
    good.write_bytes(data[:int(len(data) * 0.7)] + b"\xff\xd9")  # cut short: refused
    res = run_batch(photos, out, progress=False)
    assert res.n_analysed == 0 and "truncated or damaged" in res.failures[0][1]
    good.write_bytes(data)  # copied again from the phone
    res = run_batch(photos, out, progress=False)
    assert (res.n_analysed, res.failures) == (1, [])
    assert [(Path(p).name, s) for p, _, s in store_rows(out)] == [("a.jpg", "analysed")]


def test_identical_files_in_one_session_are_both_listed_and_counted_once(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    first = small(BASELINE[0], photos / "anna" / "2026-01-05" / "IMG_1.jpg")
    shutil.copy(first, first.with_name("IMG_1 (copy).jpg"))
    small(BASELINE[1], photos / "anna" / "2026-01-05" / "IMG_2.jpg")

    res = run_batch(photos, out, progress=False)

    assert (res.n_analysed, res.n_duplicates, res.failures) == (2, 1, [])
    assert "1 duplicates counted once" in res.summary()
    table = photos_csv(out).set_index(photos_csv(out)["photo"].map(lambda p: Path(p).name))
    assert table.loc["IMG_1 (copy).jpg", "status"] == "duplicate"
    assert table.loc["IMG_1 (copy).jpg", "duplicate_of"] == str(first)
    assert pd.read_csv(out / "results.csv")["photo"].nunique() == 2
    from skinscan.outputs import write_outputs

    write_outputs(out, charts=False, reports=False, progress=False)
    assert (pd.read_csv(out / "changes.csv")["n_photos"] == 2).all()  # the copy is not a repeat photo
    res = run_batch(photos, out, progress=False)  # and the next run keeps it so
    assert (res.n_cached, res.n_duplicates, len(store_rows(out))) == (2, 1, 3)


# ------------------------------------------------------------------------------- faults end cleanly

def _namespaced(script: str) -> list[str] | None:
    """A command running ``script`` in a mount namespace of its own (to mount a small file system
    there), or None where this machine allows none."""
    for argv in (["unshare", "-m"], ["unshare", "-rm"]):
        if shutil.which("unshare") and subprocess.run([*argv, "true"], capture_output=True).returncode == 0:
            return [*argv, "bash", "-c", script]
    return None


_FULL_DISK = r"""
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$OUT" || exit 99
"$PYTHON" -m skinscan.cli analyse "$PHOTOS" --out "$OUT" --jobs "$JOBS" --quiet >"$LOG.out" 2>"$LOG.err"
echo $? >"$LOG.code"
find "$OUT" -name '*.tmp' -o -name '.skinscan-references-*' >"$LOG.left"
"""


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("size", ["40k", "150k", "1000k"])  # the store; images or references; tables
def test_a_full_disk_is_named_and_ends_the_run_cleanly(tmp_path, jobs, size):
    """The output folder on a small file system of its own: the store, the workers' references or the
    images find the disk full. One line naming the file, exit 2, no temporary file left, no hang."""
    photos = series(tmp_path / "photos")
    out, log = tmp_path / "out", tmp_path / "log"
    out.mkdir()
    command = _namespaced(_FULL_DISK)
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("no mount namespace here: the full-disk test cannot run")
        pytest.skip("no mount namespace for a small file system")
    marker = f"SKINSCAN_TEST_{os.getpid()}_{jobs}_{size}"
    env = {**os.environ, "SIZE": size, "OUT": str(out), "PHOTOS": str(photos), "JOBS": str(jobs),
           "LOG": str(log), "PYTHON": sys.executable, marker: "1"}
    t0 = time.monotonic()
    r = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 120
    stderr = Path(f"{log}.err").read_text()
    assert Path(f"{log}.code").read_text().strip() == "2", stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("skinscan:")]
    assert len(lines) == 1 and str(out) in lines[0] and "the disk is full" in lines[0], stderr
    assert Path(f"{log}.left").read_text() == ""  # listed inside the namespace, before it went
    assert processes_with(marker) == []


@pytest.mark.parametrize("sig,jobs", [(signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGINT, 2)],
                         ids=["SIGTERM-jobs1", "SIGTERM-jobs2", "SIGINT-jobs2"])
def test_sigterm_and_sigint_stop_a_batch_like_ctrl_c(tmp_path, sig, jobs):
    photos, out = series(tmp_path / "photos"), tmp_path / "out"
    marker = f"SKINSCAN_TEST_{os.getpid()}_{sig}_{jobs}"
    p = start("analyse", photos, "--out", out, "--jobs", jobs, "--quiet", env={**os.environ, marker: "1"})
    try:
        wait_until(lambda: analysed_count(out) >= 1 or p.poll() is not None, what="a first photo stored")
        assert p.poll() is None, p.communicate()
        t0 = time.monotonic()
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=30)
    finally:
        p.kill()
    assert time.monotonic() - t0 < 15
    assert p.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("skinscan:")]
    assert len(lines) == 1 and f"interrupted ({signal.Signals(sig).name})" in lines[0]
    n = analysed_count(out)
    assert f"{n} photos analysed and stored by this run are kept" in lines[0]
    assert leftovers(out) == []
    wait_until(lambda: processes_with(marker) == [], timeout=10, what="the workers to end")
    r = cli("analyse", photos, "--out", out, "--jobs", jobs, "--quiet", "--no-report")
    assert r.returncode == 0 and r.stdout.startswith(f"skinscan: 6 of 6 photos analysed ({n} already in the store")


def test_sigterm_stops_the_protocol_at_once(tmp_path):
    """`skinscan validate` ends its workers on SIGTERM instead of waiting for the photos they were
    given (30 s it ran on), with one line that does not promise to continue."""
    marker = f"SKINSCAN_TEST_{os.getpid()}_validate"
    p = start("validate", "--faces", "sample", "--tones", "light", "--concerns", "pores", "--draws", 8, "--jobs", 2,
              "--quiet", env={**os.environ, marker: "1"})
    try:
        wait_until(lambda: len(_children(p.pid)) >= 2 or p.poll() is not None, timeout=120, what="two workers")
        time.sleep(8)  # measuring photos
        assert p.poll() is None, p.communicate()
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert time.monotonic() - t0 < 10
    assert p.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("skinscan:")]
    assert len(lines) == 1 and "interrupted (SIGTERM)" in lines[0] and "start it over" in lines[0], stderr
    wait_until(lambda: processes_with(marker) == [], timeout=10, what="the workers to end")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("delay_s", [0.0, 0.6])
def test_sigkill_as_the_workers_start_leaves_no_orphan(tmp_path, delay_s):
    """Killed while its workers still load their landmarkers: they go too, and the next run stores each photo once."""
    photos, out = series(tmp_path / "photos"), tmp_path / "out"
    marker = f"SKINSCAN_TEST_{os.getpid()}_kill_{delay_s}"
    p = start("analyse", photos, "--out", out, "--jobs", 2, "--quiet", env={**os.environ, marker: "1"})
    try:
        wait_until(lambda: len(_children(p.pid)) >= 2 or p.poll() is not None, what="two workers")
        time.sleep(delay_s)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
    finally:
        p.kill()
    wait_until(lambda: processes_with(marker) == [], timeout=10, what="the orphaned workers to end")
    r = cli("analyse", photos, "--out", out, "--jobs", 2, "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    rows = store_rows(out)
    assert len(rows) == 6 and {s for *_, s in rows} == {"analysed"}
    assert leftovers(out) == []


def test_sigkill_while_writing_the_outputs_then_a_rerun(tmp_path):
    photos, out = series(tmp_path / "photos", csv_file=True), tmp_path / "out"
    p = start("analyse", photos, "--out", out, "--jobs", 1, "--quiet")
    try:
        wait_until(lambda: (out / "changes.csv").exists() or p.poll() is not None, what="the outputs")
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
    finally:
        p.kill()
    r = cli("analyse", photos, "--out", out, "--jobs", 1, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("skinscan: 6 of 6 photos analysed (6 already in the store")
    assert len(store_rows(out)) == 6 and photos_csv(out)["photo"].is_unique
    assert leftovers(out) == []
    assert (out / "report_astronaut.html").is_file()


# ------------------------------------------------------------------------------- exports are inert

FORMULAS = ['=HYPERLINK("example.invalid","click")', "-2+3+cmd|' -C calc'!A0", "@SUM(A1)", "+1"]


def test_text_cells_of_every_csv_are_inert_and_numbers_stay_numbers(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    for name in FORMULAS:
        for src in [*BASELINE, *sorted((SAMPLES / "2026-02-06").glob("*.jpg"))]:
            small(src, photos / name / src.parent.name / src.name)
    r = cli("analyse", photos, "--out", out, "--jobs", 1, "--quiet", "--include-flagged")
    assert r.returncode == 0, r.stderr
    for table in ("photos.csv", "results.csv", "changes.csv"):
        with open(out / table, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, table
        for row in rows:
            for column, cell in row.items():
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (table, column, cell)
                if cell.startswith("-"):  # only numbers may start with a minus
                    float(cell)
            assert row["subject"] in {"'" + n for n in FORMULAS}, (table, row["subject"])
    changes = pd.read_csv(out / "changes.csv")
    assert changes["change_abs"].dtype == np.float64 and (changes["change_abs"] < 0).any()  # numbers keep their sign


def test_names_printed_to_the_terminal_cannot_fake_a_line(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    session = photos / "anna" / "2026-01-05"
    small(BASELINE[0], session / "a.jpg")
    crafted = session / "x\r\x1b[2Kskinscan: 99 of 99 photos analysed\nb.jpg"
    crafted.write_bytes(b"")  # empty: skipped, and named on the terminal
    r = cli("analyse", photos, "--out", out, "--jobs", 1, "--quiet", "--no-report")
    assert r.returncode == 1
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    assert [line for line in r.stdout.splitlines() if "photos analysed" in line] == [r.stdout.strip()]
    skipped = [line for line in r.stderr.splitlines() if line.startswith("  skipped")]
    assert len(skipped) == 1 and "\\x1b[2Kskinscan: 99 of 99" in skipped[0] and "\\nb.jpg" in skipped[0]


# ------------------------------------------------------------------------------- reports from the store alone

def test_a_report_rebuilt_without_the_photo_folders_is_the_same(tmp_path):
    photos = series(tmp_path / "photos", sessions=("2026-01-05", "2026-01-06 day 1", "2026-02-06"), csv_file=True)
    out = tmp_path / "out"
    r = cli("analyse", photos, "--out", out, "--jobs", 1, "--quiet", "--include-flagged")
    assert r.returncode == 0, r.stderr
    changes, report = (out / "changes.csv").read_bytes(), (out / "report_astronaut.html").read_bytes()
    assert "2026-01-06 day 1" not in pd.read_csv(out / "changes.csv")["session"].tolist()  # recovery, not a session
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([sys.executable, "-m", "skinscan.cli", "report", "--out", str(out), "--quiet", "--include-flagged"],
                       capture_output=True, text=True, timeout=300, cwd=elsewhere)  # another folder, no --photos
    assert r.returncode == 0, r.stderr
    assert (out / "changes.csv").read_bytes() == changes
    assert (out / "report_astronaut.html").read_bytes() == report
