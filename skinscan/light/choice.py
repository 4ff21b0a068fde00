"""Which light reference a photo's colour is normalised on, and how far to trust it.

The references, best first: a ColorChecker in the frame, the whites of the eyes (the sclera), the
photo's background (its colour cast only). Each carries its own uncertainty
(:func:`reference_uncertainty`): how well the chart's neutrals fit, how far the two eyes' scleras
disagree (a squint's lashes and lid shadow, glare), how far the background's four sides disagree.
:func:`choose_light` takes the first reference whose uncertainty, carried through the colour
conversion of this photo's own skin (:func:`colour_se`), is not shown to move a* by more than
:data:`MAX_A_STAR_SE` (:data:`ESTIMATE_SPREAD_95`: how far an estimate of it strays);
where none does, the absolute colour metrics are not measured (NaN, with the reason) rather than
reported from a light nobody knows. The relative colour metrics (red area, spots, melanin index,
tone evenness) compare skin with skin in the same photo and are measured whatever the light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..color import rgb_to_lab, unmix_chromophores
from .references import SCLERA_TARGET, LightReference

__all__ = ["ABSOLUTE_COLOUR", "ESTIMATE_SPREAD_95", "MAX_A_STAR_SE", "UNKNOWN_EXPOSURE_EV", "LightChoice", "choose_light", "colour_se",
           "reference_uncertainty"]

#: A reference is trusted unless its own uncertainty is shown to move the skin's a* by more than this
#: (CIELAB units; see ESTIMATE_SPREAD_95): the protocol's target for the photo-to-photo SD of a* (0.5).
MAX_A_STAR_SE = 0.5
#: How far above the true uncertainty a reference's own estimate of it reads in 1 photo in 20: a
#: reference is passed over when its estimate exceeds MAX_A_STAR_SE times this, i.e. when it shows
#: at 95% that the true uncertainty exceeds MAX_A_STAR_SE. The sclera's estimate, half the two eyes'
#: disagreement, has one degree of freedom (|z| times the true value: over 1.96 times it in 5% of
#: photos); passed over at 0.5 itself, 3 of 16 photos of the sample face were left without absolute
#: colour (squints, estimates 0.58-0.68), though their scleras, used, read a* -0.53, -0.43, -0.53
#: where the 13 others read -0.4 on average. The chart's (its neutral patches) and the background's
#: (four sides and a fixed exposure term) rest on more and are taken as they are.
ESTIMATE_SPREAD_95 = {"chart": 1.0, "sclera": 1.96, "background": 1.0}
#: The metrics that need the light normalised (the others compare skin with skin in one photo).
ABSOLUTE_COLOUR = ("a_star", "erythema_index", "ita_deg")
#: The background sets the colour cast, not the exposure: the exposure is then unknown by this much
#: (an automatic exposure's usual spread between photos).
UNKNOWN_EXPOSURE_EV = 0.3
_MIN_PIXELS = {"sclera": 15, "background": 30}


@dataclass(frozen=True)
class LightChoice:
    """The light normalisation of one photo.

    Attributes
    ----------
    gains : ndarray, shape (3,)
        Linear per-channel gains (ones when no reference is trusted).
    source : str
        ``"chart"``, ``"sclera"``, ``"background"`` or ``"none"``.
    uncertainty : ndarray, shape (3,)
        Relative SDs of the exposure, the red/green and the blue/green balance the reference
        gives (NaN with no reference; see :func:`reference_uncertainty`).
    colour_se : dict
        Standard error of each of :data:`ABSOLUTE_COLOUR` that the uncertainty gives on this
        photo's skin (NaN with no reference).
    reason : str
        Why the references before ``source`` (all of them, for ``"none"``) were passed over.
    """

    gains: np.ndarray
    source: str
    uncertainty: np.ndarray
    colour_se: dict
    reason: str = ""

    @property
    def trusted(self) -> bool:
        return self.source != "none"


def reference_uncertainty(light: LightReference, source: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The gains one reference gives and their uncertainty, or None when it is not read.

    The uncertainty is three relative SDs: of the exposure (every channel alike), of the red-to-
    green and of the blue-to-green balance (a colour cast), from

    - chart: the RMS residual of its neutral patches after the gains (the chart's own fit);
    - sclera: half the disagreement between the two eyes' scleras (both must be read): the SE of
      the mean of two;
    - background: the SD of its four sides' colour casts over sqrt(4); the exposure, which it
      does not measure, is unknown by :data:`UNKNOWN_EXPOSURE_EV`.

    Parameters
    ----------
    light : LightReference
        The photo's references.
    source : str
        ``"chart"``, ``"sclera"`` or ``"background"``.

    Returns
    -------
    (gains, uncertainty) or None
        Linear per-channel gains, shape (3,), and the relative SDs (exposure, red/green,
        blue/green), shape (3,); None when the reference was not read well enough to use.
    """
    if source == "chart":
        chart = np.asarray(light.chart_rgb, dtype=np.float64)
        if light.chart_patches < 2 or not np.all(np.isfinite(chart)) or not np.all(chart > 0):
            return None
        r = np.nan_to_num(np.asarray(light.chart_residual, dtype=np.float64))
        return np.clip(1.0 / chart, 0.25, 4.0), np.array([r[1], np.hypot(r[0], r[1]), np.hypot(r[2], r[1])])
    if source == "sclera":
        eyes = np.asarray(light.sclera_eyes_rgb, dtype=np.float64)
        sclera = np.asarray(light.sclera_rgb, dtype=np.float64)
        if (light.eyes_closed or light.sclera_pixels < _MIN_PIXELS["sclera"] or eyes.shape != (2, 3)
                or not np.all(np.isfinite(eyes)) or not np.all(eyes > 0.02)):
            return None
        log_eyes = np.log(eyes)
        balance = log_eyes[:, [0, 2]] - log_eyes[:, [1]]
        u = np.abs(np.array([log_eyes[0, 1] - log_eyes[1, 1], *(balance[0] - balance[1])])) / 2
        return np.clip(SCLERA_TARGET / sclera, 0.25, 4.0), u
    if source == "background":
        sides = np.asarray([s for s in light.background_sides_rgb if np.all(np.isfinite(s))], dtype=np.float64)
        bg = np.asarray(light.background_rgb, dtype=np.float64)
        if (light.background_pixels < _MIN_PIXELS["background"] or len(sides) < 2 or not np.all(np.isfinite(bg))
                or not np.all(bg > 0.02) or not np.all(sides > 0.02)):
            return None
        balance = np.log(sides[:, [0, 2]] / sides[:, [1]])
        u_cast = balance.std(axis=0, ddof=1) / np.sqrt(len(sides))
        return np.clip(bg.mean() / bg, 0.5, 2.0), np.array([2.0 ** UNKNOWN_EXPOSURE_EV - 1.0, *u_cast])
    raise ValueError(f"unknown light reference {source!r}")


