"""The performance benchmark: per-stage times against the JPEG decode, batch throughput, memory, working resolution.

What ``skinscan benchmark`` runs. Every number is measured in the same run on the same files; the
single-core figures are taken with the process pinned to one CPU (and OpenCV to one thread), so
that they do not depend on how many cores the machine has.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ._heap import freed_memory_kept

__all__ = ["BenchmarkReport", "run_benchmark", "make_benchmark_photos", "TARGETS"]

#: What skinscan promises of its speed and memory, as (description, comparison, threshold).
TARGETS = {
    "analysis_over_decode_12mp": ("whole analysis of a 12 MP photo / its JPEG decode, one core", "<=", 3.0),
    "jobs2_over_jobs1": ("batch throughput --jobs 2 / --jobs 1 on 2 cores", ">=", 1.8),
    "peak_rss_mb_12mp": ("peak memory of a worker analysing 12 MP photos, MB", "<", 1024.0),
    "rss_growth_mb": ("memory growth of a worker over the batch, MB", "<=", 50.0),
    "working_vs_full_max_rel_diff_pct": ("metrics at the working resolution vs full resolution, max |diff| % "
                                         "of their means over the sample photos", "<=", 2.0),
    "close20_over_12mp": ("whole analysis of a 20 px/mm close-up / of the 12 MP photo (12.4 px/mm), one core",
                          "<=", 1.5),
    "report_s_per_subject": ("one subject's charts and report (the 12-photo sample series), one core, s", "<=", 2.0),
    "rerun_over_fresh": ("re-run with nothing new / the fresh run (sample series, analysis and outputs)", "<=", 0.2),
}
#: Sizes of the synthetic phone photos (portrait, width x height); the close-ups are 12 MP too, the
#: face enlarged to 15 and 20 px/mm (filling the frame as a close selfie does).
SIZES = {"12mp": (3024, 4032), "3mp": (1512, 2016), "close15": (3024, 4032), "close20": (3024, 4032)}
#: The close-ups' faces, px/mm.
CLOSE_UPS = {"close15": 15.0, "close20": 20.0}


@dataclass
class BenchmarkReport:
    """Everything the benchmark measured (seconds, MB, ratios) and the machine it ran on."""

    machine: dict = field(default_factory=dict)
    photos: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)  # size -> stage -> median seconds
    decode_s: dict = field(default_factory=dict)  # size -> median seconds
    analysis_s: dict = field(default_factory=dict)  # size -> median seconds (whole analysis, decode included)
    throughput: dict = field(default_factory=dict)  # "jobs1"/"jobs2" -> photos per second (the best run)
    throughput_runs: dict = field(default_factory=dict)  # "jobs1"/"jobs2" -> photos per second of each run
    memory: dict = field(default_factory=dict)
    working_resolution: list = field(default_factory=list)  # rows: region, metric, means, diff %, per photo
    floor: dict = field(default_factory=dict)  # the least any analysis with pores must do, 12 MP (see _floor)
    series: dict = field(default_factory=dict)  # the sample series: fresh run, outputs, re-run (see _series_run)
    results: dict = field(default_factory=dict)  # target -> measured value

    def passed(self) -> dict[str, bool]:
        out = {}
        for key, (_, op, thr) in TARGETS.items():
            v = self.results.get(key, float("nan"))
            out[key] = bool(np.isfinite(v) and (v <= thr if op == "<=" else v >= thr if op == ">=" else v < thr))
        return out

    def missed(self) -> list[str]:
        """The targets measured and not met, by their description (a target a run skipped is neither)."""
        return [TARGETS[k][0] for k, ok in self.passed().items()
                if not ok and np.isfinite(self.results.get(k, float("nan")))]

    def verdict(self) -> str:
        """``6 of 8 targets met; missed: ...``, saying how many a run did not measure."""
        n_measured = sum(np.isfinite(self.results.get(k, float("nan"))) for k in TARGETS)
        missed, skipped = self.missed(), len(TARGETS) - n_measured
        return (f"{n_measured - len(missed)} of {n_measured} targets met"
                + (f" ({skipped} not measured in this run)" if skipped else "")
                + (f"; missed: {'; '.join(missed)}" if missed else ""))

    def table(self) -> str:
        """The report as Markdown tables."""
        lines = [f"Machine: {self.machine.get('cpu', '?')}, {self.machine.get('cores', '?')} cores, "
                 f"Python {self.machine.get('python', '?')}, OpenCV {self.machine.get('opencv', '?')}", ""]
        sizes = [s for s in SIZES if s in self.stages]
        lines += ["| stage (one core, median ms) | " + " | ".join(
            f"{s} ({self.photos[s]['megapixels']:.1f} MP, face {self.photos[s]['px_per_mm']:.1f} px/mm)"
            for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
        stages = sorted({k for s in sizes for k in self.stages[s]}, key=_stage_order)
        for st in stages:
            lines.append(f"| {st} | " + " | ".join(f"{1000 * self.stages[s].get(st, float('nan')):.1f}"
                                                  for s in sizes) + " |")
        lines.append("| **whole analysis** | " + " | ".join(f"**{1000 * self.analysis_s[s]:.0f}**" for s in sizes)
                     + " |")
        lines.append("| JPEG decode alone (OpenCV) | " + " | ".join(f"{1000 * self.decode_s[s]:.1f}" for s in sizes)
                     + " |")
        lines.append("| **analysis / decode** | " + " | ".join(
            f"**{self.analysis_s[s] / self.decode_s[s]:.2f}x**" for s in sizes) + " |")
        lines += ["", "| target | measured | goal | met |", "|---|---:|---:|:---:|"]
        ok = self.passed()
        for key, (desc, op, thr) in TARGETS.items():
            v = self.results.get(key, float("nan"))
            verdict = "not measured" if not np.isfinite(v) else "yes" if ok[key] else "**no**"
            lines.append(f"| {desc} | {v:.2f} | {op} {thr:g} | {verdict} |")
        for part in (self._floor_text, self._series_text, self._throughput_text, self._memory_text,
                     self._working_table):
            lines += part()
        return "\n".join(lines)

    def _floor_text(self) -> list[str]:
        if not self.floor:
            return []
        fl = self.floor
        return ["", f"Floor of the 12 MP analysis: the decode ({1000 * fl['decode_s']:.1f} ms), the landmarks "
                f"({1000 * fl['landmarks_s']:.1f} ms) and the pore detector alone on the face crop reduced to "
                f"its lowest resolution, {fl['pores_px_per_mm']:g} px/mm ({1000 * fl['pores_s']:.1f} ms; "
                f"{1000 * fl['pores_own_s']:.1f} ms at the photo's own), with no regions, quality checks, "
                f"alignment or other metric, nor the reduction to {fl['pores_px_per_mm']:g} px/mm itself: "
                f"{1000 * fl['total_s']:.0f} ms, **{fl['over_decode']:.2f}x the decode**."]

    def _series_text(self) -> list[str]:
        if not self.series:
            return []
        sr = self.series
        return ["", f"Sample series ({sr['n_photos']} photos, --jobs 2): fresh run {sr['fresh_s']:.1f} s "
                f"(analysis {sr['analysis_s']:.1f} s, outputs {sr['outputs_s']:.1f} s); one subject's charts and "
                f"report on one core {sr['report_s_per_subject']:.2f} s (tables {sr['tables_s']:.2f} s, series "
                f"{sr['series_s']:.2f} s besides); a re-run with nothing new {sr['rerun_s']:.2f} s "
                f"(**{sr['rerun_s'] / sr['fresh_s']:.2f} of the fresh run**)."]

    def _throughput_text(self) -> list[str]:
        if not self.throughput:
            return []
        runs = self.throughput_runs

        def each(k: str, v: float) -> str:
            more = runs.get(k, [])
            return (f"{k.replace('jobs', '--jobs ')}: {v:.2f}"
                    + (f" (runs: {', '.join(f'{x:.2f}' for x in more)})" if len(more) > 1 else ""))

        return ["", "Batch throughput (photos/s, analysis + overlays + store, no report; the best of "
                f"{max((len(v) for v in runs.values()), default=1)} alternating runs): "
                + ", ".join(each(k, v) for k, v in self.throughput.items())]

    def _memory_text(self) -> list[str]:
        if not self.memory:
            return []
        m = self.memory
        return [f"Memory: peak {m.get('peak_rss_mb', float('nan')):.0f} MB analysing 12 MP photos; "
                f"{m.get('n_photos', 0)} photos in one worker: RSS {m.get('rss_start_mb', float('nan')):.0f}"
                f" MB after the first {m.get('warmup', 0)}, {m.get('rss_end_mb', float('nan')):.0f} MB at the end"]

    def _working_table(self) -> list[str]:
        if not self.working_resolution:
            return []
        n = max(r.get("n_photos", 1) for r in self.working_resolution)
        lines = ["", f"| metric (face), mean of {n} photos | full resolution | working resolution | "
                 "difference % | per photo: mean ± SE, largest % |", "|---|---:|---:|---:|---:|"]
        for r in self.working_resolution:
            if r["region"] == "face":
                each = np.array([v for v in r.get("per_photo_diff_pct", [r["diff_pct"]]) if np.isfinite(v)])
                # The SE says how far the mean difference can move with the photos chosen: a threshold
                # detector's count moves by a blob when one crosses its threshold.
                se = each.std(ddof=1) / np.sqrt(each.size) if each.size > 1 else float("nan")
                spread = (f"{each.mean():+.2f} ± {se:.2f}, {np.abs(each).max():.2f}" if each.size
                          else "nan")
                lines.append(f"| {r['metric']} | {r['full']:.4g} | {r['working']:.4g} | {r['diff_pct']:+.2f} | "
                             f"{spread} |")
        return lines

    def to_json(self) -> str:
        d = asdict(self)
        d["targets"] = {k: {"description": v[0], "comparison": v[1], "threshold": v[2],
                            "measured": self.results.get(k), "met": self.passed()[k]} for k, v in TARGETS.items()}
        return json.dumps(d, indent=2, default=float)


def _stage_order(name: str) -> tuple:
    order = ["decode", "landmarks", "calibration", "regions", "quality", "alignment"]
    return (order.index(name), name) if name in order else (len(order) + (name == "writing"), name)


def make_benchmark_photos(sample: Path, out_dir: Path, *, seed: int = 0, close_ups: bool = False,
                          sample_px_per_mm: float = 12.3) -> dict[str, Path]:
    """Phone-sized test photos built from one sample photo: 12 MP and 3 MP portrait JPEGs, and with
    ``close_ups`` 12 MP close-ups whose face is at :data:`CLOSE_UPS` px/mm (the sample at
    ``sample_px_per_mm``, enlarged).

    The sample face is placed in the middle of a 3024 x 4032 (width x height) frame at its own
    resolution (a close selfie: the face about 60% of the frame's width), on a background made of
    the photo itself, enlarged and blurred, with sensor-like noise so that the JPEG decodes like a
    real photo's (a flat background would decode faster and flatter the ratio). The 3 MP photo is
    the 12 MP one halved: the same face at half the resolution.

    Parameters
    ----------
    sample : Path
        The sample photo; it must fit in the 12 MP frame.
    out_dir : Path
        Folder the JPEGs are written to (created if missing).
    seed : int
        Seed of the background's noise.
    close_ups : bool
        Also write the close-ups (``close15``, ``close20``).
    sample_px_per_mm : float
        Resolution of the sample photo's face, px/mm (sets the close-ups' enlargement).

    Returns
    -------
    dict of str to Path
        The written photos by name: ``12mp``, ``3mp`` and, with ``close_ups``, the close-ups.
    """
    src = cv2.imread(str(sample), cv2.IMREAD_COLOR)
    if src is None:
        raise FileNotFoundError(f"cannot read the sample photo {sample}")
    w, h = SIZES["12mp"]
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 25)
    noise = rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    bg = np.clip(bg.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    sh, sw = src.shape[:2]
    if sh > h or sw > w:
        raise ValueError(f"the sample photo ({sw}x{sh}) is larger than a 12 MP frame")
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    bg[y0:y0 + sh, x0:x0 + sw] = src
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"12mp": out_dir / "photo_12mp.jpg", "3mp": out_dir / "photo_3mp.jpg"}
    cv2.imwrite(str(paths["12mp"]), bg, [cv2.IMWRITE_JPEG_QUALITY, 92])
    w3, h3 = SIZES["3mp"]
    cv2.imwrite(str(paths["3mp"]), cv2.resize(bg, (w3, h3), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    if close_ups:
        for name, px_per_mm in CLOSE_UPS.items():
            paths[name] = out_dir / f"photo_{name}.jpg"
            cv2.imwrite(str(paths[name]), _close_up(src, bg, px_per_mm / sample_px_per_mm),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
    return paths


def _close_up(src: np.ndarray, bg: np.ndarray, f: float) -> np.ndarray:
    """The sample face enlarged ``f`` times in the middle of the frame (cut to it where larger)."""
    big = cv2.resize(src, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    out = bg.copy()
    h, w = out.shape[:2]
    sh, sw = big.shape[:2]
    cy, cx = max((sh - h) // 2, 0), max((sw - w) // 2, 0)
    part = big[cy:cy + h, cx:cx + w]
    y0, x0 = (h - part.shape[0]) // 2, (w - part.shape[1]) // 2
    out[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part
    return out


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version(), "opencv": cv2.__version__, "numpy": np.__version__,
            "platform": platform.platform()}


def _one_core():
    """Pin this process to one CPU and OpenCV to one thread; returns a function undoing it."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = cv2.getNumThreads()
    if cpus:
        os.sched_setaffinity(0, {min(cpus)})
    cv2.setNumThreads(1)

    def undo():
        if cpus:
            os.sched_setaffinity(0, cpus)
        cv2.setNumThreads(threads)
    return undo


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _stage_times(path: Path, reference, landmarker, repeats: int) -> tuple[dict, float, float]:
    """Median per-stage seconds, median whole analysis and median decode of one photo."""
    from .analysis import analyse_photo
    from .outputs import CANONICAL_MAPS
    from .worker import overlay_files, write_files

    data = path.read_bytes()

    def decode():
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)

    decode()
    per_stage: dict[str, list[float]] = {}
    totals = []
    # Timed as a batch worker runs: with its freed memory kept for the next photo.
    with tempfile.TemporaryDirectory() as tmp, freed_memory_kept():
        analyse_photo(path, reference=reference, landmarker=landmarker)  # warm-up (model, tables, heap)
        for kind in ("regions", "canonical"):
            (Path(tmp) / kind).mkdir()
        for _ in range(repeats):
            timings: dict = {}
            t0 = time.perf_counter()
            a = analyse_photo(path, reference=reference, landmarker=landmarker, timings=timings,
                              keep_maps=CANONICAL_MAPS)
            totals.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            write_files(Path(tmp), overlay_files(a, "photo"))
            timings["writing"] = time.perf_counter() - t1
            for k, v in timings.items():
                per_stage.setdefault(k, []).append(v)
        decode_s = _median_time(decode, max(repeats, 5))  # in the same heap as the analyses
    stages = {k: statistics.median(v) for k, v in per_stage.items()}
    return stages, statistics.median(totals), decode_s


