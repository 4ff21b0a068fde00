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

from skinscan.report import build_report, relative_change_shown, time_report, write_report

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
            "heatmaps": {"redness": (delta, "delta a*"), "texture": (-delta / 4, "a.u.")},
            "titles": ("baseline (visit 0, 2026-01-05)", "latest (visit 2, 2026-03-02)")}


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
    # The slider's 2 photos and the 2 change maps; the charts are inline SVG.
    assert len(srcs) == 4
    for src in srcs:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and min(im.size) > 50
            assert not im.text  # no "Software: matplotlib" chunk


def _svgs(doc, cls="chart"):
    return [m.group(0) for m in re.finditer(r"<svg\b[^>]*>.*?</svg>", doc, flags=re.S)
            if re.search(rf'class="[^"]*\b{cls}\b', m.group(0).split(">", 1)[0])]


def test_charts_are_inline_svg_with_unit_labelled_y_axes(report_html):
    trends = re.findall(r'<figure class="trend" data-metric="(\w+)">(.*?)</figure>', report_html, flags=re.S)
    assert [m for m, _ in trends] == ["a_star", "pore_density", "ita_deg"]
    units = {"a_star": "CIELAB a*", "pore_density": "per cm²", "ita_deg": "°"}
    for metric, chart in trends:
        assert chart.startswith("<svg") and 'role="img"' in chart and "xmlns" not in chart
        (ylabel,) = re.findall(r'<text[^>]*class="ylabel"[^>]*>([^<]*)</text>', chart)
        assert units[metric] in html.unescape(ylabel), (metric, ylabel)
    # Two metrics in more than one region: nine panels each, every y axis labelled with the unit.
    panels = _svgs(report_html, "panel")
    assert len(panels) == 18
    assert all(re.search(r'class="ylabel"[^>]*>(CIELAB a\*|per cm²)</text>', p) for p in panels)
    assert len(_svgs(report_html, "colour-bar")) == 2
    (recovery,) = re.findall(r'<figure class="recovery"[^>]*>(.*?)</figure>', report_html, flags=re.S)
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", recovery)]
    assert "treatment 2026-02-02:" in texts and "back within MDC after 52 h" in texts and "52 h" in texts


def test_slider_and_its_images(report_html):
    tags = _parse(report_html).tags
    (slider,) = [a for t, a in tags if t == "input" and a.get("type") == "range"]
    assert (slider["min"], slider["max"], slider["value"]) == ("0", "100", "50")
    top = [a for t, a in tags if t == "img" and a.get("id") == "ba-top"]
    assert len(top) == 1
    with Image.open(io.BytesIO(base64.b64decode(top[0]["src"].split(",", 1)[1]))) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), make_before_after()["baseline_rgb"])
    assert "clip-path" in report_html and "addEventListener(\"input\"" in report_html


def test_slider_end_labels_match_the_photo_tags(report_html):
    def text_of(cls):
        (m,) = re.findall(rf'<span class="{cls}">(.*?)</span>(?=<span|</div>)', report_html)
        return html.unescape(re.sub(r"<[^>]+>", "", m))

    # The baseline is the clipped top image, shown left of the divider: both the tag on the photo and
    # the label under the slider's left end say so.
    assert text_of("ba-tag left") == text_of("end-left") == "baseline (visit 0, 2026-01-05)"
    assert text_of("ba-tag right") == text_of("end-right") == "latest (visit 2, 2026-03-02)"
    assert "inset(0 \" + (100 - v) + \"% 0 0)" in report_html  # the top image is cut from the right


def test_data_text_is_escaped(report_html):
    assert EVIL not in report_html
    assert html.escape(EVIL) in report_html
    scripts = [a for t, a in _parse(report_html).tags if t == "script"]
    assert len(scripts) == 1  # only the report's own inline script


def _table_cells(doc, table_id="change-table"):
    """Rows of a table as lists of cell texts, a line break in a cell kept as a newline."""
    start = doc.index(f'id="{table_id}"')
    table = doc[start:doc.index("</table>", start)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c.replace("<br>", "\n"))).strip()
             for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, flags=re.S)] for r in rows]


