"""The ``skinscan`` command: argument parsing and progress only; the work is in the library."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

EXAMPLES = """\
examples:
  skinscan analyse photos/ --out out/         analyse every photo under photos/, write tables,
                                              charts and a report per subject
  skinscan report --out out/                  rebuild the reports from out/skinscan.db
  skinscan demo                               analyse sample_images/ into out/
  skinscan validate --draws 8                 prove the metrics on the phantom protocol
  skinscan benchmark                          time every stage against the JPEG decode
"""


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"unknown chart format {', '.join(bad) or repr(text)}; "
                                         "use png, svg and/or pdf")
    return formats


def cmd_analyse(args: argparse.Namespace) -> int:
    from ._heap import freed_memory_kept
    from .batch import run_batch
    from .outputs import write_outputs

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"skinscan: no such file or folder: {', '.join(map(_text, missing))}; check the path (nothing was "
              "analysed, and nothing stored from it was removed)", file=sys.stderr)
        return 2
    if args.executor == "local" and args.scheduler:
        print("skinscan: --scheduler runs the batch on Dask; drop --executor local", file=sys.stderr)
        return 2
    scheduler = args.scheduler or ("local" if args.executor == "dask" else None)
    if scheduler is not None:
        from .distributed import check_scheduler
        from .errors import SkinscanError

        try:
            check_scheduler(scheduler)
        except SkinscanError as exc:
            print(f"skinscan: {exc}", file=sys.stderr)
            return 2
        if not args.debug:  # a lost scheduler or worker is skinscan's one line; Dask's own log is for --debug
            logging.disable(logging.ERROR)
    # This process is the command's: when it analyses the photos itself it keeps its freed memory for
    # the next photo, as a pool worker does (a notebook's interpreter is never tuned by run_batch).
    in_process = scheduler is None and args.jobs <= 1
    with freed_memory_kept() if in_process else contextlib.nullcontext():
        res = run_batch(args.paths, args.out, jobs=args.jobs, allow_file_time=args.allow_file_time,
                        model_path=args.model, progress=not args.quiet, busy_timeout=args.wait, scheduler=scheduler)
    if not args.no_report:
        if not (res.n_analysed or res.n_removed):  # said at once: what follows is only checking the outputs
            print(f"skinscan: nothing new to analyse ({res.n_cached} photos already in the store)", file=sys.stderr)
        written = write_outputs(args.out, paths=args.paths, formats=args.formats,
                                include_flagged=args.include_flagged, progress=not args.quiet, busy_timeout=args.wait)
        if written.up_to_date and not written.written:
            res.notes.append("charts and reports up to date" + ("" if written.changes_written else ": nothing rewritten"))
    for path, reason in res.failures:
        print(_text(f"  skipped {_shown(path)}: {reason}"), file=sys.stderr)
    for note in res.notes:
        print(_text(f"  note: {note}"), file=sys.stderr)
    print(_text(f"skinscan: {res.summary()}"))
    return 0 if res.ok else 1


def cmd_outputs(args: argparse.Namespace) -> int:
    from .outputs import write_outputs
    from .store import STORE_NAME

    if not (Path(args.out) / STORE_NAME).is_file():
        print(f"skinscan: {Path(args.out) / STORE_NAME} not found; run 'skinscan analyse PATH --out {args.out}' first",
              file=sys.stderr)
        return 2
    written = write_outputs(args.out, paths=args.photos or None, formats=args.formats,
                            include_flagged=args.include_flagged, charts=args.command == "chart",
                            reports=args.command == "report", progress=not args.quiet, busy_timeout=args.wait,
                            force=args.force)
    for note in written.notes:
        print(_text(f"  note: {note}"), file=sys.stderr)
    print(_text(f"skinscan: {written.summary('charts' if args.command == 'chart' else 'reports', args.out)}"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    src = Path(args.samples)
    if not src.is_dir():
        print(f"skinscan: sample folder {src} not found; run from the skinscan checkout or pass --samples DIR",
              file=sys.stderr)
        return 2
    args.paths = [str(src)]
    return cmd_analyse(args)


def cmd_validate(args: argparse.Namespace) -> int:

    from .errors import SkinscanError
    from .validation.protocol import CONCERNS, FACES, run_validation

    tones = tuple(args.tones.split(","))
    faces = tuple(args.faces.split(","))
    concerns = tuple(args.concerns.split(",")) if args.concerns else None
    for what, given, known in (("tone", tones, ("light", "deep")), ("face", faces, FACES),
                               ("concern", concerns or (), tuple(c.name for c in CONCERNS))):
        unknown = [g for g in given if g not in known]
        if unknown:
            raise SkinscanError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.px_per_mm is not None and faces != ("sample",):
        raise SkinscanError("--px-per-mm photographs the sample face only (the close-up has a resolution of its "
                            "own): add --faces sample")
    rep = run_validation(n_draws=args.draws, faces=faces, tones=tones, jobs=args.jobs, seed=args.seed,
                         concerns=concerns, px_per_mm=args.px_per_mm, progress=not args.quiet)
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


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import run_benchmark

    rep = run_benchmark(args.samples, args.out, repeats=args.repeats, batch_photos=args.batch_photos,
                        batch_runs=args.batch_runs, memory_photos=args.memory_photos, working_photos=args.working_photos,
                        series=not args.no_series, model_path=args.model, progress=not args.quiet)
    print(rep.table())
    print(f"skinscan benchmark: {rep.verdict()} (table and JSON in {args.out})")
    return 0 if not rep.missed() else 1


def _global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """--debug, --quiet and --model, accepted before and after the command.

    On the commands their default is ``argparse.SUPPRESS``: an option not repeated after the
    command then leaves the value given before it alone instead of resetting it.
    """
    unset = argparse.SUPPRESS if on_command else None
    parser.add_argument("--debug", action="store_true", default=unset or False,
                        help="show full tracebacks and warnings")
    parser.add_argument("--quiet", action="store_true", default=unset or False, help="no progress bar")
    parser.add_argument("--model", default=unset,
                        help="face_landmarker.task to use (default: $SKINSCAN_MODEL, then the shipped copy)")


def build_parser() -> argparse.ArgumentParser:
    """The ``skinscan`` command line: global options, and one subcommand per task.

    Returns
    -------
    argparse.ArgumentParser
        Each subcommand sets ``func``, the function that runs it on the parsed arguments.
    """
    p = argparse.ArgumentParser(prog="skinscan", description="Measure facial skin change across microneedling "
                                "sessions from ordinary photos, locally, in millimetres.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(p, on_command=False)
    from ._version import version_text

    p.add_argument("--version", action="version", version=version_text())
    shared = argparse.ArgumentParser(add_help=False)
    _global_options(shared, on_command=True)
    sub = p.add_subparsers(dest="command", required=True)
    _add_analyse(sub, shared)
    _add_outputs(sub, shared)
    _add_demo(sub, shared)
    _add_validate(sub, shared)
    _add_benchmark(sub, shared)
    return p


def _output_options(sp: argparse.ArgumentParser, *, photos: bool) -> None:
    """The options of the commands that write an output folder; with ``photos``, of those that analyse photos."""
    sp.add_argument("--out", default="out", help="output folder (default: out)")
    sp.add_argument("--formats", default=("png",), type=_formats,
                    help="chart formats, comma-separated: png,svg,pdf (default: png)")
    sp.add_argument("--include-flagged", action="store_true",
                    help="keep photos that failed a blocking quality check in the trends")
    sp.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                    help="how long to wait for another skinscan writing the same --out (default: 30)")
    if photos:
        sp.add_argument("--jobs", type=int, default=_cpus(),
                        help=f"worker processes, one photo each (default: the {_cpus()} CPUs available)")
        sp.add_argument("--executor", choices=("local", "dask"), default=None,
                        help="where photos are analysed: local processes (default) or a Dask cluster; "
                             "dask without --scheduler starts a local one of --jobs workers")
        sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="analyse on the Dask cluster of this scheduler (tcp://HOST:PORT); workers "
                             "must see the photos under the same paths. Needs skinscan[distributed]")
        sp.add_argument("--allow-file-time", action="store_true",
                        help="date photos without EXIF capture time by their file time")
        sp.add_argument("--no-report", action="store_true", help="analyse only; no charts or reports")


def _add_analyse(sub, shared: argparse.ArgumentParser) -> None:
    a = sub.add_parser("analyse", aliases=["analyze"], parents=[shared],
                       help="analyse photo folders into tables, charts and reports",
                       epilog="example: skinscan analyse photos/ --out out/ --jobs 2\n"
                              "         skinscan analyse photos/ --out out/ --scheduler tcp://HOST:8786\n\n"
                              "layout: photos/<subject>/<session>/*.jpg with session folders named by date\n"
                              "(2026-03-14, '2026-03-14 after') or session-N; or flat folders grouped by EXIF day.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    _output_options(a, photos=True)
    a.set_defaults(func=cmd_analyse)


def _add_outputs(sub, shared: argparse.ArgumentParser) -> None:
    for name, what in (("chart", "trend charts"), ("report", "one HTML report per subject")):
        c = sub.add_parser(name, parents=[shared], help=f"write {what} from an analysed output folder",
                           epilog=f"example: skinscan {name} --out out/ --photos photos/",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _output_options(c, photos=False)
        c.add_argument("--photos", nargs="*", default=None, metavar="PATH",
                       help="the photo folders, to read their sessions.csv treatment days afresh (default: as "
                            "stored when the photos were analysed)")
        c.add_argument("--force", action="store_true", help="rewrite every output, changed or not")
        c.set_defaults(func=cmd_outputs)


def _add_demo(sub, shared: argparse.ArgumentParser) -> None:
    d = sub.add_parser("demo", parents=[shared],
                       help="analyse the bundled sample series into out/ and write its report",
                       epilog="example: skinscan demo --out out/")
    d.add_argument("--samples", default="sample_images", help="sample folder (default: sample_images)")
    _output_options(d, photos=True)
    d.set_defaults(func=cmd_demo)


def _add_validate(sub, shared: argparse.ArgumentParser) -> None:
    v = sub.add_parser("validate", parents=[shared], help="run the phantom protocol and print the validation table",
                       epilog="example: skinscan validate --draws 8 --out out/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--draws", type=int, default=8, help="nuisance draws per dose (default: 8)")
    v.add_argument("--tones", default="light,deep", help="skin tones: light, deep or both (default: light,deep)")
    v.add_argument("--faces", default="sample,closeup",
                   help="faces: sample (the astronaut with real skin's pores), closeup (the real close-up) or both "
                        "(default: sample,closeup)")
    v.add_argument("--concerns", default=None, help="only these concerns' rows, e.g. pore_size (default: all)")
    v.add_argument("--px-per-mm", type=float, default=None,
                   help="photograph the sample face at this resolution (0.8-1.25x around it; --faces sample)")
    v.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default=None, help="also write validation.md and validation.json here")
    v.set_defaults(func=cmd_validate)


def _add_benchmark(sub, shared: argparse.ArgumentParser) -> None:
    b = sub.add_parser("benchmark", parents=[shared],
                       help="measure speed and memory on phone-sized photos and print the targets",
                       epilog="example: skinscan benchmark --out out/benchmark\n"
                              "         skinscan benchmark --memory-photos 50   (a quicker run)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--samples", default="sample_images", help="sample series to build the test photos from "
                   "(default: sample_images)")
    b.add_argument("--out", default="out/benchmark", help="where the photos, benchmark.md and benchmark.json go "
                   "(default: out/benchmark)")
    b.add_argument("--repeats", type=int, default=5, help="timed runs per photo size (default: 5)")
    b.add_argument("--batch-photos", type=int, default=40,
                   help="12 MP photos in the --jobs 1 / --jobs 2 throughput batches (default: 40)")
    b.add_argument("--batch-runs", type=int, default=2,
                   help="runs of each throughput batch, alternating; the best is reported (default: 2)")
    b.add_argument("--memory-photos", type=int, default=500,
                   help="photos analysed in one process to watch its memory (default: 500)")
    b.add_argument("--working-photos", type=int, default=12,
                   help="12 MP photos, one per sample photo, analysed at working and at full resolution "
                        "(default: 12, every sample photo)")
    b.add_argument("--no-series", action="store_true",
                   help="leave out the sample series run (the report's time and the re-run's)")
    b.set_defaults(func=cmd_benchmark)


def _text(value) -> str:
    """Text for the terminal: undecodable file-name bytes become ``\\xNN`` and control characters
    are escaped, so a crafted file name can neither hide a line nor print a fake one."""
    from .discover import printable

    return printable(value)


def _shown(path) -> str:
    """A path as the user knows it: relative to the current folder when it lies below it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith(os.pardir) else str(path)
    except ValueError:  # another drive (Windows)
        return str(path)


