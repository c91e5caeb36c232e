"""Command line: ``flatlab doctor | book | student | slides | claims | robustness | grade``.

``flatlab book`` executes every chapter (``flatlab.execute``; ``FLATLAB_BUDGET=full`` by default) into
``build/notebooks/``, builds the HTML book from them into ``build/html/`` (``flatlab.book_site``), and collects
the chapters' claims into ``build/claims.json``; it fails when a chapter raises (a failed claim included) or an
executed chapter holds an error output. ``flatlab student`` writes ``build/student/`` (solutions
removed) and ``build/teacher/``; ``flatlab slides N`` exports chapter N as reveal.js slides.
``flatlab robustness --seeds 0-19 --budget small`` executes chapters for many seeds and reports every
claim's pass rate (``build/robustness.json``, ``build/html/robustness.html``). ``flatlab grade
SUBMISSION…`` runs returned student notebooks headless and writes ``build/grades/grades.csv`` (one row
per submission, one column per exercise check) and a feedback file per submission.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chapters(notebook_dir: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (``NN_name.ipynb``)."""
    nb_dir = notebook_dir or ROOT / "notebooks"
    return sorted(p for p in nb_dir.glob("[0-9][0-9]_*.ipynb"))


def doctor() -> int:
    """Print the environment and check the settings and that every dependency imports (exit 1 on a problem)."""
    from .config import budget, cache_path, cores, environment_line

    print(environment_line(strict=False))
    problems = []
    try:
        budget()
    except (TypeError, ValueError) as err:
        problems.append(str(err))
    try:
        cores()
    except ValueError as err:
        problems.append(str(err))
    cache = cache_path()
    if cache.exists() and (not cache.is_dir() or not os.access(cache, os.W_OK | os.X_OK)):
        problems.append(f"FLATLAB_CACHE: {cache} is not a writable directory (results will not be cached)")
    for mod in ("torch", "numpy", "scipy", "pandas", "plotly", "anywidget", "ipywidgets", "sklearn", "joblib",
                "tqdm", "mnist1d", "jupyterlab"):
        try:
            __import__(mod)
        except ImportError as err:  # pragma: no cover - reported to the user
            problems.append(f"missing {mod}: {err}")
    for line in problems:
        print("problem:", line)
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def _build_site(executed: list[Path], build: Path, rows: list[dict], budget: str, seed: int) -> Path:
    """The Sphinx book of the executed chapters (``flatlab.book_site``), with the robustness report when
    ``build/robustness.json`` exists."""
    from . import book_site
    from .robustness import load_report, report_body

    report = load_report(build / "robustness.json")
    body = report_body(report) if report["budgets"] else None
    return book_site.build(executed, build, rows, budget, seed, robustness_body=body)


def _error_outputs(executed: Path) -> list[str]:
    import nbformat

    from .book import error_outputs

    return error_outputs(nbformat.read(executed, as_version=4))


def _selected(only: list[str] | None) -> list[Path]:
    found = [nb for nb in chapters() if not only or any(nb.stem.startswith(o) for o in only)]
    if only and not found:  # a usage error: one line, exit status 2, nothing touched
        print(f"flatlab: no chapter matches {' '.join(only)}; chapters: {', '.join(p.stem for p in chapters())}",
              file=sys.stderr)
        raise SystemExit(2)
    return found


def student(build: Path | None = None, only: list[str] | None = None) -> dict:
    """Write the student (no solutions) and teacher versions of the chapters into ``build/``."""
    from .book import write_versions

    build = Path(build or ROOT / "build").resolve()
    written = write_versions(_selected(only), build)
    for kind, paths in written.items():
        print(f"{kind}: {len(paths)} chapters in {build / kind}")
    return written


def slides(only: list[str], build: Path | None = None) -> list[Path]:
    """Export chapters as reveal.js slides (executed copies from ``build/notebooks`` when present)."""
    from .book_site import export_slides

    build = Path(build or ROOT / "build").resolve()
    out = []
    for nb in _selected(only):
        executed = build / "notebooks" / nb.name
        out.append(export_slides(executed if executed.exists() else nb, build / "slides"))
        print(f"slides: {out[-1]}")
    return out


