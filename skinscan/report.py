"""One self-contained HTML report of a subject's series: change table, trends, before/after, recovery, quality.

The report takes series results only (the ``summary``, ``photos`` and ``recovery`` frames of
:mod:`skinscan.series` and canonical-frame arrays); it never loads photos or computes metrics.
Everything it shows is inside the one file: charts and images are embedded as
``data:image/png;base64`` URIs, CSS and JavaScript are inline, and a Content-Security-Policy
forbids the page from fetching anything, so it opens offline and leaks nothing when shared.
Every piece of text that comes from data (subject and session names are folder names) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ._version import version_text
from ._write import output_error, write_text
from .discover import UNDATED_SESSION

from .charts import (LABEL_COLOURS, METRIC_ORDER, REGION_ORDER, before_after_figure, metric_label, recovery_chart,
                     region_grid, region_label, save_figure, trend_chart)

__all__ = ["build_report", "write_report", "KEY_METRICS"]

#: Metrics shown region by region (the first two the subject has in more than one region).
KEY_METRICS = ("a_star", "pore_density", "roughness", "scar_density", "wrinkle_density", "spot_density")

#: Longest side of the before/after photos embedded for the slider (px); the page shows them smaller.
SLIDER_MAX_PX = 720

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")

_CSS = """
:root { --fg: #212121; --muted: #616161; --line: #e0e0e0; --bg: #ffffff; --panel: #fafafa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 26px; margin: 0 0 6px; }
header .meta { color: var(--muted); margin: 0; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 14px 0 0; }
header dt { color: var(--muted); }
header dd { margin: 0; }
nav { margin: 18px 0 8px; padding: 8px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
nav a { margin-right: 16px; color: #1565c0; text-decoration: none; }
section { margin-top: 34px; }
h2 { font-size: 20px; margin: 0 0 10px; }
p.note { color: var(--muted); font-size: 13.5px; max-width: 860px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.label { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 13px; color: #fff;
         white-space: nowrap; }
.label-improved { background: @improved@; }
.label-worse { background: @worse@; }
.label-none { background: @none@; }
.label-changed { background: @changed@; }
.label-baseline { background: @baseline@; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 18px; }
figure { margin: 0; }
figure img { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.wide img { max-width: 900px; }
figure.wide { margin-bottom: 18px; }
.ba-wrap { max-width: 560px; }
.ba { position: relative; user-select: none; border: 1px solid var(--line); border-radius: 4px; overflow: hidden; }
.ba img { display: block; width: 100%; height: auto; }
.ba img.ba-top { position: absolute; top: 0; left: 0; clip-path: inset(0 50% 0 0); }
.ba-divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; margin-left: -1px;
              background: #fff; box-shadow: 0 0 3px rgba(0,0,0,.6); pointer-events: none; }
.ba-tag { position: absolute; top: 8px; padding: 1px 8px; border-radius: 3px; font-size: 13px;
          background: rgba(0,0,0,.55); color: #fff; }
.ba-tag.left { left: 8px; } .ba-tag.right { right: 8px; }
.ba-wrap input[type=range] { width: 100%; margin: 10px 0 0; }
.ba-wrap .ends { display: flex; justify-content: space-between; color: var(--muted); font-size: 13px; }
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
@media print { nav, .ba-wrap input, .filter { display: none; } section { break-inside: avoid-page; } }
"""
# The label colours are the charts' own, so a badge in a table matches the points in a chart.
_CSS = re.sub(r"@(\w+)@", lambda m: {**LABEL_COLOURS, "none": "#757575"}[m.group(1)], _CSS)

# Pure inline script: the before/after slider (also settable by a "#ba=NN" URL fragment), the filter
# of the photo table, and a ready flag that only a script that ran to the end sets.
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
      slider.setAttribute("aria-valuetext", v + "% baseline");
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


# --------------------------------------------------------------------------------------------- helpers

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
    spec = ".0f" if a >= 100 else ".1f" if a >= 10 else ".2f" if a >= 1 or a == 0 else ".3g"
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


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    save_figure(fig, buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _array_uri(rgb: np.ndarray, *, max_px: int = SLIDER_MAX_PX) -> str:
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    scale = max_px / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ordered_metrics(metrics: Iterable[str]) -> list[str]:
    ms = set(map(str, metrics))
    return [m for m in METRIC_ORDER if m in ms] + sorted(ms - set(METRIC_ORDER))


def _label_class(label: str) -> str:
    return {"improved": "label-improved", "worse": "label-worse", "no detectable change": "label-none",
            "not determinable": "label-none", "changed": "label-changed",
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


# --------------------------------------------------------------------------------------------- sections

def _header(title, subject, summary, photos, treatments, version) -> str:
    n_sessions = summary["session"].nunique() if "session" in summary else 0
    if n_sessions == 0 and "session" in photos:
        n_sessions = photos.loc[photos["session"] != UNDATED_SESSION, "session"].nunique()
    dates = pd.to_datetime(pd.concat([summary.get("date", pd.Series(dtype=object)),
                                      photos.get("date", pd.Series(dtype=object))]), errors="coerce").dropna()
    span = f"{_day(dates.min())} to {_day(dates.max())}" if len(dates) else "no session dates"
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
        ("Sessions", f"{n_sessions} ({_e(span)})"),
        ("Photos", f"{len(photos)} files: {_e(', '.join(counts))}"),
        ("Treatments", _e(", ".join(days)) if days else "none recorded"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f'<header><h1>{_e(title)}</h1><p class="meta">Skin change across sessions, measured in physical units '
            f"from ordinary photos. Generated by {_e(version)}.</p><dl>{dl}</dl></header>")


def _change_table(summary: pd.DataFrame) -> str:
    face = summary[summary["region"].astype(str) == "face"] if len(summary) else summary
    intro = ('<p class="note">Whole face, latest session against the baseline. A change counts only when it is '
             "larger than the minimal detectable change (MDC, 95 %): the smallest difference that photo-to-photo "
             "noise cannot explain. Values are medians over each session's photos that passed quality checks. "
             "The MDC comes from repeated photos within the sessions (<em>repeats</em>), else from each photo's "
             "own uncertainty (<em>photo</em>: counted features, the light reference); with neither, a change is "
             "<em>not determinable</em>. Take two or three photos per session.</p>")
    if len(face) == 0:
        return f'<section id="change"><h2>Change since baseline</h2>{intro}<p class="empty">No whole-face ' \
               "measurements for this subject.</p></section>"
    body = []
    first_idx, last_idx = face["session_index"].min(), face["session_index"].max()
    for metric in _ordered_metrics(face["metric"].unique()):
        rows = face[face["metric"].astype(str) == metric].sort_values("session_index", kind="stable")
        base, last = rows.iloc[0], rows.iloc[-1]
        unit = str(last.get("unit", "")) if not _isnan(last.get("unit", "")) else ""
        one = len(rows) == 1
        label = "baseline" if one else str(last.get("label", ""))
        name = metric_label(metric, with_unit=False)
        body.append(
            "<tr>"
            f"<td>{_e(name)}</td><td>{_e(_unit_display(unit))}</td>"
            f'<td class="num">{_fmt(base.get("value"))}</td>'
            f'<td class="num">{"—" if one else _fmt(last.get("value"))}</td>'
            f'<td class="num">{"—" if one else _fmt(last.get("change_abs"), signed=True)}</td>'
            f'<td class="num">{"—" if one else _fmt_pct(last.get("change_pct"))}</td>'
            f'<td class="num">{_fmt(last.get("mdc"))}{_mdc_source(last.get("mdc_source"))}</td>'
            f'<td><span class="label {_label_class(label)}">{_e(label or "—")}</span></td>'
            "</tr>")
    sessions = face.drop_duplicates("session_index").set_index("session_index")
    def _session(i):
        if i not in sessions.index:
            return ""
        r = sessions.loc[i]
        d = _day(r.get("date"))
        return f"{_e(r.get('session', ''))}" + (f", {_e(d)}" if d and d != str(r.get("session", "")) else "")
    head = ("<tr><th>Metric</th><th>Unit</th>"
            f'<th class="num">Baseline<br><small>{_session(first_idx)}</small></th>'
            f'<th class="num">Latest<br><small>{_session(last_idx)}</small></th>'
            '<th class="num">Change</th><th class="num">Change %</th><th class="num">MDC</th><th>Result</th></tr>')
    return (f'<section id="change"><h2>Change since baseline</h2>{intro}'
            f'<table id="change-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></section>')


def _mdc_source(source) -> str:
    """Where an MDC came from, under it, in short (see :data:`skinscan.series.MDC_SOURCES`)."""
    short = {"repeats": "repeats", "photo uncertainty": "photo"}.get(str(source), "")
    return f'<br><small class="mdc-source">{short}</small>' if short else ""


def _unit_display(unit: str) -> str:
    return str(unit).replace("cm2", "cm²").replace("mm2", "mm²").replace("deg", "°")


def _figure(uri: str, alt: str, caption: str = "", cls: str = "") -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure class="{cls}"><img src="{uri}" alt="{_e(alt)}">{cap}</figure>'


def _trend_section(summary, subject, treatments) -> str:
    if len(summary) == 0:
        return '<section id="trends"><h2>Trends</h2><p class="empty">No measurements to chart.</p></section>'
    figs = []
    for metric in _ordered_metrics(summary["metric"].unique()):
        regions = set(summary.loc[summary["metric"].astype(str) == metric, "region"].astype(str))
        region = "face" if "face" in regions else next((r for r in REGION_ORDER if r in regions), sorted(regions)[0])
        fig = trend_chart(summary, subject=subject, metric=metric, region=region, treatments=treatments)
        figs.append(_figure(_png_uri(fig), f"{metric_label(metric)} over sessions, {region_label(region)}"))
    note = ('<p class="note">Each point is a session (error bar: SD over its photos); the shaded band is the '
            "baseline ± MDC, so a point outside it is a change the measurement can see. Green: improved, red: "
            "worse, grey: no detectable change, pale: not determinable (no repeated photos and no photo "
            "uncertainty). Dotted purple lines are treatment days.</p>")
    return f'<section id="trends"><h2>Trends</h2>{note}<div class="figs">{"".join(figs)}</div></section>'


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
    figs = "".join(_figure(_png_uri(region_grid(summary, subject=subject, metric=m, treatments=treatments)),
                           f"{metric_label(m)} by region", cls="wide") for m in chosen)
    note = '<p class="note">The same metric in each region (left and right are the subject\'s own), on one scale.</p>'
    return f'<section id="regions"><h2>By region</h2>{note}{figs}</section>'


def _before_after_section(before_after) -> str:
    parts = _unpack_before_after(before_after)
    if parts is None:
        return ('<section id="before-after"><h2>Before and after</h2><p class="empty">No before/after images were '
                "provided.</p></section>")
    base, latest, valid, heatmaps, titles = parts
    fig = before_after_figure(base, latest, valid, heatmaps, titles=titles)  # validates shapes and dtypes
    t0, t1 = (_e(t) for t in titles)
    slider = (
        '<div class="ba-wrap">'
        '<div class="ba" id="ba">'
        f'<img class="ba-bottom" src="{_array_uri(np.asarray(latest))}" alt="{t1}">'
        f'<img class="ba-top" id="ba-top" src="{_array_uri(np.asarray(base))}" alt="{t0}">'
        '<div class="ba-divider" id="ba-divider"></div>'
        f'<span class="ba-tag left">{t0}</span><span class="ba-tag right">{t1}</span>'
        "</div>"
        '<input type="range" id="ba-slider" min="0" max="100" value="50" step="1" '
        f'aria-label="Slide between {t0} and {t1}">'
        f'<div class="ends"><span>← {t1}</span><span>{t0} →</span></div>'
        "</div>")
    note = ('<p class="note">Both photos warped into the same millimetre face frame. Drag the slider to uncover one '
            "over the other. Change maps: blue is lower than at baseline, red higher; grey outside the skin "
            "measured in both photos.</p>")
    maps = _figure(_png_uri(fig), "baseline, latest and change maps", cls="wide")
    return f'<section id="before-after"><h2>Before and after</h2>{note}{slider}<h3>Change maps</h3>{maps}</section>'


def _recovery_section(recovery, recovery_hours, subject) -> str:
    rows = _subject_rows(recovery, subject)
    if len(rows) == 0:
        return ""
    figs = []
    for metric in [m for m in ("a_star", "erythema_index") if m in set(rows["metric"].astype(str))]:
        regions = set(rows.loc[rows["metric"].astype(str) == metric, "region"].astype(str))
        region = "face" if "face" in regions else sorted(regions)[0]
        fig = recovery_chart(rows, recovery_hours, subject=subject, metric=metric, region=region)
        figs.append(_figure(_png_uri(fig), f"{metric_label(metric)} after treatment"))
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
            f'<td>{_e(r.get("session", ""))}</td><td>{_e(_day(r.get("date")))}</td>'
            f"<td>{_e(name)}</td><td>{_e(status)}</td><td>{verdict}</td><td>{warn}</td>"
            f'<td class="error">{_e(error)}</td></tr>')
    head = ("<tr><th>Session</th><th>Date</th><th>Photo</th><th>Status</th><th>In trends</th>"
            "<th>Other failed checks</th><th>Error</th></tr>")
    note = ('<p class="note">Photos that failed a blocking check (sharpness, exposure, head pose, expression or '
            "pose against the reference) are left out of every trend; the other failed checks are warnings the "
            "analysis handles.</p>")
    toggle = ('<p class="filter"><label><input type="checkbox" id="only-out"> show only photos left out</label></p>')
    return (f'<section id="quality"><h2>Photo quality</h2>{note}{toggle}'
            f'<table id="photo-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></section>')


# --------------------------------------------------------------------------------------------- public

def build_report(summary: pd.DataFrame, photos: pd.DataFrame, *, subject, treatments: Iterable = (),
                 recovery: pd.DataFrame | None = None, recovery_hours: Mapping | None = None,
                 before_after=None, title: str | None = None) -> str:
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
        :func:`skinscan.charts.before_after_figure`), or a 4-tuple in that order.
    title : str, optional

    Returns
    -------
    str
        An HTML5 document with every image embedded as a ``data:image/png;base64`` URI, inline CSS
        and JS only, and no reference to anything outside it. The same inputs give the same bytes
        (no generation time is recorded).
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
    sections = [
        _change_table(subj_summary),
        _trend_section(subj_summary, subject, treatments),
        _region_section(subj_summary, subject, treatments),
        _before_after_section(before_after),
        _recovery_section(recovery, recovery_hours, subject),
        _quality_section(subj_photos),
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
        + _header(title, subject, subj_summary, subj_photos, treatments, version)
        + f"<nav>{nav}</nav>\n"
        + "\n".join(s for s in sections if s)
        + f'\n<footer>Generated by {_e(version)}. Measurements from photos are estimates; each change '
          f"is judged against its minimal detectable change. {_e(EVIDENCE)}</footer>"
        + f"</main><script>{_JS}</script></body></html>\n")


#: How each metric is checked (docs/validation.md), said under every report.
EVIDENCE = ("Pore density, area and size are checked against pores labelled by people on a real close-up "
            "(Pore-Net); every metric, pores included, against known changes injected into a face and "
            "photographed under varied light, pose and expression (the phantom protocol); the other metrics "
            "only there.")


def write_report(path, html_text: str) -> Path:
    """Write a report (UTF-8) atomically: a reader never sees a half-written file. Returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, path, "report") from None
    return write_text(path, html_text, what="report")
