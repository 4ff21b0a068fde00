"""The report's charts as small SVG drawn straight from series results: trends, region panels, recovery, colour bars.

Each function returns the text of one ``<svg>`` element sized by its ``viewBox`` only, so a page
scales it to the width it has (a phone's or a desktop column's) and its text stays text (sharp,
searchable, selectable). No matplotlib: a chart is a few dozen elements laid out here, which
takes about a millisecond where a rendered PNG took a fifth of a second.

Charts draw what :mod:`skinscan.charts` draws, from the same helpers (:mod:`skinscan.chartdata`):
session values with their SD as error bars, the baseline ± MDC band, points coloured by their
change label, treatment days as dotted lines, and axes with tick labels and a y-axis label that
names the unit. Data text is XML-escaped. The same input gives the same bytes: coordinates are
rounded to 0.1 px and nothing depends on time or on the order of a set.

Inline in HTML an ``<svg>`` needs no namespace; ``standalone=True`` adds it (and a font) for a
``.svg`` file of its own.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import chartdata as cd

__all__ = ["trend_svg", "trend_canvas", "region_panels_svg", "recovery_svg", "colour_bar_svg", "nice_ticks", "Canvas"]

#: Font sizes in viewBox units: a 400-wide chart shown 350 px wide on a phone keeps 10-px text.
TEXT_PX = 12
SMALL_PX = 11
_MUTED = "#616161"
_AXIS = "#9e9e9e"
_GRID = "#eeeeee"
_ND_RIM = "#8d6e63"
_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif'
#: Mean advance of a character of the report's sans-serif fonts, in font sizes (for layout only).
_CHAR_EM = 0.6
_MINUS = "\u2212"


# --------------------------------------------------------------------------------------------- canvas

def _n(v: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0`` (short, and the same bytes every run)."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else ("0" if s == "-0" else s)


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def text_width(text: str, size: float) -> float:
    """Estimated width of ``text`` at font ``size`` (viewBox units), for laying out labels.

    Parameters
    ----------
    text : str
        The label (converted with ``str``).
    size : float
        Font size, viewBox units.

    Returns
    -------
    float
        0.6 ``size`` per character.

    Examples
    --------
    >>> text_width("abc", 10)
    18.0
    """
    return len(str(text)) * size * _CHAR_EM


class Canvas:
    """SVG elements of one chart, in drawing order.

    Parameters
    ----------
    width, height : float
        The ``viewBox`` (user units; the page decides the size on screen).
    """

    def __init__(self, width: float, height: float):
        self.width, self.height, self.parts = float(width), float(height), []
        self.ops: list[tuple] = []  # the same drawing as primitives, for skinscan.raster's PNG

    def line(self, x1, y1, x2, y2, *, stroke, width=1.0, dash=None, opacity=None, cls=None):
        """Add a line segment.

        Parameters
        ----------
        x1, y1, x2, y2 : float
            End points, viewBox units (y down).
        stroke : str
            Colour (``"#rrggbb"``).
        width : float
            Stroke width, viewBox units.
        dash : str, optional
            SVG ``stroke-dasharray`` (``"3 3"``).
        opacity : float, optional
            0-1.
        cls : str, optional
            CSS class.
        """
        self.ops.append(("line", (x1, y1, x2, y2), dict(stroke=stroke, width=width, dash=dash, opacity=opacity)))
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"'
                          + _paint(stroke=stroke, width=width, dash=dash, opacity=opacity, cls=cls) + "/>")

    def rect(self, x, y, w, h, *, fill, opacity=None, cls=None):
        """Add a filled rectangle.

        Parameters
        ----------
        x, y : float
            Top-left corner, viewBox units.
        w, h : float
            Width and height, viewBox units (negative ones are drawn as 0).
        fill : str
            Colour.
        opacity : float, optional
            0-1.
        cls : str, optional
            CSS class.
        """
        self.ops.append(("rect", (x, y, max(w, 0), max(h, 0)), dict(fill=fill, opacity=opacity)))
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
                          f'fill="{fill}"' + _paint(opacity=opacity, cls=cls) + "/>")

    def polyline(self, xs, ys, *, stroke, width=1.5, dash=None, opacity=None, cls=None):
        """Add an open line through the points (round joins, no fill).

        Parameters
        ----------
        xs, ys : iterable of float
            The points, viewBox units.
        stroke : str
            Colour.
        width : float
            Stroke width, viewBox units.
        dash : str, optional
            SVG ``stroke-dasharray``.
        opacity : float, optional
            0-1.
        cls : str, optional
            CSS class.
        """
        xs, ys = [float(v) for v in xs], [float(v) for v in ys]
        self.ops.append(("polyline", (xs, ys), dict(stroke=stroke, width=width, dash=dash, opacity=opacity)))
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in zip(xs, ys))
        self.parts.append(f'<polyline points="{pts}" fill="none"'
                          + _paint(stroke=stroke, width=width, dash=dash, opacity=opacity, cls=cls)
                          + ' stroke-linejoin="round"/>')

    def circle(self, x, y, r, *, fill, stroke="#ffffff", title=None, cls=None):
        """Add a filled circle with a 1-unit outline.

        Parameters
        ----------
        x, y : float
            Centre, viewBox units.
        r : float
            Radius, viewBox units.
        fill : str
            Colour.
        stroke : str
            Outline colour.
        title : str, optional
            Tooltip (an SVG ``<title>``, escaped).
        cls : str, optional
            CSS class.
        """
        self.ops.append(("circle", (x, y, r), dict(fill=fill, stroke=stroke)))
        tip = f"<title>{_esc(title)}</title>" if title else ""
        self.parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{fill}"'
                          + _paint(stroke=stroke, width=1, cls=cls) + (f">{tip}</circle>" if tip else "/>"))

    def text(self, x, y, text, *, size=SMALL_PX, anchor="start", fill=_MUTED, weight=None, rotate=False, cls=None):
        """``text`` with its baseline at ``y``; ``rotate`` turns it to read upwards about (x, y).

        Parameters
        ----------
        x, y : float
            Anchor point, viewBox units.
        text : str
            The text (escaped).
        size : float
            Font size, viewBox units.
        anchor : {"start", "middle", "end"}
            SVG ``text-anchor``.
        fill : str
            Colour.
        weight : str, optional
            SVG ``font-weight`` (``"600"``).
        rotate : bool
            Rotate by -90 degrees about (x, y).
        cls : str, optional
            CSS class.
        """
        bold = str(weight).lower() == "bold" or (str(weight).isdigit() and int(weight) >= 600)
        self.ops.append(("text", (x, y, str(text)), dict(size=size, anchor=anchor, fill=fill, bold=bold, rotate=rotate)))
        attrs = f' x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if weight:
            attrs += f' font-weight="{weight}"'
        if rotate:
            attrs += f' transform="rotate(-90 {_n(x)} {_n(y)})"'
        if cls:
            attrs += f' class="{cls}"'
        self.parts.append(f"<text{attrs}>{_esc(text)}</text>")

    def svg(self, *, label: str, cls: str = "chart", standalone: bool = False) -> str:
        """The ``<svg>`` element: ``role="img"`` with ``label`` as its accessible name and ``<title>``.

        Parameters
        ----------
        label : str
            Accessible name (escaped).
        cls : str
            CSS class of the element.
        standalone : bool
            Add the SVG namespace and a font, for a file of its own.

        Returns
        -------
        str

        Examples
        --------
        >>> c = Canvas(100, 50)
        >>> c.line(0, 0, 100, 50, stroke="#000000")
        >>> print(c.svg(label="demo"))
        <svg class="chart" viewBox="0 0 100 50" role="img" aria-label="demo"><title>demo</title><line
        x1="0" y1="0" x2="100" y2="50" stroke="#000000" stroke-width="1"/></svg>
        """
        ns = f' xmlns="http://www.w3.org/2000/svg" font-family="{_esc(_FONT)}"' if standalone else ""
        return (f'<svg{ns} class="{cls}" viewBox="0 0 {_n(self.width)} {_n(self.height)}" role="img" '
                f'aria-label="{_esc(label)}"><title>{_esc(label)}</title>' + "".join(self.parts) + "</svg>")


def _paint(*, stroke=None, width=None, dash=None, opacity=None, cls=None) -> str:
    out = ""
    if stroke:
        out += f' stroke="{stroke}"'
        if width is not None:
            out += f' stroke-width="{_n(width)}"'
    if dash:
        out += f' stroke-dasharray="{dash}"'
    if opacity is not None:
        out += f' opacity="{opacity:g}"'
    if cls:
        out += f' class="{cls}"'
    return out


# --------------------------------------------------------------------------------------------- axes

@dataclass(frozen=True)
class _Scale:
    """Data interval [lo, hi] onto pixels [a, b] (b < a for a y axis, whose pixels grow downwards)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, v):
        return self.a + (np.asarray(v, dtype=float) - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[np.ndarray, int]:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) within [lo, hi], and the decimals they need.

    Parameters
    ----------
    lo, hi : float
        The data interval.
    n : int
        Number of ticks wanted.

    Returns
    -------
    ticks : ndarray
        The tick values; ``[lo]`` alone when the interval is empty or not finite.
    decimals : int
        Decimals that show the step (2 for the degenerate case).

    Examples
    --------
    >>> ticks, decimals = nice_ticks(0.21, 3.83)
    >>> ticks.tolist(), decimals
    ([1.0, 2.0, 3.0], 0)
    """
    span = hi - lo
    if not (np.isfinite(span) and span > 0):
        return np.array([lo]), 2
    raw = span / max(n - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    m = next(m for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    step = m * mag
    # The decimals of the step (2.5 needs one more than its power of ten).
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (m == 2.5))
    first = math.ceil(lo / step - 1e-9) * step
    count = int(math.floor((hi - first) / step + 1e-9)) + 1
    return np.round(first + step * np.arange(count), decimals + 3), decimals


def _tick_text(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    return "0" if float(s) == 0 else s.replace("-", _MINUS)


def _value_text(v: float) -> str:
    """A value to three significant figures, as the report's tables show it."""
    if not np.isfinite(v):
        return "n/a"
    a = abs(v)
    spec = ".0f" if a >= 100 else ".1f" if a >= 10 else ".2f" if a >= 1 or a == 0 else "#.3g"
    return format(v, spec).replace("-", _MINUS)


