"""The phantom protocol: inject known skin changes at four doses into real face photos under photo nuisances, and check every metric.

For each concern a change is injected inside its skin regions at four doses, each dosed face is
"photographed" under the same set of random nuisances (rotation, yaw, scale, shift, exposure,
white balance, JPEG, sensor noise), and every metric is measured on every photo by the full
pipeline (landmarks, millimetre scale, regions, light normalisation, metrics). Four thresholds
are checked per metric, on the face as it is and darkened to a deep skin tone:

1. monotonic: the mean response over the four doses has Spearman rho = 1 (in the metric's direction);
2. detectable: the smallest dose's mean response is >= 3x the metric's SD over nuisance-only photos;
3. specific: under every other concern's largest dose the metric moves < 30% of its response to
   its own largest dose (concerns of one family, pore count and pore size, are not each other's
   cross-talk);
4. all of the above on the deep-tone face (ITA < 10 deg).

The coefficient of variation over nuisance-only photos (test-retest) is reported beside them.

Most concerns are injected into the face as it is, and their responses, nuisance SD and
cross-talk are read against the undosed face. A concern with a ``base`` changes something the face
must first have: pore size is dosed by growing a fixed set of pores (the sample face has no
visible pores of its own, and a size measured on nothing measures noise). Its base face (the
pores at their starting size) is its reference: responses are read against it, its nuisance SD
is taken over nuisance-only photos of it, and its cross-talk is every other concern's largest
dose injected into it; the base's growth to the top dose is, in turn, the cross-talk it causes
to the other concerns.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import phantom

__all__ = ["CONCERNS", "PORE_BASE", "Concern", "Nuisance", "ValidationReport", "run_validation", "nuisance_draws"]


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
    # What the face is given before dosing, when the dose changes something it must first have
    # (see the module docstring); empty: dosed on the face as it is.
    base: str = ""


CONCERNS = (
    Concern("redness", ("cheek_left", "cheek_right", "forehead", "chin"), (1.5, 3.0, 4.5, 6.0), "delta a*",
            (("a_star", 1), ("erythema_index", 1), ("red_area_pct", 1))),
    Concern("pores", ("cheek_left", "cheek_right", "nose"), (4.0, 8.0, 12.0, 16.0), "pores/cm2 of 0.15-0.3 mm",
            (("pore_density", 1), ("pore_area_pct", 1)), family="pores"),
    Concern("pore_size", ("cheek_left", "cheek_right", "nose"), (0.025, 0.05, 0.075, 0.1),
            "mm added to every pore's diameter", (("pore_diameter_mm", 1),), family="pores",
            base="10 pores/cm2 of 0.15-0.3 mm"),
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


#: The pore-size concern's base: pores per cm2 and their diameters (mm) before growth; the same
#: kind of pore as the pore-count dose adds.
PORE_BASE = {"density_per_cm2": 10.0, "diameter_mm": (0.15, 0.3), "depth": 0.08}

#: ITA° describes the constitutive skin tone (it classifies the light and deep validation faces);
#: a few brown spots must not move it, so it is held to stability instead of a dose response: its
#: SD over nuisance-only photos must stay below this many degrees.
DESCRIPTOR_MAX_SD = {"ita_deg": 3.0}


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


def nuisance_draws(n: int, *, seed: int = 0, strength: float = 1.0) -> list[Nuisance]:
    """``n`` random nuisances over the protocol's ranges (rotation ±10°, yaw ±8°, scale 0.8–1.25,
    shift ±40 px, exposure ±0.3 EV, white balance ±8% per channel, JPEG 75–95, noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(Nuisance(
            angle_deg=float(rng.uniform(-10, 10) * strength),
            yaw_deg=float(rng.uniform(-8, 8) * strength),
            scale=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)) * strength)),
            shift_px=tuple(float(v) for v in rng.uniform(-40, 40, 2) * strength),
            exposure_ev=float(rng.uniform(-0.3, 0.3) * strength),
            wb_gains=tuple(float(v) for v in 1 + rng.uniform(-0.08, 0.08, 3) * strength),
            jpeg_quality=int(rng.integers(75, 96)),
            noise_sigma=float(rng.uniform(0.004, 0.012)),
            seed=int(rng.integers(2 ** 31)),
        ))
    return out


def photograph(rgb: np.ndarray, face, mm_per_px: float, nz: Nuisance) -> np.ndarray:
    """The face as photographed under nuisance ``nz``."""
    rng = np.random.default_rng(nz.seed)
    out = phantom.turn_head(rgb, face, yaw_deg=nz.yaw_deg, mm_per_px=mm_per_px) if nz.yaw_deg else rgb
    out, _ = phantom.similarity(out, angle_deg=nz.angle_deg, scale=nz.scale, shift_px=nz.shift_px)
    out = phantom.white_balance(phantom.exposure(out, nz.exposure_ev), nz.wb_gains)
    out = phantom.sensor_noise(out, nz.noise_sigma, rng)
    return phantom.jpeg_roundtrip(out, nz.jpeg_quality)


