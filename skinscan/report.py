"""One self-contained HTML report of a subject's series: change table, trends, before/after, recovery, quality.

The report takes series results only (the ``summary``, ``photos`` and ``recovery`` frames of
:mod:`skinscan.series` and canonical-frame arrays); it never loads photos or computes metrics.
Everything it shows is inside the one file: charts are inline SVG (:mod:`skinscan.svg`), photos
and change maps are ``data:image/png;base64`` URIs, CSS and JavaScript are inline, and a
Content-Security-Policy forbids the page from fetching anything, so it opens offline and leaks
nothing when shared. Every piece of text that comes from data (subject and session names are
folder names) is HTML-escaped. It is laid out for a phone as well as a desktop: tables scroll
sideways inside their own box and charts scale to the width they have.

Changes are given in the metric's unit. A relative change (%) is added only where a ratio means
something (see :func:`relative_change_shown`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import chartdata as cd
from . import svg
from ._version import version_text
from ._write import output_error, write_text
from .discover import UNDATED_SESSION
from .metrics.registry import METRICS

__all__ = ["build_report", "write_report", "time_report", "relative_change_shown", "KEY_METRICS", "PARTS",
           "INTERVAL_METRICS"]

#: Metrics shown region by region (the first two the subject has in more than one region), by the
#: registry's ``key_rank``.
KEY_METRICS = tuple(m.key for m in sorted((m for m in METRICS if m.key_rank), key=lambda m: m.key_rank))

#: Metrics on an interval scale: their zero is a point of the scale, not "none of it" (a* = 0 is
#: neutral grey, the erythema index is an optical density against the face's own reference and
#: goes below zero, ITA° is an angle), so a ratio of two values means nothing and the report gives
#: their change in their unit only (the registry's ``interval_scale``).
INTERVAL_METRICS = frozenset(m.key for m in METRICS if m.interval_scale)

#: Longest side of the before/after photos embedded for the slider (px); the page shows them smaller.
SLIDER_MAX_PX = 720
#: Longest side of an embedded change map (px): one column of a phone, half a desktop's.
MAP_MAX_PX = 400
#: zlib level of embedded PNGs: 3 writes a photo four times faster than 6 for 8 % more bytes.
_PNG_LEVEL = 3

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")

_CSS = """
:root { --fg: #212121; --muted: #616161; --line: #e0e0e0; --bg: #ffffff; --panel: #fafafa; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); overflow-wrap: break-word; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 26px; line-height: 1.25; margin: 0 0 6px; overflow-wrap: anywhere; }
header .meta { color: var(--muted); margin: 0; }
header dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 16px; margin: 14px 0 0; }
header dt { color: var(--muted); }
header dd { margin: 0; overflow-wrap: anywhere; }
nav { margin: 18px 0 8px; padding: 8px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
nav a { display: inline-block; margin-right: 16px; color: #1565c0; text-decoration: none; white-space: nowrap; }
section { margin-top: 34px; }
h2 { font-size: 20px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
h3 small { color: var(--muted); font-weight: normal; }
p.note { color: var(--muted); font-size: 13.5px; max-width: 860px; }
.nw { white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; border: 1px solid var(--line);
          border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
tbody tr:last-child td { border-bottom: 0; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
th small, td small { color: var(--muted); font-weight: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.metric { min-width: 8.5em; }
/* The metric's name stays in view while its row is scrolled sideways on a narrow screen. */
#change-table th:first-child, #change-table td.metric { position: sticky; left: 0; background: var(--bg);
                                                        box-shadow: 1px 0 0 var(--line); }
#change-table th:first-child { background: var(--panel); }
.swipe { display: none; }
td.file { overflow-wrap: anywhere; min-width: 15em; }
.label { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 13px; color: #fff;
         white-space: nowrap; }
.label-improved { background: @improved@; }
.label-worse { background: @worse@; }
.label-none { background: @none@; }
.label-changed { background: @changed@; }
.label-baseline { background: @baseline@; }
.label-nd { background: #fff; color: #5d4037; border: 1px dashed #8d6e63; }
.mdc-none { color: #5d4037; font-style: italic; white-space: nowrap; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 12px; padding: 0; list-style: none;
          font-size: 13px; color: var(--muted); }
.legend li { white-space: nowrap; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: 5px;
      vertical-align: -1px; }
.sw.band { border-radius: 2px; background: rgba(144,164,174,.35); }
.sw.nd { border: 1px solid #8d6e63; }
.sw.line { border-radius: 0; height: 0; width: 16px; border-top: 2px dotted @treatment@; vertical-align: 3px; }
.sw.bar { border-radius: 0; width: 2px; height: 12px; background: @line@; margin: 0 10px 0 5px; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 340px), 1fr)); gap: 14px; }
/* Regions three to a row (two on a phone), the two metrics side by side on a wide screen. */
.regions { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr)); gap: 0 28px; }
.panels { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 8px; }
@media (max-width: 520px) { .panels { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.maps { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 300px), 1fr)); gap: 14px;
        max-width: 860px; }
figure { margin: 0; min-width: 0; }
svg.chart { display: block; width: 100%; height: auto; overflow: visible; }
.figs figure, .panels figure { border: 1px solid var(--line); border-radius: 4px; padding: 8px; }
figure img { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; }
svg.colour-bar { display: block; width: 100%; height: auto; margin-top: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.map figcaption { color: var(--fg); font-weight: 600; margin: 0 0 4px; }
.ba-wrap { max-width: 560px; }
.ba { position: relative; user-select: none; border: 1px solid var(--line); border-radius: 4px; overflow: hidden; }
.ba img { display: block; width: 100%; height: auto; }
.ba img.ba-top { position: absolute; top: 0; left: 0; clip-path: inset(0 50% 0 0); }
.ba-divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; margin-left: -1px;
              background: #fff; box-shadow: 0 0 3px rgba(0,0,0,.6); pointer-events: none; }
.ba-tag { position: absolute; top: 8px; padding: 1px 8px; border-radius: 3px; font-size: 13px;
          background: rgba(0,0,0,.55); color: #fff; max-width: 46%; overflow: hidden; text-overflow: ellipsis;
          white-space: nowrap; }
.ba-tag.left { left: 8px; } .ba-tag.right { right: 8px; }
.ba-wrap input[type=range] { width: 100%; margin: 10px 0 0; }
.ba-wrap .ends { display: flex; justify-content: space-between; gap: 12px; color: var(--muted); font-size: 13px; }
tr.out td { background: #fff5f5; }
.badge { display: inline-block; padding: 0 7px; margin: 1px 3px 1px 0; border-radius: 3px; font-size: 12.5px;
         background: #eeeeee; white-space: nowrap; }
.badge.block { background: @worse@; color: #fff; }
.badge.ok { background: @improved@; color: #fff; }
.badge.skip { background: #616161; color: #fff; }
.error { color: @worse@; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line);
         padding-top: 10px; }
@media (max-width: 600px) {
  body { font-size: 14.5px; }
  main { padding: 16px 14px 40px; }
  header h1 { font-size: 22px; }
  header dl { grid-template-columns: minmax(0, 1fr); gap: 0; }
  header dd { margin-bottom: 6px; }
  th, td { padding: 5px 8px; }
  .swipe { display: block; color: var(--muted); font-size: 12.5px; margin: 0 0 4px; }
}
@media print { nav, .ba-wrap input, .filter { display: none; } section { break-inside: avoid-page; }
               .scroll { overflow: visible; border: 0; } }
"""
# The label colours are the charts' own, so a badge in a table matches the points in a chart.
_CSS = re.sub(r"@(\w+)@", lambda m: {**cd.LABEL_COLOURS, "none": "#757575", "treatment": cd.TREATMENT_COLOUR,
                                     "line": cd.LINE_COLOUR}[m.group(1)], _CSS)

# Pure inline script: the before/after slider (also settable by a "#ba=NN" URL fragment), the filter
# of the photo table, and a ready flag that only a script that ran to the end sets. The slider's
# value is where the divider stands, in % of the width from the left: the baseline is left of it.
_JS = """
(function () {
  "use strict";
  var slider = document.getElementById("ba-slider");
  if (slider) {
    var top = document.getElementById("ba-top");
    var divider = document.getElementById("ba-divider");
    var update = function () {
      var v = Math.min(100, Math.max(0, Number(slider.value)));
      top.style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
      divider.style.left = v + "%";
      slider.setAttribute("aria-valuetext", "divider at " + v + "%: baseline to its left, latest to its right");
    };
    var m = /(?:^#|&)ba=(\\d{1,3})/.exec(window.location.hash);
    if (m) { slider.value = m[1]; }
    slider.addEventListener("input", update);
    update();
  }
  var only = document.getElementById("only-out");
  if (only) {
    only.addEventListener("change", function () {
      var rows = document.querySelectorAll("#photo-table tbody tr");
      for (var i = 0; i < rows.length; i++) {
        rows[i].hidden = only.checked && !rows[i].classList.contains("out");
      }
    });
  }
  document.body.dataset.ready = "1";
})();
"""

#: Parts of the report that :func:`time_report` times, in page order.
PARTS = ("header", "change table", "trend charts", "region charts", "before/after", "recovery chart", "photo table")


# --------------------------------------------------------------------------------------------- text

def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _isnan(v) -> bool:
    try:
        return v is None or pd.isna(v)
    except (TypeError, ValueError):
        return False


def _fmt(v, *, signed: bool = False) -> str:
    """A measurement to about three significant figures; an en dash for a missing value."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(v):
        return "—"
    a = abs(v)
    # "#" keeps the trailing zeros of three significant figures: 0.110, not 0.11 beside 0.0975.
    spec = ".0f" if a >= 100 else ".1f" if a >= 10 else ".2f" if a >= 1 or a == 0 else "#.3g"
    s = format(v, ("+" if signed else "") + spec)
    return s.replace("-", "−")


def _fmt_pct(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else format(v, "+.1f").replace("-", "−") + " %"


def _day(d) -> str:
    if _isnan(d):
        return ""
    try:
        return pd.Timestamp(d).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return str(d)


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _nw(text) -> str:
    """``text`` escaped, with every ISO date in it kept on one line (a browser may break a line
    after a hyphen, which split "2026-01-05" at a narrow width)."""
    escaped = _e(text)
    return _DATE_RE.sub(lambda m: f'<span class="nw">{m.group(0)}</span>', escaped)


def _unit_in_change(unit: str) -> str:
    """The unit after an absolute change: a change of a percentage is in percentage points."""
    return "% points" if unit == "%" else unit


# --------------------------------------------------------------------------------------------- images

def _png_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=_PNG_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fit(img: Image.Image, max_px: int) -> Image.Image:
    scale = max_px / max(img.size)
    if scale >= 1:
        return img
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def _array_uri(rgb: np.ndarray, *, max_px: int = SLIDER_MAX_PX) -> str:
    """An (H, W, 3) uint8 array as a PNG data URI, its longest side at most ``max_px``."""
    return _png_uri(_fit(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"), max_px))


# --------------------------------------------------------------------------------------------- data

def _ordered_metrics(metrics: Iterable[str]) -> list[str]:
    ms = set(map(str, metrics))
    return [m for m in cd.METRIC_ORDER if m in ms] + sorted(ms - set(cd.METRIC_ORDER))


def _label_class(label: str) -> str:
    return {"improved": "label-improved", "worse": "label-worse", "no detectable change": "label-none",
            "not determinable": "label-nd", "changed": "label-changed",
            "baseline": "label-baseline"}.get(label, "label-none")


def _split(text) -> list[str]:
    if _isnan(text):
        return []
    return [t for t in (s.strip() for s in str(text).split(";")) if t]


def _subject_rows(df: pd.DataFrame | None, subject) -> pd.DataFrame:
    if df is None or len(df) == 0 or "subject" not in df.columns:
        return pd.DataFrame() if df is None else df.iloc[:0]
    return df[df["subject"].astype(str) == str(subject)]


def _unpack_before_after(before_after):
    """Accept a mapping (baseline_rgb, latest_rgb, valid, heatmaps[, titles]) or a 4-tuple in that order."""
    if before_after is None:
        return None
    if isinstance(before_after, Mapping):
        missing = [k for k in ("baseline_rgb", "latest_rgb") if k not in before_after]
        if missing:
            raise ValueError(f"before_after lacks {missing}; expected keys baseline_rgb, latest_rgb, valid, heatmaps")
        return (before_after["baseline_rgb"], before_after["latest_rgb"], before_after.get("valid"),
                before_after.get("heatmaps") or {}, tuple(before_after.get("titles", ("baseline", "latest"))))
    items = tuple(before_after)
    if len(items) != 4:
        raise ValueError("before_after must be a mapping or (baseline_rgb, latest_rgb, valid, heatmaps)")
    return (*items[:3], items[3] or {}, ("baseline", "latest"))


def relative_change_shown(metric: str, baseline: float, mdc: float) -> bool:
    """Whether a change is also worth giving relative to its baseline (in %).

    Only when both hold:

    1. the metric has a true zero, "none of it" (counts, areas, sizes, relief): not one of
       :data:`INTERVAL_METRICS`, whose ratios mean nothing;
    2. the baseline stands out of the noise: ``|baseline| > MDC``. A baseline the photos cannot
       tell from zero makes any ratio noise (a spot density going from 0.01 to 0.05 per cm² is
       "+400 %" and no change). Without an MDC (not determinable) there is nothing to tell it by,
       and no relative change is given either.

    Otherwise the report gives the change in the metric's unit alone.

    Parameters
    ----------
    metric : str
        Metric key.
    baseline : float
        Baseline value, in the metric's unit.
    mdc : float
        Its minimal detectable change, same unit (NaN when not determinable).

    Returns
    -------
    bool

    Examples
    --------
    >>> relative_change_shown("pore_density", 137.0, 7.5)
    True
    >>> relative_change_shown("a_star", 3.83, 0.18), relative_change_shown("spot_density", 0.04, 0.05)
    (False, False)
    """
    if str(metric) in INTERVAL_METRICS:
        return False
    try:
        baseline, mdc = float(baseline), float(mdc)
    except (TypeError, ValueError):
        return False
    return math.isfinite(baseline) and math.isfinite(mdc) and abs(baseline) > mdc


class _Timeline:
    """A subject's sessions as the report names them: those in the trends (from ``summary``, so the
    header and the change table agree), and the others (recovery days, sessions with no usable photo)."""

    def __init__(self, summary: pd.DataFrame, photos: pd.DataFrame, treatments: list):
        trend = (summary.drop_duplicates("session_index").sort_values("session_index")
                 if len(summary) and "session_index" in summary else summary.iloc[:0])
        self.trend = [(r.get("session", ""), _day(r.get("date"))) for r in trend.to_dict("records")]
        self.latest_index = trend["session_index"].iloc[-1] if len(trend) else None
        in_trend = {str(s) for s, _ in self.trend}
        self.recovery, self.unusable = [], []
        if {"session", "date"} <= set(photos.columns) and len(photos):
            recovery_days = _recovery_sessions(photos, treatments)
            others = photos[~photos["session"].astype(str).isin(in_trend) & (photos["session"] != UNDATED_SESSION)]
            order = [c for c in ("session_index", "date", "session") if c in others]
            for r in others.sort_values(order, kind="stable").drop_duplicates("session").to_dict("records"):
                entry = (r.get("session", ""), _day(r.get("date")))
                (self.recovery if str(entry[0]) in recovery_days else self.unusable).append(entry)

    @property
    def baseline(self):
        return self.trend[0] if self.trend else None

    @property
    def latest(self):
        return self.trend[-1] if self.trend else None


def _recovery_sessions(photos: pd.DataFrame, treatments: list) -> set[str]:
    """Sessions in the recovery window after a treatment (:func:`skinscan.series.split_recovery`'s rule)."""
    from .series import split_recovery  # here: series imports the metric modules, needed for this rule only

    days = sorted({pd.Timestamp(t).date() for t in treatments if not _isnan(t)})
    if not days or not {"subject", "session", "session_index", "date"} <= set(photos.columns):
        return set()
    subject = photos["subject"].iloc[0]
    _, recovery = split_recovery(photos, {subject: days})
    return {str(s) for _, s in recovery}


def _session_text(entry) -> str:
    """"name, date" of a session (the date once when the name is the date), dates kept on one line."""
    if entry is None:
        return ""
    name, day = entry
    name = "" if _isnan(name) else str(name)
    return _nw(name) + (f", {_nw(day)}" if day and day not in name else "")


# --------------------------------------------------------------------------------------------- sections

def _header(title, subject, photos, timeline: _Timeline, treatments, version) -> str:
    n = len(timeline.trend)
    if n:
        sessions = (f"{n} in the trends: {_session_text(timeline.baseline)} (baseline) to "
                    f"{_session_text(timeline.latest)} (latest)" if n > 1
                    else f"1 in the trends: {_session_text(timeline.baseline)} (baseline only)")
    else:
        sessions = "none with a usable photo"
    extra = []
    if timeline.recovery:
        extra.append("recovery days after a treatment, charted under Recovery: "
                     + ", ".join(_session_text(s) for s in timeline.recovery))
    if timeline.unusable:
        extra.append("no usable photo (see Photo quality): " + ", ".join(_session_text(s) for s in timeline.unusable))
    if extra:
        sessions += "; also " + "; ".join(extra)
    status = photos["status"].astype(str) if "status" in photos else pd.Series(dtype=str)
    excluded_by = photos["excluded_by"].fillna("").astype(str) if "excluded_by" in photos else pd.Series(dtype=str)
    session = photos["session"].astype(str) if "session" in photos else pd.Series(dtype=str)
    analysed = status == "analysed"
    undated = analysed & (session == UNDATED_SESSION)
    n_excluded = int((analysed & ~undated & (excluded_by != "")).sum())
    n_used = int((analysed & ~undated).sum()) - n_excluded
    n_duplicates = int((status == "duplicate").sum())
    n_skipped = int((~analysed & (status != "duplicate")).sum())
    days = sorted({_day(t) for t in treatments if _day(t)})
    counts = [f"{n_used} used", f"{n_excluded} excluded by quality checks"]
    if undated.any():
        counts.append(f"{int(undated.sum())} undated (no capture date, so on no timeline: put them in a session "
                      "folder named by date, e.g. 2026-03-14)")
    if n_duplicates:
        counts.append(f"{n_duplicates} duplicates of another photo of their session (counted once)")
    counts.append(f"{n_skipped} could not be analysed")
    rows = [
        ("Subject", _e(subject)),
        ("Sessions", sessions),
        ("Photos", f"{len(photos)} files: {_nw(', '.join(counts))}"),
        ("Treatments", ", ".join(_nw(d) for d in days) if days else "none recorded"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f'<header><h1>{_e(title)}</h1><p class="meta">Skin change across sessions, measured in physical units '
            f"from ordinary photos. Generated by {_e(version)}.</p><dl>{dl}</dl></header>")


_CHANGE_NOTE = (
    '<p class="note">Whole face, latest session against the baseline. Values are medians over each session\'s '
    "photos that passed quality checks. A change counts only when it is larger than the minimal detectable "
    "change (MDC, 95 %): the smallest difference that photo-to-photo noise cannot explain. The MDC comes from "
    "repeated photos within the sessions (<em>repeats</em>), else from each photo's own uncertainty "
    "(<em>photo uncertainty</em>: counted features, the light reference); with neither it is "
    '<span class="mdc-none">not determinable</span> and so is the change. Take two or three photos per '
    "session.</p>")
# Under the table: how to read its Change column (the table itself first, on a phone).
_RELATIVE_NOTE = (
    '<p class="note">Changes are in the metric\'s unit (a change of a percentage in percentage points). The '
    "relative change under it is given only for quantities with a true zero (counts, areas, sizes, relief) "
    "whose baseline is larger than its MDC; not for redness a*, the erythema index or the ITA° skin tone, "
    "whose zero is not \u201cnone\u201d, nor for a baseline the photos cannot tell from zero, where a "
    "percentage would be noise.</p>")


#: Shown on a narrow screen only, above a table wider than it.
_SWIPE = '<p class="swipe" aria-hidden="true">Swipe the table sideways for more columns.</p>'


def _change_row(metric: str, rows: pd.DataFrame, latest_index) -> str:
    """One metric's row: baseline, latest, change in the unit (and relative, where it means something), MDC, label."""
    base = rows.iloc[0]
    at_latest = rows[rows["session_index"] == latest_index]
    last = at_latest.iloc[-1] if len(at_latest) else None
    unit = cd.metric_unit(metric, base.get("unit"))
    name = cd.metric_label(metric, with_unit=False)
    metric_cell = f'<td class="metric">{_e(name)}' + (f'<br><small class="unit">{_e(unit)}</small>' if unit else "")
    only_baseline = latest_index == base.get("session_index")
    if only_baseline:
        cells = '<td class="num">—</td><td class="num">—</td>'
        mdc_cell, label = '<td class="num">—</td>', "baseline"
    else:
        value = last.get("value") if last is not None else math.nan
        change = last.get("change_abs") if last is not None else math.nan
        mdc = last.get("mdc") if last is not None else math.nan
        change_text = _fmt(change, signed=True)
        if change_text != "—":
            change_text += f' <span class="unit">{_e(_unit_in_change(unit))}</span>' if unit else ""
            if relative_change_shown(metric, base.get("value"), mdc):
                change_text += f'<br><small class="rel">{_fmt_pct(last.get("change_pct"))}</small>'
        cells = f'<td class="num">{_fmt(value)}</td><td class="num change">{change_text}</td>'
        mdc_cell = f'<td class="num mdc">{_mdc_text(mdc, last.get("mdc_source") if last is not None else None)}</td>'
        label = str(last.get("label", "")) if last is not None and not _isnan(value) else "no value"
    return ("<tr>" + metric_cell + "</td>" + f'<td class="num">{_fmt(base.get("value"))}</td>' + cells + mdc_cell
            + f'<td><span class="label {_label_class(label)}">{_e(label or "—")}</span></td></tr>')


def _mdc_text(mdc, source) -> str:
    """The MDC with where it came from under it, or "not determinable" when there is none."""
    if _fmt(mdc) == "—":
        return '<span class="mdc-none">not determinable</span>' if str(source) == "not determinable" else "—"
    short = {"repeats": "repeats", "photo uncertainty": "photo uncertainty"}.get(str(source), "")
    return _fmt(mdc) + (f'<br><small class="mdc-source">{short}</small>' if short else "")


def _change_table(summary: pd.DataFrame, timeline: _Timeline) -> str:
    face = summary[summary["region"].astype(str) == "face"] if len(summary) else summary
    if len(face) == 0:
        return (f'<section id="change"><h2>Change since baseline</h2>{_CHANGE_NOTE}<p class="empty">No whole-face '
                "measurements for this subject.</p></section>")
    body = []
    for metric in _ordered_metrics(face["metric"].unique()):
        rows = face[face["metric"].astype(str) == metric].sort_values("session_index", kind="stable")
        body.append(_change_row(metric, rows, timeline.latest_index))
    head = ("<tr><th>Metric</th>"
            f'<th class="num">Baseline<br><small>{_session_text(timeline.baseline)}</small></th>'
            f'<th class="num">Latest<br><small>{_session_text(timeline.latest)}</small></th>'
            '<th class="num">Change<br><small>(relative)</small></th><th class="num">MDC<br><small>source</small></th>'
            "<th>Result</th></tr>")
    return (f'<section id="change"><h2>Change since baseline</h2>{_CHANGE_NOTE}{_SWIPE}<div class="scroll">'
            f'<table id="change-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'
            f"{_RELATIVE_NOTE}</section>")


def _legend() -> str:
    """The key shared by every trend and region chart (drawn once, not in each chart)."""
    items = [f'<li><span class="sw" style="background:{cd.LABEL_COLOURS[k]}"></span>{_e(k)}</li>'
             for k in ("baseline", "improved", "worse", "no detectable change", "changed")]
    items.append(f'<li><span class="sw nd" style="background:{cd.LABEL_COLOURS["not determinable"]}"></span>'
                 "not determinable</li>")
    items += ['<li><span class="sw band"></span>baseline ± MDC</li>',
              '<li><span class="sw bar"></span>SD over the session\'s photos</li>',
              '<li><span class="sw line"></span>treatment day</li>']
    return f'<ul class="legend">{"".join(items)}</ul>'


def _trend_section(summary, subject, treatments) -> str:
    if len(summary) == 0:
        return '<section id="trends"><h2>Trends</h2><p class="empty">No measurements to chart.</p></section>'
    figs = []
    for metric in _ordered_metrics(summary["metric"].unique()):
        regions = set(summary.loc[summary["metric"].astype(str) == metric, "region"].astype(str))
        region = "face" if "face" in regions else next((r for r in cd.REGION_ORDER if r in regions), min(regions))
        chart = svg.trend_svg(summary, subject=subject, metric=metric, region=region, treatments=treatments)
        figs.append(f'<figure class="trend" data-metric="{_e(metric)}">{chart}</figure>')
    note = ('<p class="note">Each point is a session; the shaded band is the baseline ± MDC, so a point outside it '
            "is a change the measurement can see (the point's colour is the verdict: a later session with fewer "
            "photos has a wider MDC). On a computer, hover over a point to read its value.</p>")
    return (f'<section id="trends"><h2>Trends</h2>{note}{_legend()}<div class="figs">{"".join(figs)}</div>'
            "</section>")


def _region_section(summary, subject, treatments) -> str:
    if len(summary) == 0:
        return ""
    chosen = []
    for metric in list(KEY_METRICS) + _ordered_metrics(summary["metric"].unique()):
        if metric in chosen:
            continue
        n_regions = summary.loc[summary["metric"].astype(str) == metric, "region"].nunique()
        if n_regions > 1:
            chosen.append(metric)
        if len(chosen) == 2:
            break
    if not chosen:
        return ""
    parts = []
    for metric in chosen:
        rows = summary[summary["metric"].astype(str) == metric]
        direction = cd.direction_of(rows)
        panels = svg.region_panels_svg(summary, subject=subject, metric=metric, treatments=treatments)
        parts.append(f'<div class="region-block"><h3>{_e(cd.metric_label(metric, cd.first_unit(rows)))}'
                     + (f" <small>{_e(direction)}</small>" if direction else "") + "</h3>"
                     + f'<div class="panels" data-metric="{_e(metric)}">'
                     + "".join(f'<figure data-region="{_e(r)}">{p}</figure>' for r, p in panels) + "</div></div>")
    note = ('<p class="note">The same metric in each region (left and right are the subject\'s own), on one '
            "scale.</p>")
    return f'<section id="regions"><h2>By region</h2>{note}<div class="regions">{"".join(parts)}</div></section>'


def _change_maps(base, valid, maps) -> str:
    figs = []
    for name, arr, unit in maps:
        limit = cd.symmetric_limit(np.where(valid, arr, np.nan))
        rgb = cd.change_map_rgb(base, arr, valid, limit)
        bar = svg.colour_bar_svg(limit, unit, colours=cd.diverging_hex(48))
        title = f"{name[:1].upper()}{name[1:]}: change in {cd.unit_text(unit)}" if unit else f"{name}: change"
        figs.append(f'<figure class="map"><figcaption>{_e(title)}</figcaption>'
                    f'<img src="{_array_uri(rgb, max_px=MAP_MAX_PX)}" alt="{_e(title)}, latest minus baseline">'
                    f"{bar}</figure>")
    return f'<div class="maps">{"".join(figs)}</div>' if figs else ""


def _before_after_section(before_after) -> str:
    parts = _unpack_before_after(before_after)
    if parts is None:
        return ('<section id="before-after"><h2>Before and after</h2><p class="empty">No before/after images: they '
                "need two sessions, and the faces in the millimetre frame that <code>skinscan analyse</code> writes "
                "into the output folder's <code>canonical/</code>.</p></section>")
    base, latest, valid, maps = cd.check_before_after(*parts[:4])
    t0, t1 = (_e(t) for t in parts[4])
    # The end labels say what is on each side of the divider, as the tags on the photos do.
    slider = (
        '<div class="ba-wrap">'
        '<div class="ba" id="ba">'
        f'<img class="ba-bottom" src="{_array_uri(latest)}" alt="{t1}">'
        f'<img class="ba-top" id="ba-top" src="{_array_uri(base)}" alt="{t0}">'
        '<div class="ba-divider" id="ba-divider"></div>'
        f'<span class="ba-tag left">{_nw(parts[4][0])}</span><span class="ba-tag right">{_nw(parts[4][1])}</span>'
        "</div>"
        '<input type="range" id="ba-slider" min="0" max="100" value="50" step="1" '
        f'aria-label="Divider between {t0} (left) and {t1} (right)">'
        f'<div class="ends"><span class="end-left">{_nw(parts[4][0])}</span>'
        f'<span class="end-right">{_nw(parts[4][1])}</span></div>'
        "</div>")
    note = ('<p class="note">Both photos warped into the same millimetre face frame. Left of the line is the '
            "baseline, right of it the latest photo: move the slider to move the line.</p>")
    maps_html = _change_maps(base, valid, maps)
    maps_note = ('<h3>Change maps</h3><p class="note">Latest minus baseline on the baseline photo: blue is lower '
                 "than at baseline, red higher; grey outside the skin measured in both photos.</p>")
    return (f'<section id="before-after"><h2>Before and after</h2>{note}{slider}'
            + (maps_note + maps_html if maps_html else "") + "</section>")


def _recovery_section(recovery, recovery_hours, subject) -> str:
    rows = _subject_rows(recovery, subject)
    if len(rows) == 0:
        return ""
    figs = []
    for metric in [m for m in ("a_star", "erythema_index") if m in set(rows["metric"].astype(str))]:
        regions = set(rows.loc[rows["metric"].astype(str) == metric, "region"].astype(str))
        region = "face" if "face" in regions else min(regions)
        chart = svg.recovery_svg(rows, recovery_hours, subject=subject, metric=metric, region=region)
        figs.append(f'<figure class="recovery" data-metric="{_e(metric)}">{chart}</figure>')
    if not figs:
        return ""
    note = ('<p class="note">Redness in the days after each treatment against the level photographed before it; '
            "recovery is the time until redness is back within the MDC of that level.</p>")
    return (f'<section id="recovery"><h2>Recovery after treatment</h2>{note}'
            f'<div class="figs">{"".join(figs)}</div></section>')


def _quality_section(photos: pd.DataFrame) -> str:
    if len(photos) == 0:
        return '<section id="quality"><h2>Photo quality</h2><p class="empty">No photos recorded.</p></section>'
    order = [c for c in ("session_index", "session", "photo") if c in photos.columns]
    photos = photos.sort_values(order, kind="stable") if order else photos
    body = []
    for r in photos.to_dict("records"):
        status = "" if _isnan(r.get("status")) else str(r.get("status"))
        blocking = _split(r.get("excluded_by"))
        flags = _split(r.get("quality_flags"))
        error = "" if _isnan(r.get("error")) else str(r.get("error"))
        if status != "analysed":
            verdict, out = '<span class="badge skip">not analysed</span>', True
        elif blocking:
            verdict = f'<span class="badge block">excluded: {_e(", ".join(blocking))}</span>'
            out = True
        else:
            verdict, out = '<span class="badge ok">used</span>', False
        warn = "".join(f'<span class="badge">{_e(f)}</span>' for f in flags if f not in blocking)
        name = Path(str(r.get("photo", ""))).name if not _isnan(r.get("photo")) else ""
        body.append(
            f'<tr class="{"out" if out else ""}">'
            f'<td>{_nw(r.get("session", ""))}</td><td class="nw">{_e(_day(r.get("date")))}</td>'
            f'<td class="file">{_e(name)}</td><td>{_e(status)}</td><td>{verdict}</td><td>{warn}</td>'
            f'<td class="error">{_e(error)}</td></tr>')
    head = ("<tr><th>Session</th><th>Date</th><th>Photo</th><th>Status</th><th>In trends</th>"
            "<th>Other failed checks</th><th>Error</th></tr>")
    note = ('<p class="note">Photos that failed a blocking check (sharpness, exposure, head pose, expression or '
            "pose against the reference) are left out of every trend; the other failed checks are warnings the "
            "analysis handles.</p>")
    toggle = '<p class="filter"><label><input type="checkbox" id="only-out"> show only photos left out</label></p>'
    return (f'<section id="quality"><h2>Photo quality</h2>{note}{toggle}{_SWIPE}<div class="scroll">'
            f'<table id="photo-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div></section>')


# --------------------------------------------------------------------------------------------- public

def build_report(summary: pd.DataFrame, photos: pd.DataFrame, *, subject, treatments: Iterable = (),
                 recovery: pd.DataFrame | None = None, recovery_hours: Mapping | None = None,
                 before_after=None, title: str | None = None, timings: dict | None = None) -> str:
    """One self-contained HTML report of a subject's series.

    Parameters
    ----------
    summary : DataFrame
        :func:`skinscan.series.summarise` output (any subjects; this one's rows are used).
    photos : DataFrame
        One row per photo file: subject, session, session_index, date, photo, status, error,
        quality_flags, excluded_by.
    subject : str
    treatments : iterable of date
        The subject's treatment days.
    recovery : DataFrame, optional
        :func:`skinscan.series.recovery_curve` output; the recovery section appears when it has rows.
    recovery_hours : dict, optional
        Time to recovery, keyed by ``(region, metric)`` or ``(subject, treatment_date, region, metric)``.
    before_after : dict, optional
        ``{"baseline_rgb", "latest_rgb", "valid", "heatmaps"[, "titles"]}`` (see
        :func:`skinscan.charts.before_after_figure`), or a 4-tuple in that order. ``titles`` name
        the two photos: the baseline is shown left of the slider's divider, the latest right.
    title : str, optional
    timings : dict, optional
        Filled with the CPU seconds spent on each part of the report (keys: :data:`PARTS`).

    Returns
    -------
    str
        An HTML5 document with its charts as inline SVG, its photos and change maps as
        ``data:image/png;base64`` URIs, inline CSS and JS only, and no reference to anything
        outside it. The same inputs give the same bytes (no generation time is recorded).
    """
    if not isinstance(summary, pd.DataFrame) or not isinstance(photos, pd.DataFrame):
        raise TypeError("summary and photos must be pandas DataFrames")
    if len(summary) and not {"subject", "session_index", "region", "metric", "value"} <= set(summary.columns):
        raise ValueError("summary lacks columns; expected subject, session_index, region, metric, value, ...")
    treatments = list(treatments or ())
    subj_summary = _subject_rows(summary, subject)
    subj_photos = _subject_rows(photos, subject)
    version = version_text()
    title = title or f"Skin report: {subject}"
    timed = _timer(timings)
    timeline = _Timeline(subj_summary, subj_photos, treatments)
    header = timed("header", _header, title, subject, subj_photos, timeline, treatments, version)
    sections = [
        timed("change table", _change_table, subj_summary, timeline),
        timed("trend charts", _trend_section, subj_summary, subject, treatments),
        timed("region charts", _region_section, subj_summary, subject, treatments),
        timed("before/after", _before_after_section, before_after),
        timed("recovery chart", _recovery_section, recovery, recovery_hours, subject),
        timed("photo table", _quality_section, subj_photos),
    ]
    nav_items = [("change", "Change"), ("trends", "Trends"), ("regions", "By region"),
                 ("before-after", "Before and after"), ("recovery", "Recovery"), ("quality", "Photo quality")]
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in nav_items if any(f'id="{i}"' in s for s in sections))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="generator" content="{_e(version)}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>"
        + header
        + f"<nav>{nav}</nav>\n"
        + "\n".join(s for s in sections if s)
        + f'\n<footer>Generated by {_e(version)}. Measurements from photos are estimates; each change '
          f"is judged against its minimal detectable change. {_e(EVIDENCE)}</footer>"
        + f"</main><script>{_JS}</script></body></html>\n")


def _timer(timings: dict | None) -> Callable:
    """``timed(part, fn, *args)``: call ``fn`` and add its CPU seconds to ``timings[part]`` (when given)."""
    def timed(part, fn, *args):
        if timings is None:
            return fn(*args)
        t0 = time.process_time()
        try:
            return fn(*args)
        finally:
            timings[part] = timings.get(part, 0.0) + time.process_time() - t0
    return timed


def time_report(summary: pd.DataFrame, photos: pd.DataFrame, *, repeats: int = 3, **kwargs) -> dict[str, float]:
    """CPU seconds of :func:`build_report` on these tables, part by part: the median of ``repeats`` builds.

    CPU time of this process (``time.process_time``), so that other programs on the machine do not
    inflate it; the report is built on one thread, so it is the time of one core.

    Parameters
    ----------
    summary, photos : DataFrame
        As for :func:`build_report`.
    repeats : int
        Builds to take the median of (the first also warms caches: fonts, imports).
    **kwargs
        :func:`build_report`'s keywords (``subject`` is required).

    Returns
    -------
    dict of str to float
        Seconds per part (:data:`PARTS`) and ``"total"`` (the whole build), medians over the builds.

    Examples
    --------
    A table for a benchmark, from the tables ``skinscan.outputs.write_outputs`` builds::

        t = time_report(summary, photos, subject="astronaut", treatments=days, recovery=curve,
                        recovery_hours=hours, before_after=before_after)
        print("| report part (one core) | ms |\\n|---|---:|")
        print("\\n".join(f"| {part} | {1000 * s:.0f} |" for part, s in t.items()))
    """
    runs = []
    for _ in range(max(1, int(repeats))):
        parts: dict[str, float] = {}
        t0 = time.process_time()
        build_report(summary, photos, timings=parts, **kwargs)
        parts["total"] = time.process_time() - t0
        runs.append(parts)
    keys = [p for p in (*PARTS, "total") if p in runs[0]]
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}


#: How each metric is checked (docs/validation.md), said under every report.
EVIDENCE = ("Pore density, area and size are checked against pores labelled by people on a real close-up "
            "(Pore-Net); every metric, pores included, against known changes injected into a face and "
            "photographed under varied light, pose and expression (the phantom protocol); the other metrics "
            "only there.")


def write_report(path, html_text: str) -> Path:
    """Write a report (UTF-8) atomically: a reader never sees a half-written file. Returns the path.

    Parameters
    ----------
    path : str or PathLike
        The HTML file; missing parent folders are created.
    html_text : str
        The report, as :func:`build_report` returns it.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        The folder or the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, path, "report") from None
    return write_text(path, html_text, what="report")