def _padded(lo: float, hi: float, frac: float = 0.08) -> tuple[float, float]:
    """[lo, hi] widened by ``frac`` of its span (a flat series by 10 % of its value, or by 1)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        d = abs(lo) * 0.1 or 1.0
        return lo - d, hi + d
    d = (hi - lo) * frac
    return lo - d, hi + d


def _y_extent(rows: pd.DataFrame) -> tuple[float, float]:
    """Lowest and highest y a series draws: values ± SD and baseline ± MDC (NaN, NaN without any)."""
    y, spread = cd.floats(rows, "value"), cd.floats(rows, "spread")
    spread = np.where(np.isfinite(spread), spread, 0.0)
    base, mdc = cd.baseline(rows)
    parts = [y - spread, y + spread]
    if np.isfinite(base):
        m = mdc if np.isfinite(mdc) and mdc > 0 else 0.0
        parts.append(np.array([base - m, base + m]))
    vals = np.concatenate(parts) if parts else np.array([])
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if vals.size else (math.nan, math.nan)


def _y_axis(c: Canvas, ys: _Scale, *, left: float, right: float, label: str | None, size: float,
            ticks: int = 6) -> None:
    """Horizontal grid lines with tick labels left of ``left``, and ``label`` read upwards at the left edge."""
    values, decimals = nice_ticks(ys.lo, ys.hi, ticks)
    for v in values:
        y = float(ys(v))
        c.line(left, y, right, y, stroke=_GRID, width=1, cls="grid")
        c.text(left - 5, y + size * 0.35, _tick_text(v, decimals), size=size, anchor="end", cls="ytick")
    if label:
        c.text(size * 0.95, (ys.a + ys.b) / 2, label, size=size, anchor="middle", fill="#424242", rotate=True,
               cls="ylabel")


def _y_label_width(ys_lo: float, ys_hi: float, size: float, ticks: int = 6) -> float:
    """Room the y tick labels need (the widest label plus a gap)."""
    values, decimals = nice_ticks(ys_lo, ys_hi, ticks)
    return max(text_width(_tick_text(v, decimals), size) for v in values) + 8


def _date_ticks(xs: _Scale, sessions: np.ndarray, *, size: float, min_gap: float) -> list[tuple[float, str, str]]:
    """(x, day-month, year or '') of each session date that has room, from the left; the year under
    the first label and wherever it changes. The last session keeps its label (the latest one)."""
    days = pd.to_datetime(sessions)
    px = xs(sessions.astype("datetime64[ns]").astype(np.int64).astype(float))
    keep: list[int] = []
    for i in range(len(px)):
        if not keep or px[i] - px[keep[-1]] >= min_gap:
            keep.append(i)
    if keep and keep[-1] != len(px) - 1:
        keep[-1] = len(px) - 1  # the latest session matters more than the one before it
        if len(keep) > 1 and px[keep[-1]] - px[keep[-2]] < min_gap:
            keep.pop(-2)
    out, year = [], None
    for i in keep:
        d = days[i]
        out.append((float(px[i]), d.strftime("%d %b"), str(d.year) if d.year != year else ""))
        year = d.year
    return out


# --------------------------------------------------------------------------------------------- trend

@dataclass(frozen=True)
class _Frame:
    """The plot box of a chart (pixels) and its two scales."""

    left: float
    top: float
    right: float
    bottom: float
    xs: _Scale
    ys: _Scale


def _x_domain(rows: pd.DataFrame, dates: bool) -> tuple[float, float]:
    """x interval of a series: its sessions with a margin (at least 3 days, or half a session)."""
    x = cd.x_values(rows, dates)
    if dates:
        ns = x.astype("datetime64[ns]").astype(np.int64).astype(float)
        lo, hi = float(ns.min()), float(ns.max())
        pad = max((hi - lo) * 0.06, 3 * 86400e9)
        return lo - pad, hi + pad
    idx = x[np.isfinite(x)]
    if not idx.size:
        return -0.5, 0.5
    return float(idx.min()) - 0.5, float(idx.max()) + 0.5


def _x_numbers(rows: pd.DataFrame, dates: bool) -> np.ndarray:
    x = cd.x_values(rows, dates)
    if dates:
        return x.astype("datetime64[ns]").astype(np.int64).astype(float)
    return x.astype(float)


def _draw_series(c: Canvas, f: _Frame, rows: pd.DataFrame, *, dates: bool, treatments: Iterable,
                 unit: str, compact: bool) -> None:
    """Band, baseline, treatment days, line, error bars and labelled points of one series in frame ``f``."""
    if rows.empty:
        c.text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no data", size=SMALL_PX, anchor="middle",
               cls="no-data")
        return
    x, y = f.xs(_x_numbers(rows, dates)), cd.floats(rows, "value")
    spread, labels = cd.floats(rows, "spread"), cd.labels_of(rows)
    base, mdc = cd.baseline(rows)
    if np.isfinite(base) and np.isfinite(mdc) and mdc > 0:
        top, bottom = float(f.ys(base + mdc)), float(f.ys(base - mdc))
        c.rect(f.left, top, f.right - f.left, bottom - top, fill=cd.BAND_COLOUR, opacity=0.25, cls="mdc-band")
    elif np.isfinite(base) and not compact:
        c.text(f.left + 4, f.top + SMALL_PX, "no MDC band: not determinable", size=SMALL_PX - 1, cls="no-band")
    if np.isfinite(base):
        c.line(f.left, float(f.ys(base)), f.right, float(f.ys(base)), stroke=cd.BAND_COLOUR, dash="4 3",
               cls="baseline")
    if dates:
        for t in treatments:
            tx = cd.to_datetime64(t)
            if tx is None:
                continue
            px = float(f.xs(float(tx.astype(np.int64))))
            if f.left <= px <= f.right:
                c.line(px, f.top, px, f.bottom, stroke=cd.TREATMENT_COLOUR, width=1.2, dash="2 3", cls="treatment")
    finite = np.isfinite(y)
    py = np.where(finite, f.ys(np.where(finite, y, 0.0)), np.nan)
    if finite.sum() >= 2 and not finite.all():
        # A session without a valid value breaks the line; a faint dotted link keeps the trend readable.
        c.polyline(x[finite], py[finite], stroke=cd.LINE_COLOUR, width=1, dash="2 3", opacity=0.7, cls="trend-gap")
    for run in _runs(finite):
        if len(run) >= 2:
            c.polyline(x[run], py[run], stroke=cd.LINE_COLOUR, width=1.8 if not compact else 1.4, cls="trend")
    for i in np.flatnonzero(~finite):
        c.text(float(x[i]), f.bottom - 4, "n/a", size=SMALL_PX - 1, anchor="middle", cls="missing")
    cap = 3.5 if not compact else 2.5
    for i in np.flatnonzero(finite & np.isfinite(spread) & (spread > 0)):
        y0, y1 = float(f.ys(y[i] - spread[i])), float(f.ys(y[i] + spread[i]))
        c.line(x[i], y0, x[i], y1, stroke=cd.LINE_COLOUR, width=1.2, cls="spread")
        c.line(x[i] - cap, y0, x[i] + cap, y0, stroke=cd.LINE_COLOUR, width=1.2)
        c.line(x[i] - cap, y1, x[i] + cap, y1, stroke=cd.LINE_COLOUR, width=1.2)
    sessions = cd.col(rows, "session", "")
    day = cd.session_dates(rows)
    for i in np.flatnonzero(finite):
        lab = labels[i]
        when = day.iloc[i].strftime("%Y-%m-%d") if pd.notna(day.iloc[i]) else str(sessions[i])
        tip = f"{when}: {_value_text(y[i])} {unit}".rstrip() + (f" ({lab})" if lab else "")
        # A pale "not determinable" point gets a dark rim: it must not vanish into the band or the page.
        c.circle(x[i], py[i], 4.5 if not compact else 3.2, fill=cd.LABEL_COLOURS.get(lab, cd.OTHER_COLOUR),
                 stroke=_ND_RIM if lab == "not determinable" else "#ffffff", title=tip,
                 cls=f"point {lab.replace(' ', '-')}" if lab else "point")
    if not finite.any():
        c.text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no valid value", size=SMALL_PX, anchor="middle",
               cls="no-data")


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    """Indices of each run of consecutive True values."""
    idx = np.flatnonzero(mask)
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []


def _x_axis(c: Canvas, f: _Frame, rows: pd.DataFrame, *, dates: bool, size: float, labels: bool = True) -> None:
    """Axis line and tick marks; labels: each session's date (those with room), or its index."""
    c.line(f.left, f.bottom, f.right, f.bottom, stroke=_AXIS, width=1)
    if rows.empty:
        return
    if dates:
        sessions = np.unique(cd.x_values(rows, True))
        ticks = _date_ticks(f.xs, sessions, size=size, min_gap=text_width("00 Mmm", size) + 8)
        for px, day, year in ticks:
            c.line(px, f.bottom, px, f.bottom + 4, stroke=_AXIS)
            if labels:
                _tick_label(c, px, f.bottom + 4 + size, day, size)
                if year:
                    _tick_label(c, px, f.bottom + 6 + 2 * size, year, size)
    else:
        idx = np.unique(cd.floats(rows, "session_index")[np.isfinite(cd.floats(rows, "session_index"))])
        for v in idx:
            px = float(f.xs(v))
            c.line(px, f.bottom, px, f.bottom + 4, stroke=_AXIS)
            if labels:
                _tick_label(c, px, f.bottom + 4 + size, f"{v:g}", size)


