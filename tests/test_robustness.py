"""The seed-robustness harness on a tiny synthetic chapter whose claims fail for some seeds."""
import json
import subprocess
import sys

import nbformat
import pytest

from flatlab import robustness
from flatlab.robustness import parse_seeds

from tiny_chapter import write_chapter


@pytest.fixture
def tiny(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_chapter(nbs / "00_tiny.ipynb", "from flatlab.claims import claim\n"
             "claim('always holds', True, seed=SEED)\n"
             "claim('holds for even seeds', SEED % 2 == 0, seed=SEED, half=SEED / 2)\n"
             "claim('made after a failed claim', True)")
    write_chapter(nbs / "01_raises.ipynb", "from flatlab.claims import claim\n"
             "claim('before the error', True)\n"
             "if SEED == 2:\n    raise RuntimeError('boom')\n"
             "claim('after the error', True)")
    return tmp_path


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("5 1-2") == [1, 2, 5]
    assert parse_seeds([3, 1, 1]) == [1, 3]
    assert parse_seeds(4) == [4]
    for bad in ("", "a", "3-1", "1-", "-2", [], [-1], [1.5]):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)
    with pytest.raises(TypeError, match="seeds"):
        parse_seeds(2.0)


def test_harness_measures_every_claim_for_every_seed(tiny):
    chapters = sorted((tiny / "notebooks").glob("*.ipynb"))
    code, report = robustness.run(chapters, "0-2", budget="small", jobs=2, build=tiny / "build", progress=False)
    assert code == 1  # a claim failed for some seed
    rows = {(r["chapter"], r["claim"]): r for r in report["budgets"]["small"]["summary"]}
    assert rows[("00_tiny", "always holds")]["passed"] == 3
    even = rows[("00_tiny", "holds for even seeds")]
    assert (even["passed"], even["n"], even["failed_seeds"]) == (2, 3, [1])
    assert even["figures"]["half"] == [0.0, 1.0]
    # a failed claim does not hide the claims after it
    assert rows[("00_tiny", "made after a failed claim")]["passed"] == 3
    # a claim after an exception is not reached for that seed, and counts as failed
    after = rows[("01_raises", "after the error")]
    assert (after["passed"], after["missing_seeds"]) == (2, [2])
    runs = report["budgets"]["small"]["runs"]
    assert [r["seed"] for r in runs if r["errors"]] == [2] and "RuntimeError" in runs[3 + 2]["errors"][0]
    times = report["budgets"]["small"]["times"]
    assert set(times) == {"00_tiny", "01_raises"} and times["00_tiny"]["runs"] == 3
    assert all(0 < t["median"] <= t["max"] for t in times.values())
    # the median keeps the runs' precision (a median rounded coarser than the max could read above it)
    assert robustness.chapter_times([{"chapter": "c", "seed": s, "seconds": t, "errors": []}
                                    for s, t in enumerate((3.46, 3.47, 3.48))])["c"]["median"] == 3.47
    stored = json.loads((tiny / "build" / "robustness.json").read_text())
    assert stored["budgets"]["small"]["summary"] == json.loads(json.dumps(report["budgets"]["small"]["summary"]))
    page = (tiny / "build" / "html" / "robustness.html").read_text()
    assert "holds for even seeds" in page and "2/3" in page and ">1<" in page and "http" not in page


def test_harness_passes_and_merges_by_seed(tiny):
    chapter = [tiny / "notebooks" / "00_tiny.ipynb"]
    code, _ = robustness.run(chapter, [0, 2], budget="small", jobs=1, build=tiny / "build", progress=False)
    assert code == 0
    # a later run adds its seeds to the report and replaces the same seeds
    code, report = robustness.run(chapter, [1], budget="small", jobs=1, build=tiny / "build", progress=False)
    assert code == 1
    assert [r["seed"] for r in report["budgets"]["small"]["runs"]] == [0, 1, 2]
    row = next(r for r in report["budgets"]["small"]["summary"] if r["claim"] == "holds for even seeds")
    assert (row["passed"], row["n"]) == (2, 3)


def test_damaged_report_is_rebuilt(tmp_path):
    path = tmp_path / "robustness.json"
    path.write_text('{"budgets": {"small": {"runs": [')
    run = {"chapter": "00_x", "seed": 0, "seconds": 1.0, "errors": [], "claims": [{"name": "c", "passed": True,
                                                                                 "figures": {}}]}
    report = robustness.merge(path, "small", [run])
    assert report["budgets"]["small"]["summary"][0]["passed"] == 1


