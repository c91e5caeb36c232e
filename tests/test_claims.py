import json

import numpy as np
import pytest
import torch

from flatlab import claims
from flatlab.claims import ClaimFailed, claim


def test_true_claim_prints_check_and_figures(capsys):
    record = claim("GD escapes", True, eta=np.float64(0.11), steps=torch.tensor(40))
    out = capsys.readouterr().out
    assert out.startswith("✓ GD escapes") and "eta=0.11" in out and "steps=40" in out
    assert record.passed and record.figures == {"eta": 0.11, "steps": 40}
    assert claims.recorded()[-1] is record


def test_false_claim_raises_with_figures(capsys):
    with pytest.raises(ClaimFailed, match=r"claim failed: grokking happens \(test_acc=0.12\)"):
        claim("grokking happens", False, test_acc=0.12)
    assert capsys.readouterr().out.startswith("✗ grokking happens")
    assert not claims.recorded()[-1].passed


def test_claims_are_appended_to_file_and_collected(tmp_path, monkeypatch):
    jsonl = tmp_path / "c.jsonl"
    monkeypatch.setenv("FLATLAB_CLAIMS_FILE", str(jsonl))
    monkeypatch.setenv("FLATLAB_CHAPTER", "00_welcome")
    claim("one", True, x=1)
    with pytest.raises(ClaimFailed):
        claim("two", False)
    rows = claims.collect(jsonl, tmp_path / "out" / "claims.json")
    assert [r["name"] for r in rows] == ["one", "two"] and rows[0]["chapter"] == "00_welcome"
    assert json.loads((tmp_path / "out" / "claims.json").read_text()) == rows
    table = claims.summary_table(rows)
    assert "1/2 claims hold" in table and "✗  two" in table


def test_claim_needs_a_name():
    with pytest.raises(ValueError, match="name"):
        claim("", True)
