"""The phantom protocol: inject known skin changes at four doses into real face photos under photo nuisances, and check every metric.

For each concern a change is injected inside its skin regions at four doses, each dosed face is
"photographed" under the same set of random nuisances (rotation, yaw, an expression, scale, shift,
exposure, white balance, JPEG, sensor noise), and every metric is measured on every photo by the
full pipeline (landmarks, millimetre scale, regions, light normalisation, metrics). Four
thresholds are checked per metric, on every face as it is and darkened to a deep skin tone:

1. monotonic: the mean response over the four doses has Spearman rho = 1 (in the metric's direction);
2. detectable: the smallest dose's mean response is >= 3x the metric's SD over nuisance-only photos;
3. specific: under every other concern's largest dose the metric moves < 30% of its response to
   its own largest dose (concerns of one family, pore count and pore size, are not each other's
   cross-talk);
4. all of the above on the deep-tone face (ITA < 10 deg).

Two kinds of metric are held to less: a descriptor with no dose of its own (ITA) must stay stable
(:data:`DESCRIPTOR_MAX_SD`), and a descriptor that is dosed (the pore diameter, which the tool
reports without change labels because this protocol finds it not detectable) must rise with its
dose (:data:`DOSED_DESCRIPTORS`). Photos that fail a blocking quality check are left out, as a
series leaves them out of its trends. The coefficient of variation over nuisance-only photos
(test-retest) is reported beside them.

The faces (:data:`FACES`) are skin full of pores, as real cheeks and noses are: the sample face
(the astronaut, upscaled, given the pores and relief measured on a real close-up, see
:data:`skinscan.validation.phantom.REAL_SKIN`) and that real close-up itself (its own pores; eyes closed, so
no sclera to normalise the light on: its absolute colour metrics, a*, erythema index and ITA, are
not measured, and the table says so). Pores are dosed as pores of that skin: more of them (the
count), or every visible pore grown (the size); both are read against the face as it is.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import phantom
from .._process import end_pool
from ..metrics.registry import METRICS

__all__ = ["CONCERNS", "FACES", "Concern", "Nuisance", "ValidationReport", "run_validation", "nuisance_draws",
           "build_masters", "photograph", "inject"]

#: The protocol's subjects: the sample face with real skin's pores drawn on it, and the real close-up.
FACES = ("sample", "closeup")
#: The sample face's resolution: the scale nuisance (0.8-1.25x) then keeps every photo at 10 px/mm or
#: more, over the pores' floor (8 px/mm) with room for the head turn's foreshortening.
SAMPLE_PX_PER_MM = 12.5


@dataclass(frozen=True)
class Concern:
    """One skin concern of the protocol: what is injected, where, at which doses, and which metrics answer."""

    name: str
    regions: tuple[str, ...]
    doses: tuple[float, float, float, float]
    unit: str
    # (metric key, expected direction of response: +1 or -1; 0 for a descriptor, see DESCRIPTOR_MAX_SD)
    metrics: tuple[tuple[str, int], ...]
    # Concerns of one family are one skin concern dosed two ways (pore count, pore size): not each
    # other's cross-talk.
    family: str = ""


# The pore doses are changes of skin that already has ~60 visible pores per cm^2 (the real close-up's
# 60.7; faces range 20-120). Count: more pores of the skin's own kind (its diameters, depths and
# colour, 0.45 mm clear of the pores there), +15 per cm^2 a step: a quarter of the skin's own, the
# size of the change in visible pore counts that treatments report (20-30%); the top dose doubles
# them, still within the range between faces. Size: every visible pore grown by 0.05 mm at the
# smallest dose, the smallest growth the project holds pore size to, in steps of 0.025 mm to
# 0.125 mm: 13-33% of the median pore (0.38 mm as labelled), where enlarged pores shrink by about
# 20-35% after resurfacing. Larger growth merges neighbours (pores 0.5 mm apart, grown past it).
CONCERNS = (
    Concern("redness", ("cheek_left", "cheek_right", "forehead", "chin"), (1.5, 3.0, 4.5, 6.0), "delta a*",
            (("a_star", 1), ("erythema_index", 1), ("red_area_pct", 1))),
    Concern("pores", ("cheek_left", "cheek_right", "nose"), (15.0, 30.0, 45.0, 60.0),
            "pores/cm2 like the skin's own", (("pore_density", 1), ("pore_area_pct", 1)), family="pores"),
    Concern("pore_size", ("cheek_left", "cheek_right", "nose"), (0.05, 0.075, 0.1, 0.125),
            "mm added to every visible pore's diameter", (("pore_diameter_mm", 1),), family="pores"),
    Concern("scars", ("cheek_left", "cheek_right"), (0.2, 0.4, 0.6, 0.8), "scars/cm2 of 1-3 mm",
            (("scar_density", 1), ("scar_area_pct", 1), ("scar_severity", 1))),
    Concern("lines", ("forehead", "periorbital_left", "periorbital_right"), (5.0, 10.0, 15.0, 20.0),
            "mm of line/cm2", (("wrinkle_density", 1),)),
    Concern("spots", ("cheek_left", "cheek_right"), (0.3, 0.6, 0.9, 1.2), "spots/cm2 of 1-3 mm",
            (("spot_density", 1), ("spot_area_pct", 1), ("melanin_index", 1), ("tone_evenness", 1),
             ("ita_deg", 0))),
    Concern("texture", ("cheek_left", "cheek_right", "forehead", "chin", "nose", "perioral"), (0.15, 0.3, 0.45, 0.6),
            "relative band-energy gain", (("roughness", 1),)),
)

#: ITA° describes the constitutive skin tone (it classifies the light and deep validation faces);
#: a few brown spots must not move it, so it is held to stability instead of a dose response: its
#: SD over nuisance-only photos must stay below this many degrees.
DESCRIPTOR_MAX_SD = {"ita_deg": 3.0}

#: Metrics dosed with a change of their own that the tool reports as descriptors (no change is
#: called improved or worse, see :data:`skinscan.metrics.registry.METRICS`) because this protocol
#: finds them not detectable: their rows must still rise with the dose; their detectability and
#: cross-talk are reported, as the evidence for that decision, not required.
DOSED_DESCRIPTORS = frozenset(m.key for m in METRICS if not m.higher_is_worse) - set(DESCRIPTOR_MAX_SD)

#: The texture dose's relief: undulations larger than pores (99% of the real close-up's labelled
#: pores are under 0.76 mm). The roughness metric's band (0.2-2 mm) reaches down to pore size, and
#: a dose of isotropic relief over all of it is made, at pore size, of round dips that are pores:
#: +60% band energy so added gave the (clean) sample face 86 more detected pores per cm^2 (1.4 times
#: its own 60), relief at 0.6-2 mm 3.1 and at 0.8-2 mm 0.9 (moving the pores' mean diameter by 0.015
#: and 0.008 mm). The energy gain is still measured in the metric's band.
TEXTURE_NOISE_BAND_MM = (0.8, 2.0)

#: Share of the nuisance draws with each expression (none, squint, smile).
EXPRESSION_ODDS = (0.4, 0.3, 0.3)


@dataclass(frozen=True)
class Nuisance:
    """One photo's nuisances: how the same face could have been photographed."""

    angle_deg: float
    yaw_deg: float
    scale: float
    shift_px: tuple[float, float]
    exposure_ev: float
    wb_gains: tuple[float, float, float]
    jpeg_quality: int
    noise_sigma: float
    seed: int
    expression: str = "none"


