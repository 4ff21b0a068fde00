"""The ``skinscan`` command: argument parsing and progress only; the work is in the library."""

from __future__ import annotations

import argparse
import csv
import sys
import traceback
from pathlib import Path

EXAMPLES = """\
examples:
  skinscan analyse photos/ --out out/         analyse every photo under photos/
  skinscan demo                               analyse sample_images/ into out/
  skinscan validate --draws 8                 prove the metrics on the phantom protocol
"""


def _discover(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Photo files under the given paths (sorted), and the paths that are not photos with a reason."""
    from .io import is_photo_file

    photos, skipped = [], []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    (photos.append(f) if is_photo_file(f) else None)
        elif p.is_file():
            photos.append(p)
        else:
            skipped.append((p, "no such file or folder"))
    return photos, skipped


def _subject_of(path: Path, roots: list[Path]) -> str:
    """The first folder below the root a photo was found under (its subject), else the root's name."""
    for r in roots:
        try:
            rel = path.relative_to(r)
        except ValueError:
            continue
        return rel.parts[0] if len(rel.parts) > 2 else r.name
    return path.parent.name


def _safe_stem(path: Path, roots: list[Path]) -> str:
    for r in roots:
        try:
            rel = path.relative_to(r)
            return "__".join(rel.with_suffix("").parts)
        except ValueError:
            continue
    return path.stem


def cmd_analyse(args: argparse.Namespace) -> int:
    from .analysis import analyse_photo
    from .errors import SkinscanError
    from .io import save_jpeg
    from .landmarks import FaceLandmarker
    from .progress import Progress
    from .regions import draw_regions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "regions").mkdir(exist_ok=True)
    (out / "canonical").mkdir(exist_ok=True)
    roots = [Path(p) for p in args.paths if Path(p).is_dir()]
    photos, skipped = _discover(args.paths)
    if not photos and not skipped:
        print(f"skinscan: no photos found under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    rows, references, failed = [], {}, 0
    with FaceLandmarker(args.model) as lm:
        bar = Progress(photos, "analysing", enabled=not args.quiet)
        for path in bar:
            subject = _subject_of(path, roots)
            bar.set_postfix(path.name)
            try:
                res = analyse_photo(path, reference=references.get(subject), landmarker=lm)
            except SkinscanError as exc:
                failed += 1
                rows.append({"subject": subject, "photo": str(path), "status": "skipped", "error": exc.reason})
                if args.debug:
                    traceback.print_exc()
                continue
            references.setdefault(subject, res)
            stem = _safe_stem(path, roots)
            save_jpeg(out / "regions" / f"{stem}.jpg", draw_regions(res.rgb, res.masks), quality=88)
            can, _ = res.canonical()
            save_jpeg(out / "canonical" / f"{stem}.jpg", can, quality=90)
            rows.append({"subject": subject, "status": "analysed", "error": "", **res.record()})
    for p, why in skipped:
        failed += 1
        rows.append({"subject": "", "photo": str(p), "status": "skipped", "error": why})
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(out / "photos.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    n_ok = sum(r["status"] == "analysed" for r in rows)
    flagged = sum(bool(r.get("quality_flags")) for r in rows if r["status"] == "analysed")
    print(f"skinscan: {n_ok} of {len(rows)} photos analysed ({flagged} with quality flags), "
          f"{failed} skipped; table: {out / 'photos.csv'}")
    for r in rows:
        if r["status"] != "analysed":
            print(f"  skipped {r['photo']}: {r['error']}", file=sys.stderr)
    return 0 if failed == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    src = Path(args.samples)
    if not src.is_dir():
        print(f"skinscan: sample folder {src} not found; run from the skinscan checkout or pass --samples DIR",
              file=sys.stderr)
        return 2
    args.paths = [str(src)]
    return cmd_analyse(args)


def cmd_validate(args: argparse.Namespace) -> int:
    import json

    from .validate import run_validation

    tones = tuple(args.tones.split(","))
    rep = run_validation(n_draws=args.draws, tones=tones, jobs=args.jobs, seed=args.seed, progress=not args.quiet)
    table = rep.table()
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.md").write_text(table + "\n")
        (out / "validation.json").write_text(rep.to_json())
    fails = rep.failures()
    print(f"skinscan validate: {'all thresholds met' if not fails else str(len(fails)) + ' thresholds missed: ' + ', '.join(fails)}")
    return 0 if not fails else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skinscan", description="Measure facial skin change across microneedling "
                                "sessions from ordinary photos, locally, in millimetres.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--model", default=None, help="face_landmarker.task to use (default: $SKINSCAN_MODEL, then the shipped copy)")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyse", aliases=["analyze"], help="analyse photos and folders of photos",
                       epilog="example: skinscan analyse photos/ --out out/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders (searched recursively)")
    a.add_argument("--out", default="out", help="output folder (default: out)")
    a.set_defaults(func=cmd_analyse)
    d = sub.add_parser("demo", help="analyse the bundled sample series into out/",
                       epilog="example: skinscan demo --out out/")
    d.add_argument("--samples", default="sample_images", help="sample folder (default: sample_images)")
    d.add_argument("--out", default="out", help="output folder (default: out)")
    d.set_defaults(func=cmd_demo)
    v = sub.add_parser("validate", help="run the phantom protocol and print the validation table",
                       epilog="example: skinscan validate --draws 8 --out out/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--draws", type=int, default=8, help="nuisance draws per dose (default: 8)")
    v.add_argument("--tones", default="light,deep", help="skin tones: light, deep or both (default: light,deep)")
    v.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default=None, help="also write validation.md and validation.json here")
    v.set_defaults(func=cmd_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for k in ("debug", "quiet", "model"):
        args.__dict__.setdefault(k, None)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("skinscan: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: one line unless --debug
        from .errors import SkinscanError

        if args.debug:
            raise
        kind = "error" if isinstance(exc, SkinscanError) else f"internal error ({type(exc).__name__})"
        print(f"skinscan: {kind}: {exc} (run with --debug for details)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
