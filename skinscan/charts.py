"""Matplotlib figures of a series: trends against the minimal detectable change, regions, before/after, recovery.

Charts take series results only (the ``summary`` and ``recovery`` frames of :mod:`skinscan.series`
and canonical-frame arrays); they never load photos or compute metrics. Every function builds a
:class:`matplotlib.figure.Figure` directly (no pyplot state, so it is safe in worker processes) and
returns it; :func:`save_figure` writes it without the metadata matplotlib would embed.
These figures are for the chart files (``skinscan chart``) and notebooks; the HTML report draws
the same charts as inline SVG (:mod:`skinscan.svg`), from the same helpers (:mod:`skinscan.chartdata`).

Colours of change labels
------------------------
=======================  =======
label                    colour
=======================  =======
improved                 green
worse                    red
no detectable change     grey
changed (descriptor)     blue
baseline                 black
=======================  =======
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import chartdata as cd
from .chartdata import LABEL_COLOURS, METRIC_ORDER, REGION_ORDER, metric_label, region_label
from ._write import write_bytes

__all__ = ["metric_label", "region_label", "trend_chart", "region_grid", "before_after_figure", "recovery_chart",
           "save_figure", "LABEL_COLOURS", "REGION_ORDER", "METRIC_ORDER", "DPI"]

#: Resolution of saved figures (dots per inch); sizes are in inches.
DPI = 150

#: zlib level of saved PNGs: 3 encodes a chart several times faster than the default 6 for a few % more bytes.
_PNG_LEVEL = 3

_SAVE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Date": None, "Creator": None},
}


def _safe(text: str) -> str:
    """Text from data shown literally: a ``$`` would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


# --------------------------------------------------------------------------------------------- figures

def _new_figure(width_in: float, height_in: float, *, constrained: bool = True) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained" if constrained else None)


def _no_data(ax, text="no data"):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#757575", fontsize=9,
            gid="no_data")
    # Ticks of shared axes belong to every panel: clear them only on an axes of its own.
    if not ax.get_shared_x_axes().get_siblings(ax)[1:]:
        ax.set_xticks([])
    if not ax.get_shared_y_axes().get_siblings(ax)[1:]:
        ax.set_yticks([])


def _draw_trend(ax, rows: pd.DataFrame, *, use_dates: bool, treatments=(), compact: bool = False) -> dict:
    """Draw one (subject, region, metric) series into ``ax``; return the artists a legend needs."""
    handles = {}
    _style_axes(ax, compact)
    if rows.empty:
        _no_data(ax)
        return handles
    x = cd.x_values(rows, use_dates)
    y = cd.floats(rows, "value")
    handles.update(_draw_baseline(ax, rows))
    handles.update(_draw_values(ax, x, y, cd.floats(rows, "spread"), cd.labels_of(rows), compact=compact))
    if not np.isfinite(y).any():
        _no_data(ax, "no valid value")
    if use_dates:
        handles.update(_draw_dates(ax, x, treatments, compact=compact))
    else:
        _draw_sessions(ax, x, compact=compact)
    return handles


def _draw_baseline(ax, rows: pd.DataFrame) -> dict:
    """The baseline as a dashed line, with the band of one MDC around it (what a change must leave)."""
    handles = {}
    base, mdc = cd.baseline(rows)
    if np.isfinite(base) and np.isfinite(mdc) and mdc > 0:
        handles["MDC band around baseline"] = ax.axhspan(base - mdc, base + mdc, color=cd.BAND_COLOUR, alpha=0.25,
                                                          linewidth=0, zorder=0, gid="mdc_band")
    if np.isfinite(base):
        ax.axhline(base, color=cd.BAND_COLOUR, linewidth=0.8, linestyle="--", zorder=0.5, gid="baseline_line")
    return handles