def nuisance_draws(n: int, *, seed: int = 0, strength: float = 1.0, scale_centre: float = 1.0,
                   expressions: bool = True) -> list[Nuisance]:
    """``n`` random nuisances over the protocol's ranges (rotation ±10°, yaw ±8°, scale 0.8–1.25 times
    ``scale_centre``, shift ±40 px, exposure ±0.3 EV, white balance ±8% per channel, JPEG 75–95,
    noise, and an expression: none, a squint or a smile, see :data:`EXPRESSION_ODDS`). Without
    ``expressions`` the same draws keep a still face."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        values = dict(
            angle_deg=float(rng.uniform(-10, 10) * strength),
            yaw_deg=float(rng.uniform(-8, 8) * strength),
            scale=float(scale_centre * np.exp(rng.uniform(np.log(0.8), np.log(1.25)) * strength)),
            shift_px=tuple(float(v) for v in rng.uniform(-40, 40, 2) * strength),
            exposure_ev=float(rng.uniform(-0.3, 0.3) * strength),
            wb_gains=tuple(float(v) for v in 1 + rng.uniform(-0.08, 0.08, 3) * strength),
            jpeg_quality=int(rng.integers(75, 96)),
            noise_sigma=float(rng.uniform(0.004, 0.012)),
            seed=int(rng.integers(2 ** 31)),
        )
        face = str(rng.choice(phantom.EXPRESSIONS, p=EXPRESSION_ODDS))  # drawn either way: the same draws
        out.append(Nuisance(**values, expression=face if strength and expressions else "none"))
    return out


def expression_for(master: dict, nz: Nuisance) -> str:
    """The draw's expression as this face can show it: a smile needs the mouth corners in frame."""
    if nz.expression == "smile" and not master["mouth_in_frame"]:
        return "none"
    return nz.expression