def _tick_label(c: Canvas, x: float, y: float, text: str, size: float) -> None:
    """An x tick label centred on its tick, or flush with the chart's edge where centring would cross it."""
    half = text_width(text, size) / 2
    if x + half > c.width:
        c.text(c.width, y, text, size=size, anchor="end", cls="xtick")
    elif x - half < 0:
        c.text(0, y, text, size=size, cls="xtick")
    else:
        c.text(x, y, text, size=size, anchor="middle", cls="xtick")


def _y_label(metric: str, unit: str | None, room: float, size: float) -> str:
    """The y-axis label: name and unit when it fits along the axis, else the unit alone."""
    full = cd.metric_label(metric, unit)
    if text_width(full, size) <= room:
        return full
    return cd.metric_unit(metric, unit) or full


def trend_svg(summary: pd.DataFrame, *, subject, metric: str, region: str = "face", treatments: Iterable = (),
              width: float = 340, height: float = 230, standalone: bool = False) -> str:
    """One metric of one region across sessions, against the baseline's minimal detectable change, as SVG.

    Parameters
    ----------
    summary : DataFrame
        :func:`skinscan.series.summarise` output (subject, session_index, date, region, metric, unit,
        value, spread, mdc, label, higher_is_worse).
    subject, metric, region : str
        The series to draw.
    treatments : iterable of date
        Treatment days, drawn as dotted vertical lines (only on a date axis).
    width, height : float
        The viewBox (user units); the page scales it.
    standalone : bool
        Add the SVG namespace and a font, for a file of its own.

    Returns
    -------
    str
        An ``<svg>`` element. x: session date (session index, labelled "session (0 = baseline)",
        when any session has no date); y: session value (median over photos) with its SD as error
        bars and the unit in the y-axis label; the shaded band (``class="mdc-band"``) is baseline ±
        MDC; points (``class="point <label>"``) are coloured by their change label and carry the
        value as a tooltip; treatment days are ``class="treatment"`` lines.
    """
    c, label = trend_canvas(summary, subject=subject, metric=metric, region=region, treatments=treatments,
                            width=width, height=height)
    return c.svg(label=label, standalone=standalone)