def _zone(masks: dict, regions) -> np.ndarray:
    return np.logical_or.reduce([masks[r] for r in regions])


def inject(concern: Concern, rgb: np.ndarray, masks: dict, mm_per_px: float, dose: float, *, seed: int) -> np.ndarray:
    """The face with one concern injected at one dose, inside its regions.

    Blob-like changes are drawn once, as a pool larger than the largest dose; each dose takes a
    prefix of exactly ``round(dose x area)`` of the same objects, so doses are nested as in a real
    improvement and step up by equal counts.
    """
    zone = _zone(masks, concern.regions)
    rng = np.random.default_rng(seed)
    top = concern.doses[-1]
    if concern.base and concern.name != "pore_size":
        raise ValueError(f"{concern.name}: no injection of its base ({concern.base!r}) is defined")
    if concern.name == "redness":
        return phantom.redness_for_delta_a(rgb, zone, dose)[0]
    if concern.name == "texture":
        return phantom.add_texture(rgb, zone, mm_per_px=mm_per_px, energy_gain=dose, rng=rng)[0]
    if concern.name == "lines":
        out = rgb
        for i, (region, angle) in enumerate((("forehead", 0.0), ("periorbital_left", -10.0), ("periorbital_right", 10.0))):
            kw = dict(mm_per_px=mm_per_px, depth=0.07, width_mm=(0.15, 0.4), orientation_deg=angle,
                      orientation_sd_deg=8.0 if region == "forehead" else 25.0)
            _, pool = phantom.add_lines(rgb, masks[region], density_mm_per_cm2=top, rng=np.random.default_rng(seed + i), **kw)
            out, _ = phantom.add_lines(out, masks[region], density_mm_per_cm2=dose, placement=pool, **kw)
        return out
    pore = {"diameter_mm": PORE_BASE["diameter_mm"], "depth": PORE_BASE["depth"]}
    if concern.name == "pore_size":
        # A fixed count of pores, drawn where the largest grown pore fits, each then grown by
        # ``dose`` mm (0: the base): the pool is drawn at the top size and shrunk by the rest.
        lo, hi = PORE_BASE["diameter_mm"]
        fn, kw = phantom.add_pores, {**pore, "diameter_mm": (lo + top, hi + top)}
        count = most = PORE_BASE["density_per_cm2"]
        shrink_grow_px = (top / mm_per_px, dose / mm_per_px)
    else:
        fn, kw = {
            "pores": (phantom.add_pores, pore),
            "scars": (phantom.add_scars, {"diameter_mm": (1.0, 3.0), "depth": 0.1}),
            "spots": (phantom.add_spots, {"diameter_mm": (1.0, 3.0), "melanin_od": 0.2}),
        }[concern.name]
        count, most, shrink_grow_px = dose, top, None
    # The pool is drawn with room to spare (its count is Poisson) and every dose, the largest too,
    # takes exactly round(count x area) of it: a pool drawn at the largest dose itself realised 32
    # scars for the 36 of 0.8/cm2, so the top step added 5 scars where the others added 9.
    _, pool = fn(rgb, zone, mm_per_px=mm_per_px, density_per_cm2=1.5 * most, rng=rng, **kw)
    if shrink_grow_px:  # back to the base size, then grown by the dose
        pool = {**pool, "diameters_px": pool["diameters_px"] - shrink_grow_px[0] + shrink_grow_px[1]}
    out, rec = fn(rgb, zone, mm_per_px=mm_per_px, density_per_cm2=count, placement=pool, **kw)
    if rec["count"] != int(round(count * rec["area_cm2"])):
        raise RuntimeError(f"{concern.name}: the pool holds {pool['count']} objects, {count} per cm2 needs "
                           f"{int(round(count * rec['area_cm2']))}")
    return out


def _concern(name: str) -> Concern:
    return next(c for c in CONCERNS if c.name == name)


def _crosstalk_sources(c: Concern) -> list[Concern]:
    """The concerns whose top dose counts as cross-talk for ``c``'s metrics: all but ``c`` and its family."""
    return [o for o in CONCERNS if o.name != c.name and not (c.family and o.family == c.family)]