def colour_se(skin_lin: np.ndarray, gains: np.ndarray, uncertainty: np.ndarray) -> dict[str, float]:
    """Standard errors that a light reference's own uncertainty gives the absolute colour of a skin colour.

    Each of the three uncertainties moves the gains by its SD; the effects on a*, the erythema
    index and ITA° are added in quadrature (a first-order propagation).

    Parameters
    ----------
    skin_lin : array-like, shape (3,)
        The skin colour in linear RGB, before the gains.
    gains : array-like, shape (3,)
        The linear per-channel gains that normalise the light.
    uncertainty : array-like, shape (3,)
        Relative SDs of the gains' exposure, red/green and blue/green balance (NaN counts as 0).

    Returns
    -------
    dict of str to float
        ``a_star`` (CIELAB units), ``erythema_index`` (a.u.) and ``ita_deg`` (degrees).
    """
    skin = np.asarray(skin_lin, dtype=np.float64).reshape(3)
    gains, u = np.asarray(gains, dtype=np.float64), np.nan_to_num(np.asarray(uncertainty, dtype=np.float64))
    base = _colour(skin * gains)
    sq = dict.fromkeys(base, 0.0)
    for direction, amount in zip((np.ones(3), np.array([1.0, 0, 0]), np.array([0, 0, 1.0])), u):
        moved = _colour(skin * gains * (1.0 + amount * direction))
        for k in sq:
            sq[k] += (moved[k] - base[k]) ** 2
    return {k: float(np.sqrt(v)) for k, v in sq.items()}


def _colour(lin: np.ndarray) -> dict[str, float]:
    """a*, the erythema index (100 x haemoglobin density) and ITA° of one linear RGB colour."""
    px = np.clip(lin, 1e-4, 1.0).astype(np.float32).reshape(1, 1, 3)
    L, a, b = rgb_to_lab(px, linear=True).reshape(3)
    hb = float(unmix_chromophores(px).reshape(3)[0])
    ita = float(np.degrees(np.arctan2(L - 50.0, b)))
    return {"a_star": float(a), "erythema_index": 100.0 * hb, "ita_deg": ita}


def choose_light(light: LightReference, skin_lin: np.ndarray) -> LightChoice:
    """The first trustworthy reference of chart, sclera, background (see the module), for this skin colour.

    Parameters
    ----------
    light : LightReference
        The photo's references (:func:`skinscan.light.light_reference`).
    skin_lin : array-like, shape (3,)
        The photo's typical skin colour, linear RGB before any gains (e.g. the face's median).

    Returns
    -------
    LightChoice
        The gains (ones when no reference is trusted), their source and uncertainty, the standard
        errors they leave on the absolute colour, and why earlier references were passed over.
    """
    passed = []
    for source in ("chart", "sclera", "background"):
        found = reference_uncertainty(light, source)
        if found is None:
            passed.append(f"no {source}" if source != "sclera" or not light.eyes_closed else "eyes closed")
            continue
        gains, u = found
        se = colour_se(skin_lin, gains, u)
        if se["a_star"] <= MAX_A_STAR_SE * ESTIMATE_SPREAD_95[source]:
            return LightChoice(gains, source, u, se, "; ".join(passed))
        passed.append(f"{source} too uncertain (+-{se['a_star']:.2f} a*)")
    nan = dict.fromkeys(ABSOLUTE_COLOUR, float("nan"))
    return LightChoice(np.ones(3), "none", np.full(3, np.nan), nan,
                       "no trustworthy light reference (" + "; ".join(passed) + ")")