def _draw_values(ax, x: np.ndarray, y: np.ndarray, spread: np.ndarray, labels: np.ndarray, *, compact: bool) -> dict:
    """The sessions' values: the trend line (dotted across a session without a value, marked n/a),
    their spread over photos as error bars, and a point per session coloured by its label."""
    handles = {}
    ax.plot(x, y, color=cd.LINE_COLOUR, linewidth=1.4, zorder=2, gid="trend")
    finite = np.isfinite(y)
    if not finite.all() and finite.sum() >= 2:
        # A session without a valid value breaks the line; a faint dotted link keeps the trend readable.
        ax.plot(x[finite], y[finite], color=cd.LINE_COLOUR, linewidth=0.9, linestyle=":", alpha=0.7, zorder=1.5,
                gid="trend_gap")
    for xm in x[~finite]:
        if pd.notna(xm):
            ax.text(xm, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7,
                    color="#757575", gid="missing_value")
    ok = np.isfinite(y) & np.isfinite(spread) & (spread > 0)
    if ok.any():
        bars = ax.errorbar(x[ok], y[ok], yerr=spread[ok], fmt="none", ecolor=cd.LINE_COLOUR, elinewidth=1.0,
                           capsize=3, zorder=2.5)
        for collection in bars.lines[2]:
            collection.set_gid("spread")
        handles["SD over photos"] = Line2D([], [], color=cd.LINE_COLOUR, marker="|", markersize=9, linestyle="none")
    for lab in dict.fromkeys(labels):
        sel = (labels == lab) & np.isfinite(y)
        if not sel.any():
            continue
        colour = LABEL_COLOURS.get(lab, cd.OTHER_COLOUR)
        handles[lab or "unlabelled"] = ax.scatter(x[sel], y[sel], s=22 if compact else 42, color=colour,
                                                  edgecolors="white", linewidths=0.8, zorder=3, gid=f"points:{lab}")
    return handles


def _draw_dates(ax, x: np.ndarray, treatments, *, compact: bool) -> dict:
    """A time axis: the treatments as dotted lines, ticks on each session's date when there are few."""
    handles = {}
    for t in treatments:
        tx = cd.to_datetime64(t)
        if tx is None:
            continue
        vl = ax.axvline(tx, color=cd.TREATMENT_COLOUR, linewidth=0.9, linestyle=":", zorder=1, gid="treatment")
        handles.setdefault("treatment", vl)
    sessions = np.unique(x)
    if len(sessions) <= (4 if compact else 8):
        # Few sessions: tick each session's own date rather than month starts between them.
        ax.set_xticks(sessions)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%Y" if not compact else "%d %b"))
    else:
        locator = mdates.AutoDateLocator(minticks=2, maxticks=4 if compact else 7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    lo, hi = x.min(), x.max()
    pad = max((hi - lo) * 0.08, np.timedelta64(3, "D"))
    ax.set_xlim(lo - pad, hi + pad)
    return handles


def _draw_sessions(ax, x: np.ndarray, *, compact: bool) -> None:
    """A session-number axis (0 = baseline), when the photos have no dates."""
    idx = x[np.isfinite(x)]
    if idx.size:
        ax.set_xticks(np.unique(idx))
        ax.set_xlim(idx.min() - 0.5, idx.max() + 0.5)
    if not compact:
        ax.set_xlabel("session (0 = baseline)", fontsize=8)


def _style_axes(ax, compact: bool = False):
    ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7 if compact else 8)


def _legend_below(ax, handles: dict, *, own_figure: bool = True, ncols: int = 3):
    """Legend under the figure's axes in rows of three (it never covers data and keeps the figure narrow);
    inside the axes when drawing into a caller's axes."""
    if not handles:
        return
    kw = dict(fontsize=7.5, frameon=False, handlelength=1.6, columnspacing=1.2)
    if own_figure:
        ax.figure.legend(list(handles.values()), [_safe(k) for k in handles], loc="outside lower center", ncols=ncols,
                         **kw)
    else:
        ax.legend(list(handles.values()), [_safe(k) for k in handles], loc="best", **kw)