def tag_slides(only: list[str] | None = None) -> list[Path]:
    """Write the default reveal.js slide tags into the chapters themselves (a teacher's own tags are
    kept), so a teacher can adjust them in JupyterLab's property inspector."""
    import nbformat

    from .book import ensure_slide_tags

    changed = []
    for path in _selected(only):
        nb = nbformat.read(path, as_version=4)
        before = [dict(c.metadata) for c in nb.cells]
        ensure_slide_tags(nb)
        if [dict(c.metadata) for c in nb.cells] != before:
            nbformat.write(nb, path)
            changed.append(path)
            print(f"slide tags set: {path.name}")
    return changed


def book(budget: str = "full", build: Path | None = None, only: list[str] | None = None, seed: int = 0,
         version: str = "teacher") -> int:
    """Execute the chapters into ``build/notebooks`` and ``build/html``; write ``build/claims.json``.

    ``version="student"`` executes the student versions (solutions removed) instead.
    """
    from . import _validate as _v
    from .claims import collect, summary_table
    from .config import budget as check_budget

    _v.choice("version", version, ("teacher", "student"))
    budget = check_budget(budget)
    seed = _v.seed("seed", seed)
    _selected(only)  # check the chapters before anything in build/ is touched
    build = Path(build or ROOT / "build").resolve()
    nb_out = build / "notebooks"
    nb_out.mkdir(parents=True, exist_ok=True)
    jsonl = build / "claims.jsonl"
    jsonl.unlink(missing_ok=True)
    saved = {k: os.environ.get(k) for k in ("FLATLAB_BUDGET", "FLATLAB_CLAIMS_FILE", "FLATLAB_OFFLINE_FIGURES")}
    os.environ["FLATLAB_OFFLINE_FIGURES"] = "1"  # widgets also emit a kernel-free slider figure
    os.environ["FLATLAB_BUDGET"] = budget  # the chapters' kernels inherit these
    os.environ["FLATLAB_CLAIMS_FILE"] = str(jsonl)
    try:
        failures, selected = _execute(selected_only=only, build=build, version=version, seed=seed)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        rows = collect(jsonl, build / "claims.json")
    except ValueError as err:  # a kernel died while writing a claim
        failures.append(str(err))
        rows = []
    executed = [nb_out / nb.name for nb in selected if (nb_out / nb.name).exists()]
    try:
        index = _build_site(executed, build, rows, budget, seed)
        print(f"book: {index}")
    except Exception as err:  # the executed notebooks and claims.json stay; the failure is reported
        failures.append(f"book site: {type(err).__name__}: {err}")
    print(summary_table(rows))
    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


