"""Normalising a photo's light on references that are not skin, and knowing how far to trust it.

Absolute colour (CIELAB a*, the erythema index, ITA°) needs the photo's white balance and exposure
undone; skinscan never judges light on the skin it measures. The room has three parts, in the order
a photo meets them:

- :mod:`~skinscan.light.chart`: a ColorChecker in the frame, found and its neutral patches read
  (:func:`detect_colorchecker`);
- :mod:`~skinscan.light.references`: every reference read in linear light, the chart's white, the
  whites of the eyes (sclera) and the photo's background, each with the parts its uncertainty
  comes from (:func:`light_reference`, :class:`LightReference`);
- :mod:`~skinscan.light.choice`: the gains of the first reference trustworthy enough for this
  photo's skin, and the standard errors they leave on the absolute colour (:func:`choose_light`).

The quality checks (:mod:`skinscan.quality`) read these references to compare a photo's light with
its series' reference photo; the metrics receive only the gains.
"""

from .chart import ColorChecker, detect_colorchecker
from .choice import (
           ABSOLUTE_COLOUR,
           ESTIMATE_SPREAD_95,
           MAX_A_STAR_SE,
           UNKNOWN_EXPOSURE_EV,
           LightChoice,
           choose_light,
           colour_se,
           reference_uncertainty,
)
from .references import (
           SCLERA_TARGET,
           LightReference,
           light_reference,
           sclera_mask,
           sclera_masks,
)

__all__ = ["ABSOLUTE_COLOUR", "ESTIMATE_SPREAD_95", "MAX_A_STAR_SE", "SCLERA_TARGET", "UNKNOWN_EXPOSURE_EV",
           "ColorChecker", "LightChoice", "LightReference", "choose_light", "colour_se", "detect_colorchecker", "light_reference",
           "reference_uncertainty", "sclera_mask", "sclera_masks"]