def trend_chart(summary: pd.DataFrame, *, subject, metric: str, region: str = "face", treatments: Iterable = (),
                ax=None) -> Figure:
    """One metric of one region across sessions, against the baseline's minimal detectable change.

    Parameters
    ----------
    summary : DataFrame
        :func:`skinscan.series.summarise` output (subject, session_index, date, region, metric, unit,
        value, spread, mdc, label, higher_is_worse).
    subject, metric, region : str
        The series to draw.
    treatments : iterable of date
        Treatment days, drawn as dotted vertical lines (only on a date axis).
    ax : matplotlib Axes, optional
        Draw into this axes; its figure is returned.

    Returns
    -------
    Figure
        x: session date (session index when any session has no date); y: the session value
        (median over photos) with its SD as error bars; the shaded band is baseline ± MDC, so a
        point outside it is a detectable change. Points are coloured by ``label``. The line artist
        has ``gid="trend"``, the band ``gid="mdc_band"``, treatment lines ``gid="treatment"``.
        The band uses the baseline row's MDC; a later session with fewer photos has a wider MDC,
        so its point's colour (its ``label``) is the verdict, not the band.
    """
    rows = cd.select_rows(summary, subject=subject, metric=metric, region=region)
    own_figure = ax is None
    if ax is None:
        # Fixed margins instead of constrained layout: the chart files are written for every metric
        # of every subject, and laying out by measuring every text twice was most of their time.
        fig = _new_figure(5.2, 3.6, constrained=False)
        fig.subplots_adjust(left=0.15, right=0.97, top=0.85, bottom=0.29)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    unit, direction = cd.first_unit(rows), cd.direction_of(rows)
    handles = _draw_trend(ax, rows, use_dates=cd.use_dates(rows), treatments=treatments)
    title = _safe(f"{metric_label(metric, unit)} — {region_label(region)}")
    # A title placed by hand (y=) skips matplotlib's search for a place clear of the axes' ticks.
    ax.set_title(title + (f"\n{direction}" if direction else ""), fontsize=10, loc="left",
                 **({"y": 1.02} if own_figure else {}))
    ax.set_ylabel(_safe(metric_label(metric, unit)), fontsize=8)
    _legend_below(ax, handles, own_figure=own_figure)
    return fig


def region_grid(summary: pd.DataFrame, *, subject, metric: str, treatments: Iterable = ()) -> Figure:
    """Small multiples of one metric: one panel per region (3 x 3, the whole face first), shared y axis.

    Regions without data show "no data". See :func:`trend_chart` for what each panel shows.

    Parameters
    ----------
    summary : DataFrame
        :func:`skinscan.series.summarise` output.
    subject : str
        The subject to draw.
    metric : str
        The metric key to draw.
    treatments : iterable of date
        Treatment days, drawn as dotted vertical lines (only on a date axis).

    Returns
    -------
    Figure
        Nine panels, in :data:`~skinscan.chartdata.REGION_ORDER`: the whole face and the eight
        named regions (the order holds nine, so a region outside it is not drawn).
    """
    rows = cd.select_rows(summary, subject=subject, metric=metric)
    fig = _new_figure(7.5, 6.2)
    axes = fig.subplots(3, 3, sharey=True, sharex=True)
    regions = list(REGION_ORDER) + sorted(set(rows["region"].astype(str)) - set(REGION_ORDER))
    use_dates = cd.use_dates(rows)
    for ax, region in zip(axes.flat, regions[:9]):
        sub = rows[rows["region"].astype(str) == region]
        _draw_trend(ax, sub, use_dates=use_dates, treatments=treatments, compact=True)
        ax.set_title(_safe(region_label(region)), fontsize=8.5, loc="left")
    direction = cd.direction_of(rows)
    fig.suptitle(_safe(metric_label(metric, cd.first_unit(rows))) + (f" — {direction}" if direction else ""),
                 fontsize=10.5, x=0.01, ha="left")
    for ax in axes[:, 0]:
        ax.set_ylabel(_safe(metric_label(metric, cd.first_unit(rows))), fontsize=7)
    return fig