def test_change_table_values(report_html):
    head, *cells = _table_cells(report_html)
    assert head == ["Metric", "Baseline\nvisit 0, 2026-01-05", "Latest\nvisit 2, 2026-03-02", "Change\n(relative)",
                    "MDC\nsource", "Result"]
    by_metric = {c[0].split("\n")[0]: c for c in cells}
    # a*: 14 -> 11, change -3 beyond the MDC of 1: improved; a* is an interval quantity, so no percentage.
    assert by_metric["Redness a*"] == ["Redness a*\nCIELAB a*", "14.0", "11.0", "−3.00 CIELAB a*", "1.00", "improved"]
    # Pore density: a count with a baseline (40) well above its MDC (2): the relative change is given too.
    assert by_metric["Pore density"][1:] == ["40.0", "42.0", "+2.00 per cm²\n+5.0 %", "2.00", "no detectable change"]
    assert by_metric["Skin tone ITA"][0] == "Skin tone ITA\n°" and by_metric["Skin tone ITA"][3] == "+0.00 °"
    assert [c[0].split("\n")[0] for c in cells] == ["Redness a*", "Pore density", "Skin tone ITA"]  # display order
    assert 'class="label label-improved"' in report_html


def _one_metric(metric, base, latest, mdc, *, unit="a.u.", source="repeats", n_sessions=2):
    """A one-subject summary of one metric on the whole face: ``base`` at visit 0, ``latest`` at the last visit."""
    rows = []
    for i in range(n_sessions):
        value = base if i == 0 else latest
        change = value - base
        label = "baseline" if i == 0 else ("not determinable" if not np.isfinite(mdc) else
                                           "no detectable change" if abs(change) <= mdc else "improved")
        rows.append(dict(subject="s", session=f"visit {i}", session_index=i, date=pd.Timestamp(2026, 1, 5 + 7 * i),
                         region="face", metric=metric, unit=unit, value=value, spread=np.nan, n_photos=1,
                         n_excluded=0, change_abs=change, change_pct=100 * change / abs(base), mdc=mdc,
                         mdc_source=source, label=label, higher_is_worse=True))
    return pd.DataFrame(rows)


def _change_cells(summary):
    doc = build_report(summary, pd.DataFrame(), subject="s")
    return {c[0].split("\n")[0]: c for c in _table_cells(doc)[1:]}


def test_changes_near_zero_and_of_interval_quantities_are_not_percentages():
    summary = pd.concat([
        _one_metric("erythema_index", 5.28, -0.739, 0.654),             # interval: "−114 %" would mean nothing
        _one_metric("a_star", 3.83, 0.214, 0.184, unit="CIELAB a*"),    # interval: "−94 %" would mean nothing
        _one_metric("spot_density", 0.04, 0.11, 0.05, unit="per cm2"),  # baseline within the MDC of zero
        _one_metric("spot_area_pct", 0.9, 0.3, 0.2, unit="%"),          # a share: its change in percentage points
        _one_metric("scar_density", 0.5, 0.2, np.nan, unit="per cm2", source="not determinable"),
    ], ignore_index=True)
    rows = _change_cells(summary)
    assert rows["Erythema index"][3] == "−6.02 a.u."
    assert rows["Redness a*"][3] == "−3.62 CIELAB a*"
    assert rows["Spot density"][3] == "+0.0700 per cm²"
    assert rows["Spot area"][3] == "−0.600 % points\n−66.7 %"
    assert rows["Scar density"][3] == "−0.300 per cm²"  # no MDC: nothing to tell the baseline from zero by
    assert not any("%" in r[3] for name, r in rows.items() if name != "Spot area")


def test_relative_change_rule():
    assert relative_change_shown("pore_density", 137.0, 7.5)
    assert relative_change_shown("new_metric", -20.0, 1.0)  # a metric skinscan does not know: by its MDC
    for metric in ("a_star", "erythema_index", "ita_deg"):
        assert not relative_change_shown(metric, 50.0, 1.0)
    assert not relative_change_shown("spot_density", 0.04, 0.05)
    assert not relative_change_shown("spot_density", 0.04, float("nan"))
    assert not relative_change_shown("spot_density", float("nan"), 0.01)
    assert not relative_change_shown("spot_density", None, "x")


