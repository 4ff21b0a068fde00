"""Generate skinscan's sample treatment series from scikit-image's astronaut photo (public domain, NASA).

Run from the repository root::

    python tools/make_sample_images.py [--out out/samples]

The committed ``sample_images/`` were made with skinscan 0.3's phantom; today's phantom gives the
face real skin's dense pores and a phone's exposure, so this now writes a different series (keep it
apart from ``sample_images/``, whose results the tests hold as their reference).

The face is cropped, upscaled to about 12 px/mm, smoothed and given procedural skin
micro-texture: that is the un-injected *master*. Each of five sessions, 4-5 weeks apart, injects
concerns into the master with :mod:`skinscan.validation.phantom` (redness, extra pores, atrophic scars,
fine lines, brown spots, extra texture), at doses that fall session by session, and then takes two
"photos" of it with independent nuisances (rotation, scale, shift, exposure, white balance,
sensor noise, JPEG quality). Everything is drawn from one seed, so the output is reproducible.

Blobs and lines keep their places across sessions: one pool is drawn at 1.5x the baseline dose in
a random order, and every session keeps the first ``round(density x area)`` objects of it (lines:
the first ones up to the total length), i.e. a random subset of scars, spots, pores and lines
disappears completely from one session to the next while the rest stay exactly as they were.
The extra texture is one noise field whose amplitude falls; redness is a uniform haemoglobin
density over the face, solved for the target a* rise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from skinscan.validation import phantom
from skinscan.color import rgb_to_lab
from skinscan.landmarks import FaceLandmarker
from skinscan.geometry import IRIS_DIAMETER_MM, estimate_scale

SEED = phantom.MASTER_SEED
SUBJECT = "astronaut"
DATES = ("2026-01-05", "2026-02-06", "2026-03-10", "2026-04-09", "2026-05-12")
TIMES = ("10:04:12", "18:31:40", "09:15:03", "12:47:55", "20:02:26")  # first photo; the second 37 s later
PHOTOS_PER_SESSION = 2
#: Photos after the first treatment (done right after the baseline photos): folder date, label,
#: time, and the extra post-treatment redness (mean delta a* over the face) on top of session 0.
RECOVERY = (("2026-01-06", "day 1", "09:12:40", 5.0), ("2026-01-08", "day 3", "19:40:05", 1.2))
NEEDLE_DEPTH_MM = (1.0, 1.0, 1.5, 1.5, 1.5)

#: Injected doses per session (baseline first), in the units of :mod:`skinscan.validation.phantom`.
SCHEDULE = {
    "delta_a_star": (4.0, 3.0, 2.0, 1.2, 0.5),  # over the face, vs the master
    "pore_density_per_cm2": (40.0, 30.0, 20.0, 12.0, 6.0),  # extra pores, cheeks + nose
    "scar_density_per_cm2": (1.2, 0.9, 0.6, 0.4, 0.2),  # atrophic scars, cheeks
    "line_density_mm_per_cm2": (12.0, 9.0, 6.0, 4.0, 2.0),  # fine lines, forehead + periorbital
    "spot_density_per_cm2": (0.6, 0.48, 0.36, 0.24, 0.12),  # brown spots, cheeks + forehead
    "texture_energy_gain": (0.30, 0.22, 0.15, 0.08, 0.03),  # 0.2-2 mm band energy, face
}
NUISANCE = {"angle_deg": 4.0, "scale": (0.92, 1.08), "shift_px": 40.0, "exposure_ev": 0.2, "wb_gain": 0.04,
            "jpeg_quality": (88, 92), "noise_sigma": 0.006}


def union(masks: dict, names) -> np.ndarray:
    return np.logical_or.reduce([masks[n] for n in names])


def inject(master, masks, mm_per_px, dose, placements, seeds):
    """The master with the doses ``dose``; objects are taken from the ``placements`` records when given."""
    img, tex = phantom.add_texture(master, masks["face"], mm_per_px=mm_per_px, energy_gain=dose["texture_energy_gain"],
                                   rng=np.random.default_rng(seeds["texture"]))
    img, red = phantom.redness_for_delta_a(img, masks["face"], dose["delta_a_star"])
    gt = {"texture": tex, "redness": red}
    blobs = (("spots", phantom.add_spots, ("cheek_left", "cheek_right", "forehead_below_fringe"),
              dose["spot_density_per_cm2"], {"diameter_mm": (1.0, 3.0), "melanin_od": 0.22}),
             ("pores", phantom.add_pores, ("cheek_left", "cheek_right", "nose"), dose["pore_density_per_cm2"],
              {"diameter_mm": (0.15, 0.3), "depth": 0.08}),
             ("scars", phantom.add_scars, ("cheek_left", "cheek_right"), dose["scar_density_per_cm2"],
              {"diameter_mm": (1.0, 3.0), "depth": 0.1}))
    for name, fn, regions, density, kw in blobs:
        img, gt[name] = fn(img, union(masks, regions), mm_per_px=mm_per_px, density_per_cm2=density,
                           rng=np.random.default_rng(seeds[name]), placement=placements.get(name), **kw)
    lines = (("lines_forehead", ("forehead_below_fringe",), 0.0, 8.0),
             ("lines_periorbital_right", ("periorbital_right",), 10.0, 25.0),
             ("lines_periorbital_left", ("periorbital_left",), -10.0, 25.0))
    for name, regions, angle, spread in lines:
        img, gt[name] = phantom.add_lines(img, union(masks, regions), mm_per_px=mm_per_px,
                                          density_mm_per_cm2=dose["line_density_mm_per_cm2"], depth=0.07,
                                          width_mm=(0.2, 0.5),
                                          orientation_deg=angle, orientation_sd_deg=spread,
                                          rng=np.random.default_rng(seeds[name]), placement=placements.get(name))
    return img, gt


def photograph(img, rng):
    """One 'photo' of the injected face: pose jitter, exposure, white balance, sensor noise."""
    n = NUISANCE
    p = {"angle_deg": rng.uniform(-n["angle_deg"], n["angle_deg"]), "scale": rng.uniform(*n["scale"]),
         "shift_px": rng.uniform(-n["shift_px"], n["shift_px"], 2).tolist(),
         "exposure_ev": rng.uniform(-n["exposure_ev"], n["exposure_ev"]),
         "wb_gains": rng.uniform(1 - n["wb_gain"], 1 + n["wb_gain"], 3).tolist(),
         "noise_sigma": n["noise_sigma"],
         "jpeg_quality": int(rng.integers(n["jpeg_quality"][0], n["jpeg_quality"][1] + 1))}
    out, mat = phantom.similarity(img, angle_deg=p["angle_deg"], scale=p["scale"], shift_px=p["shift_px"])
    out = phantom.white_balance(phantom.exposure(out, p["exposure_ev"]), p["wb_gains"])
    out = phantom.sensor_noise(out, p["noise_sigma"], rng)
    p["matrix_master_to_photo"] = mat.tolist()
    return out, p


def save_jpeg(path: Path, rgb: np.ndarray, quality: int, when: str) -> None:
    """JPEG with no metadata but the capture time (EXIF DateTime and DateTimeOriginal)."""
    exif = Image.Exif()
    exif[0x0132] = when
    exif.get_ifd(0x8769)[0x9003] = when
    Image.fromarray(rgb).save(path, "JPEG", quality=quality, optimize=True, exif=exif.tobytes())


def _summary(rec: dict) -> dict:
    """The scalar ground truth of a phantom record (lists of per-object data dropped)."""
    return {k: round(float(v), 6) for k, v in rec.items() if np.ndim(v) == 0 and v is not None}


def _objects(rec: dict) -> dict:
    """Where each blob is (master px) and how big (mm)."""
    return {"centres_px": np.round(rec["centres_px"], 1).tolist(),
            "diameters_mm": np.round(rec["diameters_mm"], 3).tolist()}


def _session_photos(img, folder: Path, date: str, k: int, nuisance_rng) -> list[dict]:
    """Photograph one session's face PHOTOS_PER_SESSION times, 37 s apart, and save the JPEGs."""
    photos = []
    for j in range(PHOTOS_PER_SESSION):
        hh, mm, ss = (int(v) for v in TIMES[k].split(":"))
        t = hh * 3600 + mm * 60 + ss + 37 * j
        when = f"{date.replace('-', ':')} {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
        name = f"IMG_{date.replace('-', '')}_{when[-8:].replace(':', '')}.jpg"
        photo, nuis = photograph(img, nuisance_rng)
        save_jpeg(folder / name, photo, nuis["jpeg_quality"], when)
        photos.append({"file": f"{date}/{name}", "datetime_original": when, **nuis})
    return photos


