"""Matplotlib figures of a series: trends against the minimal detectable change, regions, before/after, recovery.

Charts take series results only (the ``summary`` and ``recovery`` frames of :mod:`skinscan.series`
and canonical-frame arrays); they never load photos or compute metrics. Every function builds a
:class:`matplotlib.figure.Figure` directly (no pyplot state, so it is safe in worker processes) and
returns it; :func:`save_figure` writes it without the metadata matplotlib would embed.

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
from datetime import date, datetime
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._write import write_bytes

__all__ = ["metric_label", "region_label", "trend_chart", "region_grid", "before_after_figure", "recovery_chart",
           "save_figure", "LABEL_COLOURS", "REGION_ORDER", "METRIC_ORDER", "DPI"]

#: Resolution of saved figures (dots per inch); sizes are in inches.
DPI = 150

#: Regions in display order (the union first, then the eight named regions, top to bottom of the face).
REGION_ORDER = ("face", "forehead", "periorbital_left", "periorbital_right", "nose", "cheek_left", "cheek_right",
                "perioral", "chin")

#: Metrics in display order (redness, texture, pores, scars, fine lines, pigmentation).
METRIC_ORDER = ("a_star", "erythema_index", "red_area_pct", "roughness", "pore_density", "pore_area_pct",
                "pore_diameter_mm", "scar_density", "scar_area_pct", "scar_severity", "wrinkle_density",
                "spot_density", "spot_area_pct", "melanin_index", "ita_deg", "tone_evenness")

_METRIC_NAMES = {
    "a_star": ("Redness a*", "CIELAB a*"),
    "erythema_index": ("Erythema index", "a.u."),
    "red_area_pct": ("Red area", "%"),
    "roughness": ("Roughness", "a.u."),
    "pore_density": ("Pore density", "per cm²"),
    "pore_area_pct": ("Pore area", "%"),
    "pore_diameter_mm": ("Pore diameter", "mm"),
    "scar_density": ("Scar density", "per cm²"),
    "scar_area_pct": ("Scar area", "%"),
    "scar_severity": ("Scar severity", "a.u."),
    "wrinkle_density": ("Fine-line density", "mm per cm²"),
    "spot_density": ("Spot density", "per cm²"),
    "spot_area_pct": ("Spot area", "%"),
    "melanin_index": ("Melanin index", "a.u."),
    "ita_deg": ("Skin tone ITA", "°"),
    "tone_evenness": ("Tone evenness", "a.u."),
}

_REGION_NAMES = {
    "face": "Whole face", "forehead": "Forehead", "cheek_left": "Left cheek", "cheek_right": "Right cheek",
    "nose": "Nose", "chin": "Chin", "periorbital_left": "Left eye area", "periorbital_right": "Right eye area",
    "perioral": "Around the mouth",
}

#: Point colour per change label.
LABEL_COLOURS = {
    "improved": "#2e7d32",
    "worse": "#c62828",
    "no detectable change": "#9e9e9e",
    "not determinable": "#d7ccc8",
    "changed": "#1565c0",
    "baseline": "#212121",
}
_OTHER_COLOUR = "#6d4c41"
_LINE_COLOUR = "#607d8b"
_BAND_COLOUR = "#90a4ae"
_TREATMENT_COLOUR = "#8e24aa"

_SAVE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Date": None, "Creator": None},
}


# --------------------------------------------------------------------------------------------- names

def _unit_text(unit: str) -> str:
    return str(unit).replace("cm2", "cm²").replace("mm2", "mm²").replace("deg", "°")


def metric_label(metric: str, unit: str | None = None, *, with_unit: bool = True) -> str:
    """Human name of a metric key with its unit, e.g. ``"Pore density (per cm²)"``.

    Parameters
    ----------
    metric : str
        A metric key (``"pore_density"``); unknown keys are prettified (``"foo_bar"`` -> ``"Foo bar"``).
    unit : str, optional
        The unit to show instead of the known one (``summary["unit"]``); required for an unknown key
        to carry a unit.
    with_unit : bool
        False gives the name alone (``"Pore density"``).

    Examples
    --------
    >>> metric_label("pore_density")
    'Pore density (per cm²)'
    """
    name, known_unit = _METRIC_NAMES.get(metric, (str(metric).replace("_", " ").strip().capitalize(), ""))
    u = _unit_text(unit) if unit not in (None, "") and not (isinstance(unit, float) and math.isnan(unit)) \
        else known_unit
    return f"{name} ({u})" if u and with_unit else name


def region_label(region: str) -> str:
    """Human name of a region key (``"cheek_left"`` -> ``"Left cheek"``, the subject's own left)."""
    return _REGION_NAMES.get(region, str(region).replace("_", " ").capitalize())


def _direction_text(higher_is_worse) -> str:
    if higher_is_worse is None:
        return ""
    return "lower is better" if bool(higher_is_worse) else "descriptor: neither direction is better"


def _safe(text: str) -> str:
    """Text from data shown literally: a ``$`` would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


# --------------------------------------------------------------------------------------------- data

def _rows(summary: pd.DataFrame, *, subject=None, metric=None, region=None) -> pd.DataFrame:
    _require_columns(summary, ("subject", "session_index", "region", "metric", "value"), "summary")
    keep = np.ones(len(summary), dtype=bool)
    if subject is not None:
        keep &= (summary["subject"].astype(str) == str(subject)).to_numpy()
    if metric is not None:
        keep &= (summary["metric"].astype(str) == str(metric)).to_numpy()
    if region is not None:
        keep &= (summary["region"].astype(str) == str(region)).to_numpy()
    return summary.loc[keep].sort_values("session_index", kind="stable")


def _require_columns(df, columns, name):
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; expected at least {list(columns)}")


def _col(df: pd.DataFrame, name: str, default=np.nan) -> np.ndarray:
    if name in df.columns:
        return df[name].to_numpy()
    return np.full(len(df), default, dtype=object if isinstance(default, str) else float)


def _floats(df: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(pd.Series(_col(df, name)), errors="coerce").to_numpy(dtype=float)


def _session_dates(rows: pd.DataFrame) -> pd.Series:
    if "date" not in rows.columns:
        return pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    return pd.to_datetime(rows["date"], errors="coerce")


def _use_dates(rows: pd.DataFrame) -> bool:
    """Dates on the x axis only when every session has one; otherwise the session index."""
    return len(rows) > 0 and bool(_session_dates(rows).notna().all())


def _x_values(rows: pd.DataFrame, use_dates: bool) -> np.ndarray:
    if use_dates:
        dates = _session_dates(rows)
        if dates.dt.tz is not None:
            dates = dates.dt.tz_localize(None)
        return dates.to_numpy(dtype="datetime64[ns]")
    return pd.to_numeric(rows["session_index"], errors="coerce").to_numpy(dtype=float)


def _baseline(rows: pd.DataFrame) -> tuple[float, float]:
    """Baseline value and the MDC around it (the first session's; any finite MDC when it has none)."""
    if rows.empty:
        return math.nan, math.nan
    values, mdc = _floats(rows, "value"), _floats(rows, "mdc")
    idx = pd.to_numeric(rows["session_index"], errors="coerce").to_numpy(dtype=float)
    first = np.flatnonzero(idx == np.nanmin(idx)) if np.isfinite(idx).any() else np.array([0])
    base = float(values[first[0]])
    m = float(mdc[first[0]])
    if not np.isfinite(m):
        finite = mdc[np.isfinite(mdc)]
        m = float(finite[0]) if finite.size else math.nan
    return base, m


def _to_datetime64(d) -> np.datetime64 | None:
    try:
        t = pd.Timestamp(d)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    return np.datetime64(t.tz_localize(None) if t.tzinfo else t, "ns")


# --------------------------------------------------------------------------------------------- figures

def _new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


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
    x = _x_values(rows, use_dates)
    y = _floats(rows, "value")
    spread = _floats(rows, "spread")
    labels = np.array([str(v) if isinstance(v, str) else "" for v in _col(rows, "label", "")], dtype=object)
    base, mdc = _baseline(rows)

    if np.isfinite(base) and np.isfinite(mdc) and mdc > 0:
        handles["MDC band around baseline"] = ax.axhspan(base - mdc, base + mdc, color=_BAND_COLOUR, alpha=0.25,
                                                          linewidth=0, zorder=0, gid="mdc_band")
    if np.isfinite(base):
        ax.axhline(base, color=_BAND_COLOUR, linewidth=0.8, linestyle="--", zorder=0.5, gid="baseline_line")

    ax.plot(x, y, color=_LINE_COLOUR, linewidth=1.4, zorder=2, gid="trend")
    finite = np.isfinite(y)
    if not finite.all() and finite.sum() >= 2:
        # A session without a valid value breaks the line; a faint dotted link keeps the trend readable.
        ax.plot(x[finite], y[finite], color=_LINE_COLOUR, linewidth=0.9, linestyle=":", alpha=0.7, zorder=1.5,
                gid="trend_gap")
    for xm in x[~finite]:
        if pd.notna(xm):
            ax.text(xm, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7,
                    color="#757575", gid="missing_value")
    ok = np.isfinite(y) & np.isfinite(spread) & (spread > 0)
    if ok.any():
        bars = ax.errorbar(x[ok], y[ok], yerr=spread[ok], fmt="none", ecolor=_LINE_COLOUR, elinewidth=1.0,
                           capsize=3, zorder=2.5)
        for collection in bars.lines[2]:
            collection.set_gid("spread")
        handles["SD over photos"] = Line2D([], [], color=_LINE_COLOUR, marker="|", markersize=9, linestyle="none")
    for lab in dict.fromkeys(labels):
        sel = (labels == lab) & np.isfinite(y)
        if not sel.any():
            continue
        colour = LABEL_COLOURS.get(lab, _OTHER_COLOUR)
        handles[lab or "unlabelled"] = ax.scatter(x[sel], y[sel], s=22 if compact else 42, color=colour,
                                                  edgecolors="white", linewidths=0.8, zorder=3, gid=f"points:{lab}")
    if not np.isfinite(y).any():
        _no_data(ax, "no valid value")

    if use_dates:
        drawn = False
        for t in treatments:
            tx = _to_datetime64(t)
            if tx is None:
                continue
            vl = ax.axvline(tx, color=_TREATMENT_COLOUR, linewidth=0.9, linestyle=":", zorder=1, gid="treatment")
            if not drawn:
                handles["treatment"] = vl
                drawn = True
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
    else:
        idx = x[np.isfinite(x)]
        if idx.size:
            ax.set_xticks(np.unique(idx))
            ax.set_xlim(idx.min() - 0.5, idx.max() + 0.5)
        if not compact:
            ax.set_xlabel("session (0 = baseline)", fontsize=8)
    return handles


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
    rows = _rows(summary, subject=subject, metric=metric, region=region)
    own_figure = ax is None
    if ax is None:
        fig = _new_figure(5.2, 3.6)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    units = [u for u in _col(rows, "unit", "") if isinstance(u, str) and u]
    hiw = _col(rows, "higher_is_worse", None)
    direction = _direction_text(hiw[0] if len(hiw) and hiw[0] is not None and not pd.isna(hiw[0]) else None)
    handles = _draw_trend(ax, rows, use_dates=_use_dates(rows), treatments=treatments)
    title = _safe(f"{metric_label(metric, units[0] if units else None)} — {region_label(region)}")
    ax.set_title(title + (f"\n{direction}" if direction else ""), fontsize=10, loc="left")
    _legend_below(ax, handles, own_figure=own_figure)
    return fig


def region_grid(summary: pd.DataFrame, *, subject, metric: str, treatments: Iterable = ()) -> Figure:
    """Small multiples of one metric: one panel per region (3 x 3, the whole face first), shared y axis.

    Regions without data show "no data". See :func:`trend_chart` for what each panel shows.
    """
    rows = _rows(summary, subject=subject, metric=metric)
    fig = _new_figure(7.5, 6.2)
    axes = fig.subplots(3, 3, sharey=True, sharex=True)
    regions = list(REGION_ORDER) + sorted(set(rows["region"].astype(str)) - set(REGION_ORDER))
    use_dates = _use_dates(rows)
    for ax, region in zip(axes.flat, regions[:9]):
        sub = rows[rows["region"].astype(str) == region]
        _draw_trend(ax, sub, use_dates=use_dates, treatments=treatments, compact=True)
        ax.set_title(_safe(region_label(region)), fontsize=8.5, loc="left")
    units = [u for u in _col(rows, "unit", "") if isinstance(u, str) and u]
    hiw = _col(rows, "higher_is_worse", None)
    direction = _direction_text(hiw[0] if len(hiw) and hiw[0] is not None and not pd.isna(hiw[0]) else None)
    fig.suptitle(_safe(metric_label(metric, units[0] if units else None)) + (f" — {direction}" if direction else ""),
                 fontsize=10.5, x=0.01, ha="left")
    return fig


def _check_image(name, a, shape=None):
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8, got {a.dtype}")
    if shape is not None and a.shape[:2] != shape:
        raise ValueError(f"{name} has shape {a.shape[:2]}, expected {shape} like baseline_rgb")
    return a


def _symmetric_limit(m: np.ndarray) -> float:
    """Colour limit for a change map: the 99th percentile of |change| (a few outliers do not wash it out)."""
    finite = np.abs(m[np.isfinite(m)])
    if finite.size == 0:
        return 1.0
    lim = float(np.percentile(finite, 99))
    return lim if lim > 0 else (float(finite.max()) or 1.0)


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
    base = _check_image("baseline_rgb", baseline_rgb)
    latest = _check_image("latest_rgb", latest_rgb, base.shape[:2])
    h, w = base.shape[:2]
    if valid is None:
        valid = np.ones((h, w), dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (h, w):
        raise ValueError(f"valid has shape {valid.shape}, expected {(h, w)}")
    maps = []
    for name, entry in (heatmaps or {}).items():
        if isinstance(entry, tuple) and len(entry) == 2:
            arr, unit = entry
        else:
            arr, unit = entry, ""
        arr = np.asarray(arr, dtype=float)
        if arr.shape != (h, w):
            raise ValueError(f"heatmap {name!r} has shape {arr.shape}, expected {(h, w)}")
        maps.append((str(name), arr, str(unit)))

    n = 2 + len(maps)
    panel_w = 2.9
    panel_h = panel_w * h / w + 0.35
    fig = _new_figure(panel_w * n + 0.5 * len(maps), panel_h)
    axes = fig.subplots(1, n, squeeze=False)[0]
    grey = base.astype(np.float32).mean(axis=2) / 255.0
    for ax, img, title in zip(axes[:2], (base, latest), titles):
        ax.imshow(_dim_outside(img, valid), interpolation="antialiased")
        ax.set_title(_safe(title), fontsize=9)
        ax.set_axis_off()
    for ax, (name, arr, unit) in zip(axes[2:], maps):
        lim = _symmetric_limit(arr)
        ax.imshow(grey, cmap="gray", vmin=-0.3, vmax=1.6, interpolation="antialiased")
        shown = np.where(valid, arr, np.nan)
        im = ax.imshow(np.ma.masked_invalid(shown), cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim),
                       interpolation="nearest", gid=f"heatmap:{name}")
        ax.set_title(_safe(f"{name}: change"), fontsize=9)
        ax.set_axis_off()
        cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
        cb.set_label(_safe(_unit_text(unit)), fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return fig


def _dim_outside(img: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if valid.all():
        return img
    out = img.astype(np.float32)
    out[~valid] = 0.35 * out[~valid] + 0.65 * 255.0
    return out.astype(np.uint8)


def _recovery_hours_for(recovery_hours, *, subject, treatment_date, region, metric) -> float:
    """Look up a time to recovery keyed by ``(region, metric)`` or ``(subject, treatment_date, region, metric)``."""
    if not recovery_hours:
        return math.nan
    for key in ((subject, treatment_date, region, metric), (region, metric)):
        if key in recovery_hours:
            v = recovery_hours[key]
            return float(v) if v is not None else math.nan
    return math.nan


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
    _require_columns(recovery, ("subject", "treatment_date", "hours_after", "region", "metric", "value"), "recovery")
    rows = _rows(recovery.assign(session_index=0), subject=subject, metric=metric, region=region)
    if rows.empty:
        _no_data(ax, "no recovery photos")
        return fig
    palette = matplotlib.colormaps["tab10"]
    groups = list(rows.groupby("treatment_date", sort=True, dropna=False))
    for i, (tdate, g) in enumerate(groups):
        colour = palette(i % 10)
        g = g.groupby("hours_after", as_index=False)[[c for c in ("value", "pre_value", "mdc") if c in g]].median()
        hours, values = g["hours_after"].to_numpy(dtype=float), g["value"].to_numpy(dtype=float)
        tlabel = _date_text(tdate)
        hrs = _recovery_hours_for(recovery_hours, subject=subject, treatment_date=tdate, region=region, metric=metric)
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


def _date_text(d) -> str:
    if isinstance(d, (date, datetime, pd.Timestamp, np.datetime64)):
        t = pd.Timestamp(d)
        return "unknown date" if pd.isna(t) else t.strftime("%Y-%m-%d")
    return str(d)


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
    with matplotlib.rc_context({"svg.hashsalt": "skinscan", "pdf.compression": 6}):
        if is_file:
            fig.savefig(path, format=fmt, dpi=dpi, metadata=dict(_SAVE_METADATA[fmt]), facecolor="white")
            return path
        path = Path(path)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=dict(_SAVE_METADATA[fmt]), facecolor="white")
    return write_bytes(path, buf.getvalue(), what="chart")
