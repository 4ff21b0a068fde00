"""Treatment series end to end, and a batch's reliability: resumed after SIGKILL, two writers at once, a locked store.

The series is a copy of ``sample_images/astronaut`` at half size (about 6 px/mm, so pores are NaN: the
``resolution`` check says why); the reliability tests use six photos at 15 % of the size (about 1.8 px/mm).
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinscan.batch import STORE_NAME, run_batch
from skinscan.outputs import write_outputs
from skinscan.discover import discover
from skinscan.series import recovery_curve, recovery_time_hours, summarise
from skinscan.store import ResultStore

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"
TIDY = ["subject", "session", "session_index", "date", "photo", "region", "metric", "value", "unit", "se"]
TREATMENT_SESSIONS = ["2026-01-05", "2026-02-06", "2026-03-10", "2026-04-09", "2026-05-12"]
RECOVERY_SESSIONS = ["2026-01-06 day 1", "2026-01-08 day 3"]


def copy_scaled(dst: Path, scale: float, sessions=None) -> list[Path]:
    """The sample series resized by ``scale``, each JPEG keeping its EXIF (capture time); sessions.csv too."""
    written = []
    for src in sorted(SAMPLES.glob("*/*.jpg")):
        if sessions is not None and src.parent.name not in sessions:
            continue
        im = Image.open(src)
        target = dst / src.parent.name / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        size = (round(im.size[0] * scale), round(im.size[1] * scale))
        im.resize(size, Image.LANCZOS).save(target, quality=95, exif=im.info["exif"])
        written.append(target)
    (dst / "sessions.csv").write_bytes((SAMPLES / "sessions.csv").read_bytes())
    return written


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "skinscan.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "skinscan.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_same_values(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tidy tables up to row order: text columns exactly, values within 1e-9 (NaN equal to NaN)."""
    key = ["photo", "region", "metric"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    text = [c for c in a.columns if c != "value"]
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a[text], b[text])
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float), rtol=0, atol=1e-9)


def read_results(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv", keep_default_na=True)


def store_rows(out: Path) -> list[tuple]:
    """(path, status) of every stored photo, read-only."""
    with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)) as db:
        return db.execute("SELECT path, status FROM photos ORDER BY path").fetchall()


def integrity(out: Path) -> tuple:
    with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)) as db:
        return db.execute("PRAGMA integrity_check").fetchall(), db.execute("PRAGMA foreign_key_check").fetchall()


# ------------------------------------------------------------------------------------------- the series

N_SERIES = 12  # 5 sessions of 2 photos, 2 recovery photos


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """The half-size series analysed by two worker processes (the command, a fresh process that can fork
    safely), then written out by ``write_outputs`` here (the report embeds its charts: no chart files)."""
    root = tmp_path_factory.mktemp("series")
    photos = root / "photos"
    copy_scaled(photos / "astronaut", 0.5)
    out = root / "out"
    t0 = time.perf_counter()
    r = cli("--quiet", "analyse", photos, "--out", out, "--jobs", 2, "--no-report")
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    written = write_outputs(out, paths=photos, charts=False, progress=False)
    return {"photos": photos, "out": out, "r": r, "seconds": seconds, "written": written}