def dosed_face(master: dict, name: str | None, dose_idx: int) -> np.ndarray:
    """A master face (see :func:`build_masters`) with concern ``name`` at dose ``dose_idx``.

    ``name`` None is the face as it is; dose index -1 is a concern's base (its dose 0); a name
    ``"based+other"`` is concern ``based``'s base with ``other`` at dose ``dose_idx`` added to it.
    The same seed at every dose: each dose is a prefix of the same objects (or the same noise field).
    """
    rgb = master["rgb"]
    if name is None:
        return rgb
    if "+" in name:
        based, other = name.split("+")
        steps = ((based, -1), (other, dose_idx))
    else:
        steps = ((name, dose_idx),)
    for part, i in steps:
        c = _concern(part)
        rgb = inject(c, rgb, master["masks"], master["mm_per_px"], 0.0 if i < 0 else c.doses[i],
                     seed=master["seed"] + sum(map(ord, c.name)))
    return rgb


# ------------------------------------------------------------------------------------ workers
_W: dict = {}


def _worker_init(masters: dict) -> None:
    from .landmarks import FaceLandmarker

    _W["masters"] = masters
    _W["landmarker"] = FaceLandmarker()
    _W["cache"] = {}


def _measure(task: tuple) -> tuple:
    """Build one photo of the protocol and measure every metric on every concern's zone."""
    from .analysis import analyse_photo
    from .metrics import compute_metrics
    from .regions import SKIN_PX_PER_MM, region_masks

    tone, concern_name, dose_idx, nz = task
    m = _W["masters"][tone]
    key = (tone, concern_name, dose_idx)
    if key not in _W["cache"]:
        _W["cache"].clear()  # tasks arrive grouped by dose: keep one dosed face at a time
        _W["cache"][key] = dosed_face(m, concern_name, dose_idx)
    photo = photograph(_W["cache"][key], m["face"], m["mm_per_px"], nz)
    a = analyse_photo(photo, landmarker=_W["landmarker"], metrics=False)
    # The sample face's fringe covers the band above the mesh that the forehead region reaches
    # into; the protocol measures the forehead below it, as it injects there. The skin mask is
    # classified at the analysis's own working resolution, so the protocol measures what it does.
    masks = region_masks(a.face, mm_per_px=a.scale.mm_per_px, rgb=a.rgb, forehead_extension_mm=0.0,
                         skin_px_per_mm=SKIN_PX_PER_MM)
    zones = {c.name: _zone(masks, c.regions) for c in CONCERNS}
    measured = compute_metrics(a.rgb, zones, mm_per_px=a.scale.mm_per_px, gains=a.gains)
    return task[:3], nz.seed, measured.values


@dataclass
class MetricRow:
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

    @property
    def passed(self) -> dict[str, bool]:
        if self.direction == 0:
            return {"stable": bool(self.nuisance_sd <= DESCRIPTOR_MAX_SD.get(self.metric, np.inf))}
        return {"monotonic": bool(self.rho == 1.0), "detectable": bool(self.detect_ratio >= 3.0),
                "specific": bool(self.crosstalk_pct < 30.0)}


@dataclass
class ValidationReport:
    rows: list[MetricRow]
    n_draws: int
    settings: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(all(all(r.passed.values()) for r in self.rows))

    def failures(self) -> list[str]:
        return [f"{r.tone}/{r.metric}: {k}" for r in self.rows for k, ok in r.passed.items() if not ok]

    def table(self) -> str:
        """The validation table as Markdown."""
        head = ("| tone | concern | metric | response at 4 doses | nuisance SD | dose 1 / SD | rho | "
                "worst cross-talk | CV % | pass |")
        lines = [head, "|" + "---|" * 10]
        for r in self.rows:
            resp = ", ".join(f"{v:.3g}" for v in r.responses)
            ok = "yes" if all(r.passed.values()) else "NO: " + ", ".join(k for k, v in r.passed.items() if not v)
            if r.direction == 0:
                ok = f"descriptor, SD <= {DESCRIPTOR_MAX_SD[r.metric]:g}: " + ("yes" if all(r.passed.values()) else "NO")
            lines.append(f"| {r.tone} | {r.concern} | {r.metric} | {resp} | {r.nuisance_sd:.3g} | "
                         f"{r.detect_ratio:.1f} | {r.rho:+.2f} | {r.crosstalk_pct:.0f}% ({r.crosstalk_by}) | "
                         f"{r.cv_pct:.1f} | {ok} |")
        gaps = [f"{r.tone} {r.metric} {r.missing} of {5 * self.n_draws}" for r in self.rows if r.missing]
        if gaps:
            lines += ["", "Not measurable (NaN) in some photos, left out of their dose's mean and, paired, of its "
                      "response: " + "; ".join(gaps) + "."]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"n_draws": self.n_draws, "settings": self.settings, "passed": self.passed,
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
    rx = np.argsort(np.argsort(x))
    ry = np.argsort(np.argsort(y))
    if np.all(ry == ry[0]):
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def build_masters(tones=("light", "deep"), *, seed: int = 0) -> dict:
    """The protocol's base faces: the sample master face, and the same face darkened to ITA < 10°."""
    from .landmarks import FaceLandmarker
    from .regions import region_masks

    with FaceLandmarker() as lm:
        master = phantom.master_face(lm, seed=seed)
        out = {}
        for tone in tones:
            rgb = master.rgb
            if tone == "deep":
                rgb, _ = phantom.darken_to_ita(rgb, master.skin, ita_deg=5.0)
            face = lm.detect(rgb)
            masks = region_masks(face, mm_per_px=master.mm_per_px, rgb=rgb, forehead_extension_mm=0.0)
            out[tone] = {"rgb": rgb, "face": face, "mm_per_px": master.mm_per_px, "masks": masks, "seed": seed}
    return out