def trend_canvas(summary: pd.DataFrame, *, subject, metric: str, region: str = "face", treatments: Iterable = (),
                 width: float = 340, height: float = 230) -> tuple[Canvas, str]:
    """The drawing of :func:`trend_svg` and its accessible name (:mod:`skinscan.raster` makes a PNG of it)."""
    rows = cd.select_rows(summary, subject=subject, metric=metric, region=region)
    unit, direction = cd.first_unit(rows), cd.direction_of(rows)
    dates = cd.use_dates(rows)
    c = Canvas(width, height)
    name = cd.metric_label(metric, with_unit=False)
    c.text(0, 15, name, size=TEXT_PX + 1, fill="#212121", weight="600", cls="title")
    c.text(0, 31, " · ".join(t for t in (cd.region_label(region), direction) if t), size=SMALL_PX, cls="subtitle")
    top, bottom = 44, height - (2 * SMALL_PX + 12 if dates else 2 * SMALL_PX + 14)
    lo, hi = _padded(*_y_extent(rows))
    left = SMALL_PX * 1.6 + _y_label_width(lo, hi, SMALL_PX)
    f = _Frame(left, top, width - 8, bottom, _Scale(*_x_domain(rows, dates), left, width - 8) if len(rows)
               else _Scale(0, 1, left, width - 8), _Scale(lo, hi, bottom, top))
    _y_axis(c, f.ys, left=f.left, right=f.right,
            label=_y_label(metric, unit, bottom - top, SMALL_PX), size=SMALL_PX)
    _draw_series(c, f, rows, dates=dates, treatments=treatments, unit=cd.metric_unit(metric, unit), compact=False)
    _x_axis(c, f, rows, dates=dates, size=SMALL_PX)
    if not dates and len(rows):
        c.text((f.left + f.right) / 2, height - 2, "session (0 = baseline)", size=SMALL_PX, anchor="middle",
               cls="xlabel")
    return c, f"{cd.metric_label(metric, unit)} over sessions, {cd.region_label(region)}"