def test_mdc_source_not_determinable_and_missing_latest_value_are_said():
    summary = pd.concat([
        _one_metric("roughness", 1.78, 1.32, 0.0975),
        _one_metric("pore_density", 40.0, 35.0, 3.0, unit="per cm2", source="photo uncertainty"),
        _one_metric("scar_density", 0.5, 0.2, np.nan, unit="per cm2", source="not determinable"),
        _one_metric("tone_evenness", 16.5, np.nan, 0.7),
    ], ignore_index=True)
    rows = _change_cells(summary)
    assert rows["Roughness"][4:] == ["0.0975\nrepeats", "improved"]
    assert rows["Pore density"][4:] == ["3.00\nphoto uncertainty", "improved"]
    assert rows["Scar density"][4:] == ["not determinable", "not determinable"]
    assert rows["Tone evenness"][2:] == ["—", "—", "0.700\nrepeats", "no value"]  # not "no detectable change"
    doc = build_report(summary, pd.DataFrame(), subject="s")
    assert '<span class="label label-nd">not determinable</span>' in doc
    assert '<span class="mdc-none">not determinable</span>' in doc


def test_header_and_quality_section(report_html):
    text = "".join(_parse(report_html).text)
    assert "3 in the trends: visit 0, 2026-01-05 (baseline) to visit 2, 2026-03-02 (latest)" in text
    assert "6 files: 4 used, 1 excluded by quality checks, 1 could not be analysed" in text
    assert "Treatments2026-01-05, 2026-02-02" in text
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
    assert "No before/after images: they need two sessions" in one
    # Every photo of this subject failed: no measurements, but the quality section still says why.
    failed = photos[photos["subject"] == EVIL].assign(subject="failed", status="skipped", error="NoFaceError: x")
    doc = build_report(summary.iloc[:0], failed, subject="failed", title="Q & A")
    assert "No whole-face measurements" in doc and doc.count("NoFaceError: x") == 6
    assert "<title>Q &amp; A</title>" in doc
    with pytest.raises(ValueError, match="before_after"):
        build_report(summary, photos, subject=EVIL, before_after={"latest_rgb": np.zeros((2, 2, 3), np.uint8)})


def test_header_and_change_table_name_the_same_latest_session(data):
    """The last session's photos all failed a check and a recovery day followed a treatment: neither is
    in the trends, so the header's range ends where the change table's "Latest" column does."""
    summary, photos = data
    later = make_photos(EVIL).query("session_index == 2").assign(
        session="visit 3", session_index=3, date=pd.Timestamp("2026-04-01"), status="analysed", error="",
        excluded_by="sharpness", photo=lambda d: d["photo"].str.replace("IMG_2", "IMG_3"))
    healing = make_photos(EVIL).query("session_index == 1").assign(
        session="visit 1 day 2", session_index=2, date=pd.Timestamp("2026-02-04"), excluded_by="")
    photos = pd.concat([photos, later, healing], ignore_index=True)
    doc = build_report(summary, photos, subject=EVIL, treatments=TREATMENTS)
    sessions = html.unescape(re.sub(r"<[^>]+>", "", re.search(r"<dt>Sessions</dt><dd>(.*?)</dd>", doc).group(1)))
    latest = _table_cells(doc)[0][2].split("\n")[1]
    assert latest == "visit 2, 2026-03-02"
    assert f"to {latest} (latest)" in sessions
    assert "recovery days after a treatment, charted under Recovery: visit 1 day 2, 2026-02-04" in sessions
    assert "no usable photo (see Photo quality): visit 3, 2026-04-01" in sessions