def run_validation(*, n_draws: int = 8, tones=("light", "deep"), jobs: int | None = None, seed: int = 0,
                   progress: bool = True) -> ValidationReport:
    """Run the phantom protocol and return its report (see the module docstring).

    Parameters
    ----------
    n_draws : int
        Nuisance draws per dose (and nuisance-only photos); each dose's response is the mean over them.
    tones : tuple of str
        ``"light"`` (the sample face as it is) and/or ``"deep"`` (darkened to ITA < 10°).
    jobs : int, optional
        Worker processes (default: the number of CPUs).
    """
    from .progress import Progress

    masters = build_masters(tones, seed=seed)
    draws = nuisance_draws(n_draws, seed=seed + 1)
    tasks = [(tone, None, 0, nz) for tone in tones for nz in draws]
    for c in CONCERNS:
        keys = [(c.name, i) for i in range(-1 if c.base else 0, 4)]
        if c.base:  # every other family's largest dose (and base, if it has one) on this concern's base
            keys += [(f"{c.name}+{o.name}", i) for o in _crosstalk_sources(c) for i in ((-1, 3) if o.base else (3,))]
        tasks += [(tone, name, i, nz) for tone in tones for name, i in keys for nz in draws]
    jobs = jobs or os.cpu_count() or 1
    results: dict = {}
    chunk = max(1, n_draws // 2)
    with ProcessPoolExecutor(jobs, initializer=_worker_init, initargs=(masters,)) as ex:
        bar = Progress(ex.map(_measure, tasks, chunksize=chunk), "validating", total=len(tasks), enabled=progress)
        for key, s, values in bar:
            results.setdefault(key, {})[s] = values
    def reference(tone, c):  # what a concern's doses are read against
        return (tone, c.name, -1) if c.base else (tone, None, 0)

    rows = []
    for tone in tones:
        for c in CONCERNS:
            for metric, direction in c.metrics:
                def vals(key, zone=c.name, metric=metric):
                    return np.array([results[key][nz.seed][zone][metric] for nz in draws], dtype=float)

                null = vals(reference(tone, c))
                doses = [vals((tone, c.name, i)) for i in range(4)]
                resp = np.array([_paired_change(d, null) for d in doses])
                sd = float(np.nanstd(null, ddof=1)) if n_draws > 1 else float("nan")
                rho = _spearman(np.array(c.doses), (direction or 1) * resp)
                own = abs(resp[-1])
                worst, by = 0.0, "-"
                for other in _crosstalk_sources(c):
                    if c.base:  # the other concern injected into this one's base (its growth, if it has a base too)
                        ref = vals((tone, f"{c.name}+{other.name}", -1)) if other.base else null
                        move = _paired_change(vals((tone, f"{c.name}+{other.name}", 3)), ref)
                    else:
                        move = _paired_change(vals((tone, other.name, 3)), vals(reference(tone, other)))
                    x = abs(float(move)) / own * 100 if own > 0 else float("inf")
                    if x > worst:
                        worst, by = x, other.name
                rows.append(MetricRow(
                    tone=tone, concern=c.name, metric=metric, direction=direction, responses=resp.tolist(),
                    nuisance_sd=sd, nuisance_mean=float(np.nanmean(null)), rho=rho,
                    detect_ratio=float((direction or 1) * resp[0] / sd) if sd > 0 else float("inf"),
                    crosstalk_pct=worst, crosstalk_by=by,
                    cv_pct=100 * sd / abs(float(np.nanmean(null))) if np.nanmean(null) else float("nan"),
                    missing=int(sum(np.count_nonzero(~np.isfinite(v)) for v in [null, *doses]))))
    return ValidationReport(rows, n_draws, {"tones": list(tones), "seed": seed, "jobs": jobs})