def region_panels_svg(summary: pd.DataFrame, *, subject, metric: str, treatments: Iterable = (),
                      width: float = 180, height: float = 140, standalone: bool = False) -> list[tuple[str, str]]:
    """Small multiples of one metric: one SVG panel per region (the whole face first), all on one y scale.

    Each panel is its own ``<svg>`` so that a page can lay them out three or two to a row. Regions
    without data show "no data". See :func:`trend_svg` for what a panel shows; every panel's y
    axis is labelled with the unit.

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
    width, height : float
        Each panel's viewBox (user units).
    standalone : bool
        Add the SVG namespace and a font, for files of their own.

    Returns
    -------
    list of (region, svg)
        Nine panels, in :data:`~skinscan.chartdata.REGION_ORDER`: the whole face and the eight
        named regions (the order holds nine, so a region outside it is not drawn).
    """
    rows = cd.select_rows(summary, subject=subject, metric=metric)
    regions = (list(cd.REGION_ORDER) + sorted(set(rows["region"].astype(str)) - set(cd.REGION_ORDER)))[:9]
    unit = cd.first_unit(rows)
    dates = cd.use_dates(rows)
    lo, hi = _padded(*_y_extent(rows))
    left = SMALL_PX * 1.6 + _y_label_width(lo, hi, SMALL_PX, ticks=4)
    bottom = height - (2 * SMALL_PX + 10 if dates else SMALL_PX + 10)
    xs = _Scale(*_x_domain(rows, dates), left, width - 6) if len(rows) else _Scale(0, 1, left, width - 6)
    f = _Frame(left, 24, width - 6, bottom, xs, _Scale(lo, hi, bottom, 24))
    unit_text = cd.metric_unit(metric, unit)
    out = []
    for region in regions:
        sub = rows[rows["region"].astype(str) == region]
        c = Canvas(width, height)
        c.text(0, 14, cd.region_label(region), size=TEXT_PX, fill="#212121", weight="600", cls="title")
        _y_axis(c, f.ys, left=f.left, right=f.right, label=unit_text, size=SMALL_PX, ticks=4)
        _draw_series(c, f, sub, dates=dates, treatments=treatments, unit=unit_text, compact=True)
        # Every panel gets the x axis of the whole metric, so that panels line up session by session.
        _x_axis(c, f, rows, dates=dates, size=SMALL_PX)
        label = f"{cd.metric_label(metric, unit)} over sessions, {cd.region_label(region)}"
        out.append((region, c.svg(label=label, cls="chart panel", standalone=standalone)))
    return out


