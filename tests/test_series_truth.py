"""`skinscan analyse sample_images` end to end: the detected trend has the direction of the injected one."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"
TRUTH = json.loads((SAMPLES / "astronaut" / "ground_truth.json").read_text())

# Where each concern was injected (regions of the report), and its metrics.
CONCERN_METRICS = {
    ("face",): ["a_star", "erythema_index", "roughness"],
    ("cheek_left", "cheek_right", "nose"): ["pore_density", "pore_area_pct"],
    ("cheek_left", "cheek_right"): ["scar_density", "scar_area_pct", "scar_severity", "spot_density",
                                    "spot_area_pct", "melanin_index", "tone_evenness"],
    ("periorbital_left", "periorbital_right"): ["wrinkle_density"],
}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    r = subprocess.run([sys.executable, "-m", "skinscan.cli", "--quiet", "analyse", str(SAMPLES), "--out", str(out),
                        "--jobs", "2"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_tables_charts_and_report_are_written(out):
    for name in ("results.csv", "photos.csv", "changes.csv", "results.parquet", "photos.parquet", "skinscan.db",
                 "report_astronaut.html"):
        assert (out / name).stat().st_size > 0, name
    tidy = pd.read_csv(out / "results.csv")
    assert {"subject", "session", "date", "photo", "region", "metric", "value", "unit"} <= set(tidy.columns)
    assert len(list((out / "charts" / "astronaut").glob("trend_*.png"))) == 16


def test_every_injected_improvement_is_detected_in_direction(out):
    changes = pd.read_csv(out / "changes.csv")
    first, last = changes["session_index"].min(), changes["session_index"].max()
    assert last == len(TRUTH["sessions"]) - 1  # recovery folders are not sessions
    wrong = []
    for regions, metrics in CONCERN_METRICS.items():
        for metric in metrics:
            sel = changes[(changes["metric"] == metric) & changes["region"].isin(regions)]
            base = sel[sel["session_index"] == first]["value"].mean()
            latest = sel[sel["session_index"] == last]["value"].mean()
            # Every concern was injected at its highest dose at baseline and falls to its lowest.
            if not latest < base:
                wrong.append((metric, regions, base, latest))
    assert not wrong, wrong


def test_redness_recovers_after_the_first_treatment(out):
    photos = pd.read_csv(out / "photos.csv")
    assert (photos["status"] == "analysed").sum() == 12
    html = (out / "report_astronaut.html").read_text()
    assert "Recovery" in html and "data:image/png;base64," in html
    # No address to fetch anything from (embedded images' base64 may spell "http" by chance).
    text = re.sub(r"data:[^\"')\s]+", "", html).replace("http-equiv", "")
    assert "http" not in text
