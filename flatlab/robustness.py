"""Seed robustness: execute chapters for many seeds and measure every claim's pass rate.

A chapter's claims must hold for any ``SEED`` a student picks. ``flatlab robustness`` (``make
robustness``) executes each selected chapter once per seed, headless, with failed claims recorded
instead of raised (``FLATLAB_CLAIMS_RAISE=0``) and errors allowed, so one failure does not hide the
claims after it. Each run gets an empty cache of its own by default, as on a new machine. It records,
for every chapter, seed and claim: passed or not, the claim's figures, and the chapter's wall time;
writes ``build/robustness.json`` (merged by budget, chapter and seed with earlier runs) and
``build/html/robustness.html``; prints a summary; and returns non-zero when any claim of this run holds
for fewer than all seeds, a chapter raised, or a claim is missing from a run.

>>> parse_seeds("0-3,7")
[0, 1, 2, 3, 7]
"""
from __future__ import annotations

import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from .book import error_outputs

TIME_LIMITS = {"small": 60.0, "full": 180.0}  # seconds per chapter on 2 cores, quiet machine


def parse_seeds(spec) -> list[int]:
    """Seeds from ``"0-19"``, ``"0,3,5"``, ``"0-4 7"``, an int or a list of ints (sorted, unique)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = [spec]
    if isinstance(spec, (list, tuple, range)):
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in spec) or not len(spec):
            raise ValueError(f"seeds={spec!r}: give non-negative integers, e.g. 0-19 or 0,3,5")
        return sorted(set(int(s) for s in spec))
    if not isinstance(spec, str):
        raise TypeError(f"seeds must be a string such as '0-19' or a list of integers, got {type(spec).__name__}")
    seeds: set[int] = set()
    for part in spec.replace(",", " ").split():
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"seeds={spec!r}: {part!r} is not a seed or a range; use e.g. 0-19 or 0,3,5")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"seeds={spec!r}: the range {part!r} is empty (it runs backwards)")
        seeds.update(range(a, b + 1))
    if not seeds:
        raise ValueError(f"seeds={spec!r} names no seed; use e.g. 0-19 or 0,3,5")
    return sorted(seeds)


def _execute_one(notebook: str, seed: int, budget: str, threads: int, cache: str | None, timeout: float,
                 source: str | None = None) -> dict:
    """Execute one chapter for one seed in a fresh kernel; return its claims, errors and wall time.

    ``source`` is the notebook's text as it was when the run started (edits made to the chapter while a
    long run goes on do not mix two versions in one report). Runs in a worker process: the kernel
    inherits this process's environment."""
    from .execute import execute, failure_reason, parameterized

    path = Path(notebook)
    fresh = cache is None
    cache_dir = tempfile.mkdtemp(prefix="flatlab-cache-") if fresh else cache
    claims_fd, claims_file = tempfile.mkstemp(prefix="flatlab-claims-", suffix=".jsonl")
    os.close(claims_fd)
    os.environ.update({"FLATLAB_BUDGET": budget, "FLATLAB_CLAIMS_FILE": claims_file, "FLATLAB_CLAIMS_RAISE": "0",
                       "FLATLAB_THREADS": str(threads), "FLATLAB_CACHE": cache_dir, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    os.environ.pop("FLATLAB_OFFLINE_FIGURES", None)
    errors: list[str] = []
    t0 = time.perf_counter()
    try:
        nb = parameterized(path, {"SEED": seed}, text=source)
        execute(nb, cwd=path.parent, timeout=timeout, allow_errors=True, quiet_kernel=True)
        errors += error_outputs(nb, limit=300)
    except Exception as err:  # a timeout or a dead kernel: the run counts as failed, the others go on
        errors.append(failure_reason(err)[:300])
    seconds = time.perf_counter() - t0
    lines = Path(claims_file).read_text(encoding="utf-8").splitlines()
    os.unlink(claims_file)
    if fresh:
        shutil.rmtree(cache_dir, ignore_errors=True)
    claims = []
    for line in filter(str.strip, lines):
        try:
            claims.append(json.loads(line))
        except json.JSONDecodeError:  # the kernel died while writing this claim
            errors.append(f"a truncated claim record: {line[:80]!r}")
    return {"chapter": path.stem, "seed": seed, "seconds": round(seconds, 2), "errors": errors,
            "claims": [{"name": c["name"], "passed": c["passed"], "figures": c.get("figures", {})} for c in claims]}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (chapter, claim): pass count over the runs, failing seeds, each figure's range.

    A claim that a run did not reach (the chapter raised before it) counts as failed for that seed."""
    rows: dict[tuple[str, str], dict] = {}
    seeds_of: dict[str, set] = {}
    for run in runs:
        seeds_of.setdefault(run["chapter"], set()).add(run["seed"])
        verdict: dict[str, bool] = {}  # a name made twice in one run holds when every instance held
        for c in run["claims"]:
            verdict[c["name"]] = verdict.get(c["name"], True) and bool(c["passed"])
            row = rows.setdefault((run["chapter"], c["name"]), {"chapter": run["chapter"], "claim": c["name"],
                                                                "passed_seeds": [], "failed_seeds": [], "figures": {}})
            for key, value in c["figures"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    lo, hi = row["figures"].get(key, (value, value))
                    row["figures"][key] = (min(lo, value), max(hi, value))
        for name, ok in verdict.items():
            rows[(run["chapter"], name)]["passed_seeds" if ok else "failed_seeds"].append(run["seed"])
    out = []
    for (chapter, _), row in rows.items():
        seen = set(row["passed_seeds"]) | set(row["failed_seeds"])
        row["missing_seeds"] = sorted(seeds_of[chapter] - seen)
        row["n"] = len(seeds_of[chapter])
        row["passed"] = len(row["passed_seeds"])
        row["rate"] = row["passed"] / row["n"]
        row["figures"] = {k: list(v) for k, v in row["figures"].items()}
        out.append(row)
    return out


def chapter_times(runs: list[dict]) -> dict[str, dict]:
    """Median and max wall time per chapter over the runs, with the slowest seed."""
    by: dict[str, list[dict]] = {}
    for run in runs:
        by.setdefault(run["chapter"], []).append(run)
    return {ch: {"median": round(statistics.median(r["seconds"] for r in rs), 2),
                 "max": max(r["seconds"] for r in rs), "slowest_seed": max(rs, key=lambda r: r["seconds"])["seed"],
                 "runs": len(rs), "errors": sum(bool(r["errors"]) for r in rs)}
            for ch, rs in sorted(by.items())}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_report(path: Path) -> dict:
    """The report stored at ``path``, or an empty one (``{"budgets": {}}``) when it is missing or damaged —
    a damaged report is rebuilt from the next run, never half-trusted."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {"budgets": {}}
    if not isinstance(report, dict) or not isinstance(report.get("budgets", {}), dict):
        return {"budgets": {}}
    report.setdefault("budgets", {})
    return report


def merge(path: Path, budget: str, runs: list[dict]) -> dict:
    """Merge ``runs`` into the report at ``path`` (a run replaces the one of the same chapter and seed)."""
    report = load_report(path)
    section = report["budgets"].setdefault(budget, {"runs": []})
    new = {(r["chapter"], r["seed"]) for r in runs}
    section["runs"] = sorted([r for r in section["runs"] if (r["chapter"], r["seed"]) not in new] + runs,
                             key=lambda r: (r["chapter"], r["seed"]))
    section["summary"] = summarize(section["runs"])
    section["times"] = chapter_times(section["runs"])
    section["time_limit_s"] = TIME_LIMITS[budget]
    return report


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _seeds_text(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) if seeds else "—"


def report_html(report: dict) -> str:
    """The robustness report as a self-contained HTML page (:func:`report_body` with a head and a title)."""
    return "\n".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>flatlab — seed robustness</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.4}table{border-collapse:collapse;width:100%;margin-bottom:2rem}td,th{border-bottom:1px "
        "solid #ddd;padding:.3rem;text-align:left;vertical-align:top;font-size:.9rem}.ok{color:#009E73}"
        ".bad{color:#D55E00;font-weight:bold}.fig{color:#555;font-size:.8rem}</style></head><body>",
        "<p><a href='index.html'>← flatlab</a></p><h1>Seed robustness</h1>", report_body(report), "</body></html>"])