def test_command_line_rejects_bad_arguments_before_running(tmp_path, capsys):
    from flatlab.cli import main

    # the real command line once: exit status 2 and a one-line usage error, no traceback
    out = subprocess.run([sys.executable, "-m", "flatlab.cli", "robustness", "--seeds", "x", "--build", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "seeds" in out.stderr and "Traceback" not in out.stderr
    # every other bad argument through the same parser, in this process (argparse exits with status 2)
    for args, word in ((["--budget", "huge"], "budget"), (["99"], "99"), (["--jobs", "0"], "jobs"),
                       (["--notebooks", str(tmp_path / "nope")], "notebooks"), (["--seeds", "3-1"], "seeds")):
        with pytest.raises(SystemExit) as stop:
            main(["robustness", *args, "--build", str(tmp_path)])
        assert stop.value.code == 2 and word in capsys.readouterr().err
    assert not (tmp_path / "robustness.json").exists()


def test_book_index_links_the_robustness_report():
    from flatlab.book_site import index_page, robustness_page
    from flatlab.robustness import report_body

    chapters = [{"name": "00_x", "title": "00 · x", "time": "5 min", "goals": []}]
    index = index_page(chapters, [], "small", 0)
    assert "\nrobustness\n" in index and "\n00_x\n" in index  # both in the book's toctree
    report = {"budgets": {"small": {"runs": [], "summary": [], "times": {}, "time_limit_s": 60}}}
    body = report_body(report)
    assert "<html" not in body and "Budget <code>small</code>" in body
    assert body in robustness_page(body) and "make robustness" in robustness_page(None)

def test_execute_injects_the_seed_stops_at_the_first_error_and_writes_the_notebook_once(tmp_path):
    """``flatlab.execute`` (behind ``flatlab book`` and the harness): the parameters after the chapter's own cell,
    nbclient's ``CellExecutionError`` at the first raising cell, the notebook written up to there; with
    ``allow_errors`` every cell runs and the error stays in the outputs."""
    from nbclient.exceptions import CellExecutionError

    from flatlab.execute import execute, parameterized

    path = write_chapter(tmp_path / "c.ipynb", "import os\nprint(SEED * 10, os.path.basename(os.getcwd()))")
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("raise KeyError('k')"), nbformat.v4.new_code_cell("print('after')")]
    nbformat.write(nb, path)
    (tmp_path / "here").mkdir()
    with pytest.raises(CellExecutionError) as err:
        execute(parameterized(path, {"SEED": 7}), tmp_path / "out" / "c.ipynb", cwd=tmp_path / "here")
    assert (err.value.ename, err.value.evalue) == ("KeyError", "'k'")
    done = nbformat.read(tmp_path / "out" / "c.ipynb", as_version=4)
    assert "injected-parameters" in done.cells[2].metadata.tags and "SEED = 7" in done.cells[2].source
    assert done.cells[3].outputs[0].text == "70 here\n"
    assert done.cells[4].outputs[0].ename == "KeyError" and not done.cells[5].get("outputs")
    nb = execute(parameterized(path, text=path.read_text()), cwd=tmp_path, allow_errors=True, quiet_kernel=True)
    assert [o.get("text") for o in nb.cells[-1].outputs] == ["after\n"]
    assert nb.cells[2].outputs[0].text.startswith("0 ")  # no parameters given: the chapter's own SEED = 0
    for bad, kwargs in ((TypeError, dict(parameters=["SEED", 1])), (ValueError, dict(parameters={"not a name": 1})),
                        (TypeError, dict(text=b"{}"))):
        with pytest.raises(bad, match="parameters" if "parameters" in kwargs else "text"):
            parameterized(path, **kwargs)
    with pytest.raises(ValueError, match="source"):
        parameterized(tmp_path / "missing.ipynb")
    for bad, kwargs, name in ((TypeError, dict(nb={"cells": []}), "nb"), (ValueError, dict(cwd=tmp_path / "no"), "cwd"),
                              (ValueError, dict(timeout=0), "timeout"), (TypeError, dict(allow_errors="yes"), "allow_errors")):
        args = dict(nb=nb, cwd=tmp_path) | kwargs
        with pytest.raises(bad, match=name):
            execute(args.pop("nb"), **args)
