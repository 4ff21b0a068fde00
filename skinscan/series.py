"""A subject's treatment series: session values, change from baseline, minimal detectable change, and recovery after a treatment.

Input are the store's tidy tables (``ResultStore.values_frame()`` and ``photos_frame()``), so a
notebook can call these functions on any exported results too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from .discover import UNDATED_SESSION
from .metrics import METRIC_UNITS, METRICS

__all__ = [
    "MDC_SOURCES",
    "RECOVERY_WINDOW_DAYS",
    "included_values",
    "split_recovery",
    "summarise",
    "recovery_curve",
    "recovery_time_hours",
]

#: Where a minimal detectable change comes from, best first: the spread of repeated photos within
#: the subject's sessions; each photo's own standard error (counts, the light reference); neither.
MDC_SOURCES = ("repeats", "photo uncertainty", "not determinable")
#: Photos up to this many days after a treatment (and not on a treatment day) belong to its recovery.
RECOVERY_WINDOW_DAYS = 14
#: 1.96 for a two-sided 95% interval.
_Z95 = 1.959964


def included_values(values: pd.DataFrame, photos: pd.DataFrame, *, include_flagged: bool = False) -> pd.DataFrame:
    """The values of analysed photos on a timeline: without undated photos (session
    ``(undated)``), nor those a blocking quality check excluded (unless asked).

    Parameters
    ----------
    values : DataFrame
        ``ResultStore.values_frame()`` (at least subject, session, photo).
    photos : DataFrame
        ``ResultStore.photos_frame()`` (subject, session, photo, status, and excluded_by when any
        photo was analysed).
    include_flagged : bool
        Keep photos that failed a blocking quality check.

    Returns
    -------
    DataFrame
        The kept rows of ``values``, in their order.
    """
    ok = photos[(photos["status"] == "analysed") & (photos["session"] != UNDATED_SESSION)]
    if not include_flagged:
        ok = ok[_excluded_by(ok) == ""]
    keep = set(zip(ok["subject"], ok["session"], ok["photo"]))
    mask = [k in keep for k in zip(values["subject"], values["session"], values["photo"])]
    return values[np.asarray(mask, dtype=bool)]


def _flags(column: pd.Series) -> pd.Series:
    """A ';'-joined flag column as text, '' where empty (CSV readers turn an all-empty column into NaN floats)."""
    return column.astype(object).where(column.notna(), "").astype(str)


def _excluded_by(photos: pd.DataFrame) -> pd.Series:
    """The photos' failed blocking checks as text; '' for all when no photo was analysed (the
    column comes from analysed photos' records only)."""
    if "excluded_by" not in photos:
        return pd.Series("", index=photos.index, dtype=object)
    return _flags(photos["excluded_by"])


def _session_dates(photos: pd.DataFrame) -> pd.DataFrame:
    cols = ["subject", "session", "session_index", "date"]
    return photos[cols].drop_duplicates(["subject", "session"])


def split_recovery(photos: pd.DataFrame, treatments: dict[str, list[date]], *,
                   window_days: int = RECOVERY_WINDOW_DAYS) -> tuple[set, set]:
    """Split sessions into treatment-series sessions and recovery sessions.

    A session dated 1 to ``window_days`` days after one of its subject's treatment days, and not
    itself a treatment day, is a recovery session: its photos show the redness of healing, not
    progress, so it is charted as recovery and left out of the trend.

    Parameters
    ----------
    photos : DataFrame
        ``ResultStore.photos_frame()`` (subject, session, session_index, date).
    treatments : dict of subject to list of date
        Treatment days per subject.
    window_days : int
        Length of the recovery window, days.

    Returns
    -------
    series_sessions, recovery_sessions : set of (subject, session)
    """
    series, recovery = set(), set()
    for row in _session_dates(photos).itertuples(index=False):
        days = treatments.get(row.subject, [])
        d = pd.Timestamp(row.date).date() if pd.notna(row.date) else None
        is_recovery = d is not None and d not in days and any(
            timedelta(days=1) <= d - t <= timedelta(days=window_days) for t in days)
        (recovery if is_recovery else series).add((row.subject, row.session))
    return series, recovery


