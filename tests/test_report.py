"""The HTML report: one self-contained, escaped, offline document, parsed and loaded in a real headless Chromium."""

from __future__ import annotations

import base64
import html
import io
import os
import re
import shutil
import subprocess
from datetime import date
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinscan.report import build_report, write_report

from test_charts import make_recovery, make_summary

EVIL = "<script>alert(1)</script>"
TREATMENTS = [date(2026, 1, 5), date(2026, 2, 2)]


def make_photos(subject):
    """Two photos per session; one excluded by the sharpness check, one that could not be analysed."""
    rows = []
    for i, day in enumerate(("2026-01-05", "2026-02-02", "2026-03-02")):
        for k in range(2):
            excluded = (i, k) == (1, 1)
            skipped = (i, k) == (2, 1)
            rows.append(dict(
                subject=subject, session=f"visit {i}", session_index=i, date=pd.Timestamp(day),
                photo=f"/data/{subject}/visit {i}/IMG_{i}{k}.jpg", status="skipped" if skipped else "analysed",
                error="NoFaceError: no face found" if skipped else "",
                quality_flags="sharpness;expression" if excluded else ("face_count" if (i, k) == (0, 1) else ""),
                excluded_by="sharpness" if excluded else ""))
    return pd.DataFrame(rows)


def make_before_after(h=96, w=80):
    """Baseline and latest in one frame: a warm gradient face, latest less red, a left-to-right change map."""
    yy, xx = np.mgrid[:h, :w]
    valid = ((yy - h / 2) / (0.46 * h)) ** 2 + ((xx - w / 2) / (0.46 * w)) ** 2 < 1
    base = np.dstack([200 - yy // 3, 140 + xx // 2, 110 + (xx + yy) // 4]).astype(np.uint8)
    latest = np.clip(base.astype(int) - [25, 0, 0], 0, 255).astype(np.uint8)
    delta = np.where(valid, (xx - w / 2) / 10.0, np.nan)
    return {"baseline_rgb": base, "latest_rgb": latest, "valid": valid,
            "heatmaps": {"redness": (delta, "delta a*"), "texture": (-delta / 4, "a.u.")}}


@pytest.fixture(scope="module")
def data():
    summary = pd.concat([make_summary(EVIL, nan_at={("face", "pore_density", 1)}), make_summary("someone else")],
                        ignore_index=True)
    photos = pd.concat([make_photos(EVIL), make_photos("someone else")], ignore_index=True)
    return summary, photos


@pytest.fixture(scope="module")
def report_html(data):
    summary, photos = data
    return build_report(summary, photos, subject=EVIL, treatments=TREATMENTS, recovery=make_recovery(EVIL),
                        recovery_hours={("face", "a_star"): 52.5}, before_after=make_before_after())


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(doc):
    p = _Collect()
    p.feed(doc)
    p.close()
    return p


def _without_data_uris(doc):
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", doc)


# --------------------------------------------------------------------------------------------- structure

def test_report_is_one_offline_document(report_html):
    p = _parse(report_html)
    assert report_html.startswith("<!DOCTYPE html>")
    tags = [t for t, _ in p.tags]
    assert tags.count("html") == 1 and tags.count("body") == 1
    text = _without_data_uris(report_html)
    assert not re.search(r"https?://|//cdn|url\(|@import", text, flags=re.I)
    assert not re.search(r"\b(?:src|href)\s*=\s*(?![\"']?(?:data:|#))", text, flags=re.I)
    for tag, attrs in p.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base")
        if tag == "script":
            assert "src" not in attrs
        if "src" in attrs:
            assert attrs["src"].startswith("data:image/png;base64,")
        if tag == "a":
            assert attrs["href"].startswith("#")
    csp = [a["content"] for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]


def test_embedded_images_are_valid_pngs(report_html):
    srcs = [a["src"] for t, a in _parse(report_html).tags if t == "img"]
    # 3 trend charts, 2 region grids, the slider's 2 photos, the change-map figure, 1 recovery chart.
    assert len(srcs) == 9
    for src in srcs:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and min(im.size) > 50
            assert not im.text  # no "Software: matplotlib" chunk


def test_slider_and_its_images(report_html):
    tags = _parse(report_html).tags
    (slider,) = [a for t, a in tags if t == "input" and a.get("type") == "range"]
    assert (slider["min"], slider["max"], slider["value"]) == ("0", "100", "50")
    top = [a for t, a in tags if t == "img" and a.get("id") == "ba-top"]
    assert len(top) == 1
    with Image.open(io.BytesIO(base64.b64decode(top[0]["src"].split(",", 1)[1]))) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), make_before_after()["baseline_rgb"])
    assert "clip-path" in report_html and "addEventListener(\"input\"" in report_html


def test_data_text_is_escaped(report_html):
    assert EVIL not in report_html
    assert html.escape(EVIL) in report_html
    scripts = [a for t, a in _parse(report_html).tags if t == "script"]
    assert len(scripts) == 1  # only the report's own inline script


def test_change_table_values(report_html):
    table = report_html[report_html.index('id="change-table"'):report_html.index("</table>",
                                                                            report_html.index('id="change-table"'))]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]
    cells = [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]
    by_metric = {c[0]: c for c in cells}
    # a*: 14 -> 11, change -3 (−21.4 %) beyond the MDC of 1: improved.
    assert by_metric["Redness a*"] == ["Redness a*", "CIELAB a*", "14.0", "11.0", "−3.00", "−21.4 %", "1.00",
                                       "improved"]
    assert by_metric["Pore density"][2:] == ["40.0", "42.0", "+2.00", "+5.0 %", "2.00", "no detectable change"]
    assert by_metric["Skin tone ITA"][1] == "°"
    assert [c[0] for c in cells] == ["Redness a*", "Pore density", "Skin tone ITA"]  # display order
    assert 'class="label label-improved"' in table