# --------------------------------------------------------------------------------------------- recovery

def recovery_svg(recovery: pd.DataFrame | None, recovery_hours: Mapping | None = None, *, subject,
                 metric: str = "a_star", region: str = "face", width: float = 340,
                 standalone: bool = False) -> str:
    """Redness over the hours after each treatment against its pre-treatment level, as SVG.

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
    str
        An ``<svg>``: one line per treatment (``class="recovery"``, photos at the same hour as
        their median), a dashed pre-treatment level (``class="pre-level"``) in its MDC band
        (``class="pre-band"``), the time to recovery as a dotted line labelled in hours
        (``class="recovered"``), and under the axes a legend entry per treatment (its day, then
        when redness was back within the MDC, or that it was not by the last photo).
    """
    rows = pd.DataFrame()
    if recovery is not None and len(recovery):
        cd.require_columns(recovery, ("subject", "treatment_date", "hours_after", "region", "metric", "value"),
                           "recovery")
        rows = cd.select_rows(recovery.assign(session_index=0), subject=subject, metric=metric, region=region)
    groups = [] if rows.empty else [(t, _median_by_hour(g)) for t, g in
                                    rows.groupby("treatment_date", sort=True, dropna=False)]
    plot_h = 226  # title, plot box, ticks and x label; the legend entries follow, two lines each
    height = plot_h + 34 * max(len(groups), 1) + 4
    c = Canvas(width, height)
    c.text(0, 15, f"{cd.metric_label(metric, with_unit=False)} after treatment", size=TEXT_PX + 1,
           fill="#212121", weight="600", cls="title")
    c.text(0, 31, f"{cd.region_label(region)} · lower is better · shaded: level before ± MDC", size=SMALL_PX,
           cls="subtitle")
    top, bottom = 44, plot_h - 2 * SMALL_PX - 16
    if not groups:
        c.text(width / 2, (top + bottom) / 2, "no recovery photos", size=SMALL_PX, anchor="middle", cls="no-data")
        return c.svg(label=f"{cd.metric_label(metric)} after treatment: no recovery photos", standalone=standalone)
    ys_all = [g[k].to_numpy(dtype=float) for _, g in groups for k in ("value", "lo", "hi") if k in g]
    lo, hi = _padded(*_finite_range(np.concatenate(ys_all)))
    hours_max = max(float(np.nanmax(g["hours_after"])) for _, g in groups)
    left = SMALL_PX * 1.6 + _y_label_width(lo, hi, SMALL_PX)
    f = _Frame(left, top, width - 8, bottom, _Scale(0.0, max(hours_max * 1.08, 1.0), left, width - 8),
               _Scale(lo, hi, bottom, top))
    unit = cd.metric_unit(metric, cd.first_unit(rows))
    _y_axis(c, f.ys, left=f.left, right=f.right, label=_y_label(metric, unit, bottom - top, SMALL_PX), size=SMALL_PX)
    for i, (tdate, g) in enumerate(groups):
        colour = cd.TREATMENT_PALETTE[i % len(cd.TREATMENT_PALETTE)]
        hrs = cd.recovery_hours_for(recovery_hours, subject=subject, treatment_date=tdate, region=region,
                                    metric=metric)
        _draw_recovery(c, f, g, colour=colour, hours=hrs, unit=unit)
        note = (f"back within MDC after {hrs:.0f} h" if np.isfinite(hrs)
                else "not back within MDC by the last photo")
        y = plot_h + 34 * i + 12
        c.line(0, y - 4, 18, y - 4, stroke=colour, width=2.5)
        c.text(24, y, f"treatment {cd.date_text(tdate)}:", size=SMALL_PX, fill="#424242", cls="legend")
        c.text(24, y + 15, note, size=SMALL_PX, fill="#424242", cls="legend")
    c.line(f.left, f.bottom, f.right, f.bottom, stroke=_AXIS)
    for v in nice_ticks(0.0, f.xs.hi, 6)[0]:
        px = float(f.xs(v))
        c.line(px, f.bottom, px, f.bottom + 4, stroke=_AXIS)
        _tick_label(c, px, f.bottom + 4 + SMALL_PX, f"{v:g}", SMALL_PX)
    c.text((f.left + f.right) / 2, f.bottom + 8 + 2 * SMALL_PX, "hours after treatment", size=SMALL_PX,
           anchor="middle", cls="xlabel")
    return c.svg(label=f"{cd.metric_label(metric)} after treatment, {cd.region_label(region)}", standalone=standalone)