def photograph(master: dict, rgb: np.ndarray, nz: Nuisance) -> np.ndarray:
    """The face ``rgb`` (a dosed copy of ``master``'s) as photographed under nuisance ``nz``.

    The turn, the expression and the similarity are sampled once (bicubic, as the similarity alone
    was; see :func:`skinscan.validation.phantom.photograph`); a face that fills its frame keeps filling it.
    """
    rng = np.random.default_rng(nz.seed)
    out = phantom.photograph(rgb, master["face"], mm_per_px=master["mm_per_px"], angle_deg=nz.angle_deg,
                             scale=nz.scale, shift_px=nz.shift_px, yaw_deg=nz.yaw_deg,
                             expression=expression_for(master, nz), fit_frame=master["fills_frame"],
                             interpolation=cv2.INTER_CUBIC)
    out = phantom.white_balance(phantom.exposure(out, nz.exposure_ev), nz.wb_gains)
    out = phantom.sensor_noise(out, nz.noise_sigma, rng)
    return phantom.jpeg_roundtrip(out, nz.jpeg_quality)


def _zone(masks: dict, regions) -> np.ndarray:
    return np.logical_or.reduce([masks[r] for r in regions])


def inject(concern: Concern, rgb: np.ndarray, masks: dict, mm_per_px: float, dose: float, *, seed: int,
           pores: dict | None = None) -> np.ndarray:
    """The face with one concern injected at one dose, inside its regions.

    Blob-like changes are drawn once, as a pool larger than the largest dose; each dose takes a
    prefix of exactly ``round(dose x area)`` of the same objects, so doses are nested as in a real
    improvement and step up by equal counts. ``pores`` is the face's own (see
    :class:`skinscan.validation.phantom.MasterFace`): new pores keep 0.45 mm clear of them, as real pores keep
    apart, and a size dose grows the visible ones inside the regions.
    """
    zone = _zone(masks, concern.regions)
    rng = np.random.default_rng(seed)
    top = concern.doses[-1]
    if concern.name == "redness":
        return phantom.redness_for_delta_a(rgb, zone, dose)[0]
    if concern.name == "texture":
        return phantom.add_texture(rgb, zone, mm_per_px=mm_per_px, energy_gain=dose, noise_band_mm=TEXTURE_NOISE_BAND_MM,
                                   rng=rng)[0]
    if concern.name == "lines":
        out = rgb
        for i, (region, angle) in enumerate((("forehead", 0.0), ("periorbital_left", -10.0), ("periorbital_right", 10.0))):
            kw = dict(mm_per_px=mm_per_px, depth=0.07, width_mm=(0.15, 0.4), orientation_deg=angle,
                      orientation_sd_deg=8.0 if region == "forehead" else 25.0)
            _, pool = phantom.add_lines(rgb, masks[region], density_mm_per_cm2=top, rng=np.random.default_rng(seed + i), **kw)
            out, _ = phantom.add_lines(out, masks[region], density_mm_per_cm2=dose, placement=pool, **kw)
        return out
    if concern.name == "pore_size":
        c = np.asarray(pores["centres_px"], float).reshape(-1, 2)
        h, w = zone.shape
        inside = zone[np.clip(np.rint(c[:, 1]).astype(int), 0, h - 1), np.clip(np.rint(c[:, 0]).astype(int), 0, w - 1)]
        return phantom.grow_pores(rgb, c[inside], np.asarray(pores["diameters_px"], float)[inside],
                                  growth_mm=dose, mm_per_px=mm_per_px)
    fn, kw = {
        "pores": (phantom.add_pores, {k: phantom.SKIN_PORES[k] for k in ("diameter_mm", "depth", "spacing_mm")}
                  | {"avoid_px": None if pores is None else pores["avoid_px"]}),
        "scars": (phantom.add_scars, {"diameter_mm": (1.0, 3.0), "depth": 0.1}),
        "spots": (phantom.add_spots, {"diameter_mm": (1.0, 3.0), "melanin_od": 0.2}),
    }[concern.name]
    # The pool is drawn with room to spare (its count is Poisson) and every dose, the largest too,
    # takes exactly round(dose x area) of it: a pool drawn at the largest dose itself realised 32
    # scars for the 36 of 0.8/cm2, so the top step added 5 scars where the others added 9.
    _, pool = fn(rgb, zone, mm_per_px=mm_per_px, density_per_cm2=1.5 * top, rng=rng, **kw)
    out, rec = fn(rgb, zone, mm_per_px=mm_per_px, density_per_cm2=dose, placement=pool, **kw)
    if rec["count"] != int(round(dose * rec["area_cm2"])):
        raise RuntimeError(f"{concern.name}: the pool holds {pool['count']} objects, {dose} per cm2 needs "
                           f"{int(round(dose * rec['area_cm2']))}")
    return out