def before_after_figure(baseline_rgb, latest_rgb, valid=None, heatmaps: Mapping | None = None, *,
                        titles=("baseline", "latest")) -> Figure:
    """Baseline and latest photo side by side in the canonical face frame, then one change map per entry.

    Parameters
    ----------
    baseline_rgb, latest_rgb : ndarray (H, W, 3) uint8
        Both in the same canonical frame.
    valid : ndarray (H, W) bool, optional
        Pixels covered in both; outside it the photos are dimmed.
    heatmaps : dict of str to (ndarray (H, W) float, str)
        Change maps and their units (``{"redness": (delta_a, "delta a*")}``), NaN outside the face;
        drawn with a diverging colour map centred on 0 (blue lower, red higher) over a grey copy
        of the baseline, with a colour bar in the unit.
    titles : (str, str)

    Returns
    -------
    Figure
        ``2 + len(heatmaps)`` image axes in a row, plus one colour bar axes per heatmap.
    """
    base, latest, valid, maps = cd.check_before_after(baseline_rgb, latest_rgb, valid, heatmaps)
    h, w = base.shape[:2]
    n = 2 + len(maps)
    panel_w = 2.9
    panel_h = panel_w * h / w + 0.35
    fig = _new_figure(panel_w * n + 0.5 * len(maps), panel_h)
    axes = fig.subplots(1, n, squeeze=False)[0]
    grey = base.astype(np.float32).mean(axis=2) / 255.0
    for ax, img, title in zip(axes[:2], (base, latest), titles):
        ax.imshow(cd.dim_outside(img, valid), interpolation="antialiased")
        ax.set_title(_safe(title), fontsize=9)
        ax.set_axis_off()
    for ax, (name, arr, unit) in zip(axes[2:], maps):
        lim = cd.symmetric_limit(arr)
        ax.imshow(grey, cmap="gray", vmin=-0.3, vmax=1.6, interpolation="antialiased")
        shown = np.where(valid, arr, np.nan)
        im = ax.imshow(np.ma.masked_invalid(shown), cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim),
                       interpolation="nearest", gid=f"heatmap:{name}")
        ax.set_title(_safe(f"{name}: change"), fontsize=9)
        ax.set_axis_off()
        cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
        cb.set_label(_safe(cd.unit_text(unit)), fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return fig


def recovery_chart(recovery: pd.DataFrame | None, recovery_hours: Mapping | None = None, *, subject,
                   metric: str = "a_star", region: str = "face") -> Figure:
    """Redness over the hours after each treatment against its pre-treatment level.

    Parameters
    ----------
    recovery : DataFrame
        :func:`skinscan.series.recovery_curve` output (subject, treatment_date, hours_after, region,
        metric, value, pre_value, mdc); may be empty.
    recovery_hours : dict, optional
        Time until redness is back within the MDC of its pre-treatment level, keyed by
        ``(region, metric)`` or ``(subject, treatment_date, region, metric)``; NaN when not yet.

    Returns
    -------
    Figure
        One line per treatment (``gid="recovery"``, its legend entry stating the time to recovery),
        a dashed pre-treatment level (``gid="pre_level"``) with its MDC band (``gid="pre_band"``),
        and the time to recovery as a dotted vertical line (``gid="recovered"``) labelled in hours.
    """
    fig = _new_figure(5.2, 3.6)
    ax = fig.add_subplot()
    title = _safe(f"{metric_label(metric)} after treatment — {region_label(region)}")
    ax.set_title(title + "\nlower is better; shaded: pre-treatment level ± MDC", fontsize=10, loc="left")
    ax.set_xlabel("hours after treatment", fontsize=8)
    _style_axes(ax)
    if recovery is None or len(recovery) == 0:
        _no_data(ax, "no recovery photos")
        return fig
    cd.require_columns(recovery, ("subject", "treatment_date", "hours_after", "region", "metric", "value"), "recovery")
    rows = cd.select_rows(recovery.assign(session_index=0), subject=subject, metric=metric, region=region)
    if rows.empty:
        _no_data(ax, "no recovery photos")
        return fig
    groups = list(rows.groupby("treatment_date", sort=True, dropna=False))
    for i, (tdate, g) in enumerate(groups):
        colour = cd.TREATMENT_PALETTE[i % len(cd.TREATMENT_PALETTE)]
        g = g.groupby("hours_after", as_index=False)[[c for c in ("value", "pre_value", "mdc") if c in g]].median()
        hours, values = g["hours_after"].to_numpy(dtype=float), g["value"].to_numpy(dtype=float)
        tlabel = cd.date_text(tdate)
        hrs = cd.recovery_hours_for(recovery_hours, subject=subject, treatment_date=tdate, region=region, metric=metric)
        # The time to recovery goes in the legend under the axes, where it can never cover the curve.
        note = f"back within MDC after {hrs:.0f} h" if np.isfinite(hrs) else "not back within MDC by the last photo"
        ax.plot(hours, values, marker="o", markersize=4, color=colour, linewidth=1.4, gid="recovery",
                label=_safe(f"treatment {tlabel}: {note}"))
        pre = float(np.nanmedian(g["pre_value"])) if "pre_value" in g and g["pre_value"].notna().any() else math.nan
        mdc = float(np.nanmedian(g["mdc"])) if "mdc" in g and g["mdc"].notna().any() else math.nan
        if np.isfinite(pre):
            ax.axhline(pre, color=colour, linestyle="--", linewidth=1.0, gid="pre_level")
            if np.isfinite(mdc) and mdc > 0:
                ax.axhspan(pre - mdc, pre + mdc, color=colour, alpha=0.12, linewidth=0, zorder=0, gid="pre_band")
        if np.isfinite(hrs):
            ax.axvline(hrs, color=colour, linestyle=":", linewidth=1.2, gid="recovered")
            ax.text(hrs, 0.98, f" {hrs:.0f} h", transform=ax.get_xaxis_transform(), ha="left", va="top",
                    fontsize=7.5, color=colour, gid="recovery_note")
    ax.set_xlim(left=0)
    ax.set_ylabel(_safe(metric_label(metric)), fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    _legend_below(ax, dict(zip(labels, handles)), ncols=1)
    return fig


# --------------------------------------------------------------------------------------------- saving

def save_figure(fig: Figure, path, *, format: str | None = None, dpi: int = DPI):
    """Write ``fig`` as PNG, SVG or PDF (by the path's suffix, or ``format``) with no source metadata.

    matplotlib stamps its version and the creation time into each file; the exported file carries
    neither, so the same figure always gives the same bytes and reveals nothing of where it was made.

    Parameters
    ----------
    fig : Figure
    path : str, Path or binary file object
        A file object (``io.BytesIO``) needs ``format``.
    format : {"png", "svg", "pdf"}, optional
    dpi : int

    Returns
    -------
    Path or the file object
    """
    is_file = hasattr(path, "write")
    fmt = (format or ("" if is_file else Path(path).suffix.lstrip("."))).lower()
    if fmt not in _SAVE_METADATA:
        raise ValueError(f"cannot save a figure as {fmt or 'a file without suffix'!r}; expected .png, .svg or .pdf")
    kwargs = {"format": fmt, "dpi": dpi, "metadata": dict(_SAVE_METADATA[fmt]), "facecolor": "white"}
    if fmt == "png":
        kwargs["pil_kwargs"] = {"compress_level": _PNG_LEVEL}
    with matplotlib.rc_context({"svg.hashsalt": "skinscan", "pdf.compression": 6}):
        if is_file:
            fig.savefig(path, **kwargs)
            return path
        path = Path(path)
        buf = io.BytesIO()
        fig.savefig(buf, **kwargs)
    return write_bytes(path, buf.getvalue(), what="chart")
