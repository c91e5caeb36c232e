"""Grade returned student notebooks: run each one headless and record every exercise check.

A teacher hands out ``build/student/`` (``make student``: the chapters without their solutions) and gets
notebooks back. ``flatlab grade SUBMISSION…`` (files, or folders searched for ``*.ipynb``)

1. reads each submission — a file that is not a notebook is graded ``not a notebook``, never fatal;
2. executes a *copy* of it in a fresh kernel (the submission itself is never written), with errors allowed
   so that one broken cell does not hide the exercises after it, a time limit per cell, the small budget
   and claims that report instead of raising;
3. collects the verdict of every ``flatlab.exercises.check_*`` the notebook calls: each check appends it
   to ``$FLATLAB_CHECKS_FILE`` (see :mod:`flatlab.exercises.base`) — ``pass``, ``fail``,
   ``not implemented`` (the stub still raises), or ``not run`` (execution never reached the check);
4. writes ``grades.csv`` (one row per submission: status, score, one column per check), a feedback file
   per submission with each check's messages and the errors its cells raised, and the executed copy.

Why not nbgrader or otter-grader: both want the assignment authored in their own format (cell metadata,
an ``assignment`` directory layout, a database or a grading image), and both would grade by re-running
tests kept apart from the notebook. flatlab's checks already live in the chapters and say *what* is
wrong; reading their verdicts from the run costs one environment variable.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from . import _validate as _v
from .book import error_outputs
from .exercises.base import CHECKS_ENV

__all__ = ["grade", "grade_one", "expected_checks", "submissions", "VERDICTS"]

VERDICTS = {"passed": "pass", "failed": "fail", "not implemented": "not implemented"}
NOT_RUN = "not run"
_CHECK_CALL = re.compile(r"flatlab\.exercises\.check_(\w+)\s*\(")


def expected_checks(nb) -> list[str]:
    """The checks a notebook calls (``flatlab.exercises.check_NAME(``), in order, each once."""
    seen: dict[str, None] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for name in _CHECK_CALL.findall(cell.source):
                seen.setdefault(name, None)
    return list(seen)


def submissions(paths) -> list[Path]:
    """Expand files and folders (searched recursively for ``*.ipynb``, checkpoints skipped) into files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.exists():
            out.append(p)
        else:
            raise ValueError(f"submission {str(p)!r} does not exist (pass notebook files or folders of them)")
    return out


def _labels(paths: list[Path]) -> list[str]:
    """Short unique names for the output files: the path below the submissions' common folder."""
    resolved = [p.resolve() for p in paths]
    base = Path(os.path.commonpath([str(r.parent) for r in resolved])) if resolved else Path(".")
    labels, seen = [], {}
    for r in resolved:
        rel = r.relative_to(base).with_suffix("")
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.parts)) or "submission"
        n = seen.get(label, 0)
        seen[label] = n + 1
        labels.append(label if n == 0 else f"{label}_{n + 1}")
    return labels


def _read(path: Path):
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"not a notebook: cannot read it as text ({type(err).__name__})"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # JSON errors, schema errors, a notebook of an unknown format
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return None, f"not a notebook: {reason}"
    return nb, None


