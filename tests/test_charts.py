"""Charts of a series: what each figure draws, on a synthetic summary the test builds; metadata-free export."""

from __future__ import annotations

import html
import io
import re
from datetime import date

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image

from skinscan.charts import (LABEL_COLOURS, before_after_figure, metric_label, recovery_chart, region_grid,
                             region_label, save_figure, trend_chart)
from skinscan.svg import colour_bar_svg, nice_ticks, recovery_svg, region_panels_svg, trend_svg

UNITS = {"a_star": "CIELAB a*", "pore_density": "per cm2", "ita_deg": "deg"}
BASE = {"a_star": 14.0, "pore_density": 40.0, "ita_deg": 35.0}
STEP = {"a_star": -1.5, "pore_density": 1.0, "ita_deg": 0.0}
MDC = {"a_star": 1.0, "pore_density": 2.0, "ita_deg": 1.5}
DATES = [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-02-02"), pd.Timestamp("2026-03-02")]
TREATMENTS = [date(2026, 1, 5), date(2026, 2, 2)]


def make_summary(subject="s1", *, n_sessions=3, regions=("face", "cheek_left"), dated=True, nan_at=()):
    """A summary frame as ``skinscan.series.summarise`` returns it, with labels computed against the MDC.

    a* falls 1.5 per session (improved once past the MDC of 1.0), pore density rises 1 per session
    (inside its MDC of 2: no detectable change), ITA° stays put; ``nan_at`` lists (region, metric, session)
    whose value is NaN.
    """
    rows = []
    for region in regions:
        for metric in UNITS:
            base = BASE[metric]
            for i in range(n_sessions):
                value = np.nan if (region, metric, i) in nan_at else base + STEP[metric] * i
                change = value - base
                label = ("baseline" if i == 0 else "no detectable change" if not abs(change) > MDC[metric]
                         else "improved" if change < 0 else "worse")
                rows.append(dict(
                    subject=subject, session=f"visit {i}", session_index=i, date=DATES[i] if dated else pd.NaT,
                    region=region, metric=metric, unit=UNITS[metric], value=value,
                    spread=0.4 if i != 1 else np.nan, n_photos=2 if i != 1 else 1, n_excluded=0,
                    change_abs=change, change_pct=100 * change / base, mdc=MDC[metric], label=label,
                    higher_is_worse=metric != "ita_deg"))
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    return df


@pytest.fixture(scope="module")
def summary():
    return pd.concat([
        make_summary("s1", nan_at={("cheek_left", "a_star", 1)}),
        make_summary("solo", n_sessions=1),
        make_summary("undated", dated=False),
    ], ignore_index=True)


def _by_gid(ax, gid, kind=None):
    artists = list(ax.lines) + list(ax.patches) + list(ax.collections) + list(ax.texts) + list(ax.images)
    return [a for a in artists if a.get_gid() == gid and (kind is None or isinstance(a, kind))]


def _span_y(patch):
    """y extent (data units) of an axhspan, whichever patch class this matplotlib draws it with."""
    verts = patch.get_path().transformed(patch.get_patch_transform()).vertices
    return float(verts[:, 1].min()), float(verts[:, 1].max())


# --------------------------------------------------------------------------------------------- names

def test_metric_label_names_and_units():
    assert metric_label("pore_density") == "Pore density (per cm²)"
    assert metric_label("a_star") == "Redness a* (CIELAB a*)"
    assert metric_label("ita_deg") == "Skin tone ITA (°)"
    assert metric_label("pore_density", with_unit=False) == "Pore density"
    assert metric_label("new_metric", "mm2") == "New metric (mm²)"
    assert metric_label("new_metric") == "New metric"
    assert region_label("cheek_left") == "Left cheek"


# --------------------------------------------------------------------------------------------- trend

def test_trend_chart_draws_values_band_treatments_and_labels(summary):
    fig = trend_chart(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (line,) = _by_gid(ax, "trend")
    np.testing.assert_allclose(line.get_ydata(), [14.0, 12.5, 11.0])
    assert list(pd.to_datetime(line.get_xdata())) == DATES

    (band,) = _by_gid(ax, "mdc_band")
    assert _span_y(band) == pytest.approx((13.0, 15.0))  # baseline 14 ± MDC 1
    assert len(_by_gid(ax, "treatment")) == 2

    # Point colours follow the labels: baseline black, 12.5 and 11.0 improved (change beyond the MDC of 1).
    improved = _by_gid(ax, "points:improved", PathCollection)[0]
    assert improved.get_offsets().shape == (2, 2)
    np.testing.assert_allclose(improved.get_facecolors()[0], to_rgba(LABEL_COLOURS["improved"]))
    assert _by_gid(ax, "points:baseline")[0].get_offsets().shape == (1, 2)
    assert not _by_gid(ax, "points:worse")

    # Error bars only where the session has an SD (the one-photo session 1 has none).
    (bars,) = _by_gid(ax, "spread", LineCollection)
    segments = bars.get_segments()
    assert len(segments) == 2
    assert sorted(abs(s[1][1] - s[0][1]) for s in segments) == pytest.approx([0.8, 0.8])

    title = ax.get_title(loc="left")
    assert "Redness a* (CIELAB a*)" in title and "lower is better" in title and "Whole face" in title
    assert ax.get_ylabel() == "Redness a* (CIELAB a*)"  # the y axis names the unit


def test_trend_chart_descriptor_and_no_detectable_change(summary):
    ax = trend_chart(summary, subject="s1", metric="ita_deg").axes[0]
    assert "descriptor" in ax.get_title(loc="left") and "lower is better" not in ax.get_title(loc="left")
    ax = trend_chart(summary, subject="s1", metric="pore_density").axes[0]
    grey = _by_gid(ax, "points:no detectable change")[0]
    np.testing.assert_allclose(grey.get_facecolors()[0], to_rgba(LABEL_COLOURS["no detectable change"]))
    assert grey.get_offsets().shape == (2, 2)


def test_trend_chart_nan_value_breaks_the_line_and_is_marked(summary):
    ax = trend_chart(summary, subject="s1", metric="a_star", region="cheek_left").axes[0]
    y = _by_gid(ax, "trend")[0].get_ydata()
    assert np.isnan(y[1]) and y[0] == 14.0 and y[2] == 11.0
    np.testing.assert_allclose(_by_gid(ax, "trend_gap")[0].get_ydata(), [14.0, 11.0])
    assert [t.get_text() for t in _by_gid(ax, "missing_value")] == ["n/a"]
    save_figure(ax.figure, io.BytesIO(), format="png")  # draws without raising


def test_trend_chart_one_session(summary):
    fig = trend_chart(summary, subject="solo", metric="pore_density", treatments=TREATMENTS)
    ax = fig.axes[0]
    np.testing.assert_allclose(_by_gid(ax, "trend")[0].get_ydata(), [40.0])
    assert _span_y(_by_gid(ax, "mdc_band")[0]) == pytest.approx((38.0, 42.0))
    lo, hi = ax.get_xlim()
    assert hi > lo
    save_figure(fig, io.BytesIO(), format="png")


def test_trend_chart_without_dates_uses_session_index(summary):
    ax = trend_chart(summary, subject="undated", metric="a_star", treatments=TREATMENTS).axes[0]
    np.testing.assert_allclose(_by_gid(ax, "trend")[0].get_xdata(), [0, 1, 2])
    assert not _by_gid(ax, "treatment")  # a treatment day cannot be placed on a session-index axis
    assert "session" in ax.get_xlabel()


def test_trend_chart_missing_series_and_given_axes(summary):
    fig = trend_chart(summary, subject="s1", metric="a_star", region="chin")
    assert [t.get_text() for t in _by_gid(fig.axes[0], "no_data")] == ["no data"]
    host = Figure()
    ax = host.add_subplot()
    assert trend_chart(summary, subject="s1", metric="a_star", ax=ax) is host
    with pytest.raises(ValueError, match="lacks columns"):
        trend_chart(summary.drop(columns="value"), subject="s1", metric="a_star")


# --------------------------------------------------------------------------------------------- grid

def test_region_grid_nine_panels_shared_y(summary):
    fig = region_grid(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    axes = fig.axes
    assert len(axes) == 9
    titles = [a.get_title(loc="left") for a in axes]
    assert titles[0] == "Whole face" and "Left cheek" in titles
    assert all(axes[0].get_shared_y_axes().joined(axes[0], a) for a in axes[1:])
    with_data = [a for a in axes if _by_gid(a, "trend")]
    assert [a.get_title(loc="left") for a in with_data] == ["Whole face", "Left cheek"]
    assert sum(bool(_by_gid(a, "no_data")) for a in axes) == 7
    assert "lower is better" in fig.get_suptitle()
    save_figure(fig, io.BytesIO(), format="png")


def test_region_grid_one_session_subject(summary):
    fig = region_grid(summary, subject="solo", metric="ita_deg")
    assert len(fig.axes) == 9
    save_figure(fig, io.BytesIO(), format="png")


# --------------------------------------------------------------------------------------------- before/after

def _face_arrays(h=60, w=48):
    yy, xx = np.mgrid[:h, :w]
    valid = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2 < 1
    base = np.dstack([np.full((h, w), 180), 120 + yy, 100 + xx]).astype(np.uint8)
    latest = np.clip(base.astype(int) - [10, 0, 0], 0, 255).astype(np.uint8)
    delta = np.where(valid, (xx - w / 2) / 8.0, np.nan)  # -3 .. +3
    return base, latest, valid, delta


def test_before_after_figure_images_heatmaps_and_colour_bars():
    base, latest, valid, delta = _face_arrays()
    fig = before_after_figure(base, latest, valid, {"redness": (delta, "delta a*"),
                                                    "texture": (delta * 0.1, "a.u.")})
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 + 2 + 2  # two photos, two maps, two colour bars
    assert [fig.axes[i].get_title() for i in (0, 1)] == ["baseline", "latest"]
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(shown[valid], base[valid])
    assert (shown[~valid] > base[~valid]).all()  # outside the common skin the photo is dimmed towards white
    (im,) = _by_gid(fig.axes[2], "heatmap:redness")
    vmin, vmax = im.norm.vmin, im.norm.vmax
    assert vmin == pytest.approx(-vmax) and im.norm.vcenter == 0.0  # diverging, centred on no change
    assert 2.5 < vmax <= 3.0
    assert im.get_cmap().name == "RdBu_r"
    assert sorted(a.get_ylabel() for a in fig.axes[4:]) == ["a.u.", "delta a*"]
    save_figure(fig, io.BytesIO(), format="png")


def test_before_after_figure_all_nan_map_and_bad_shapes():
    base, latest, valid, _ = _face_arrays()
    fig = before_after_figure(base, latest, valid, {"empty": (np.full(valid.shape, np.nan), "delta a*")})
    save_figure(fig, io.BytesIO(), format="png")
    assert len(before_after_figure(base, latest, None, {}).axes) == 2
    with pytest.raises(ValueError, match="expected"):
        before_after_figure(base, latest[:-1], valid, {})
    with pytest.raises(ValueError, match="heatmap 'x'"):
        before_after_figure(base, latest, valid, {"x": (np.zeros((3, 3)), "u")})
    with pytest.raises(TypeError, match="uint8"):
        before_after_figure(base.astype(float), latest, valid, {})


# --------------------------------------------------------------------------------------------- recovery

def make_recovery(subject="s1"):
    hours = [2.0, 2.0, 24.0, 48.0, 72.0]
    values = [19.0, 21.0, 17.0, 15.0, 14.2]  # two photos at 2 h: their median (20) is charted
    return pd.DataFrame(dict(subject=subject, treatment_date=date(2026, 2, 2), hours_after=hours, region="face",
                             metric="a_star", value=values, pre_value=14.0, mdc=0.8))


def test_recovery_chart_curve_pre_level_band_and_time():
    rec = make_recovery()
    fig = recovery_chart(rec, {("face", "a_star"): 52.5}, subject="s1")
    ax = fig.axes[0]
    (line,) = _by_gid(ax, "recovery")
    np.testing.assert_allclose(line.get_xdata(), [2, 24, 48, 72])
    np.testing.assert_allclose(line.get_ydata(), [20.0, 17.0, 15.0, 14.2])
    (pre,) = _by_gid(ax, "pre_level")
    np.testing.assert_allclose(pre.get_ydata(), [14.0, 14.0])
    assert _span_y(_by_gid(ax, "pre_band")[0]) == pytest.approx((13.2, 14.8))
    np.testing.assert_allclose(_by_gid(ax, "recovered")[0].get_xdata(), [52.5, 52.5])
    assert _by_gid(ax, "recovery_note")[0].get_text().strip() == "52 h"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["treatment 2026-02-02: back within MDC after 52 h"]


def test_recovery_chart_series_keys_not_recovered_and_empty():
    rec = make_recovery()
    key = ("s1", date(2026, 2, 2), "face", "a_star")  # the keys skinscan.series.recovery_time_hours returns
    fig = recovery_chart(rec, {key: float("nan")}, subject="s1")
    assert "not back within MDC" in fig.legends[0].get_texts()[0].get_text()
    assert not _by_gid(fig.axes[0], "recovered")
    ax = recovery_chart(rec, {key: 30.0}, subject="s1").axes[0]
    np.testing.assert_allclose(_by_gid(ax, "recovered")[0].get_xdata(), [30.0, 30.0])
    for empty in (None, rec.iloc[:0], rec):
        fig = recovery_chart(empty, None, subject="nobody" if empty is rec else "s1")
        assert [t.get_text() for t in _by_gid(fig.axes[0], "no_data")] == ["no recovery photos"]
        save_figure(fig, io.BytesIO(), format="png")


# --------------------------------------------------------------------------------------------- saving

def test_save_figure_writes_png_svg_pdf_without_metadata(tmp_path, summary):
    fig = trend_chart(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    version = matplotlib.__version__
    png, svg, pdf = (save_figure(fig, tmp_path / f"trend.{ext}") for ext in ("png", "svg", "pdf"))
    for p in (png, svg, pdf):
        assert p.stat().st_size > 1000
        assert version.encode() not in p.read_bytes()

    with Image.open(png) as im:
        assert im.size == (round(5.2 * 150), round(3.6 * 150))
        assert "Software" not in im.text and not any("matplotlib" in v.lower() for v in im.text.values())
    svg_text = svg.read_text()
    assert "<svg" in svg_text and "<dc:date>" not in svg_text and "Matplotlib v" not in svg_text
    pdf_bytes = pdf.read_bytes()
    assert pdf_bytes.startswith(b"%PDF") and b"/CreationDate" not in pdf_bytes
    assert b"/producer (matplotlib" not in pdf_bytes.lower() and b"/creator (matplotlib" not in pdf_bytes.lower()

    # The checks have teeth: matplotlib's own defaults would fail them.
    plain = io.BytesIO()
    fig.savefig(plain, format="pdf")
    assert b"/CreationDate" in plain.getvalue() and b"/producer (matplotlib" in plain.getvalue().lower()

    # The same figure gives the same bytes (no timestamps).
    again = save_figure(fig, tmp_path / "again.png")
    assert again.read_bytes() == png.read_bytes()


def test_save_figure_to_buffer_and_bad_suffix(tmp_path, summary):
    fig = trend_chart(summary, subject="s1", metric="a_star")
    buf = save_figure(fig, io.BytesIO(), format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="expected .png, .svg or .pdf"):
        save_figure(fig, tmp_path / "x.jpg")
    with pytest.raises(ValueError):
        save_figure(fig, io.BytesIO())


# --------------------------------------------------------------------------------------------- SVG (the report's)

def _elements(svg_text, tag, cls=None):
    """Attributes (and text) of every ``tag`` element, of class ``cls`` when given."""
    out = []
    for m in re.finditer(rf"<{tag}\b([^>]*?)(?:/>|>(.*?)</{tag}>)", svg_text, flags=re.S):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        if cls is None or cls in attrs.get("class", "").split():
            attrs["text"] = html.unescape(re.sub(r"<[^>]+>", "", m.group(2) or ""))
            out.append(attrs)
    return out


def _texts(svg_text, cls):
    return [e["text"] for e in _elements(svg_text, "text", cls)]


def _y_of_value(svg_text):
    """The chart's own data -> pixel map of its y axis, read from its grid lines and their tick labels."""
    ys = [float(e["y1"]) for e in _elements(svg_text, "line", "grid")]
    values = [float(t.replace("−", "-")) for t in _texts(svg_text, "ytick")]
    assert len(ys) == len(values) >= 2
    slope, offset = np.polyfit(values, ys, 1)
    return lambda v: slope * np.asarray(v, dtype=float) + offset


def test_trend_svg_draws_values_band_treatments_and_labels(summary):
    chart = trend_svg(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    assert chart.startswith("<svg") and "xmlns" not in chart and 'role="img"' in chart
    y = _y_of_value(chart)
    points = _elements(chart, "circle", "point")
    assert [p["class"] for p in points] == ["point baseline", "point improved", "point improved"]
    assert [p["fill"] for p in points] == [LABEL_COLOURS["baseline"]] + [LABEL_COLOURS["improved"]] * 2
    np.testing.assert_allclose([float(p["cy"]) for p in points], y([14.0, 12.5, 11.0]), atol=0.15)
    assert points[1]["text"] == "2026-02-02: 12.5 CIELAB a* (improved)"  # the tooltip
    (band,) = _elements(chart, "rect", "mdc-band")
    top, height = float(band["y"]), float(band["height"])
    np.testing.assert_allclose([top, top + height], y([15.0, 13.0]), atol=0.15)  # baseline 14 ± MDC 1
    assert len(_elements(chart, "line", "treatment")) == 2
    assert len(_elements(chart, "line", "spread")) == 2  # session 1 has one photo: no SD
    assert _texts(chart, "ylabel") == ["Redness a* (CIELAB a*)"]
    assert _texts(chart, "title") == ["Redness a*"] and _texts(chart, "subtitle") == ["Whole face · lower is better"]
    assert _texts(chart, "xtick") == ["05 Jan", "2026", "02 Feb", "02 Mar"]
    assert trend_svg(summary, subject="s1", metric="a_star", treatments=TREATMENTS) == chart  # same bytes


def test_trend_svg_gaps_undated_one_session_and_missing(summary):
    gap = trend_svg(summary, subject="s1", metric="a_star", region="cheek_left")
    assert not _elements(gap, "polyline", "trend")  # no two neighbouring sessions with a value
    (link,) = _elements(gap, "polyline", "trend-gap")
    assert len(link["points"].split()) == 2
    assert _texts(gap, "missing") == ["n/a"]
    undated = trend_svg(summary, subject="undated", metric="a_star", treatments=TREATMENTS)
    assert _texts(undated, "xtick") == ["0", "1", "2"] and _texts(undated, "xlabel") == ["session (0 = baseline)"]
    assert not _elements(undated, "line", "treatment")
    solo = trend_svg(summary, subject="solo", metric="pore_density")
    assert len(_elements(solo, "circle", "point")) == 1 and len(_elements(solo, "rect", "mdc-band")) == 1
    assert _texts(solo, "ylabel") == ["Pore density (per cm²)"]
    assert _texts(trend_svg(summary, subject="s1", metric="a_star", region="chin"), "no-data") == ["no data"]
    descriptor = trend_svg(summary, subject="s1", metric="ita_deg")
    assert _texts(descriptor, "subtitle") == ["Whole face · descriptor: neither direction is better"]
    assert _texts(descriptor, "ylabel") == ["Skin tone ITA (°)"]


def test_trend_svg_escapes_data_text():
    evil = make_summary("s1", regions=("face",)).assign(unit="<b>&", metric="x<script>")
    chart = trend_svg(evil, subject="s1", metric="x<script>")
    assert "<script>" not in chart and "<b>" not in chart and "&lt;b&gt;&amp;" in chart


def test_region_panels_svg_share_one_scale(summary):
    panels = region_panels_svg(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    assert [r for r, _ in panels][:2] == ["face", "forehead"] and len(panels) == 9
    charts = dict(panels)
    assert [_texts(charts[r], "title")[0] for r in ("face", "cheek_left")] == ["Whole face", "Left cheek"]
    grids = {tuple(e["y1"] for e in _elements(p, "line", "grid")) for _, p in panels}
    assert len(grids) == 1  # one y scale for every region
    assert sum(_texts(p, "no-data") == ["no data"] for _, p in panels) == 7
    assert all(_texts(p, "ylabel") == ["CIELAB a*"] for _, p in panels)
    y = _y_of_value(charts["face"])
    np.testing.assert_allclose([float(p["cy"]) for p in _elements(charts["face"], "circle", "point")],
                               y([14.0, 12.5, 11.0]), atol=0.15)


def test_recovery_svg_curve_pre_level_band_time_and_legend():
    chart = recovery_svg(make_recovery(), {("face", "a_star"): 52.5}, subject="s1")
    y = _y_of_value(chart)
    (line,) = _elements(chart, "polyline", "recovery")
    pts = np.array([[float(v) for v in p.split(",")] for p in line["points"].split()])
    np.testing.assert_allclose(pts[:, 1], y([20.0, 17.0, 15.0, 14.2]), atol=0.15)  # two photos at 2 h: median
    (pre,) = _elements(chart, "line", "pre-level")
    np.testing.assert_allclose(float(pre["y1"]), y(14.0), atol=0.15)
    (band,) = _elements(chart, "rect", "pre-band")
    np.testing.assert_allclose([float(band["y"]), float(band["y"]) + float(band["height"])], y([14.8, 13.2]),
                               atol=0.15)
    ticks = {e["text"]: float(e["x"]) for e in _elements(chart, "text", "xtick")}
    (recovered,) = _elements(chart, "line", "recovered")
    np.testing.assert_allclose(float(recovered["x1"]), ticks["40"] + (ticks["60"] - ticks["40"]) * 12.5 / 20,
                               atol=0.15)
    assert _texts(chart, "legend") == ["treatment 2026-02-02:", "back within MDC after 52 h"]
    assert _texts(chart, "recovery-note") == ["52 h"] and _texts(chart, "xlabel") == ["hours after treatment"]
    key = ("s1", date(2026, 2, 2), "face", "a_star")
    late = recovery_svg(make_recovery(), {key: float("nan")}, subject="s1")
    assert _texts(late, "legend")[1] == "not back within MDC by the last photo"
    assert not _elements(late, "line", "recovered")
    for empty in (None, make_recovery().iloc[:0]):
        assert _texts(recovery_svg(empty, None, subject="s1"), "no-data") == ["no recovery photos"]


def test_colour_bar_svg_and_nice_ticks():
    bar = colour_bar_svg(3.0, "delta a*", colours=["#000000", "#ffffff", "#ff0000"])
    assert [e["fill"] for e in _elements(bar, "rect")] == ["#000000", "#ffffff", "#ff0000"]
    assert _texts(bar, "xtick") == ["−2", "0", "2"]
    assert nice_ticks(0.21, 3.83)[0].tolist() == [1.0, 2.0, 3.0]
    ticks, decimals = nice_ticks(-4.3, 4.3)
    assert ticks.tolist() == [-2.5, 0.0, 2.5] and decimals == 1
    ticks, decimals = nice_ticks(0.0083, 0.0095, 4)
    assert ticks.tolist() == pytest.approx([0.0085, 0.009, 0.0095]) and decimals == 4
    assert nice_ticks(5.0, 5.0)[0].tolist() == [5.0]


def test_trend_svg_without_an_mdc_says_so(summary):
    rows = make_summary("nd", regions=("face",)).assign(mdc=np.nan)
    rows["label"] = np.where(rows["session_index"] == 0, "baseline", "not determinable")
    chart = trend_svg(rows, subject="nd", metric="a_star")
    assert not _elements(chart, "rect", "mdc-band")
    assert _texts(chart, "no-band") == ["no MDC band: not determinable"]
    pale = _elements(chart, "circle", "not-determinable")
    assert len(pale) == 2 and all(p["fill"] == LABEL_COLOURS["not determinable"] and p["stroke"] != "#ffffff"
                                  for p in pale)  # a dark rim: pale points stay visible