def summarise(values: pd.DataFrame, photos: pd.DataFrame, *, treatments: dict[str, list[date]] | None = None,
              include_flagged: bool = False) -> pd.DataFrame:
    """Session values and their change from baseline, labelled against the minimal detectable change.

    Each session's value is the median over its photos. The minimal detectable change (MDC, 95%)
    between the baseline (n0 photos) and a session (n photos) comes, in this order, from:

    1. ``repeats``: the within-subject SD ``s_w`` of the metric, pooled over the subject's sessions
       with two or more photos: ``MDC95 = 1.96 * s_w * sqrt(1/n0 + 1/n)``;
    2. ``photo uncertainty``: each photo's own standard error (the ``se`` column: the Poisson
       error of a count, the light reference's uncertainty; :mod:`skinscan.uncertainty`), a
       session's being ``sqrt(mean(se^2) / n)``: ``MDC95 = 1.96 * sqrt(se0^2 + se^2)``;
    3. ``not determinable``: no repeats and no photo uncertainty (a relative colour metric or the
       texture from one photo per session): no MDC, and the change is labelled so.

    No constant from another face stands in: a change that cannot be told from noise is not
    called a change. A change larger than the MDC is ``improved`` or ``worse`` by the metric's
    direction (a descriptor, ITA° or the pore diameter, is ``changed``); otherwise ``no detectable change``.
    Take two or three photos per session: the MDC is then the subject's own.

    Parameters
    ----------
    values, photos : DataFrame
        ``ResultStore.values_frame()`` and ``photos_frame()`` (columns: subject, session,
        session_index, date, photo, region, metric, value, unit / status, excluded_by).
    treatments : dict of subject to list of date, optional
        Treatment days (``sessions.csv``): sessions in the recovery window after one are left out.
    include_flagged : bool
        Keep photos that failed a blocking quality check.

    Returns
    -------
    DataFrame
        One row per (subject, session, region, metric): subject, session, session_index, date,
        region, metric, unit, value, spread, se, n_photos, n_excluded, change_abs, change_pct, mdc,
        mdc_source (one of :data:`MDC_SOURCES`), label, higher_is_worse.

    References
    ----------
    .. [1] Weir J. P. (2005) Quantifying test-retest reliability using the intraclass correlation
       coefficient and the SEM. J Strength Cond Res 19(1):231–240 (MDC = 1.96 sqrt 2 SEM).
    """
    treatments = treatments or {}
    series_sessions, _ = split_recovery(photos, treatments)
    kept = included_values(values, photos, include_flagged=include_flagged)
    kept = kept[[(s, x) in series_sessions for s, x in zip(kept["subject"], kept["session"])]]
    analysed = photos[photos["status"] == "analysed"]
    excluded = analysed[_excluded_by(analysed) != ""] if not include_flagged else analysed.iloc[:0]
    n_excl = excluded.groupby(["subject", "session"]).size().to_dict()
    columns = ["subject", "session", "session_index", "date", "region", "metric", "unit", "value", "spread", "se",
               "n_photos", "n_excluded", "change_abs", "change_pct", "mdc", "mdc_source", "label", "higher_is_worse"]
    if kept.empty:
        return pd.DataFrame(columns=columns)
    keys = ["subject", "session", "session_index", "date", "region", "metric"]
    kept = kept.assign(se2=_photo_se(kept) ** 2)
    g = kept.groupby(keys, dropna=False)["value"]
    out = g.median().rename("value").to_frame()
    out["spread"] = g.std(ddof=1)
    out["n_photos"] = g.count()
    # A session's own standard error, from its photos' (those with a value and an se).
    se2 = kept["se2"].where(kept["value"].notna())
    out["se"] = np.sqrt(se2.groupby([kept[k] for k in keys], dropna=False).mean() / out["n_photos"])
    out = out.reset_index()
    # Number the treatment sessions 0, 1, 2... (discovery's index also counts recovery folders).
    out["session_index"] = out.groupby("subject")["session_index"].rank(method="dense").astype(int) - 1
    out["unit"] = out["metric"].map(METRIC_UNITS).fillna("")
    out["n_excluded"] = [n_excl.get((s, x), 0) for s, x in zip(out["subject"], out["session"])]
    # Pooled within-session SD per subject, region and metric, over sessions with repeats.
    reps = out[out["n_photos"] >= 2].assign(var=lambda d: d["spread"] ** 2)
    pooled = reps.groupby(["subject", "region", "metric"])["var"].mean().pow(0.5)
    out = out.sort_values(["subject", "region", "metric", "session_index"]).reset_index(drop=True)
    first = out.groupby(["subject", "region", "metric"])["session_index"].transform("min")
    base = out[out["session_index"] == first].set_index(["subject", "region", "metric"])
    idx = list(zip(out["subject"], out["region"], out["metric"]))
    base_value = np.array([base["value"].get(k, np.nan) for k in idx])
    base_n = np.array([base["n_photos"].get(k, 1) for k in idx], dtype=float)
    base_se = np.array([base["se"].get(k, np.nan) for k in idx])
    s_w = np.array([pooled.get(k, np.nan) for k in idx])
    out["change_abs"] = out["value"] - base_value
    with np.errstate(divide="ignore", invalid="ignore"):
        out["change_pct"] = 100.0 * out["change_abs"] / np.abs(base_value)
    # A session whose photos gave no finite value (n = 0) has no MDC: NaN, not an inf and a warning.
    n = out["n_photos"].to_numpy(dtype=float)
    inv_n = np.divide(1.0, n, out=np.full_like(n, np.nan), where=n > 0)
    inv_base = np.divide(1.0, base_n, out=np.full_like(base_n, np.nan), where=base_n > 0)
    from_repeats = _Z95 * s_w * np.sqrt(inv_base + inv_n)
    from_photos = _Z95 * np.sqrt(base_se ** 2 + out["se"].to_numpy(dtype=float) ** 2)
    repeats = np.isfinite(s_w) & (s_w > 0) & np.isfinite(from_repeats)
    photo = ~repeats & np.isfinite(from_photos) & (from_photos > 0)
    out["mdc"] = np.where(repeats, from_repeats, np.where(photo, from_photos, np.nan))
    out["mdc_source"] = np.where(repeats, MDC_SOURCES[0], np.where(photo, MDC_SOURCES[1], MDC_SOURCES[2]))
    out["higher_is_worse"] = out["metric"].map({m.key: m.higher_is_worse for m in METRICS}).fillna(True).astype(bool)
    out["label"] = _labels(out, first)
    return out[columns]