def grade_one(path: str | os.PathLike, out_dir: str | os.PathLike, label: str | None = None,
              timeout: float = 300.0, budget: str = "small", cache: str | None = None) -> dict:
    """Execute a copy of one submission and return its row: ``status``, ``score``, ``checks`` {name: verdict}.

    Also writes ``out_dir/feedback/LABEL.txt`` and, when it ran, ``out_dir/executed/LABEL.ipynb``."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    import nbformat

    path, out_dir = Path(path), Path(out_dir)
    label = label or path.stem
    timeout = _v.positive("timeout", timeout)
    row = {"submission": str(path), "label": label, "status": "", "seconds": 0.0, "checks": {}, "errors": [],
           "feedback": {}}
    nb, problem = _read(path)
    if nb is None:
        row["status"] = problem
        _write_feedback(out_dir, row)
        return row
    names = expected_checks(nb)
    work = Path(tempfile.mkdtemp(prefix="flatlab-grade-"))
    checks_file = work / "checks.jsonl"
    env = dict(os.environ, **{CHECKS_ENV: str(checks_file), "FLATLAB_BUDGET": budget,
                              "FLATLAB_CLAIMS_RAISE": "0", "FLATLAB_CLAIMS_FILE": str(work / "claims.jsonl"),
                              "FLATLAB_THREADS": os.environ.get("FLATLAB_THREADS", "1"),
                              "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    if cache:
        env["FLATLAB_CACHE"] = cache
    env.pop("FLATLAB_OFFLINE_FIGURES", None)
    t0 = time.perf_counter()
    status = "graded"
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(work)}})
        client.execute(env=env, cwd=str(work))
    except CellTimeoutError:
        status = f"timed out: a cell ran longer than {timeout:g} s"
    except DeadKernelError:
        status = "the kernel died (out of memory, or the notebook ended its own process)"
    except Exception as err:  # a kernel that cannot start, a notebook nbclient cannot run
        status = f"could not run: {type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    records: dict[str, dict] = {}
    if checks_file.exists():
        for line in checks_file.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[rec["check"]] = rec  # the last call of a check is the one that counts
    for name in names + [n for n in records if n not in names]:
        rec = records.get(name)
        row["checks"][name] = VERDICTS.get(rec["status"], "fail") if rec else NOT_RUN
        if rec and rec["status"] == "failed":
            row["feedback"][name] = rec.get("failures", []) + ([f"hint: {rec['hint']}"] if rec.get("hint") else [])
    row["errors"] = error_outputs(nb, limit=200)
    passed = sum(v == "pass" for v in row["checks"].values())
    row["score"] = f"{passed}/{len(row['checks'])}"
    row["status"] = status
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / "executed" / f"{label}.ipynb")
    _write_feedback(out_dir, row)
    shutil.rmtree(work, ignore_errors=True)
    return row


def _write_feedback(out_dir: Path, row: dict) -> None:
    lines = [f"submission: {row['submission']}", f"status: {row['status']}"]
    if row.get("score"):
        lines.append(f"score: {row['score']} checks passed")
    for name, verdict in row["checks"].items():
        lines.append(f"\n{name}: {verdict}")
        lines += [f"    {m}" for m in row["feedback"].get(name, [])]
        if verdict == NOT_RUN:
            lines.append("    the notebook never reached this check (an error or a time limit stopped it)")
        elif verdict == "not implemented":
            lines.append("    the exercise still raises NotImplementedError")
    if row["errors"]:
        lines.append("\ncells that raised an error:")
        lines += [f"    {e}" for e in row["errors"]]
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback" / f"{row['label']}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def grade(paths, out_dir: str | os.PathLike = "build/grades", timeout: float = 300.0, budget: str = "small",
          cache: str | None = None, progress: bool = True) -> list[dict]:
    """Grade every submission in ``paths``; write ``out_dir/grades.csv``; return the rows.

    One kernel at a time; a submission that crashes, hangs or is not a notebook gets its row and the run
    goes on. The submissions are only read."""
    from .config import budget as check_budget

    files = submissions(paths)
    if not files:
        raise ValueError("no submissions found: pass notebook files or folders that contain *.ipynb files")
    budget = check_budget(budget)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, label in zip(files, _labels(files)):
        row = grade_one(path, out_dir, label=label, timeout=timeout, budget=budget, cache=cache)
        rows.append(row)
        if progress:
            print(f"{label:40s} {row['status']:12.60s} {row.get('score', ''):>6s}  {row['seconds']:.0f} s", flush=True)
    names: dict[str, None] = {}
    for row in rows:
        for name in row["checks"]:
            names.setdefault(name, None)
    with open(out_dir / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["submission", "status", "score", "seconds", *names])
        for row in rows:
            writer.writerow([row["submission"], row["status"], row.get("score", ""), row["seconds"],
                             *[row["checks"].get(n, "") for n in names]])
    return rows