def _floor(path: Path, landmarker, a, stages: dict, decode_s: float, repeats: int) -> dict:
    """What an analysis that measures pores cannot do without, timed on the photo at ``path``
    (``a``: its analysis without metrics): decoding it, finding the face, and the pore detector
    (its relief signal and scale space) on the face crop reduced, as the analysis reduces a
    finer photo, to the coarsest resolution pores are measured at
    (the pores' resolution floor, :attr:`~skinscan.metrics.Family.floor_px_per_mm`); no skin mask, no other
    stage, and not the reduction itself (so the floor is if anything low). A photo too coarse for pores is an
    error: there is nothing to time.
    """
    from .analysis import analyse_photo
    from .metrics import compute_metrics, family

    floor_px_per_mm = family("pores").floor_px_per_mm

    def pores_s(b):
        def run():
            return compute_metrics(b.rgb, b.masks, mm_per_px=b.scale.mm_per_px, gains=b.gains, families=["pores"])

        with freed_memory_kept():
            if not np.isfinite(run().values["face"]["pore_density"]):  # below the pores' resolution: nothing timed
                raise RuntimeError(f"the floor's pores were not measured at {b.scale.px_per_mm:.2f} px/mm")
            return _median_time(run, max(repeats, 3))

    low = pores_s(analyse_photo(path, landmarker=landmarker, metrics=False, max_px_per_mm=floor_px_per_mm))
    own = pores_s(a)
    total = decode_s + stages.get("landmarks", 0.0) + low
    return {"decode_s": decode_s, "landmarks_s": stages.get("landmarks", 0.0), "pores_px_per_mm": floor_px_per_mm,
            "pores_s": low, "pores_own_s": own, "total_s": total, "over_decode": total / decode_s}