def report_body(report: dict) -> str:
    """The report's content as an HTML fragment (the book embeds it in a page of its own): per budget,
    claim × pass rate, failing seeds, each figure's range over the seeds, and the chapters' wall times."""
    esc = html.escape
    parts = ["<p>Every chapter executed once per seed, each run on an empty cache. A claim must hold for every "
             "seed. Figures: the range (min … max) each claim's figure took over the seeds.</p>"]
    for budget, section in sorted(report.get("budgets", {}).items()):
        runs = section["runs"]
        seeds = sorted({r["seed"] for r in runs})
        parts.append(f"<h2>Budget <code>{esc(budget)}</code> — seeds {esc(_seeds_text(seeds))}</h2>")
        parts.append("<table><tr><th>chapter</th><th>claim</th><th>holds</th><th>failed seeds</th>"
                     "<th>figures (min … max)</th></tr>")
        for row in section["summary"]:
            ok = row["passed"] == row["n"]
            figs = "; ".join(f"{esc(k)} {_fmt(lo)} … {_fmt(hi)}" for k, (lo, hi) in row["figures"].items())
            bad = row["failed_seeds"] + [f"{s} (not reached)" for s in row["missing_seeds"]]
            parts.append(f"<tr><td>{esc(row['chapter'])}</td><td>{esc(row['claim'])}</td>"
                         f"<td class='{'ok' if ok else 'bad'}'>{row['passed']}/{row['n']}</td>"
                         f"<td>{esc(_seeds_text(bad))}</td><td class='fig'>{figs}</td></tr>")
        parts.append("</table><table><tr><th>chapter</th><th>runs</th><th>median s</th><th>max s</th>"
                     "<th>slowest seed</th><th>runs with errors</th></tr>")
        limit = section.get("time_limit_s", TIME_LIMITS.get(budget, 0))
        for ch, t in section["times"].items():
            cls = "bad" if t["max"] > limit else "ok"
            parts.append(f"<tr><td>{esc(ch)}</td><td>{t['runs']}</td><td>{t['median']}</td>"
                         f"<td class='{cls}'>{t['max']:.1f}</td><td>{t['slowest_seed']}</td><td>{t['errors']}</td></tr>")
        parts.append(f"</table><p class='fig'>Time limit per chapter at this budget: {limit:.0f} s.</p>")
        errs = [(r["chapter"], r["seed"], e) for r in runs for e in r["errors"]]
        if errs:
            parts.append("<h3>Errors</h3><ul>" + "".join(f"<li>{esc(c)} seed {s}: <code>{esc(e)}</code></li>"
                                                       for c, s, e in errs) + "</ul>")
    return "\n".join(parts)


