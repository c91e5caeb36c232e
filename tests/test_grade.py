"""`flatlab grade`: synthetic submissions (complete, partial, wrong, broken, hanging, not a notebook)."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import nbformat
import pytest

from flatlab.cli import main
from flatlab.exercises import checks
from flatlab.grade import expected_checks, grade, submissions

SETUP = "import numpy as np\nimport flatlab"
CHECK_LR = ("if not flatlab.exercises.check_max_stable_lr(max_stable_lr):\n"
            "    max_stable_lr = flatlab.exercises.max_stable_lr_reference")
CHECK_HB = "flatlab.exercises.check_heavy_ball_threshold(heavy_ball_threshold)"
RIGHT_LR = "def max_stable_lr(hessian):\n    return 2 / float(np.linalg.eigvalsh(hessian).max())"
WRONG_LR = "def max_stable_lr(hessian):\n    return 1 / float(np.linalg.eigvalsh(hessian).max())"
RIGHT_HB = "def heavy_ball_threshold(lr, momentum):\n    return (2 + 2 * momentum) / lr"
STUB_HB = "def heavy_ball_threshold(lr, momentum):\n    raise NotImplementedError('(2 + 2β)/η')"


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# an exercise sheet")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    subs = {
        "alice/sheet.ipynb": notebook(SETUP, RIGHT_LR, CHECK_LR, RIGHT_HB, CHECK_HB),       # complete
        "bob/sheet.ipynb": notebook(SETUP, RIGHT_LR, CHECK_LR, STUB_HB, CHECK_HB),          # partial
        "carol/sheet.ipynb": notebook(SETUP, WRONG_LR, CHECK_LR, RIGHT_HB, CHECK_HB),       # wrong
        "dave/sheet.ipynb": notebook(SETUP, "def max_stable_lr(h)\n    return 2", CHECK_LR,  # a syntax error
                                     RIGHT_HB, CHECK_HB),
        "erin/sheet.ipynb": notebook(SETUP, RIGHT_LR, CHECK_LR, "import time\ntime.sleep(60)", RIGHT_HB, CHECK_HB),
    }
    for rel, nb in subs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, root / rel)
    (root / "frank").mkdir()
    (root / "frank" / "sheet.ipynb").write_text("{ this is not json", encoding="utf-8")
    (root / "gina.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    out = root.parent / "grades"
    rows = grade([root], out, timeout=10, progress=False)  # erin sleeps 60 s in a cell; importing flatlab takes ~2 s
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return root, out, {Path(r["submission"]).relative_to(root).as_posix(): r for r in rows}, before, after


def test_every_submission_gets_a_row_and_none_is_modified(graded):
    root, out, rows, before, after = graded
    assert set(rows) == {"alice/sheet.ipynb", "bob/sheet.ipynb", "carol/sheet.ipynb", "dave/sheet.ipynb",
                         "erin/sheet.ipynb", "frank/sheet.ipynb", "gina.ipynb"}
    assert before == after
    with open(out / "grades.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 7 and {"max_stable_lr", "heavy_ball_threshold"} <= set(table[0])


def test_verdicts_name_what_happened(graded):
    _, out, rows, _, _ = graded
    verdict = {k: r["checks"] for k, r in rows.items()}
    assert verdict["alice/sheet.ipynb"] == {"max_stable_lr": "pass", "heavy_ball_threshold": "pass"}
    assert rows["alice/sheet.ipynb"]["score"] == "2/2" and rows["alice/sheet.ipynb"]["status"] == "graded"
    assert verdict["bob/sheet.ipynb"] == {"max_stable_lr": "pass", "heavy_ball_threshold": "not implemented"}
    assert verdict["carol/sheet.ipynb"] == {"max_stable_lr": "fail", "heavy_ball_threshold": "pass"}
    # dave's syntax error leaves max_stable_lr undefined: the check cell raises NameError, the rest goes on
    assert verdict["dave/sheet.ipynb"] == {"max_stable_lr": "not run", "heavy_ball_threshold": "pass"}
    assert any("SyntaxError" in e for e in rows["dave/sheet.ipynb"]["errors"])
    # erin's notebook hangs: the time limit stops it, the checks after it are "not run"
    assert rows["erin/sheet.ipynb"]["status"].startswith("timed out")
    assert verdict["erin/sheet.ipynb"] == {"max_stable_lr": "pass", "heavy_ball_threshold": "not run"}
    for k in ("frank/sheet.ipynb", "gina.ipynb"):
        assert rows[k]["status"].startswith("not a notebook") and rows[k]["checks"] == {}


def test_feedback_files_carry_the_checks_messages(graded):
    _, out, rows, _, _ = graded
    carol = (out / "feedback" / f"{rows['carol/sheet.ipynb']['label']}.txt").read_text(encoding="utf-8")
    assert "max_stable_lr: fail" in carol and "expected" in carol   # the check's own case-by-case message
    frank = (out / "feedback" / f"{rows['frank/sheet.ipynb']['label']}.txt").read_text(encoding="utf-8")
    assert "not a notebook" in frank
    assert (out / "executed" / f"{rows['alice/sheet.ipynb']['label']}.ipynb").is_file()
    labels = [r["label"] for r in rows.values()]
    assert len(set(labels)) == len(labels)   # the same file name from two students never collides


def test_expected_checks_and_submissions():
    nb = notebook(SETUP, CHECK_LR, CHECK_HB, CHECK_LR)
    assert expected_checks(nb) == ["max_stable_lr", "heavy_ball_threshold"]
    with pytest.raises(ValueError, match="does not exist"):
        submissions(["/no/such/place.ipynb"])


def test_every_chapter_check_reports_under_its_own_name(tmp_path, monkeypatch):
    """The grade reads a check's verdict by the name in `check_NAME`: every check must record that name."""
    import json

    import flatlab.exercises as ex

    record = tmp_path / "checks.jsonl"
    monkeypatch.setenv("FLATLAB_CHECKS_FILE", str(record))

    def stub(*args, **kwargs):
        raise NotImplementedError

    for name in checks():
        getattr(ex, name)(stub)
    names = [json.loads(line)["check"] for line in record.read_text(encoding="utf-8").splitlines()]
    assert names == [n.removeprefix("check_") for n in checks()]
    assert all(json.loads(line)["status"] == "not implemented"
               for line in record.read_text(encoding="utf-8").splitlines())


def test_grade_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path / "missing.ipynb")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--timeout", "0"])
    assert "--timeout" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        main(["grade", str(empty)])
    assert "no submissions" in capsys.readouterr().err