def _pct(new: float, ref: float) -> float:
    return 100.0 * (new - ref) / abs(ref) if np.isfinite(ref) and ref != 0 else float("nan")


def _working_resolution_rows(paths: list[Path], landmarker) -> list[dict]:
    """Per region and metric: the mean over ``paths`` at full and at the working resolution, the
    difference of those means (%), and each photo's own difference (%).

    The means are the target: a detector's count on one face (20-40 scars or spots) moves by one
    when a single blob at its threshold crosses it, 3-5% of the count, in either direction.
    """
    from .analysis import analyse_photo

    per = []
    for path in paths:
        work = analyse_photo(path, landmarker=landmarker)
        full = analyse_photo(path, landmarker=landmarker, full_resolution=True)
        per.append((full.metrics, work.metrics))
    rows = []
    for region, vals in per[0][0].items():
        for metric in vals:
            f = np.array([p[0][region][metric] for p in per], dtype=float)
            w = np.array([p[1][region][metric] for p in per], dtype=float)
            ok = np.isfinite(f) & np.isfinite(w)
            f_mean = float(f[ok].mean()) if ok.any() else float("nan")
            w_mean = float(w[ok].mean()) if ok.any() else float("nan")
            rows.append({"region": region, "metric": metric, "full": f_mean, "working": w_mean,
                         "diff_pct": float(_pct(w_mean, f_mean)), "n_photos": int(ok.sum()),
                         "per_photo_diff_pct": [float(_pct(a, b)) for a, b in zip(w, f)]})
    return rows


