"""What every chart of a series shares, without matplotlib: names, colours, rows to draw, the baseline's MDC band.

:mod:`skinscan.charts` (matplotlib figures for files and notebooks), :mod:`skinscan.svg` (the
report's inline charts) and :mod:`skinscan.report` draw the same series the same way from these;
keeping them free of matplotlib keeps its import (about half a second) out of the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime

import numpy as np
import pandas as pd

from .metrics import registry

#: Regions in display order (the union first, then the eight named regions, top to bottom of the face).
REGION_ORDER = ("face", "forehead", "periorbital_left", "periorbital_right", "nose", "cheek_left", "cheek_right",
                "perioral", "chin")

#: Metrics in display order (redness, texture, pores, scars, fine lines, pigmentation), as the registry lists them.
METRIC_ORDER = tuple(m.key for m in registry.METRICS)

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
OTHER_COLOUR = "#6d4c41"
LINE_COLOUR = "#607d8b"
BAND_COLOUR = "#90a4ae"
TREATMENT_COLOUR = "#8e24aa"
#: One colour per treatment in a recovery chart (matplotlib's tab10, so files and report agree).
TREATMENT_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                     "#bcbd22", "#17becf")


# --------------------------------------------------------------------------------------------- names

def unit_text(unit) -> str:
    """A stored unit as shown: ``cm2`` -> ``cm²``, ``deg`` -> ``°``; '' for a missing one.

    The registry (:mod:`skinscan.metrics.registry`) spells each unit once, as stored; this is the
    one place its shown spelling comes from.

    Parameters
    ----------
    unit : str or None
        A unit as stored (``summary["unit"]``); None or NaN for none.

    Returns
    -------
    str

    Examples
    --------
    >>> unit_text("cm2"), unit_text(None)
    ('cm²', '')
    """
    if unit is None or (isinstance(unit, float) and math.isnan(unit)):
        return ""
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
    known = _known(metric)
    name = known.label if known else str(metric).replace("_", " ").strip().capitalize()
    u = metric_unit(metric, unit)
    return f"{name} ({u})" if u and with_unit else name


def metric_unit(metric: str, unit: str | None = None) -> str:
    """The unit a metric is shown in: ``unit`` when given (``summary["unit"]``), else the known one.

    Parameters
    ----------
    metric : str
        A metric key (``"pore_density"``).
    unit : str, optional
        The stored unit to show instead of the registry's.

    Returns
    -------
    str
        The unit as shown (:func:`unit_text`); '' for an unknown metric without ``unit``.

    Examples
    --------
    >>> metric_unit("pore_density"), metric_unit("a_star")
    ('per cm²', 'CIELAB a*')
    """
    known = _known(metric)
    return unit_text(unit) or (unit_text(known.unit) if known else "")


def _known(key: str) -> registry.Metric | None:
    """The registry's metric of ``key``, or None for a metric it does not hold (e.g. an older store's)."""
    try:
        return registry.metric(key)
    except KeyError:
        return None


def region_label(region: str) -> str:
    """Human name of a region key (``"cheek_left"`` -> ``"Left cheek"``, the subject's own left).

    Parameters
    ----------
    region : str
        A region key; an unknown one is prettified (``"upper_lip"`` -> ``"Upper lip"``).

    Returns
    -------
    str

    Examples
    --------
    >>> region_label("cheek_left")
    'Left cheek'
    """
    return _REGION_NAMES.get(region, str(region).replace("_", " ").capitalize())


def direction_text(higher_is_worse) -> str:
    """``"lower is better"``, the descriptor's note, or '' when the direction is unknown.

    Parameters
    ----------
    higher_is_worse : bool or None
        True for a metric where lower is better, False for a descriptor, None when unknown.

    Returns
    -------
    str
    """
    if higher_is_worse is None:
        return ""
    return "lower is better" if bool(higher_is_worse) else "descriptor: neither direction is better"


def first_unit(rows: pd.DataFrame) -> str | None:
    """The first non-empty ``unit`` of ``rows`` (None when they carry none).

    Parameters
    ----------
    rows : DataFrame
        Summary rows, with or without a ``unit`` column.

    Returns
    -------
    str or None
    """
    units = [u for u in col(rows, "unit", "") if isinstance(u, str) and u]
    return units[0] if units else None


def direction_of(rows: pd.DataFrame) -> str:
    """:func:`direction_text` of the first row's ``higher_is_worse``.

    Parameters
    ----------
    rows : DataFrame
        Summary rows; without a ``higher_is_worse`` column the direction is unknown.

    Returns
    -------
    str
    """
    hiw = col(rows, "higher_is_worse", None)
    return direction_text(hiw[0] if len(hiw) and hiw[0] is not None and not pd.isna(hiw[0]) else None)


# --------------------------------------------------------------------------------------------- data

def require_columns(df, columns, name):
    """Raise TypeError / ValueError unless ``df`` is a DataFrame with ``columns``.

    Parameters
    ----------
    df : object
        The argument to check.
    columns : iterable of str
        Columns it must have.
    name : str
        The argument's name, for the error message.

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame.
    ValueError
        It lacks some of ``columns``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; expected at least {list(columns)}")


def select_rows(summary: pd.DataFrame, *, subject=None, metric=None, region=None) -> pd.DataFrame:
    """The rows of one subject / metric / region (any left None), in session order.

    Parameters
    ----------
    summary : DataFrame
        :func:`skinscan.series.summarise` rows (at least ``subject``, ``session_index``, ``region``,
        ``metric``, ``value``).
    subject, metric, region : str, optional
        Keep only rows with this value (compared as text); None keeps all.

    Returns
    -------
    DataFrame
        The kept rows, sorted by ``session_index`` (stable).
    """
    require_columns(summary, ("subject", "session_index", "region", "metric", "value"), "summary")
    keep = np.ones(len(summary), dtype=bool)
    if subject is not None:
        keep &= (summary["subject"].astype(str) == str(subject)).to_numpy()
    if metric is not None:
        keep &= (summary["metric"].astype(str) == str(metric)).to_numpy()
    if region is not None:
        keep &= (summary["region"].astype(str) == str(region)).to_numpy()
    return summary.loc[keep].sort_values("session_index", kind="stable")


def col(df: pd.DataFrame, name: str, default=np.nan) -> np.ndarray:
    """A column as an array, or ``default`` repeated when the frame lacks it.

    Parameters
    ----------
    df : DataFrame
    name : str
        Column name.
    default : object
        Fill value for a missing column (float array for a number, object array for str or None).

    Returns
    -------
    ndarray, shape (len(df),)
    """
    if name in df.columns:
        return df[name].to_numpy()
    return np.full(len(df), default, dtype=object if isinstance(default, str) or default is None else float)


def floats(df: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 (NaN for missing or non-numeric cells).

    Parameters
    ----------
    df : DataFrame
    name : str
        Column name (all NaN when the frame lacks it).

    Returns
    -------
    ndarray of float64, shape (len(df),)
    """
    return pd.to_numeric(pd.Series(col(df, name)), errors="coerce").to_numpy(dtype=float)


def labels_of(rows: pd.DataFrame) -> np.ndarray:
    """The change labels as an object array of str ('' where missing).

    Parameters
    ----------
    rows : DataFrame
        Summary rows, with or without a ``label`` column.

    Returns
    -------
    ndarray of object, shape (len(rows),)
    """
    return np.array([str(v) if isinstance(v, str) else "" for v in col(rows, "label", "")], dtype=object)


def session_dates(rows: pd.DataFrame) -> pd.Series:
    """Each row's session date (NaT where missing or unreadable).

    Parameters
    ----------
    rows : DataFrame
        Summary rows, with or without a ``date`` column.

    Returns
    -------
    Series of datetime64
        Indexed like ``rows``.
    """
    if "date" not in rows.columns:
        return pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    return pd.to_datetime(rows["date"], errors="coerce")


def use_dates(rows: pd.DataFrame) -> bool:
    """Dates on the x axis only when every session has one; otherwise the session index.

    Parameters
    ----------
    rows : DataFrame
        The rows to draw.

    Returns
    -------
    bool
        True when ``rows`` is not empty and every row has a readable date.
    """
    return len(rows) > 0 and bool(session_dates(rows).notna().all())


def x_values(rows: pd.DataFrame, dates: bool) -> np.ndarray:
    """x of each row: ``datetime64[ns]`` (naive) when ``dates``, else the session index as float.

    Parameters
    ----------
    rows : DataFrame
        The rows to draw (``session_index``, and ``date`` when ``dates``).
    dates : bool
        Dates on the x axis (see :func:`use_dates`).

    Returns
    -------
    ndarray of datetime64[ns] or float64, shape (len(rows),)
    """
    if dates:
        d = session_dates(rows)
        if d.dt.tz is not None:
            d = d.dt.tz_localize(None)
        return d.to_numpy(dtype="datetime64[ns]")
    return pd.to_numeric(rows["session_index"], errors="coerce").to_numpy(dtype=float)


def baseline(rows: pd.DataFrame) -> tuple[float, float]:
    """Baseline value and the MDC around it (the first session's; any finite MDC when it has none).

    Parameters
    ----------
    rows : DataFrame
        One subject's rows of one metric and region (``session_index``, ``value``, optional ``mdc``).

    Returns
    -------
    value, mdc : float
        The value at the lowest ``session_index``, and its MDC (else the first finite MDC of
        ``rows``); in the metric's unit, NaN when unknown.
    """
    if rows.empty:
        return math.nan, math.nan
    values, mdc = floats(rows, "value"), floats(rows, "mdc")
    idx = pd.to_numeric(rows["session_index"], errors="coerce").to_numpy(dtype=float)
    first = np.flatnonzero(idx == np.nanmin(idx)) if np.isfinite(idx).any() else np.array([0])
    base = float(values[first[0]])
    m = float(mdc[first[0]])
    if not np.isfinite(m):
        finite = mdc[np.isfinite(mdc)]
        m = float(finite[0]) if finite.size else math.nan
    return base, m


def to_datetime64(d) -> np.datetime64 | None:
    """A date-like as naive ``datetime64[ns]``; None when it is not one.

    Parameters
    ----------
    d : object
        A date, datetime, Timestamp or ISO text; a time zone is dropped (the wall time is kept).

    Returns
    -------
    numpy.datetime64 or None

    Examples
    --------
    >>> str(to_datetime64("2024-03-01")), to_datetime64("not a date")
    ('2024-03-01T00:00:00.000000000', None)
    """
    try:
        t = pd.Timestamp(d)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    return np.datetime64(t.tz_localize(None) if t.tzinfo else t, "ns")


def date_text(d) -> str:
    """A date as ``YYYY-MM-DD`` ("unknown date" for a missing one); anything else as text.

    Parameters
    ----------
    d : date, datetime, Timestamp, numpy.datetime64 or object
        NaT counts as missing.

    Returns
    -------
    str

    Examples
    --------
    >>> from datetime import datetime
    >>> date_text(datetime(2024, 3, 1, 10, 30)), date_text(pd.NaT)
    ('2024-03-01', 'unknown date')
    """
    if isinstance(d, (date, datetime, pd.Timestamp, np.datetime64)):
        t = pd.Timestamp(d)
        return "unknown date" if pd.isna(t) else t.strftime("%Y-%m-%d")
    return str(d)


def recovery_hours_for(recovery_hours: Mapping | None, *, subject, treatment_date, region, metric) -> float:
    """Look up a time to recovery keyed by ``(region, metric)`` or ``(subject, treatment_date, region, metric)``.

    Parameters
    ----------
    recovery_hours : mapping or None
        Hours to recovery by either key; the four-part key is tried first.
    subject, treatment_date, region, metric : object
        The parts of the key, as the mapping spells them.

    Returns
    -------
    float
        Hours; NaN when neither key is present or its value is None.
    """
    if not recovery_hours:
        return math.nan
    for key in ((subject, treatment_date, region, metric), (region, metric)):
        if key in recovery_hours:
            v = recovery_hours[key]
            return float(v) if v is not None else math.nan
    return math.nan


# --------------------------------------------------------------------------------------------- images

def check_image(name, a, shape=None) -> np.ndarray:
    """``a`` as an (H, W, 3) uint8 array, of ``shape`` (H, W) when given; ValueError / TypeError otherwise.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    a : array_like
        The image to check.
    shape : tuple of int, optional
        Required (H, W), px.

    Returns
    -------
    ndarray (H, W, 3) uint8
    """
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8, got {a.dtype}")
    if shape is not None and a.shape[:2] != shape:
        raise ValueError(f"{name} has shape {a.shape[:2]}, expected {shape} like baseline_rgb")
    return a


def check_before_after(baseline_rgb, latest_rgb, valid=None, heatmaps: Mapping | None = None):
    """Validate the before/after arrays; return ``(base, latest, valid, [(name, map, unit), ...])``.

    ``heatmaps`` entries are ``(array, unit)`` pairs or bare arrays (unit ''); every array must
    have the photos' (H, W) shape.

    Parameters
    ----------
    baseline_rgb, latest_rgb : ndarray (H, W, 3) uint8
        The two photos, aligned to each other.
    valid : ndarray (H, W) bool, optional
        Skin measured in both photos (default: everywhere).
    heatmaps : mapping of str to ndarray (H, W) or (ndarray, str), optional
        Change maps by name, with their units.

    Returns
    -------
    tuple
        ``(base, latest, valid, maps)``: the photos as uint8 arrays, ``valid`` as bool and
        ``maps`` as a list of ``(name, float array, unit)``.
    """
    base = check_image("baseline_rgb", baseline_rgb)
    latest = check_image("latest_rgb", latest_rgb, base.shape[:2])
    h, w = base.shape[:2]
    valid = np.ones((h, w), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != (h, w):
        raise ValueError(f"valid has shape {valid.shape}, expected {(h, w)}")
    maps = []
    for name, entry in (heatmaps or {}).items():
        arr, unit = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, "")
        arr = np.asarray(arr, dtype=float)
        if arr.shape != (h, w):
            raise ValueError(f"heatmap {name!r} has shape {arr.shape}, expected {(h, w)}")
        maps.append((str(name), arr, str(unit)))
    return base, latest, valid, maps


def symmetric_limit(m: np.ndarray) -> float:
    """Colour limit for a change map: the 99th percentile of |change| (a few outliers do not wash it out).

    Parameters
    ----------
    m : ndarray
        Change map; non-finite values are ignored.

    Returns
    -------
    float
        Positive, in the map's unit: the largest |change| when the percentile is 0, and 1.0 when
        nothing is finite or non-zero.
    """
    finite = np.abs(m[np.isfinite(m)])
    if finite.size == 0:
        return 1.0
    lim = float(np.percentile(finite, 99))
    return lim if lim > 0 else (float(finite.max()) or 1.0)


def dim_outside(img: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The photo faded towards white outside ``valid`` (skin not measured in both photos).

    Parameters
    ----------
    img : ndarray (H, W, 3) uint8
    valid : ndarray (H, W) bool

    Returns
    -------
    ndarray (H, W, 3) uint8
        ``img`` itself when everything is valid, else a copy with 65% white mixed in outside.
    """
    if valid.all():
        return img
    out = img.astype(np.float32)
    out[~valid] = 0.35 * out[~valid] + 0.65 * 255.0
    return out.astype(np.uint8)


#: ColorBrewer's RdBu, reversed (matplotlib's ``RdBu_r``): blue for lower than at baseline, red for higher.
DIVERGING = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d",
             "#b2182b", "#67001f")


def _anchors() -> np.ndarray:
    return np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in DIVERGING], dtype=np.float32)