def test_series_outputs_exist(series):
    out = series["out"]
    r = series["r"]  # exit code 0 (asserted by the fixture): every photo analysed
    assert r.stdout.startswith(f"skinscan: {N_SERIES} of {N_SERIES} photos analysed (0 already in the store")
    assert "Traceback" not in r.stderr and "skipped" not in r.stderr
    for name in ("results.csv", "photos.csv", "changes.csv", "results.parquet", "photos.parquet", "detections.csv",
                 "detections.parquet", STORE_NAME, "report_astronaut.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert series["written"]["reports"] == [out / "report_astronaut.html"]
    for kind in ("regions", "canonical"):
        assert len(list((out / kind).glob("*.jpg"))) == N_SERIES
    assert integrity(out) == ([("ok",)], [])
    # The references reached the workers through a pickle in the output folder: gone at the end.
    assert not list(out.glob(".skinscan-references-*"))


def test_results_are_tidy(series):
    out = series["out"]
    csv_frame = read_results(out)
    assert list(csv_frame.columns) == TIDY
    parquet = pd.read_parquet(out / "results.parquet")
    assert list(parquet.columns) == TIDY
    assert len(parquet) == len(csv_frame) and parquet["value"].dtype == np.float64
    assert set(csv_frame["subject"]) == {"astronaut"}
    assert csv_frame["photo"].nunique() == N_SERIES
    per_photo = csv_frame.groupby("photo").size()
    assert per_photo.nunique() == 1  # the same regions and metrics for every photo
    redness = csv_frame[(csv_frame["metric"] == "a_star") & (csv_frame["region"] == "face")]
    assert redness["unit"].notna().all() and np.isfinite(redness["value"]).all()


def test_detections_are_exported_in_the_photos_pixels(series):
    """One row per scar, spot and line branch (pores are not measured at 6 px/mm), in the photo's pixels and
    regions, matching the counts behind the densities."""
    found = pd.read_csv(series["out"] / "detections.csv")
    assert list(found.columns) == ["photo", "kind", "region", "x_px", "y_px", "diameter_mm", "length_mm", "strength"]
    assert set(found["kind"]) == {"scar", "spot", "line"} and found["photo"].nunique() == N_SERIES
    photos = pd.read_csv(series["out"] / "photos.csv").set_index("photo")
    w, h = photos.loc[found["photo"], "width"].to_numpy(), photos.loc[found["photo"], "height"].to_numpy()
    assert ((found["x_px"] >= 0) & (found["x_px"] < w) & (found["y_px"] >= 0) & (found["y_px"] < h)).all()
    assert found["region"].isin(["forehead", "cheek_left", "cheek_right", "nose", "chin", "periorbital_left",
                                 "periorbital_right", "perioral", "face"]).all()
    lines = found["kind"] == "line"
    assert found.loc[lines, "length_mm"].gt(0).all() and found.loc[lines, "diameter_mm"].isna().all()
    assert found.loc[~lines, "diameter_mm"].gt(0).all()
    values = read_results(series["out"])
    scars = values[(values["metric"] == "scar_density") & (values["region"] == "face")].set_index("photo")["value"]
    areas = photos["area_mm2_face"]
    counted = found[found["kind"] == "scar"].groupby("photo").size().reindex(scars.index, fill_value=0)
    np.testing.assert_allclose(counted / (areas[scars.index] / 100.0), scars, rtol=0.02)


def test_pores_are_nan_at_6_px_per_mm_and_the_reason_is_reported(series):
    values = read_results(series["out"])
    pores = values[values["metric"] == "pore_density"]
    assert len(pores) and pores["value"].isna().all()
    photos = pd.read_csv(series["out"] / "photos.csv")
    assert photos["px_per_mm"].between(5.0, 7.0).all()  # the originals' 11-12.5 px/mm, halved
    assert photos["quality_flags"].str.split(";").map(lambda f: "resolution" in f).all()


def test_recovery_folders_are_recovery_not_sessions(series):
    # changes.csv holds the sessions whose photos pass the blocking quality checks: never a recovery folder.
    changes = pd.read_csv(series["out"] / "changes.csv")
    assert "2026-01-05" in set(changes["session"]) and set(changes["session"]) <= set(TREATMENT_SESSIONS)
    with ResultStore(series["out"] / STORE_NAME) as store:
        values, photos = store.values_frame(), store.photos_frame()
    treatments = {"astronaut": discover(series["photos"]).treatment_dates("astronaut")}
    assert treatments["astronaut"][0] == date(2026, 1, 5)
    # Quality aside (include_flagged), every treatment session is a session and the two folders are recovery.
    every = summarise(values, photos, treatments=treatments, include_flagged=True)
    assert sorted(every["session"].unique()) == TREATMENT_SESSIONS
    curve = recovery_curve(values, photos, treatments, include_flagged=True)
    assert sorted(curve["session"].unique()) == RECOVERY_SESSIONS
    face = curve[(curve["region"] == "face") & (curve["metric"] == "a_star")].sort_values("hours_after")
    # One point per recovery photo: 23 h and 82 h after the treatment-day photos (EXIF times).
    assert face["hours_after"].round().tolist() == [23, 82]
    excess = (face["value"] - face["pre_value"]).to_numpy()
    # Injected: +5.0 and +1.2 Δa* over the treatment day; redness falls but is not yet back on day 3.
    assert excess[0] == pytest.approx(5.0, abs=0.8) and excess[1] == pytest.approx(1.2, abs=0.4)
    assert (excess > face["mdc"].to_numpy()).all()
    hours = recovery_time_hours(curve)
    # The recovery time is computed for every region and metric of the treatment; "not back within the
    # MDC by the last photo" is NaN (the series has no photo after day 3).
    assert {k[2] for k in hours if k[:2] == ("astronaut", date(2026, 1, 5))} >= {"face", "cheek_left", "forehead"}
    assert np.isnan(hours[("astronaut", date(2026, 1, 5), "face", "a_star")])
    html = (series["out"] / "report_astronaut.html").read_text(encoding="utf-8")
    assert 'id="recovery"' in html


def test_rerun_analyses_nothing_new(series):
    t0 = time.perf_counter()
    res = run_batch(series["photos"], series["out"], progress=False)
    seconds = time.perf_counter() - t0
    assert (res.n_photos, res.n_analysed, res.n_cached, res.failures) == (N_SERIES, 0, N_SERIES, [])
    assert seconds < series["seconds"] / 4  # no photo decoded or analysed: hashing only


def test_one_job_gives_the_same_values_as_two(series, tmp_path):
    # The baseline session's two photos in this one process, against the same files in the two-process
    # run: metric values depend on the photo alone (the reference only sets alignment and checks).
    picked = sorted((series["photos"] / "astronaut" / "2026-01-05").glob("*.jpg"))
    assert len(picked) == 2
    res = run_batch(picked, tmp_path / "out", jobs=1, progress=False)
    assert (res.n_analysed, res.failures) == (2, [])
    one = read_results(tmp_path / "out")
    two = read_results(series["out"])
    two = two[two["photo"].isin(one["photo"].unique())]
    assert one["photo"].nunique() == 2
    assert_same_values(one.drop(columns="session_index"), two.drop(columns="session_index"))


# ------------------------------------------------------------------------------------------- reliability

SMALL_SESSIONS = ("2026-01-05", "2026-02-06", "2026-03-10")


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """Six photos at 15 % of the size in three sessions, and their results from one uninterrupted run."""
    root = tmp_path_factory.mktemp("six")
    photos = root / "photos" / "astronaut"
    assert len(copy_scaled(photos, 0.15, sessions=SMALL_SESSIONS)) == 6
    res = run_batch(photos, root / "reference", progress=False)
    assert (res.n_analysed, res.failures) == (6, [])
    return {"photos": photos, "reference": read_results(root / "reference"), "reference_dir": root / "reference"}


def _analysed_count(out: Path) -> int | None:
    """Analysed photos in the store, read-only; None before the store's tables exist."""
    try:
        with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM photos WHERE status = 'analysed'").fetchone()[0]
    except sqlite3.Error:
        return None


def test_nothing_lost_when_killed(six, tmp_path):
    out = tmp_path / "out"
    args = ("analyse", six["photos"], "--out", out, "--no-report", "--quiet")
    for kill_at in (0, 1, 3):
        p = start(*args)
        try:
            deadline = time.monotonic() + 120
            while True:
                n = _analysed_count(out)
                if n is not None and n >= kill_at:
                    break
                assert p.poll() is None, f"finished before {kill_at} photos were stored: {p.communicate()}"
                assert time.monotonic() < deadline
                time.sleep(0.005)
            assert p.poll() is None
            p.send_signal(signal.SIGKILL)
        finally:
            p.kill()
            p.communicate()
        assert p.returncode == -signal.SIGKILL
        assert (_analysed_count(out) or 0) < 6, "the run was not interrupted"
    killed_left = sorted(f.name for f in out.glob(".skinscan-references-*"))
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("skinscan: 6 of 6 photos analysed")
    rows = store_rows(out)
    assert len(rows) == 6 and len({path for path, _ in rows}) == 6 and {s for _, s in rows} == {"analysed"}
    assert integrity(out) == ([("ok",)], [])
    assert_same_values(read_results(out), six["reference"])
    # The killed runs' references pickles are cleared by the next run.
    assert killed_left and not list(out.glob(".skinscan-references-*"))
    for kind in ("regions", "canonical"):  # no half-written image survives
        images = sorted((out / kind).glob("*.jpg"))
        assert len(images) == 6
        for path in images:
            Image.open(path).load()


def test_two_processes_writing_the_same_store(six, tmp_path):
    out = tmp_path / "out"
    procs = [start("analyse", six["photos"], "--out", out, "--no-report", "--quiet") for _ in range(2)]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (stdout, stderr), code in results:
        assert code == 0, stderr
        assert "Traceback" not in stderr
        assert stdout.startswith("skinscan: 6 of 6 photos analysed")
    rows = store_rows(out)
    assert len(rows) == 6 and len({path for path, _ in rows}) == 6 and {s for _, s in rows} == {"analysed"}
    assert integrity(out) == ([("ok",)], [])
    assert_same_values(read_results(out), six["reference"])


def test_a_store_locked_too_long_is_one_clear_line(six, tmp_path):
    out = tmp_path / "out"
    ResultStore(out / STORE_NAME).close()
    with closing(sqlite3.connect(out / STORE_NAME, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another writer holding the store
        r = cli("analyse", six["photos"], "--out", out, "--no-report", "--quiet", "--wait", "0.5")
        holder.execute("ROLLBACK")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("skinscan")]
    assert len(lines) == 1, r.stderr
    assert str(out / STORE_NAME) in lines[0]
    assert "another skinscan process is writing the same store; wait for it to finish or use another --out" in lines[0]


# Faults are injected through the executor: its ``analyse`` is what analyses a photo in the workers
# (forked, so a function of this script reaches them). The batch runs in a fresh process, as a user's.
_CRASHING_WORKER = r"""
import json, os, sys
from pathlib import Path

from skinscan.analysis import analyse_photo
from skinscan.batch import run_batch
from skinscan.executors import PoolExecutor

parent = os.getpid()


def crash_in_worker(source, **kw):  # a worker dying on one photo, as a crash in native code would
    if os.getpid() != parent and Path(source).name == sys.argv[1]:
        os._exit(3)
    return analyse_photo(source, **kw)


res = run_batch(sys.argv[3:], sys.argv[2], executor=PoolExecutor(2, analyse=crash_in_worker), progress=False)
print(json.dumps({"analysed": res.n_analysed, "failures": res.failures}))
"""


_REFERENCES_WORKER_DIES = r"""
import json, os, sys

from skinscan.analysis import analyse_photo
from skinscan.batch import run_batch
from skinscan.executors import PoolExecutor

parent = os.getpid()


def die_finding_references(source, **kw):  # the worker finding the references dies, as a crash in native code would
    if os.getpid() != parent and kw.get("metrics") is False:  # only the references are analysed without metrics
        os._exit(3)
    return analyse_photo(source, **kw)


res = run_batch(sys.argv[2], sys.argv[1], executor=PoolExecutor(2, analyse=die_finding_references), progress=False)
print(json.dumps({"analysed": res.n_analysed, "failures": res.failures}))
"""


def test_a_worker_that_dies_finding_the_references_costs_its_photos_not_the_references(six, tmp_path):
    # The batch process then finds the references itself: the photos after the crash are analysed
    # against the same references as in an uninterrupted run.
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", _REFERENCES_WORKER_DIES, str(out), str(six["photos"])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["analysed"] >= 1 and res["analysed"] + len(res["failures"]) == 6
    assert all("stopped unexpectedly; run skinscan again to retry it" in why for _, why in res["failures"])
    done = read_results(out)
    done = done[done["photo"].isin({str(p) for p in six["photos"].glob("*/*.jpg")})]
    ref = six["reference"][six["reference"]["photo"].isin(done["photo"].unique())]
    assert done["photo"].nunique() == res["analysed"]
    assert_same_values(done.drop(columns="session_index"), ref.drop(columns="session_index"))
    # ... and aligned to the reference as in the uninterrupted run (without a reference the
    # alignment residual is empty).
    photos = pd.read_csv(out / "photos.csv").set_index("photo")
    ref_photos = pd.read_csv(six["reference_dir"] / "photos.csv").set_index("photo")
    analysed = photos.index[photos["status"] == "analysed"]
    assert photos.loc[analysed, "alignment_residual_mm"].notna().all()
    np.testing.assert_allclose(photos.loc[analysed, "alignment_residual_mm"],
                               ref_photos.loc[analysed, "alignment_residual_mm"], atol=1e-9)
    assert not list(out.glob(".skinscan-references-*"))


def test_a_worker_that_dies_costs_its_photos_not_the_batch(six, tmp_path):
    photos = sorted(six["photos"].glob("*/*.jpg"))[:4]
    victim = photos[2].name
    r = subprocess.run([sys.executable, "-c", _CRASHING_WORKER, victim, str(tmp_path / "out"), *map(str, photos)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    failed = {Path(p).name: reason for p, reason in res["failures"]}
    assert victim in failed and res["analysed"] + len(failed) == 4
    assert all("stopped unexpectedly; run skinscan again to retry it" in why for why in failed.values())
    with closing(sqlite3.connect(f"file:{tmp_path / 'out' / STORE_NAME}?mode=ro", uri=True)) as db:
        rows = dict(db.execute("SELECT path, content_hash FROM photos WHERE status = 'skipped'").fetchall())
    assert {Path(p).name for p in rows} == set(failed)
    assert all(h.startswith("retry:") for h in rows.values())  # so the next run analyses them again


def test_a_rerun_with_nothing_new_rewrites_nothing_and_says_so_at_once(tmp_path):
    photos = tmp_path / "photos" / "astronaut"
    copy_scaled(photos, 0.15, sessions=SMALL_SESSIONS)
    out = tmp_path / "out"
    first = cli("--quiet", "analyse", photos, "--out", out, "--jobs", 1, "--formats", "svg", "--include-flagged")
    assert first.returncode == 0, first.stderr
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "skinscan.db" not in p.name}
    assert any(p.name.startswith("report_") for p in files) and any(p.suffix == ".svg" for p in files)
    again = cli("--quiet", "analyse", photos, "--out", out, "--jobs", 1, "--formats", "svg", "--include-flagged")
    assert again.returncode == 0, again.stderr
    lines = [line for line in again.stderr.splitlines() if line.startswith(("skinscan", "  note"))]
    assert lines[0] == "skinscan: nothing new to analyse (6 photos already in the store)"
    assert "  note: charts and reports up to date: nothing rewritten" in lines
    flags = [line for line in lines if line.startswith("  note: quality flags: ")]
    assert len(flags) == 1 and "resolution 6" in flags[0], lines  # 15% of the size: every photo too coarse
    assert {p: p.stat().st_mtime_ns for p in files} == files  # not one file rewritten
    # The report command alone finds its reports up to date, and leaves the next analyse nothing to redo.
    report = cli("report", "--out", out, "--include-flagged", "--photos", photos)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip() == (f"skinscan: 1 report up to date under {out}, nothing rewritten "
                                     "(--force rewrites them)")
    again = cli("--quiet", "analyse", photos, "--out", out, "--jobs", 1, "--formats", "svg", "--include-flagged")
    assert "  note: charts and reports up to date: nothing rewritten" in again.stderr.splitlines()
    assert {p: p.stat().st_mtime_ns for p in files} == files
    forced = cli("report", "--out", out, "--include-flagged", "--force")
    assert forced.stdout.strip() == f"skinscan: 1 report written under {out}"
    assert (out / "report_astronaut.html").stat().st_mtime_ns > files[out / "report_astronaut.html"]
    assert all(p.stat().st_mtime_ns == files[p] for p in files if p.suffix == ".svg")  # charts left alone
    # A folder holding the store alone: the report says why it has no before/after images.
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / STORE_NAME).write_bytes((out / STORE_NAME).read_bytes())
    bare = cli("report", "--out", alone, "--include-flagged", "--quiet")
    assert bare.returncode == 0 and f"note: no faces in {alone / 'canonical'}" in bare.stderr
    assert "No before/after images: they need two sessions" in (alone / "report_astronaut.html").read_text()
    # ... and once the faces are copied in, the report is made again, with them.
    shutil.copytree(out / "canonical", alone / "canonical")
    copied = cli("report", "--out", alone, "--include-flagged", "--quiet")
    assert copied.stdout.strip() == f"skinscan: 1 report written under {alone}" and "note" not in copied.stderr
    assert 'id="ba-slider"' in (alone / "report_astronaut.html").read_text()
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "skinscan.db" not in p.name}
    # A change to one session's photos rewrites the tables and the subject's outputs, nothing else.
    victim = sorted((photos / SMALL_SESSIONS[-1]).glob("*.jpg"))[0]
    victim.unlink()
    third = cli("--quiet", "analyse", photos, "--out", out, "--jobs", 1, "--formats", "svg", "--include-flagged")
    assert third.returncode == 0 and "nothing new" not in third.stderr
    assert (out / "results.csv").stat().st_mtime_ns > files[out / "results.csv"]
    assert (out / "report_astronaut.html").stat().st_mtime_ns > files[out / "report_astronaut.html"]
    assert any(p.stat().st_mtime_ns > files[p] for p in files if p.suffix == ".svg")  # the subject's charts
    # A damaged record of what was written costs a rewrite, not the run.
    manifest = out / ".skinscan-outputs.json"
    manifest.write_text(json.dumps({"subjects": {"astronaut": {"charts": [], "reports": {"key": 3}}}, "changes": 1}))
    damaged = cli("report", "--out", out, "--include-flagged", "--quiet")
    assert damaged.returncode == 0 and damaged.stdout.strip() == f"skinscan: 1 report written under {out}"