def _session_truth(k: int, date: str, gt: dict, lab, lab_master, photos: list) -> dict:
    """What was injected in session ``k``, for ground_truth.json."""
    lines = [gt[n] for n in gt if n.startswith("lines_")]
    line_mm = sum(r["total_length_mm"] for r in lines)
    line_cm2 = sum(r["area_cm2"] for r in lines)
    print(f"session {k} {date}: dA*={lab[1] - lab_master[1]:.2f} pores={gt['pores']['count']} "
          f"scars={gt['scars']['count']} spots={gt['spots']['count']} lines={line_mm:.0f} mm "
          f"texture={gt['texture']['energy_gain']:.3f}")
    return {
        "session": k, "date": date,
        "delta_a_star": {"target": SCHEDULE["delta_a_star"][k],
                         "applied": round(float(lab[1] - lab_master[1]), 3),
                         "redness_only": round(gt["redness"]["delta_a_star"], 3),
                         "hb_od": round(gt["redness"]["hb_od"], 5), "region": "face"},
        "pores_added": {**_summary(gt["pores"]), "regions": ["cheek_left", "cheek_right", "nose"]},
        "scars": {**_summary(gt["scars"]), "regions": ["cheek_left", "cheek_right"], **_objects(gt["scars"])},
        "lines": {"density_mm_per_cm2": round(line_mm / line_cm2, 4), "total_length_mm": round(line_mm, 2),
                  "area_cm2": round(line_cm2, 3),
                  "regions": ["forehead_below_fringe", "periorbital_right", "periorbital_left"],
                  **{n: _summary(gt[n]) for n in gt if n.startswith("lines_")}},
        "spots": {**_summary(gt["spots"]), "regions": ["cheek_left", "cheek_right", "forehead_below_fringe"],
                  **_objects(gt["spots"])},
        "texture": {"energy_gain_target": SCHEDULE["texture_energy_gain"][k], **_summary(gt["texture"]),
                    "band_mm": list(phantom.TEXTURE_BAND_MM), "region": "face"},
        "photos": photos,
    }


