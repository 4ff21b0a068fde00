"""Change, MDC and recovery on tables built by the test, with known answers."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from skinscan.series import recovery_curve, recovery_time_hours, split_recovery, summarise


def _tables(values_by_session, *, metric="a_star", region="face", dates=None, times=None, excluded=(), se=np.nan):
    """values_by_session: list of lists (photo values per session); ``se`` each photo's own standard error."""
    vrows, prows = [], []
    for i, vals in enumerate(values_by_session):
        session = f"s{i}"
        d = pd.Timestamp(dates[i]) if dates else pd.Timestamp("2026-01-01") + pd.Timedelta(days=35 * i)
        for j, v in enumerate(vals):
            photo = f"{session}/p{j}.jpg"
            vrows.append(("me", session, i, d, photo, region, metric, v, "CIELAB a*", se))
            t = times[i][j] if times else (d + pd.Timedelta(hours=10, minutes=j)).isoformat()
            prows.append(("me", session, i, d, photo, "analysed", "", "", "excl" if (i, j) in excluded else "", t))
    values = pd.DataFrame(vrows, columns=["subject", "session", "session_index", "date", "photo", "region", "metric",
                                          "value", "unit", "se"])
    photos = pd.DataFrame(prows, columns=["subject", "session", "session_index", "date", "photo", "status", "error",
                                          "quality_flags", "excluded_by", "capture_time"])
    return values, photos


def test_mdc_from_within_session_repeats_and_labels():
    # Pairs of photos per session: within-session SDs 0.1, 0.3, 0.2 -> pooled s_w = sqrt(mean var).
    values, photos = _tables([[10.0, 10.1414213562], [9.0, 9.4242640687], [10.9, 11.1828427125]])
    s = summarise(values, photos).set_index("session")
    s_w = np.sqrt(np.mean([0.1 ** 2, 0.3 ** 2, 0.2 ** 2]))
    mdc = 1.959964 * s_w * np.sqrt(1 / 2 + 1 / 2)
    assert s.loc["s1", "mdc"] == pytest.approx(mdc, rel=1e-6)
    assert s.loc["s0", "value"] == pytest.approx(10.0707106781)  # median of two = mean
    assert s.loc["s1", "change_abs"] == pytest.approx(9.2121320343 - 10.0707106781)
    assert s.loc["s0", "label"] == "baseline"
    assert s.loc["s1", "label"] == "improved"  # a* fell by 0.86 > MDC 0.58
    assert s.loc["s2", "label"] == "worse"  # rose by 0.97
    assert (s["mdc_source"] == "repeats").all()


def test_single_photos_fall_back_to_their_own_uncertainty():
    values, photos = _tables([[10.0], [9.9], [9.0]], se=0.2)
    s = summarise(values, photos).set_index("session")
    mdc = 1.959964 * np.sqrt(0.2 ** 2 + 0.2 ** 2)
    assert s.loc["s1", "mdc"] == pytest.approx(mdc) and s.loc["s1", "mdc_source"] == "photo uncertainty"
    assert s.loc["s1", "label"] == "no detectable change"  # 0.1 < 0.55
    assert s.loc["s2", "label"] == "improved"
    # Repeats, where there are any, come first: the photo's own uncertainty is the fallback.
    values, photos = _tables([[10.0, 10.1414213562], [9.0]], se=5.0)
    assert (summarise(values, photos)["mdc_source"] == "repeats").all()


def test_without_repeats_or_photo_uncertainty_a_change_is_not_determinable():
    """No constant from another face stands in for a subject's own noise."""
    values, photos = _tables([[10.0], [9.9], [3.0]])
    s = summarise(values, photos).set_index("session")
    assert s["mdc"].isna().all() and (s["mdc_source"] == "not determinable").all()
    assert s.loc["s0", "label"] == "baseline"
    assert s.loc["s1", "label"] == "not determinable" and s.loc["s2", "label"] == "not determinable"
    assert s.loc["s2", "change_abs"] == pytest.approx(-7.0)  # the change itself is still reported


def test_excluded_photos_leave_the_trend():
    values, photos = _tables([[10.0, 10.2], [8.0, 30.0]], excluded={(1, 1)})
    s = summarise(values, photos).set_index("session")
    assert s.loc["s1", "value"] == 8.0 and s.loc["s1", "n_photos"] == 1 and s.loc["s1", "n_excluded"] == 1
    with_flagged = summarise(values, photos, include_flagged=True).set_index("session")
    assert with_flagged.loc["s1", "value"] == pytest.approx(19.0)


def test_ita_is_a_descriptor():
    values, photos = _tables([[40.0, 40.2], [35.0, 35.2]], metric="ita_deg")
    s = summarise(values, photos).set_index("session")
    assert s.loc["s1", "label"] == "changed" and not s.loc["s1", "higher_is_worse"]


def test_recovery_sessions_and_time_to_recovery():
    d0 = date(2026, 1, 5)
    dates = ["2026-01-05", "2026-01-06", "2026-01-08", "2026-02-09"]
    times = [["2026-01-05T10:00:00", "2026-01-05T10:01:00"], ["2026-01-06T10:00:00"], ["2026-01-08T10:00:00"],
             ["2026-02-09T10:00:00", "2026-02-09T10:01:00"]]
    # Pre-treatment a* 10 (two photos 9.9, 10.1: s_w 0.14); +6 at 24 h, +0.1 at 72 h.
    values, photos = _tables([[9.9, 10.1], [16.0], [10.1], [9.0, 9.2]], dates=dates, times=times)
    treatments = {"me": [d0, date(2026, 2, 9)]}
    series, recovery = split_recovery(photos, treatments)
    assert recovery == {("me", "s1"), ("me", "s2")} and ("me", "s3") in series
    s = summarise(values, photos, treatments=treatments)
    assert set(s["session"]) == {"s0", "s3"}  # recovery photos are not sessions of the trend
    curve = recovery_curve(values, photos, treatments)
    assert list(curve["hours_after"]) == pytest.approx([23.9833333, 71.9833333])
    assert (curve["pre_value"] == 10.0).all()
    mdc = curve["mdc"].iloc[0]
    assert mdc == pytest.approx(1.959964 * np.std([9.9, 10.1], ddof=1) * np.sqrt(1.5))
    hours = recovery_time_hours(curve)[("me", d0, "face", "a_star")]
    # Linear between (24 h, excess 6 - mdc) and (72 h, excess 0.1 - mdc).
    e0, e1 = 6.0 - mdc, 0.1 - mdc
    assert hours == pytest.approx(23.9833333 + 48 * e0 / (e0 - e1), rel=1e-6)