def _execute(selected_only, build: Path, version: str, seed: int) -> tuple[list[str], list[Path]]:
    """Execute the selected chapters (``flatlab.execute``: papermill's parameters, one nbclient run, one write);
    return (failures, chapters)."""
    import nbformat

    from .book import student_version
    from .execute import execute, failure_reason, parameterized

    nb_out = build / "notebooks"
    failures = []
    selected = _selected(selected_only)
    for nb in selected:
        out = nb_out / nb.name
        if version == "student":
            source = build / "student" / nb.name
            source.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(student_version(nbformat.read(nb, as_version=4)), source)
            nb = source
        t0 = time.perf_counter()
        try:
            execute(parameterized(nb, {"SEED": seed}), out, cwd=ROOT / "notebooks")
            status = "ok"
        except Exception as err:  # the chapter's exception (or a dead kernel); keep building the others
            failures.append(f"{nb.name}: {failure_reason(err)}"[:500])
            status = "FAILED"
        errors = _error_outputs(out) if out.exists() else []
        if errors and status == "ok":
            failures.append(f"{nb.name}: error outputs {errors}")
            status = "FAILED"
        print(f"{nb.name:<45} {status:>6}  {time.perf_counter() - t0:6.1f} s")
    return failures, selected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flatlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check the environment")
    b = sub.add_parser("book", help="execute every chapter into build/ (notebooks, HTML, claims.json)")
    b.add_argument("--budget", default=os.environ.get("FLATLAB_BUDGET", "full"), choices=["small", "full"])
    b.add_argument("--build", default=None, help="output directory (default: build/)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--version", default="teacher", choices=["teacher", "student"])
    b.add_argument("chapters", nargs="*", help="chapter prefixes to build, e.g. 00 01 (default: all)")
    s = sub.add_parser("student", help="write build/student (solutions removed) and build/teacher")
    s.add_argument("chapters", nargs="*")
    sl = sub.add_parser("slides", help="export chapters as reveal.js slides into build/slides")
    sl.add_argument("chapters", nargs="*", help="chapter numbers, e.g. 00 (with --tag, default: all)")
    sl.add_argument("--tag", action="store_true", help="write default slide tags into notebooks/ instead")
    r = sub.add_parser("robustness", help="execute chapters for many seeds; every claim's pass rate")
    r.add_argument("chapters", nargs="*", help="chapter prefixes, e.g. 00 01 (default: all)")
    r.add_argument("--seeds", default="0-19", help="seeds, e.g. 0-19 or 0,3,5 (default: 0-19)")
    r.add_argument("--budget", default=os.environ.get("FLATLAB_BUDGET", "small"), choices=["small", "full"])
    r.add_argument("--jobs", type=int, default=None, help="chapters executed at once (default: the CPU count)")
    r.add_argument("--build", default=None, help="output directory (default: build/)")
    r.add_argument("--notebooks", default=None, help="directory of chapters (default: notebooks/)")
    r.add_argument("--warm-cache", action="store_true", help="use the user's cache instead of an empty one per run")
    r.add_argument("--timeout", type=float, default=900.0, help="seconds per cell before a run counts as failed")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = sub.add_parser("grade", help="run returned student notebooks headless; grades.csv and feedback per student")
    g.add_argument("submissions", nargs="+", help="notebook files, or folders searched for *.ipynb")
    g.add_argument("--out", default=None, help="output directory (default: build/grades)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds a cell may run (default: 300)")
    g.add_argument("--budget", default="small", choices=["small", "full"])
    c = sub.add_parser("claims", help="collect claims (JSON lines) into a JSON file and print the table")
    c.add_argument("jsonl")
    c.add_argument("out")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    if args.command == "book":
        return book(args.budget, Path(args.build) if args.build else None, args.chapters or None, args.seed,
                    args.version)
    if args.command == "student":
        student(only=args.chapters or None)
        return 0
    if args.command == "slides":
        if args.tag:
            tag_slides(args.chapters or None)
        elif not args.chapters:
            parser.error("slides: name the chapters to export, e.g. `flatlab slides 00 01`")
        else:
            slides(args.chapters)
        return 0
    if args.command == "robustness":
        from .robustness import parse_seeds, run

        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as err:
            parser.error(str(err))
        if args.jobs is not None and args.jobs < 1:
            parser.error(f"--jobs {args.jobs}: must be a positive integer")
        nb_dir = Path(args.notebooks).resolve() if args.notebooks else None
        if nb_dir is not None and not nb_dir.is_dir():
            parser.error(f"--notebooks {args.notebooks}: no such directory")
        found = chapters(nb_dir)
        if args.chapters:
            found = [nb for nb in found if any(nb.stem.startswith(o) for o in args.chapters)]
            if not found:
                parser.error(f"no chapter matches {args.chapters}; chapters: "
                             f"{', '.join(p.stem for p in chapters(nb_dir))}")
        if not found:
            parser.error(f"no chapters (NN_name.ipynb) in {nb_dir or ROOT / 'notebooks'}")
        code, _ = run(found, seeds, budget=args.budget, jobs=args.jobs, build=Path(args.build or ROOT / "build"),
                      warm_cache=args.warm_cache, timeout=args.timeout, progress=not args.no_progress)
        return code
    if args.command == "grade":
        from .grade import grade

        if args.timeout <= 0 or args.timeout != args.timeout:
            parser.error(f"--timeout {args.timeout}: must be a positive number of seconds")
        try:
            rows = grade(args.submissions, Path(args.out or ROOT / "build" / "grades"), timeout=args.timeout,
                         budget=args.budget)
        except ValueError as err:
            parser.error(str(err))
        print(f"{len(rows)} submission(s) graded: {Path(args.out or ROOT / 'build' / 'grades') / 'grades.csv'}")
        return 0
    if args.command == "claims":
        from .claims import collect, summary_table

        if not Path(args.jsonl).is_file():
            print(f"flatlab claims: {args.jsonl}: no such file (expected the JSON lines of recorded claims)",
                  file=sys.stderr)
            return 1
        try:
            rows = collect(args.jsonl, args.out)
        except (ValueError, OSError) as err:
            print(f"flatlab claims: {err}", file=sys.stderr)
            return 1
        print(summary_table(rows))
        failed = [r for r in rows if not r["passed"]]
        return 1 if failed else 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