def _median_by_hour(g: pd.DataFrame) -> pd.DataFrame:
    """One point per hour after the treatment (the median of its photos), with the band's edges."""
    cols = [k for k in ("value", "pre_value", "mdc") if k in g]
    out = g.groupby("hours_after", as_index=False)[cols].median()
    pre = out["pre_value"] if "pre_value" in out else pd.Series(np.nan, index=out.index)
    mdc = out["mdc"] if "mdc" in out else pd.Series(np.nan, index=out.index)
    return out.assign(lo=pre - mdc.fillna(0), hi=pre + mdc.fillna(0))


def _finite_range(v: np.ndarray) -> tuple[float, float]:
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else (math.nan, math.nan)


def _draw_recovery(c: Canvas, f: _Frame, g: pd.DataFrame, *, colour: str, hours: float, unit: str) -> None:
    pre = float(np.nanmedian(g["pre_value"])) if "pre_value" in g and g["pre_value"].notna().any() else math.nan
    mdc = float(np.nanmedian(g["mdc"])) if "mdc" in g and g["mdc"].notna().any() else math.nan
    if np.isfinite(pre):
        if np.isfinite(mdc) and mdc > 0:
            top, bottom = float(f.ys(pre + mdc)), float(f.ys(pre - mdc))
            c.rect(f.left, top, f.right - f.left, bottom - top, fill=colour, opacity=0.12, cls="pre-band")
        c.line(f.left, float(f.ys(pre)), f.right, float(f.ys(pre)), stroke=colour, dash="5 3", cls="pre-level")
    h, v = g["hours_after"].to_numpy(dtype=float), g["value"].to_numpy(dtype=float)
    ok = np.isfinite(h) & np.isfinite(v)
    x, y = f.xs(h[ok]), f.ys(v[ok])
    if ok.sum() >= 2:
        c.polyline(x, y, stroke=colour, width=1.8, cls="recovery")
    for hx, vx, px, py in zip(h[ok], v[ok], x, y):
        c.circle(px, py, 3.5, fill=colour, title=f"{hx:.0f} h: {_value_text(vx)} {unit}".rstrip())
    if np.isfinite(hours) and f.xs.lo <= hours <= f.xs.hi:
        px = float(f.xs(hours))
        c.line(px, f.top, px, f.bottom, stroke=colour, width=1.4, dash="2 3", cls="recovered")
        c.text(px + 3, f.top + SMALL_PX, f"{hours:.0f} h", size=SMALL_PX, fill=colour, cls="recovery-note")