def _recovery(root: Path, baseline_img, face_mask, nuisance_rng) -> list[dict]:
    """Healing after the first treatment: redness on top of session 0, fading by day 3."""
    recovery = []
    for date, label, when_t, extra in RECOVERY:
        folder = root / f"{date} {label}"
        folder.mkdir(exist_ok=True)
        img, red = phantom.redness_for_delta_a(baseline_img, face_mask, extra)
        when = f"{date.replace('-', ':')} {when_t}"
        name = f"IMG_{date.replace('-', '')}_{when_t.replace(':', '')}.jpg"
        photo, nuis = photograph(img, nuisance_rng)
        save_jpeg(folder / name, photo, nuis["jpeg_quality"], when)
        recovery.append({"file": f"{date} {label}/{name}", "datetime_original": when,
                         "extra_delta_a_star": round(red["delta_a_star"], 3), "after_treatment_of": DATES[0], **nuis})
    return recovery


def _truth(m, areas: dict, sessions: list, recovery: list) -> dict:
    """ground_truth.json: the master, the schedule, every session's and recovery photo's injections."""
    micro = m.microtexture
    return {
        "subject": SUBJECT, "seed": SEED,
        "source": "skimage.data.astronaut() (NASA photo of Eileen Collins, public domain), 512 x 512",
        "crop_xyxy": list(phantom.ASTRONAUT_CROP_XYXY), "upscale": phantom.ASTRONAUT_UPSCALE,
        "master_shape": list(m.rgb.shape[:2]), "mm_per_px": round(m.mm_per_px, 6), "px_per_mm": round(1 / m.mm_per_px, 4),
        "iris_diameter_mm": IRIS_DIAMETER_MM, "region_area_cm2": areas,
        "baseline_microtexture": {"pores": _summary(micro["pores"]), "roughness": micro["roughness"],
                                  "mottle_od": micro["mottle_od"]},
        "schedule": {k: list(v) for k, v in SCHEDULE.items()}, "nuisance_ranges": NUISANCE,
        "notes": ("Injected quantities are in the master's pixel frame (matrix_master_to_photo maps master px "
                  "to photo px). Densities are per cm2 of the union of the listed regions (region_masks with "
                  "default options on the master; forehead_below_fringe is the forehead with "
                  "forehead_extension_mm=0, as her fringe covers the standard extension). Objects keep their "
                  "places; each session keeps a prefix of one random pool. delta_a_star.applied is the mean a* "
                  "over the face mask, all concerns injected, minus the master's."),
        "sessions": sessions,
        "recovery": recovery,
    }