def _batch_folder(photos: list[Path], root: Path) -> Path:
    """A subject/session folder of the given photos (copied: the store keys photos by content)."""
    folder = root / "subject" / "2026-01-05"
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(photos):
        shutil.copyfile(p, folder / f"IMG_{i:04d}.jpg")
    return root


def _variants(path: Path, n: int, out_dir: Path) -> list[Path]:
    """``n`` distinct photos from one: the frame shifted by a few pixels (each its own content hash;
    49 shifts, then the JPEG quality steps down)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    out = []
    for i in range(n):
        m = np.float32([[1, 0, (i % 7) - 3], [0, 1, (i // 7) % 7 - 3]])
        v = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        p = out_dir / f"variant_{i:03d}.jpg"
        cv2.imwrite(str(p), v, [cv2.IMWRITE_JPEG_QUALITY, 92 - i // 49])
        out.append(p)
    return out


def _throughput(photos: list[Path], jobs: int, work: Path, model_path) -> float:
    from .batch import run_batch

    out = work / f"out_jobs{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    # The copies carry no EXIF time: the session folder's date and the file time date them.
    # Timed as the command runs it: one job keeps its process's freed memory, as a pool worker does.
    with freed_memory_kept() if jobs <= 1 else contextlib.nullcontext():
        res = run_batch(photos[0].parent, out, jobs=jobs, progress=False, model_path=model_path, allow_file_time=True)
    dt = time.perf_counter() - t0
    if res.n_analysed != len(photos):
        raise RuntimeError(f"the --jobs {jobs} batch analysed {res.n_analysed} of {len(photos)} photos: "
                           f"{res.failures[:2]}")
    return len(photos) / dt


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: the high-water mark of its own address space.

    Read from ``VmHWM`` in ``/proc/self/status``. ``getrusage``'s ``ru_maxrss`` is not this on
    Linux: exec carries the launching process's high-water mark over, so a worker started by a
    1 GB process reports at least 1 GB (the benchmark's own full-resolution analysis made the
    worker "peak" at 962-1042 MB, while it peaked at ~800 MB). ``ru_maxrss`` where there is no
    ``/proc``.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


_MEMORY_SCRIPT = r"""
import json, sys, resource, time
from pathlib import Path
import cv2
cv2.setNumThreads(1)
from skinscan.analysis import analyse_photo
from skinscan.outputs import CANONICAL_MAPS
from skinscan.worker import overlay_files, write_files
from skinscan._heap import keep_freed_memory
from skinscan.benchmark import peak_rss_mb
from skinscan.landmarks import FaceLandmarker
photos = [Path(p) for p in json.loads(sys.argv[1])]
n, warmup, out = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
keep_freed_memory()  # as a batch worker does
samples = []
with FaceLandmarker(sys.argv[5] if sys.argv[5] != "-" else None) as lm:
    for i in range(n):
        a = analyse_photo(photos[i % len(photos)], landmarker=lm, keep_maps=CANONICAL_MAPS)
        write_files(out, overlay_files(a, "photo"))
        del a
        if (i + 1) % max(n // 20, 1) == 0 or i + 1 == warmup:
            samples.append((i + 1, rss_mb()))
print(json.dumps({"samples": samples, "peak_rss_mb": peak_rss_mb()}))
"""


def _memory(photos: list[Path], n: int, warmup: int, work: Path, model_path) -> dict:
    """Run ``n`` analyses in a fresh worker-like process and sample its resident memory."""
    for kind in ("regions", "canonical"):
        (work / kind).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", _MEMORY_SCRIPT, json.dumps([str(p) for p in photos]), str(n), str(warmup),
           str(work), str(model_path) if model_path else "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the memory run failed: {proc.stderr.strip().splitlines()[-1:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = res["samples"]
    start = next(r for i, r in samples if i >= warmup)
    return {"n_photos": n, "warmup": warmup, "samples": samples, "peak_rss_mb": res["peak_rss_mb"],
            "rss_start_mb": start, "rss_end_mb": samples[-1][1], "rss_growth_mb": samples[-1][1] - start}


def run_benchmark(samples: str | os.PathLike = "sample_images", out_dir: str | os.PathLike = "out/benchmark", *,
                  repeats: int = 5, batch_photos: int = 40, batch_runs: int = 2, memory_photos: int = 500,
                  working_photos: int = 12, series: bool = True, model_path=None,
                  progress: bool = True) -> BenchmarkReport:
    """Measure skinscan's speed and memory on phone-sized photos made from the sample series.

    Parameters
    ----------
    samples : path
        The sample series (``sample_images/``): its first two photos are the test photo and the
        reference it is aligned to.
    out_dir : path
        Where the test photos, the batch outputs and ``benchmark.json`` / ``benchmark.md`` go.
    repeats : int
        Timed runs per photo size (medians are reported).
    batch_photos : int
        Distinct 12 MP photos in the ``--jobs 1`` / ``--jobs 2`` throughput batches. Each worker
        pays about a second to start (its landmarker, and its first photo faulting in its
        memory), so a short batch measures the start more than the throughput of an archive.
    batch_runs : int
        Runs of each batch, alternating ``--jobs 1`` and ``--jobs 2``; the best of each is
        reported (another tenant of the machine slows a run, never speeds one up).
    memory_photos : int
        Photos analysed one after another in one process for the memory-growth measurement.
    working_photos : int
        12 MP photos made from the first this many sample photos, each analysed at its working
        resolutions and at full resolution (the means over them are compared).
    series : bool
        Run the sample series as a user would (``--jobs 2``, outputs), time each subject's charts
        and report on one core, and a re-run with nothing new.
    """
    from .discover import discover

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = discover(samples).entries
    if len(entries) < 2:
        raise FileNotFoundError(f"no sample series under {samples}; pass the sample_images folder")

    def say(msg: str) -> None:
        if progress:
            print(f"benchmark: {msg}", file=sys.stderr, flush=True)

    rep = BenchmarkReport(machine=_machine())
    photos = make_benchmark_photos(entries[0].path, out / "photos", close_ups=True)
    ref_photos = make_benchmark_photos(entries[1].path, out / "reference", close_ups=True)
    _measure_stages(rep, photos, ref_photos, repeats, model_path, say)
    if series:
        say("the sample series: a fresh run, its outputs on one core, and a re-run with nothing new")
        rep.series = _series_run(Path(samples), _fresh(out / "series"), model_path)
        rep.results["report_s_per_subject"] = rep.series["report_s_per_subject"]
        rep.results["rerun_over_fresh"] = rep.series["rerun_s"] / rep.series["fresh_s"]
    if batch_photos > 0:
        say(f"batch throughput, {batch_photos} photos of 12 MP, --jobs 1 and --jobs 2, {max(batch_runs, 1)} runs each")
        _measure_throughput(rep, photos["12mp"], batch_photos, batch_runs, out, model_path)
    if memory_photos > 0:
        say(f"memory over {memory_photos} photos in one worker")
        mem_photos = _variants(photos["12mp"], 4, _fresh(out / "memory_photos"))
        warmup = min(20, max(memory_photos // 5, 1))
        rep.memory = _memory(mem_photos, memory_photos, warmup, out / "memory", model_path)
        rep.results["peak_rss_mb_12mp"] = rep.memory["peak_rss_mb"]
        rep.results["rss_growth_mb"] = rep.memory["rss_growth_mb"]
    if working_photos > 0:
        chosen = entries[:working_photos]
        say(f"working resolution vs full resolution, {len(chosen)} photos of 12 MP")
        _measure_working_resolution(rep, photos["12mp"], chosen, out, model_path)
    (out / "benchmark.json").write_text(rep.to_json())
    (out / "benchmark.md").write_text(rep.table() + "\n")
    return rep


def _measure_stages(rep: BenchmarkReport, photos: dict, ref_photos: dict, repeats: int, model_path, say) -> None:
    """Per-stage and whole-analysis times of each photo size on one core, and the 12 MP floor."""
    from .analysis import analyse_photo
    from .landmarks import FaceLandmarker

    undo = _one_core()
    try:
        with FaceLandmarker(model_path) as lm:
            for size, path in photos.items():
                say(f"per-stage times, {size}")
                ref = analyse_photo(ref_photos[size], landmarker=lm, metrics=False)
                stages, total, dec = _stage_times(path, ref, lm, repeats)
                a = analyse_photo(path, landmarker=lm, metrics=False)
                rep.photos[size] = {"path": str(path), "width": a.image_shape[1], "height": a.image_shape[0],
                                    "megapixels": a.image_shape[0] * a.image_shape[1] / 1e6,
                                    "px_per_mm": a.photo_px_per_mm, "analysed_px_per_mm": a.scale.px_per_mm}
                rep.stages[size], rep.analysis_s[size], rep.decode_s[size] = stages, total, dec
                if size == "12mp":
                    rep.floor = _floor(path, lm, a, stages, dec, repeats)
    finally:
        undo()
    rep.results["analysis_over_decode_12mp"] = rep.analysis_s["12mp"] / rep.decode_s["12mp"]
    rep.results["close20_over_12mp"] = rep.analysis_s["close20"] / rep.analysis_s["12mp"]


def _measure_throughput(rep: BenchmarkReport, photo: Path, n: int, runs: int, out: Path, model_path) -> None:
    """Photos per second of ``--jobs 1`` and ``--jobs 2`` batches of ``n`` variants of ``photo``,
    alternating, the best of ``runs`` each."""
    variants = _variants(photo, n, _fresh(out / "variants"))
    folder = _batch_folder(variants, _fresh(out / "batch"))
    batch_list = sorted((folder / "subject" / "2026-01-05").glob("*.jpg"))
    for _ in range(max(runs, 1)):
        for jobs in (1, 2):
            rep.throughput_runs.setdefault(f"jobs{jobs}", []).append(_throughput(batch_list, jobs, out, model_path))
    rep.throughput = {k: max(v) for k, v in rep.throughput_runs.items()}
    rep.results["jobs2_over_jobs1"] = rep.throughput["jobs2"] / rep.throughput["jobs1"]


def _measure_working_resolution(rep: BenchmarkReport, photo: Path, chosen: list, out: Path, model_path) -> None:
    """The metrics at their working resolutions against full resolution on 12 MP copies of ``chosen``.

    Run last: after these analyses, half at full resolution, the process holds about 0.5 GB, and
    batch workers forked from it would start heavier than a user's.
    """
    from .landmarks import FaceLandmarker

    work_photos = [photo] + [make_benchmark_photos(e.path, out / "working" / f"{i:02d}")["12mp"]
                             for i, e in enumerate(chosen[1:], 1)]
    undo = _one_core()
    try:
        with FaceLandmarker(model_path) as lm:
            rep.working_resolution = _working_resolution_rows(work_photos, lm)
    finally:
        undo()
    diffs = [abs(r["diff_pct"]) for r in rep.working_resolution if r["region"] == "face" and np.isfinite(r["diff_pct"])]
    rep.results["working_vs_full_max_rel_diff_pct"] = max(diffs) if diffs else float("nan")


def _series_run(samples: Path, out: Path, model_path) -> dict:
    """The sample series as a user runs it: analysed with ``--jobs 2`` and its outputs written (the
    fresh run), its outputs written again on one core (timed per subject), and a re-run of both with
    nothing new."""
    from .batch import run_batch
    from .outputs import write_outputs

    t0 = time.perf_counter()
    res = run_batch(samples, out, jobs=2, progress=False, model_path=model_path)
    t1 = time.perf_counter()
    write_outputs(out, progress=False)
    fresh = time.perf_counter() - t0
    undo = _one_core()
    try:
        timings: dict = {}
        write_outputs(out, progress=False, force=True, timings=timings)
    finally:
        undo()
    t2 = time.perf_counter()
    run_batch(samples, out, jobs=2, progress=False, model_path=model_path)
    write_outputs(out, progress=False)
    rerun = time.perf_counter() - t2
    subjects = [v for k, v in timings.items() if k.startswith("subject:")]
    return {"n_photos": res.n_photos, "fresh_s": fresh, "analysis_s": t1 - t0, "outputs_s": fresh - (t1 - t0),
            "report_s_per_subject": max(subjects) if subjects else float("nan"), "tables_s": timings["tables"],
            "series_s": timings.get("series", float("nan")), "rerun_s": rerun}


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
