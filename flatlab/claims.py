"""Claims: the assertions a chapter makes about the science it shows.

``claim("GD escapes the sharp minimum", escaped, eta=0.6, lambda_sharp=4.0)`` prints a ✓/✗ line
with the figures, records the claim, and raises :class:`ClaimFailed` when the condition is false.
When ``FLATLAB_CLAIMS_FILE`` is set every claim is also appended to that file as one JSON line,
so ``make test`` and ``make book`` can collect the claims of every executed chapter.
``FLATLAB_CLAIMS_RAISE=0`` records a failed claim without raising, so a run that measures claims
over many seeds (``flatlab robustness``) sees every claim of a chapter, not only the first failure.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CLAIMS_FILE_VAR = "FLATLAB_CLAIMS_FILE"
CHAPTER_VAR = "FLATLAB_CHAPTER"
RAISE_VAR = "FLATLAB_CLAIMS_RAISE"


class ClaimFailed(AssertionError):
    """A chapter's claim did not hold: the phenomenon it teaches did not happen."""


@dataclass
class Claim:
    name: str
    passed: bool
    figures: dict = field(default_factory=dict)
    chapter: str = ""
    seed: str = ""

    def _ipython_display_(self) -> None:
        """Show nothing: ``claim`` has already printed its ✓/✗ line."""


_RECORD: list[Claim] = []


def _plain(value):
    """Convert tensors / numpy scalars to plain JSON-able python values."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def claim(name: str, condition, **figures) -> Claim:
    """Check and record one claim; raise :class:`ClaimFailed` if ``condition`` is false.

    >>> claim("two is larger than one", 2 > 1, two=2, one=1).passed
    ✓ two is larger than one  (two=2, one=1)
    True
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string describing the claim")
    passed = bool(condition)
    figures = {k: _plain(v) for k, v in figures.items()}
    record = Claim(name=name, passed=passed, figures=figures, chapter=os.environ.get(CHAPTER_VAR, ""),
                   seed=os.environ.get("FLATLAB_SEED", ""))
    _RECORD.append(record)
    detail = ", ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
    print(f"{'✓' if passed else '✗'} {name}" + (f"  ({detail})" if detail else ""))
    path = os.environ.get(CLAIMS_FILE_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
    if not passed and os.environ.get(RAISE_VAR, "1") != "0":
        raise ClaimFailed(f"claim failed: {name}" + (f" ({detail})" if detail else ""))
    return record


def recorded() -> list[Claim]:
    """Claims made in this process so far."""
    return list(_RECORD)


def collect(jsonl: str | Path, out: str | Path) -> list[dict]:
    """Read claims appended to ``jsonl`` and write them as one JSON list to ``out``.

    A missing ``jsonl`` means no claim was recorded (``[]``); a line that is not a claim (a file cut
    short while a claim was written) raises ValueError naming the file and the line, and ``out`` is
    not written.
    """
    jsonl = Path(jsonl)
    rows = []
    if jsonl.exists():
        for n, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{jsonl}: line {n} is not valid JSON ({err.msg}): the file is truncated or "
                                 f"damaged") from None
            if not isinstance(row, dict) or "name" not in row or "passed" not in row:
                raise ValueError(f"{jsonl}: line {n} is not a claim (a JSON object with 'name' and 'passed')")
            rows.append(row)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return rows


def summary_table(rows: list[dict]) -> str:
    """A plain-text table of claims: chapter, ✓/✗, name."""
    if not rows:
        return "no claims recorded"
    width = max(len(r.get("chapter", "")) for r in rows)
    lines = [f"{r.get('chapter', ''):<{width}}  seed {r.get('seed', '') or '-':>2}  {'✓' if r['passed'] else '✗'}  {r['name']}"
             for r in rows]
    n_ok = sum(r["passed"] for r in rows)
    lines.append(f"{n_ok}/{len(rows)} claims hold")
    return "\n".join(lines)
