"""The skinscan command, run as a user would: a real subprocess on real files."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "skinscan.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_help_shows_examples():
    r = run("--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "skinscan analyse photos/ --out out/" in r.stdout
    r = run("analyse", "--help")
    assert r.returncode == 0 and "example: skinscan analyse" in r.stdout


def test_analyse_a_folder_with_a_bad_file(tmp_path):
    folder = tmp_path / "photos" / "me" / "2026-01-05"
    folder.mkdir(parents=True)
    good = sorted(SAMPLES.glob("2026-01-05/*.jpg"))[0]
    shutil.copy(good, folder / good.name)
    (folder / "notes.jpg").write_text("not a photo at all")
    out = tmp_path / "out"
    r = run("--quiet", "analyse", str(tmp_path / "photos"), "--out", str(out))
    assert r.returncode == 1, r.stderr  # partial failure
    assert "1 of 2 photos analysed" in r.stdout
    assert "notes.jpg" in r.stderr and "Traceback" not in r.stderr
    rows = {Path(row["photo"]).name: row for row in csv.DictReader(open(out / "photos.csv"))}
    assert rows[good.name]["status"] == "analysed" and rows["notes.jpg"]["status"] == "skipped"
    assert "not an image" in rows["notes.jpg"]["error"]
    assert float(rows[good.name]["px_per_mm"]) == pytest.approx(12.3, rel=0.05)
    assert len(list((out / "regions").glob("*.jpg"))) == 1 and len(list((out / "canonical").glob("*.jpg"))) == 1


def test_missing_path_is_one_clear_line(tmp_path):
    r = run("analyse", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out"))
    assert r.returncode != 0 and "nothing-here" in (r.stdout + r.stderr) and "Traceback" not in r.stderr


def test_one_version_everywhere():
    """pyproject, the package, the command, `python -m skinscan` and the report all say the same."""
    import importlib.metadata
    import tomllib

    import skinscan
    from skinscan._version import PIPELINE_VERSION, version_text

    expected = f"skinscan {skinscan.__version__} (pipeline {PIPELINE_VERSION})"
    assert version_text() == expected
    for argv in (["-m", "skinscan.cli", "--version"], ["-m", "skinscan", "--version"]):
        r = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == expected, r.stderr
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert importlib.metadata.version("skinscan") == skinscan.__version__


_MEDIAPIPE_LOG = ("Logging before InitGoogle", "XNNPACK", "inference_feedback_manager", "face_landmarker_graph")


def test_mediapipe_start_up_lines_are_silenced_unless_debug(tmp_path):
    folder = tmp_path / "photos" / "me" / "2026-01-05"
    folder.mkdir(parents=True)
    for src in sorted(SAMPLES.glob("2026-01-05/*.jpg")):
        shutil.copy(src, folder / src.name)
    r = run("--quiet", "analyse", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--jobs", "2", "--no-report")
    assert r.returncode == 0, r.stderr
    assert not any(k in r.stderr for k in _MEDIAPIPE_LOG), r.stderr  # nor from the two workers
    r = run("--quiet", "--debug", "analyse", str(folder / next(folder.iterdir()).name), "--out", str(tmp_path / "o2"),
            "--no-report")
    assert r.returncode == 0 and any(k in r.stderr for k in _MEDIAPIPE_LOG)