def test_header_and_quality_section(report_html):
    text = " ".join(_parse(report_html).text)
    assert "3 (2026-01-05 to 2026-03-02)" in text
    assert "6 files: 4 used, 1 excluded by quality checks, 1 could not be analysed" in text
    assert "2026-01-05, 2026-02-02" in text
    assert "Generated by skinscan" in text
    quality = report_html[report_html.index('id="photo-table"'):]
    rows = re.findall(r"<tr class=\"([^\"]*)\">(.*?)</tr>", quality, flags=re.S)
    assert len(rows) == 6
    out = {re.search(r"IMG_\d\d\.jpg", r).group(0): r for cls, r in rows if cls == "out"}
    assert set(out) == {"IMG_11.jpg", "IMG_21.jpg"}
    assert "excluded: sharpness" in out["IMG_11.jpg"] and "expression" in out["IMG_11.jpg"]
    assert "NoFaceError: no face found" in out["IMG_21.jpg"]
    assert "/data/" not in report_html  # file names only, not the folders they came from
    assert "someone else" not in report_html


def test_report_is_deterministic_and_written(report_html, data, tmp_path):
    summary, photos = data
    again = build_report(summary, photos, subject=EVIL, treatments=TREATMENTS, recovery=make_recovery(EVIL),
                         recovery_hours={("face", "a_star"): 52.5}, before_after=make_before_after())
    assert again == report_html
    path = write_report(tmp_path / "sub" / "report.html", report_html)
    assert path.read_text(encoding="utf-8") == report_html


def test_report_without_optional_parts_and_without_measurements(data):
    summary, photos = data
    one = build_report(make_summary("solo", n_sessions=1, regions=("face",)), photos.iloc[:0], subject="solo")
    assert 'id="recovery"' not in one and 'type="range"' not in one and "No photos recorded" in one
    assert "No before/after images were provided" in one
    # Every photo of this subject failed: no measurements, but the quality section still says why.
    failed = photos[photos["subject"] == EVIL].assign(subject="failed", status="skipped", error="NoFaceError: x")
    doc = build_report(summary.iloc[:0], failed, subject="failed", title="Q & A")
    assert "No whole-face measurements" in doc and doc.count("NoFaceError: x") == 6
    assert "<title>Q &amp; A</title>" in doc
    with pytest.raises(ValueError, match="before_after"):
        build_report(summary, photos, subject=EVIL, before_after={"latest_rgb": np.zeros((2, 2, 3), np.uint8)})


# --------------------------------------------------------------------------------------------- a real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]


@pytest.fixture(scope="module")
def chromium():
    """Path of a Chromium binary: required under CI (CI=true), else the browser tests are skipped."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def _run_chromium(chromium, tmp_path, *args, url):
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _console_lines(stderr):
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


def test_browser_screenshot_is_not_blank(chromium, report_html, tmp_path):
    page = write_report(tmp_path / "report.html", report_html)
    shot = tmp_path / "shot.png"
    res = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", url=page.as_uri())
    assert shot.exists(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    assert rgb.shape[:2] == (2400, 1280)
    assert rgb.std() > 20
    # Chart-like colour: saturated pixels (label badges, chart points, treatment lines), many distinct colours.
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert (saturation > 80).sum() > 500
    q = rgb // 8  # colours on a 32-level grid, packed into one integer each
    assert np.count_nonzero(np.bincount((q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]).ravel())) > 200
    green = (rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40)
    assert green.sum() > 100  # the "improved" badge and points


def test_browser_runs_the_script_without_console_errors(chromium, report_html, tmp_path):
    page = write_report(tmp_path / "report.html", report_html)
    res = _run_chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom",
                        url=page.as_uri() + "#ba=20")
    dom = res.stdout
    assert re.search(r"<body[^>]*data-ready=\"1\"", dom), res.stderr[-2000:]
    # The slider script ran: the baseline is clipped to the slider's value, read from the "#ba=20" fragment.
    top = re.search(r"<img[^>]*id=\"ba-top\"[^>]*>", dom).group(0)
    assert re.search(r"clip-path:\s*inset\(0(px)?\s+80%\s+0(px)?\s+0(px)?\)", top), top[-200:]
    # Any console message (an uncaught error, a blocked external load) is a failure: the page logs nothing.
    assert _console_lines(res.stderr) == []


def test_browser_check_catches_a_broken_script(chromium, tmp_path):
    """The checks above have teeth: a page whose script throws and which fetches a URL fails both."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                   "'none'; img-src data:; script-src 'unsafe-inline'\"></head><body>"
                   "<img src=\"https://example.invalid/x.png\"><script>nosuch();"
                   "document.body.dataset.ready = '1';</script></body></html>")
    res = _run_chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", url=bad.as_uri())
    assert "<body" in res.stdout and 'data-ready="1"' not in res.stdout
    lines = _console_lines(res.stderr)
    assert any("Uncaught ReferenceError" in ln for ln in lines)
    assert any("Content Security Policy" in ln for ln in lines)