def _concern(name: str) -> Concern:
    return next(c for c in CONCERNS if c.name == name)


def _crosstalk_sources(c: Concern) -> list[Concern]:
    """The concerns whose top dose counts as cross-talk for ``c``'s metrics: all but ``c`` and its family."""
    return [o for o in CONCERNS if o.name != c.name and not (c.family and o.family == c.family)]


def dosed_face(master: dict, name: str | None, dose_idx: int) -> np.ndarray:
    """A master face (see :func:`build_masters`) with concern ``name`` at dose ``dose_idx``; None: as it is.

    The same seed at every dose: each dose is a prefix of the same objects (or the same noise field).
    """
    if name is None:
        return master["rgb"]
    c = _concern(name)
    return inject(c, master["rgb"], master["masks"], master["mm_per_px"], c.doses[dose_idx],
                  seed=master["seed"] + sum(map(ord, c.name)), pores=master["pores"])


# ------------------------------------------------------------------------------------ workers
_W: dict = {}


def _worker_init(masters: dict, parent_pid: int) -> None:
    from .._process import die_with_parent, ignore_interrupts
    from ..landmarks import FaceLandmarker

    ignore_interrupts()  # Ctrl-C and SIGTERM are the parent's to handle; it ends the workers

    # A protocol killed outright must not leave its workers behind (two of them ran on for an hour
    # after their parent was killed, slowing whatever ran next).
    die_with_parent(parent_pid)
    _W["masters"] = masters
    _W["landmarker"] = FaceLandmarker()
    _W["cache"] = {}


def _measure_chunk(tasks: list) -> list:
    return [_measure(t) for t in tasks]