def _labels(out: pd.DataFrame, first: pd.Series) -> np.ndarray:
    change, mdc = out["change_abs"].to_numpy(), out["mdc"].to_numpy()
    detectable = np.abs(change) > mdc
    label = np.where(~detectable, "no detectable change", np.where(change > 0, "worse", "improved"))
    label = np.where(np.isfinite(change) & ~np.isfinite(mdc), "not determinable", label)
    label = np.where(~np.isfinite(change), "no value", label)  # the session (or the baseline) measured nothing
    # A metric that is not higher-is-worse is a descriptor (the registry's Metric.higher_is_worse):
    # no direction is better, so a change it can see is only a change.
    label = np.where(~out["higher_is_worse"].to_numpy() & detectable, "changed", label)
    return np.where(out["session_index"].to_numpy() == first.to_numpy(), "baseline", label)


def recovery_curve(values: pd.DataFrame, photos: pd.DataFrame, treatments: dict[str, list[date]], *,
                   metrics=("a_star", "erythema_index"), include_flagged: bool = False) -> pd.DataFrame:
    """Redness over the hours after each treatment, against its pre-treatment level.

    The pre-treatment level is the median of the photos of the session on the treatment day (taken
    before the procedure); every photo of a recovery session after it is one point, at its capture
    time (hours after the treatment-day photos, or after noon when they have none). Its MDC comes
    from the spread of the treatment-day photos when there are two or more, else from the photos'
    own standard errors (see :func:`summarise`); NaN otherwise, and then no time to recovery is given.

    Parameters
    ----------
    values, photos : DataFrame
        ``ResultStore.values_frame()`` and ``photos_frame()``, as for :func:`summarise` (capture_time
        in ``photos`` gives the photos' hours).
    treatments : dict of subject to list of date
        Treatment days per subject; a treatment day without photos gives no curve.
    metrics : tuple of str
        The metric keys to follow.
    include_flagged : bool
        Keep photos that failed a blocking quality check.

    Returns
    -------
    DataFrame
        subject, treatment_date, hours_after, session, photo, region, metric, value, pre_value, mdc;
        one row per recovery photo within :data:`RECOVERY_WINDOW_DAYS` of the treatment, sorted by
        subject, treatment_date, metric, region, hours_after.
    """
    _, recovery = split_recovery(photos, treatments)
    vals = included_values(values, photos, include_flagged=include_flagged)
    vals = vals[vals["metric"].isin(metrics)]
    cols = ["subject", "treatment_date", "hours_after", "session", "photo", "region", "metric", "value",
            "pre_value", "mdc"]
    rows = []
    times = _capture_times(photos)
    for subject, days in treatments.items():
        sv = vals[vals["subject"] == subject]
        dates = pd.to_datetime(sv["date"]).dt.date
        for t in sorted(days):
            pre = sv[dates == t]
            if pre.empty:
                continue
            pre_times = [times.get(p) for p in pre["photo"].unique() if times.get(p) is not None]
            t0 = max(pre_times) if pre_times else datetime.combine(t, time(12))
            pre = pre.assign(se2=_photo_se(pre) ** 2)
            pre_stats = pre.groupby(["region", "metric"]).agg(median=("value", "median"), std=("value", "std"),
                                                              count=("value", "count"), se2=("se2", "mean"))
            in_recovery = np.array([(subject, s) in recovery for s in sv["session"]], dtype=bool)
            after = sv[in_recovery & (dates > t).to_numpy() & (dates <= t + timedelta(days=RECOVERY_WINDOW_DAYS)).to_numpy()]
            for r in after.itertuples(index=False):
                ts = times.get(r.photo)
                if ts is None:
                    ts = datetime.combine(pd.Timestamp(r.date).date(), time(12))
                st = pre_stats.loc[(r.region, r.metric)] if (r.region, r.metric) in pre_stats.index else None
                if st is None:
                    continue
                if st["count"] >= 2 and np.isfinite(st["std"]) and st["std"] > 0:
                    mdc = _Z95 * st["std"] * np.sqrt(1 + 1 / st["count"])
                else:  # the photos' own standard errors (NaN when they have none)
                    mdc = _Z95 * np.sqrt(st["se2"] / max(st["count"], 1) + _se_of(r) ** 2)
                rows.append((subject, t, (ts - t0).total_seconds() / 3600.0, r.session, r.photo, r.region,
                             r.metric, r.value, st["median"], mdc))
    return pd.DataFrame(rows, columns=cols).sort_values(["subject", "treatment_date", "metric", "region",
                                                         "hours_after"]).reset_index(drop=True)