def _faces_found(lm, root: Path, photos: list) -> int:
    """Every photo must still be a findable face: the number that are not."""
    failed = 0
    for p in photos:
        rgb = np.asarray(Image.open(root / p["file"]).convert("RGB"))
        try:
            found = lm.detect(rgb)
            print(f"  {p['file']}: face found, {estimate_scale(found).px_per_mm:.2f} px/mm")
        except Exception as exc:  # report every photo, then fail
            failed += 1
            print(f"  {p['file']}: NO FACE ({exc})")
    return failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/samples", type=Path, help="output folder (default: out/samples)")
    args = ap.parse_args(argv)
    root = args.out / SUBJECT
    root.mkdir(parents=True, exist_ok=True)
    names = ("texture", "spots", "pores", "scars", "lines_forehead", "lines_periorbital_right",
             "lines_periorbital_left", "nuisance")
    seeds = dict(zip(names, np.random.SeedSequence(SEED).generate_state(len(names)).tolist()))
    nuisance_rng = np.random.default_rng(seeds["nuisance"])

    with FaceLandmarker() as lm:
        m = phantom.master_face(lm, seed=SEED)
        master, mm_per_px, masks = m.rgb, m.mm_per_px, m.masks
        lab_master = rgb_to_lab(master[masks["face"]]).mean(axis=0)
        areas = {k: round(float(v.sum()) * mm_per_px**2 / 100, 3) for k, v in masks.items()}
        # One pool of objects at 1.5x the baseline dose; every session keeps a prefix of it, so the
        # counts follow the schedule exactly and healed objects vanish while the rest stay put.
        pool_dose = {k: 1.5 * v[0] for k, v in SCHEDULE.items()}
        _, pool = inject(master, masks, mm_per_px, pool_dose, {}, seeds)
        placements = {n: r for n, r in pool.items() if n not in ("texture", "redness")}
        sessions = []
        for k, date in enumerate(DATES):
            img, gt = inject(master, masks, mm_per_px, {n: v[k] for n, v in SCHEDULE.items()}, placements, seeds)
            if k == 0:
                baseline_img = img
            lab = rgb_to_lab(img[masks["face"]]).mean(axis=0)
            folder = root / date
            folder.mkdir(exist_ok=True)
            photos = _session_photos(img, folder, date, k, nuisance_rng)
            sessions.append(_session_truth(k, date, gt, lab, lab_master, photos))
        recovery = _recovery(root, baseline_img, masks["face"], nuisance_rng)
        with open(root / "sessions.csv", "w", newline="") as fh:
            fh.write("date,session,treatment,needle_depth_mm,notes\n")
            for date, depth in zip(DATES, NEEDLE_DEPTH_MM):
                fh.write(f"{date},{date},microneedling,{depth},photos taken before the procedure\n")
        (root / "ground_truth.json").write_text(json.dumps(_truth(m, areas, sessions, recovery), indent=1))
        failed = _faces_found(lm, root, [p for s in sessions for p in s["photos"]] + recovery)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