def _measure(task: tuple) -> tuple:
    """Build one photo of the protocol and measure every metric on every concern's zone."""
    from ..analysis import analyse_photo
    from ..light import ABSOLUTE_COLOUR
    from ..metrics import compute_metrics
    from ..regions import SKIN_PX_PER_MM, region_masks

    subject, concern_name, dose_idx, nz = task
    m = _W["masters"][subject]
    key = (subject, concern_name, dose_idx)
    if key not in _W["cache"]:
        _W["cache"].clear()  # tasks arrive grouped by dose: keep one dosed face at a time
        _W["cache"][key] = dosed_face(m, concern_name, dose_idx)
    photo = photograph(m, _W["cache"][key], nz)
    a = analyse_photo(photo, landmarker=_W["landmarker"], metrics=False, max_px_per_mm=m["max_px_per_mm"])
    # The sample face's fringe covers the band above the mesh that the forehead region reaches
    # into; the protocol measures the forehead below it, as it injects there. The skin mask is
    # classified at the analysis's own working resolution, so the protocol measures what it does.
    masks = region_masks(a.face, mm_per_px=a.scale.mm_per_px, rgb=a.rgb, forehead_extension_mm=0.0,
                         skin_px_per_mm=SKIN_PX_PER_MM)
    zones = {c.name: _zone(masks, c.regions) for c in CONCERNS}
    values = compute_metrics(a.rgb, zones, mm_per_px=a.scale.mm_per_px, gains=a.gains).values
    if a.light_source == "none":  # as the analysis reports it: no absolute colour from a light nobody knows
        for region in values.values():
            region.update({k: float("nan") for k in ABSOLUTE_COLOUR if k in region})
    # A photo that fails a blocking quality check (over 15% of the skin clipped, blurred, too dark,
    # the head turned too far) is left out of a series' trends, and so of the protocol's: measured
    # anyway, the bright face at +0.25 EV (22% of its skin clipped) read an erythema index 2.5 below
    # the other photos'.
    blocked = sorted(c.name for c in a.quality if c.blocking and not c.passed)
    if blocked:
        for region in values.values():
            region.update({k: float("nan") for k in region})
    return key, nz.seed, values, {"light_source": a.light_source, "light_note": a.light_reason,
                                  "px_per_mm": a.scale.px_per_mm, "expression": expression_for(m, nz),
                                  "blocked": blocked}


@dataclass
class MetricRow:
    face: str
    tone: str
    concern: str
    metric: str
    direction: int
    responses: list[float]
    nuisance_sd: float
    nuisance_mean: float
    rho: float
    detect_ratio: float
    crosstalk_pct: float
    crosstalk_by: str
    cv_pct: float
    #: Photos (of the 5 x n_draws behind the responses and SD) where the metric was not measurable (NaN).
    missing: int = 0
    #: Why this face cannot give the metric at all (e.g. no light reference): the row then passes
    #: when every photo refuses it (NaN), and fails when any photo reports a value.
    refused: str = ""

    @property
    def passed(self) -> dict[str, bool]:
        if self.refused:
            return {"not measured": bool(np.isnan(self.nuisance_mean) and all(np.isnan(self.responses)))}
        if self.direction == 0:
            return {"stable": bool(self.nuisance_sd <= DESCRIPTOR_MAX_SD.get(self.metric, np.inf))}
        if self.metric in DOSED_DESCRIPTORS:
            return {"monotonic": bool(self.rho == 1.0)}
        return {"monotonic": bool(self.rho == 1.0), "detectable": bool(self.detect_ratio >= 3.0),
                "specific": bool(self.crosstalk_pct < 30.0)}