def _photo_se(values: pd.DataFrame) -> pd.Series:
    """The photos' own standard errors (``se``; NaN in tables written before skinscan kept them)."""
    if "se" not in values:
        return pd.Series(np.nan, index=values.index, dtype=float)
    return values["se"].astype(float)


def _se_of(row) -> float:
    se = getattr(row, "se", np.nan)
    return float(se) if se is not None and np.isfinite(se) else np.nan


def _capture_times(photos: pd.DataFrame) -> dict[str, datetime]:
    if "capture_time" not in photos:
        return {}
    out = {}
    for p, t in zip(photos["photo"], photos["capture_time"]):
        if isinstance(t, str) and t:
            try:
                out[p] = datetime.fromisoformat(t).replace(tzinfo=None)
            except ValueError:
                continue
        elif isinstance(t, (datetime, pd.Timestamp)) and pd.notna(t):
            out[p] = pd.Timestamp(t).to_pydatetime().replace(tzinfo=None)
    return out


def recovery_time_hours(curve: pd.DataFrame) -> dict[tuple, float]:
    """Hours until redness is back within the MDC of its pre-treatment level, per (subject, treatment, region, metric).

    Linear interpolation between the last point above and the first within the band; NaN when
    no photo is within it; the first photo's time (an upper bound) when it already is. A point
    is within the band when ``value <= pre_value + mdc`` (photos taken at the same hour count as
    their median).

    Parameters
    ----------
    curve : DataFrame
        :func:`recovery_curve` output.

    Returns
    -------
    dict of tuple to float
        Hours after the treatment, keyed by (subject, treatment_date, region, metric).
    """
    out = {}
    for key, g in curve.groupby(["subject", "treatment_date", "region", "metric"]):
        g = g.groupby("hours_after", as_index=False)[["value", "pre_value", "mdc"]].median()
        excess = (g["value"] - g["pre_value"] - g["mdc"]).to_numpy()
        h = g["hours_after"].to_numpy()
        within = np.flatnonzero(excess <= 0)
        if within.size == 0:
            out[key] = float("nan")
        elif within[0] == 0:
            out[key] = float(h[0])
        else:
            i = within[0]
            x0, x1, e0, e1 = h[i - 1], h[i], excess[i - 1], excess[i]
            out[key] = float(x0 + (x1 - x0) * e0 / (e0 - e1)) if e0 != e1 else float(x1)
    return out