# --------------------------------------------------------------------------------------------- colour bar

def colour_bar_svg(limit: float, unit: str, *, colours: Sequence[str], width: float = 320) -> str:
    """A horizontal colour bar from −``limit`` to +``limit`` in ``colours`` (low to high), ticked and unit-labelled.

    Parameters
    ----------
    limit : float
        The change shown at full colour (both ends, symmetric about no change).
    unit : str
        The change's unit (``"Δ a*"``).
    colours : sequence of str
        The colour of each of a row of equal bins, low to high (``#rrggbb``).
    """
    c = Canvas(width, 46)
    x0, x1, w = 8.0, width - 8.0, (width - 16.0) / len(colours)
    for i, colour in enumerate(colours):
        c.rect(x0 + i * w, 2, w + 0.3, 12, fill=colour)  # 0.3 of overlap: no hairline gaps between bins
    values, decimals = nice_ticks(-limit, limit, 5)
    xs = _Scale(-limit, limit, x0, x1)
    for v in values:
        px = float(xs(v))
        c.line(px, 14, px, 18, stroke=_MUTED)
        c.text(px, 18 + SMALL_PX, _tick_text(v, decimals), size=SMALL_PX, anchor="middle", cls="xtick")
    c.text(x1, 44, f"{cd.unit_text(unit)}: blue lower, red higher than at baseline".lstrip(": "),
           size=SMALL_PX - 1, anchor="end", cls="xlabel")
    return c.svg(label=f"colour scale, {cd.unit_text(unit)}", cls="colour-bar")