#: Signals that stop a run the way Ctrl-C does (their clean-up, their message), with exit 128 + number.
_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def _stop_on_signals() -> None:
    from .errors import Interrupted

    def stop(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    for name in _STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def _interrupted(exc: KeyboardInterrupt, *, resumes: bool = True) -> int:
    """The one line an interrupted run prints, and its exit code (128 + the signal's number).

    ``resumes``: whether running the command again continues where it stopped (a batch keeps what
    it stored; the protocol and the benchmark start again)."""
    name = getattr(exc, "signal_name", "SIGINT")
    res = getattr(exc, "batch_result", None)
    kept = ""
    if res is not None:
        kept = (f"; {res.n_analysed} photos analysed and stored by this run are kept "
                f"({res.n_analysed + res.n_cached} in the store for the photos found)")
    then = ("run the same command again to continue where it stopped" if resumes
            else "run it again to start it over")
    print(f"skinscan: interrupted ({name}){kept}; {then}", file=sys.stderr)
    return 128 + int(getattr(signal, name, signal.SIGINT))


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name in no encoding must not crash a print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    for k in ("debug", "quiet", "model"):
        args.__dict__.setdefault(k, None)
    if not args.debug:  # numpy's and matplotlib's warnings are for developers, not for a terminal
        warnings.simplefilter("ignore")
    else:  # MediaPipe's own start-up log too, in this process and its workers
        os.environ["SKINSCAN_DEBUG"] = "1"
    _stop_on_signals()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(exc, resumes=args.func not in (cmd_validate, cmd_benchmark))
    except Exception as exc:  # an unexpected failure: one line unless --debug
        from .errors import SkinscanError

        if args.debug:
            traceback.print_exc()
            return 2
        if isinstance(exc, SkinscanError):
            what = f"error: {exc}"
        else:
            what = f"internal error ({type(exc).__name__}): {exc} — please report it"
        print(f"skinscan: {_text(' '.join(what.split()))} (run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