@dataclass
class ValidationReport:
    rows: list[MetricRow]
    n_draws: int
    settings: dict = field(default_factory=dict)
    #: Per subject ("face/tone"): the nuisance-only photos' light source, px/mm and expression, by draw.
    photos: dict = field(default_factory=dict)
    #: Every photo's values of the rows' metrics on their concern's zone: {"face/tone|concern|dose":
    #: {metric: [value per draw]}} (concern "none": nuisance-only; dose index 0-3).
    values: dict = field(default_factory=dict)
    #: Per subject, the photos left out because a blocking quality check failed: {check: count}.
    left_out: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(all(all(r.passed.values()) for r in self.rows))

    def failures(self) -> list[str]:
        return [f"{r.face}/{r.tone}/{r.metric}: {k}" for r in self.rows for k, ok in r.passed.items() if not ok]

    def table(self) -> str:
        """The validation table as Markdown."""
        head = ("| face | tone | concern | metric | response at 4 doses | nuisance SD | dose 1 / SD | rho | "
                "worst cross-talk | CV % | pass |")
        lines = [head, "|" + "---|" * 11]
        for r in self.rows:
            resp = ", ".join(f"{v:.3g}" for v in r.responses)
            ok = "yes" if all(r.passed.values()) else "NO: " + ", ".join(k for k, v in r.passed.items() if not v)
            if r.refused:
                ok = f"not measured ({r.refused}): " + ("yes" if all(r.passed.values()) else "NO, a value was given")
            elif r.metric in DOSED_DESCRIPTORS:
                ok = "descriptor (no change label), monotonic: " + ("yes" if all(r.passed.values()) else "NO")
            elif r.direction == 0:
                ok = f"descriptor, SD <= {DESCRIPTOR_MAX_SD[r.metric]:g}: " + ("yes" if all(r.passed.values()) else "NO")
            lines.append(f"| {r.face} | {r.tone} | {r.concern} | {r.metric} | {resp} | {r.nuisance_sd:.3g} | "
                         f"{r.detect_ratio:.1f} | {r.rho:+.2f} | {r.crosstalk_pct:.0f}% ({r.crosstalk_by}) | "
                         f"{r.cv_pct:.1f} | {ok} |")
        gaps = [f"{r.face} {r.tone} {r.metric} {r.missing} of {5 * self.n_draws}" for r in self.rows
                if r.missing and not r.refused]
        if gaps:
            lines += ["", "Not measurable (NaN) in some photos (those left out below included), left out of their "
                      "dose's mean and, paired, of its response: " + "; ".join(gaps) + "."]
        if self.left_out:
            total = self.settings.get("photos_per_subject", "?")
            parts = [f"{subject.replace('/', ' ')} " + ", ".join(f"{n} ({check})" for check, n in sorted(checks.items()))
                     for subject, checks in self.left_out.items()]
            lines += ["", f"Left out as a series leaves them out (a blocking quality check failed), of {total} photos "
                      "per face and tone: " + "; ".join(parts) + "."]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"n_draws": self.n_draws, "settings": self.settings, "passed": self.passed,
                           "photos": self.photos, "values": self.values, "left_out": self.left_out,
                           "rows": [{**r.__dict__, "passed": r.passed} for r in self.rows]}, indent=1)