def summary_text(summary: list[dict], times: dict[str, dict], limit: float) -> str:
    """The plain-text summary printed at the end of a run."""
    lines = []
    for row in summary:
        mark = "✓" if row["passed"] == row["n"] else "✗"
        tail = ""
        if row["failed_seeds"] or row["missing_seeds"]:
            tail = f"  failed: {_seeds_text(row['failed_seeds'])}" + (
                f"; not reached: {_seeds_text(row['missing_seeds'])}" if row["missing_seeds"] else "")
        lines.append(f"{row['chapter'][:2]} {mark} {row['passed']:>2}/{row['n']:<2} {row['claim'][:90]}{tail}")
    for ch, t in times.items():
        flag = "  over the limit" if t["max"] > limit else ""
        lines.append(f"{ch:<45} median {t['median']:6.1f} s  max {t['max']:6.1f} s (seed {t['slowest_seed']})"
                     f"{flag}" + (f"  {t['errors']} run(s) with errors" if t["errors"] else ""))
    return "\n".join(lines)


def _save(build: Path, budget: str, runs: list[dict]) -> dict:
    """Merge ``runs`` into ``build/robustness.json`` (atomically) and rewrite the HTML report."""
    json_path = build / "robustness.json"
    build.mkdir(parents=True, exist_ok=True)
    report = merge(json_path, budget, runs)
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    tmp.replace(json_path)
    (build / "html").mkdir(parents=True, exist_ok=True)
    (build / "html" / "robustness.html").write_text(report_html(report), encoding="utf-8")
    return report