class _LooseDates(HTMLParser):
    """ISO dates in the page's text that no element keeps on one line (class "nw")."""

    _VOID = frozenset({"meta", "br", "img", "input", "hr", "wbr", "link"})
    _HIDDEN = frozenset({"svg", "script", "style", "title"})  # not laid out as lines of text (an SVG's title is a tooltip)

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.loose, self.kept = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag not in self._VOID:
            cls = (dict(attrs).get("class") or "").split()
            self.stack.append((tag, "nw" in cls or tag in self._HIDDEN))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        dates = re.findall(r"\d{4}-\d{2}-\d{2}", data)
        if any(keep for _, keep in self.stack):
            self.kept += len(dates)
        else:
            self.loose += dates


def test_dates_never_break_across_lines(report_html):
    p = _LooseDates()
    p.feed(report_html)
    assert p.loose == []
    assert p.kept >= 20  # header, table heads, slider labels, photo table: the check saw the dates
    bad = _LooseDates()
    bad.feed("<p>visit on 2026-01-05</p>")
    assert bad.loose == ["2026-01-05"]


def test_time_report_gives_cpu_seconds_per_part(data):
    summary, photos = data
    t = time_report(summary, photos, repeats=2, subject=EVIL, treatments=TREATMENTS, recovery=make_recovery(EVIL),
                    before_after=make_before_after())
    assert list(t) == ["header", "change table", "trend charts", "region charts", "before/after", "recovery chart",
                       "photo table", "total"]
    assert all(v >= 0 for v in t.values())
    assert sum(v for k, v in t.items() if k != "total") <= t["total"] * 1.05 + 1e-3


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


# Appended to a copy of the page by the test (the report itself carries no test hook): the laid-out
# page's width and the window's, as two bars a quarter of those widths long at the top of the screenshot.
# Headless Chromium runs a page's scripts in a window at least 500 px wide and lays it out again at the
# screenshot's width, so the bars follow every re-layout (ResizeObserver) and are read from the screenshot.
_MEASURE = """<div id="w-page" style="position:fixed;left:0;top:0;height:6px;background:#ff00ff;z-index:9"></div>
<div id="w-window" style="position:fixed;left:0;top:6px;height:6px;background:#00ffff;z-index:9"></div>
<script>(function () {
  var show = function () {
    document.getElementById("w-page").style.width = document.documentElement.scrollWidth / 4 + "px";
    document.getElementById("w-window").style.width = window.innerWidth / 4 + "px";
  };
  show();
  new ResizeObserver(show).observe(document.documentElement);
})();</script></body>"""


def _page_widths(chromium, tmp_path, doc, width):
    """(laid-out page width, window width) in CSS px of ``doc`` in a window ``width`` px wide (±4 px)."""
    page = write_report(tmp_path / f"measure-{width}.html", doc.replace("</body>", _MEASURE, 1))
    shot = tmp_path / f"measure-{width}.png"
    res = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", f"--window-size={width},400", url=page.as_uri())
    assert shot.exists(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    page_bar = (np.abs(rgb[2] - [255, 0, 255]).sum(axis=1) < 30).sum()
    window_bar = (np.abs(rgb[9] - [0, 255, 255]).sum(axis=1) < 30).sum()
    return 4 * int(page_bar), 4 * int(window_bar)


def test_browser_phone_width_has_no_horizontal_overflow(chromium, report_html, tmp_path):
    """At 390 px (a phone) the page is no wider than the window: tables scroll inside their own box,
    charts and photos shrink to the width, long names wrap."""
    page = write_report(tmp_path / "report.html", report_html)
    shot = tmp_path / "phone.png"
    res = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=390,3000", url=page.as_uri())
    assert shot.exists(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    assert rgb.shape[:2] == (3000, 390) and rgb.std() > 20
    page_width, window_width = _page_widths(chromium, tmp_path, report_html, 390)
    assert abs(window_width - 390) <= 4
    assert page_width <= window_width
    # The measurement has teeth: a table that does not fit makes the page wider than the window.
    wide = report_html.replace('<div class="scroll">', "<div>", 1)
    assert _page_widths(chromium, tmp_path, wide, 390)[0] > 400


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
