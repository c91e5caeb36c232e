"""`make bench` is the check: a missed goal gives a non-zero exit status (benchmarks/goals.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from goals import GOALS, Goals  # noqa: E402


def test_goals_report_and_fail_on_a_missed_goal(capsys):
    g = Goals()
    assert g.check("SAM / SGD step", 2.0) and g.check("32-model sweep: vmap over the loop", 12.5)
    assert g.finish() == 0
    assert not g.check("widget update, worst (ms)", 180.0)
    assert g.finish() == 1
    out = capsys.readouterr()
    assert "✓" in out.out and "✗ missed" in out.out and "widget update" in out.err
    with pytest.raises(KeyError, match="no goal named"):
        g.check("a goal nobody set", 1.0)


def test_every_goal_is_checked_by_some_benchmark():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (Path(__file__).resolve().parent.parent
                                                                 / "benchmarks").glob("bench_*.py"))
    assert all(f'"{name}"' in sources for name in GOALS), [n for n in GOALS if f'"{n}"' not in sources]
