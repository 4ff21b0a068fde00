"""The metric registry: every metric skinscan measures and every family that measures them, each declared once.

Everything that lists metrics reads these two tables: :func:`skinscan.metrics.compute_metrics`
(which families run, in which order, on what, and above which resolution), the series (units,
direction), the charts and the report (names, order, the key metrics), the store (the unit column,
through :data:`METRIC_UNITS`) and ``docs/metrics.md`` (its table is checked against them).

Adding a metric to a family is one line in :data:`METRICS` and the value in the family's function's
result; adding a family is one line in :data:`FAMILIES`, its metrics, and a module
``skinscan/metrics/<name>.py`` with its function.

A unit has one spelling, the stored one (``results.csv``'s ``unit`` column: ``per cm2``, ``deg``);
charts and the report show it through :func:`skinscan.chartdata.unit_text` (``per cm²``, ``°``).
A metric's noise is not declared here: it comes from each photo (:mod:`skinscan.uncertainty`) and
from a subject's repeated photos (:mod:`skinscan.series`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FAMILIES", "METRICS", "METRIC_UNITS", "Family", "Metric", "family", "metric"]


@dataclass(frozen=True)
class Metric:
    """One metric: what it is called, in what unit, and which way is worse.

    Attributes
    ----------
    key : str
        The name in results (``"pore_density"``).
    family : str
        The :class:`Family` that measures it.
    unit : str
        The unit as stored (``"per cm2"``; ``"a.u."`` for an index of skinscan's own).
    label : str
        The name a reader sees (``"Pore density"``).
    higher_is_worse : bool
        True when a higher value is worse skin; False for a descriptor, which no direction makes
        better (the skin-tone angle): its change is labelled "changed", not improved or worse.
    key_rank : int or None
        Place among the key metrics (1 first), those the report shows region by region; None for
        the others.
    interval_scale : bool
        True when zero is a point of the scale, not "none of it" (a* = 0 is neutral grey, an angle):
        a ratio of two values means nothing, so a change is given in the unit only.
    """

    key: str
    family: str
    unit: str
    label: str
    higher_is_worse: bool = True
    key_rank: int | None = None
    interval_scale: bool = False

    @property
    def floor_px_per_mm(self) -> float:
        """The resolution below which this metric is not measured (its family's floor), px/mm at the face."""
        return family(self.family).floor_px_per_mm


@dataclass(frozen=True)
class Family:
    """Metrics measured together by one function, at one working resolution, from one detection.

    Attributes
    ----------
    name : str
        The family, and its module ``skinscan.metrics.<name>``.
    function_name : str
        The module's function that measures the family: ``f(img, masks, *, mm_per_px, **needs)`` ->
        :class:`~skinscan.metrics.MetricResult`.
    floor_px_per_mm : float
        The coarsest resolution (px/mm at the face) at which the family reads what a finer photo
        reads (within 10%, its unit tolerance or twice its own standard error), measured on the real
        close-up of ``tests/data/porenet`` by :func:`skinscan.validation.floors.measure_floors`
        (``docs/validation.md``); the largest of its metrics' floors, as a family is measured
        together. Below it its metrics are NaN, with the reason in the notes. Scars are the
        exception: the close-up holds too few to measure on, and their floor puts the smallest
        scar (1 mm) across 2.5 px.
    excludes : tuple of str
        Maps of families run before it (``"scar_blobs"``, ``"lines"``, ``"spots"``) whose features
        it leaves out, passed to its function as ``exclude`` (a mask, or None when none was found).
    exclude_margin_mm : float
        How far around those features it also leaves out.
    """

    name: str
    function_name: str
    floor_px_per_mm: float
    excludes: tuple[str, ...] = ()
    exclude_margin_mm: float = 0.0

    @property
    def keys(self) -> tuple[str, ...]:
        """The family's metric keys, in display order."""
        return tuple(m.key for m in METRICS if m.family == self.name)

    @property
    def function(self) -> Callable:
        """The function that measures the family (imported when asked for: a family module may read this one)."""
        return getattr(importlib.import_module(f"{__package__}.{self.name}"), self.function_name)


#: Every metric, in display order (charts, tables, the report): redness, texture, pores, scars,
#: fine lines, pigmentation.
METRICS = (
    Metric("a_star", "redness", "CIELAB a*", "Redness a*", key_rank=1, interval_scale=True),
    Metric("erythema_index", "redness", "a.u.", "Erythema index", interval_scale=True),
    Metric("red_area_pct", "redness", "%", "Red area"),
    Metric("roughness", "texture", "a.u.", "Roughness", key_rank=3),
    Metric("pore_density", "pores", "per cm2", "Pore density", key_rank=2),
    Metric("pore_area_pct", "pores", "%", "Pore area"),
    # A descriptor: the phantom protocol grows every visible pore by 0.05 mm (the smallest growth
    # pore size is held to) and the detected mean diameter follows it (monotone, specific), but
    # through photo nuisances with squints and smiles its SD is 2-2.5 times too large at every
    # resolution up to 20 px/mm (detectable 1.9-2.4 SD, needed 3; docs/validation.md): no change of
    # it is called improved or worse.
    Metric("pore_diameter_mm", "pores", "mm", "Pore diameter", higher_is_worse=False),
    Metric("scar_density", "scars", "per cm2", "Scar density", key_rank=4),
    Metric("scar_area_pct", "scars", "%", "Scar area"),
    Metric("scar_severity", "scars", "a.u.", "Scar severity"),
    Metric("wrinkle_density", "wrinkles", "mm per cm2", "Fine-line density", key_rank=5),
    Metric("spot_density", "pigmentation", "per cm2", "Spot density", key_rank=6),
    Metric("spot_area_pct", "pigmentation", "%", "Spot area"),
    Metric("melanin_index", "pigmentation", "a.u.", "Melanin index"),
    Metric("ita_deg", "pigmentation", "deg", "Skin tone ITA", higher_is_worse=False, interval_scale=True),
    Metric("tone_evenness", "pigmentation", "a.u.", "Tone evenness"),
)

#: Every family, in the order they run: pigmentation and scars before pores (a pore-sized blob in a
#: brown spot or on a scar's shaded wall is part of that feature), texture last (it leaves out the
#: discrete features the others found; pores stay in, they are part of the texture a user sees).
FAMILIES = (
    Family("pigmentation", "pigmentation_metrics", 2.0),
    Family("scars", "scar_metrics", 2.5),
    Family("redness", "redness", 1.0),
    Family("pores", "pore_metrics", 8.0, excludes=("scar_blobs", "spots"), exclude_margin_mm=0.5),
    Family("wrinkles", "wrinkle_metrics", 4.9),
    # The margin covers the halo a thin feature leaves in the texture band (its coarse Gaussian is 1 mm wide).
    Family("texture", "roughness", 4.0, excludes=("scar_blobs", "lines", "spots"), exclude_margin_mm=1.0),
)

_BY_KEY = {m.key: m for m in METRICS}
_BY_NAME = {f.name: f for f in FAMILIES}

#: ``{metric key: stored unit}``, in display order (the store's and ``results.csv``'s unit column).
METRIC_UNITS = {m.key: m.unit for m in METRICS}


def metric(key: str) -> Metric:
    """The registry's :class:`Metric` of ``key``.

    Parameters
    ----------
    key : str
        A metric key, as stored (``"pore_density"``).

    Returns
    -------
    Metric

    Raises
    ------
    KeyError
        For a key the registry does not hold, naming the ones it does.

    Examples
    --------
    >>> metric("pore_density").unit, metric("pore_density").floor_px_per_mm
    ('per cm2', 8.0)
    """
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no metric {key!r}; the metrics are {', '.join(_BY_KEY)}") from None


def family(name: str) -> Family:
    """The registry's :class:`Family` called ``name``.

    Parameters
    ----------
    name : str
        A family name (``"texture"``).

    Returns
    -------
    Family

    Raises
    ------
    KeyError
        For a name the registry does not hold, naming the families it does.

    Examples
    --------
    >>> family("texture").keys
    ('roughness',)
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no metric family {name!r}; the families are {', '.join(_BY_NAME)}") from None