def run(chapters: list[Path], seeds: list[int], budget: str = "small", jobs: int | None = None,
        build: Path | str = "build", warm_cache: bool = False, timeout: float = 900.0,
        progress: bool = True) -> tuple[int, dict]:
    """Execute every chapter for every seed (``jobs`` at a time); write the report; return (exit code, report).

    The exit code is 1 when a claim of this run failed or was not reached for some seed, or a run
    raised an error; 0 otherwise."""
    from tqdm import tqdm

    from .config import budget as check_budget, cache_dir

    budget = check_budget(budget)
    if not chapters:
        raise ValueError("chapters is empty: name at least one chapter")
    seeds = parse_seeds(seeds)
    jobs = jobs or max(1, min(os.cpu_count() or 1, len(chapters) * len(seeds)))
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be a positive integer")
    threads = 1 if jobs > 1 else max(1, min(2, os.cpu_count() or 1))
    cache = str(cache_dir()) if warm_cache else None
    build = Path(build).resolve()
    sources = {str(nb): Path(nb).read_text(encoding="utf-8") for nb in chapters}  # one version per run
    tasks = [(str(nb), s) for nb in chapters for s in seeds]
    stamp = {"commit": _commit(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    bars = {nb.stem: tqdm(total=len(seeds), desc=nb.stem[:28], position=i, leave=True, disable=not progress,
                          unit="seed", file=sys.stderr, dynamic_ncols=True) for i, nb in enumerate(chapters)}
    failed_count = {nb.stem: 0 for nb in chapters}
    runs = []
    try:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_execute_one, nb, s, budget, threads, cache, timeout, sources[nb])
                       for nb, s in tasks]
            for fut in as_completed(futures):
                r = fut.result()
                r.update(stamp)
                runs.append(r)
                _save(build, budget, [r])  # an interrupted run keeps what it measured
                bad = bool(r["errors"]) or not all(c["passed"] for c in r["claims"])
                failed_count[r["chapter"]] += bad
                bar = bars[r["chapter"]]
                bar.set_postfix_str(f"{failed_count[r['chapter']]} failing, last {r['seconds']:.0f} s")
                for c in r["claims"]:
                    if not c["passed"]:
                        tqdm.write(f"✗ {r['chapter']} seed {r['seed']}: {c['name'][:80]} {c['figures']}", file=sys.stderr)
                for e in r["errors"]:
                    tqdm.write(f"! {r['chapter']} seed {r['seed']}: {e}", file=sys.stderr)
                bar.update(1)
    finally:
        for bar in bars.values():
            bar.close()
    runs.sort(key=lambda r: (r["chapter"], r["seed"]))
    json_path = build / "robustness.json"
    report = _save(build, budget, runs)
    summary = summarize(runs)
    times = chapter_times(runs)
    print(summary_text(summary, times, TIME_LIMITS[budget]))
    failing = [r for r in summary if r["passed"] < r["n"]] + [r for r in runs if r["errors"]]
    n_ok = sum(r["passed"] == r["n"] for r in summary)
    print(f"{n_ok}/{len(summary)} claims hold for all {len(seeds)} seeds at the {budget} budget; "
          f"report: {json_path}, {build / 'html' / 'robustness.html'}")
    return (1 if failing else 0), report