def diverging_rgb(t: np.ndarray) -> np.ndarray:
    """Colours of ``t`` in [0, 1] (0.5: no change) on :data:`DIVERGING`, as float32 RGB in [0, 255].

    Parameters
    ----------
    t : array_like
        Positions on the scale; clipped to [0, 1].

    Returns
    -------
    ndarray of float32, shape ``t.shape + (3,)``
    """
    t = np.clip(np.asarray(t, dtype=np.float32), 0.0, 1.0)
    pos = np.linspace(0.0, 1.0, len(DIVERGING), dtype=np.float32)
    anchors = _anchors()
    return np.stack([np.interp(t, pos, anchors[:, k]) for k in range(3)], axis=-1).astype(np.float32)


def diverging_hex(n: int) -> list[str]:
    """``n`` colours evenly along :data:`DIVERGING` (for a colour bar), low to high.

    Parameters
    ----------
    n : int
        How many colours; each is taken at the middle of its equal share of [0, 1].

    Returns
    -------
    list of str
        ``#rrggbb`` colours.

    Examples
    --------
    >>> diverging_hex(3)
    ['#3884bb', '#f7f7f7', '#ca4842']
    """
    rgb = np.rint(diverging_rgb((np.arange(n) + 0.5) / n)).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]


def change_map_rgb(baseline_rgb: np.ndarray, change: np.ndarray, valid: np.ndarray, limit: float) -> np.ndarray:
    """A change map as an RGB image: the change on :data:`DIVERGING` over a pale grey copy of the baseline.

    Parameters
    ----------
    baseline_rgb : ndarray (H, W, 3) uint8
    change : ndarray (H, W) float
        Latest minus baseline; NaN where not measured.
    valid : ndarray (H, W) bool
        Skin measured in both photos; the change is drawn only there.
    limit : float
        The change drawn at full colour (−limit blue, +limit red, 0 white).

    Returns
    -------
    ndarray (H, W, 3) uint8
        Outside ``valid`` or where the change is NaN: the baseline in grey, lightened so that the
        coloured skin stands out (matplotlib's grey at ``vmin=-0.3, vmax=1.6``, as before).
    """
    grey = baseline_rgb.astype(np.float32).mean(axis=2) / 255.0
    out = np.repeat(((grey + 0.3) / 1.9 * 255.0)[..., None], 3, axis=2)
    shown = valid & np.isfinite(change)
    t = 0.5 + 0.5 * np.asarray(change, dtype=np.float32)[shown] / np.float32(limit)
    out[shown] = diverging_rgb(t)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