def _paired_change(after: np.ndarray, before: np.ndarray) -> float:
    """Mean change from ``before`` to ``after`` over the nuisance draws where both were measured.

    Each draw photographs both with the same nuisance, so where one is NaN (not measurable, e.g.
    pores below 10 px/mm) the draw is left out of both: means over different draws would count
    that draw's nuisance as a change. With every value measured it is the difference of the means.
    """
    ok = np.isfinite(after) & np.isfinite(before)
    return float(np.mean(after[ok] - before[ok])) if ok.any() else float("nan")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of ``y`` over ``x``; NaN when any ``y`` is not measured (a NaN would rank last)."""
    if not np.all(np.isfinite(y)):
        return float("nan")
    rx = np.argsort(np.argsort(x))
    ry = np.argsort(np.argsort(y))
    if np.all(ry == ry[0]):
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def build_masters(faces=FACES, tones=("light", "deep"), *, seed: int = 0, px_per_mm: float | None = None,
                  max_px_per_mm: float | None = None) -> dict:
    """The protocol's subjects, keyed ``"face/tone"``: each face as it is and darkened to ITA < 10°.

    ``px_per_mm`` builds the sample face at that resolution (default :data:`SAMPLE_PX_PER_MM`; see
    :func:`skinscan.validation.phantom.master_face`); ``max_px_per_mm`` is the analysis's cap (default the pipeline's).
    """
    from ..analysis import MAX_PX_PER_MM
    from ..landmarks import FaceLandmarker
    from ..regions import region_masks

    out = {}
    with FaceLandmarker() as lm:
        for name in faces:
            if name == "sample":
                master = phantom.master_face(lm, seed=seed, px_per_mm=px_per_mm or SAMPLE_PX_PER_MM)
            elif name == "closeup":
                master = phantom.closeup_face(lm)
            else:
                raise ValueError(f"unknown face {name!r}; expected one of {FACES}")
            for tone in tones:
                rgb = master.rgb
                if tone == "deep":
                    rgb, _ = phantom.darken_to_ita(rgb, master.skin, ita_deg=5.0)
                elif tone != "light":
                    raise ValueError(f"unknown tone {tone!r}; expected light or deep")
                face = lm.detect(rgb)
                masks = region_masks(face, mm_per_px=master.mm_per_px, rgb=rgb, forehead_extension_mm=0.0)
                out[f"{name}/{tone}"] = {
                    "rgb": rgb, "face": face, "mm_per_px": master.mm_per_px, "masks": masks, "seed": seed,
                    "pores": master.pores, "fills_frame": master.fills_frame,
                    "mouth_in_frame": phantom.mouth_in_frame(face, rgb.shape[:2], mm_per_px=master.mm_per_px),
                    "max_px_per_mm": MAX_PX_PER_MM if max_px_per_mm is None else max_px_per_mm}
    return out


def run_validation(*, n_draws: int = 8, faces=FACES, tones=("light", "deep"), jobs: int | None = None,
                   seed: int = 0, concerns=None, px_per_mm: float | None = None, max_px_per_mm: float | None = None,
                   expressions: bool = True, progress: bool = True) -> ValidationReport:
    """Run the phantom protocol and return its report (see the module docstring).

    Parameters
    ----------
    n_draws : int
        Nuisance draws per dose (and nuisance-only photos); each dose's response is the mean over them.
    faces : tuple of str
        Of :data:`FACES`.
    tones : tuple of str
        ``"light"`` (each face as it is) and/or ``"deep"`` (darkened to ITA < 10°).
    jobs : int, optional
        Worker processes (default: the number of CPUs).
    concerns : tuple of str, optional
        Only these concerns' rows (their cross-talk from all the others is still measured).
    px_per_mm : float, optional
        Photograph at this resolution (the nuisance scale spreads 0.8-1.25 times around it): the
        sample face is built at 1.25 times it, so every photo is a reduction; the close-up can
        only be photographed around its own 13.3 px/mm.
    max_px_per_mm : float, optional
        The analysis's cap on resolution (default :data:`skinscan.analysis.MAX_PX_PER_MM`).
    expressions : bool
        Squints and smiles among the nuisances (False: the same draws with a still face).
    """
    from ..progress import Progress

    if px_per_mm is not None and "closeup" in faces:
        raise ValueError("px_per_mm: the close-up has a resolution of its own; run it with faces=('sample',)")
    unknown = set(concerns or ()) - {c.name for c in CONCERNS}
    if unknown:
        raise ValueError(f"unknown concerns {sorted(unknown)}; expected some of {[c.name for c in CONCERNS]}")
    masters = build_masters(faces, tones, seed=seed, max_px_per_mm=max_px_per_mm,
                            px_per_mm=None if px_per_mm is None else 1.25 * px_per_mm)
    subjects = list(masters)
    centre = 1.0 if px_per_mm is None else px_per_mm * masters[subjects[0]]["mm_per_px"]
    draws = nuisance_draws(n_draws, seed=seed + 1, scale_centre=centre, expressions=expressions)
    wanted = [c for c in CONCERNS if concerns is None or c.name in concerns]
    needed = {c.name for c in wanted} | {o.name for c in wanted for o in _crosstalk_sources(c)}
    keys = [(None, 0)] + [(c.name, i) for c in CONCERNS if c.name in needed
                          for i in (range(4) if c in wanted else (3,))]
    tasks = [(subject, name, i, nz) for subject in subjects for name, i in keys for nz in draws]
    jobs = jobs or os.cpu_count() or 1
    results: dict = {}
    photos: dict = {}
    left_out: dict = {}
    chunk = max(1, n_draws // 2)
    with ProcessPoolExecutor(jobs, initializer=_worker_init, initargs=(masters, os.getpid())) as ex:
        # Futures of our own, not Executor.map's, which cancels its own when dropped (see end_pool).
        try:
            futures = [ex.submit(_measure_chunk, tasks[i:i + chunk]) for i in range(0, len(tasks), chunk)]
            measured = (r for f in futures for r in f.result())
            for key, s, values, info in Progress(measured, "validating", total=len(tasks), enabled=progress):
                results.setdefault(key, {})[s] = values
                if info["blocked"]:  # a photo once, under the checks it failed
                    checks = left_out.setdefault(key[0], {})
                    checks[", ".join(info["blocked"])] = checks.get(", ".join(info["blocked"]), 0) + 1
                if key[1] is None:
                    photos.setdefault(key[0], []).append({"seed": s, **info})
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM) or failed: leaving the pool would wait for every photo
            # already queued to its workers.
            end_pool(ex)
            raise

    rows = [row for subject in subjects for row in _subject_rows(subject, wanted, results, photos[subject], draws)]
    settings = {"faces": list(faces), "tones": list(tones), "seed": seed, "jobs": jobs,
                "px_per_mm": px_per_mm, "max_px_per_mm": max_px_per_mm, "with_expressions": expressions,
                "expressions": {s: m["mouth_in_frame"] for s, m in masters.items()}}
    values = {f"{subject}|{name or 'none'}|{i}": {
        m: [results[(subject, name, i)][nz.seed][c.name][m] for nz in draws] for c in wanted for m, _ in c.metrics}
        for subject in subjects for name, i in keys}
    settings["photos_per_subject"] = len(keys) * n_draws
    return ValidationReport(rows, n_draws, settings, photos, values, left_out)


def _subject_rows(subject: str, wanted, results: dict, photos: list, draws) -> list[MetricRow]:
    """The protocol's rows for one face and tone, from every photo's values (see :func:`run_validation`)."""
    from ..light import ABSOLUTE_COLOUR

    face, tone = subject.split("/")
    # A face no photo of which has a trustworthy light reference (the eyes-closed close-up) cannot
    # give absolute colour: the analysis refuses it, and the row checks that it does.
    refused = photos[0]["light_note"] if all(p["light_source"] == "none" for p in photos) else ""
    rows = []
    for c in wanted:
        for metric, direction in c.metrics:
            def vals(name, i, zone=c.name, metric=metric):
                return np.array([results[(subject, name, i)][nz.seed][zone][metric] for nz in draws], dtype=float)

            null = vals(None, 0)
            doses = [vals(c.name, i) for i in range(4)]
            resp = np.array([_paired_change(d, null) for d in doses])
            sd = float(np.nanstd(null, ddof=1)) if np.isfinite(null).sum() > 1 else float("nan")
            own = abs(resp[-1])
            worst, by = 0.0, "-"
            for other in _crosstalk_sources(c):
                move = _paired_change(vals(other.name, 3), null)
                x = abs(float(move)) / own * 100 if own > 0 else float("inf")
                if x > worst:
                    worst, by = x, other.name
            mean = float(np.nanmean(null)) if np.isfinite(null).any() else float("nan")
            rows.append(MetricRow(
                face=face, tone=tone, concern=c.name, metric=metric, direction=direction, responses=resp.tolist(),
                nuisance_sd=sd, nuisance_mean=mean, rho=_spearman(np.array(c.doses), (direction or 1) * resp),
                detect_ratio=float((direction or 1) * resp[0] / sd) if sd > 0 else float("inf"),
                crosstalk_pct=worst, crosstalk_by=by, cv_pct=100 * sd / abs(mean) if mean else float("nan"),
                missing=int(sum(np.count_nonzero(~np.isfinite(v)) for v in [null, *doses])),
                refused=refused if metric in ABSOLUTE_COLOUR else ""))
    return rows
