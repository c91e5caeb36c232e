"""Every exercise check against the catalogue of wrong, correct and stub answers (tests/check_catalogue.py):
wrong answers are rejected with *their* mistake named, correct variants accepted, stubs get the friendly
note; and the cases of every check tell its named mistakes apart."""
import sys
from pathlib import Path

import numpy as np
import pytest

from flatlab import exercises
from flatlab.exercises import base

sys.path.insert(0, str(Path(__file__).parent))
from check_catalogue import CATALOGUE  # noqa: E402

NAMES = [name[len("check_"):] for name in exercises.checks()]
WRONG = [(name, label, fn, text) for name in NAMES for label, fn, text in CATALOGUE[name].wrong]
CORRECT = [(name, label, fn) for name in NAMES for label, fn in CATALOGUE[name].correct.items()]


def _check(name):
    return getattr(exercises, f"check_{name}")


def test_the_catalogue_covers_every_check():
    assert len(NAMES) == 21 and set(CATALOGUE) == set(NAMES)
    for name in NAMES:
        entry = CATALOGUE[name]
        assert len(entry.wrong) >= 4, name
        assert len(entry.correct) >= 3, name
        assert "notebook solution" in entry.correct, name


@pytest.mark.parametrize("name, label, fn, text", WRONG, ids=[f"{w[0]}: {w[1]}" for w in WRONG])
def test_wrong_answer_is_rejected_with_its_mistake_named(name, label, fn, text, capsys):
    assert _check(name)(fn) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}:"), out
    assert text in out, f"{label!r}: {text!r} not in\n{out}"
    hints = [line for line in out.splitlines() if line.strip().startswith("→")]
    assert not hints or text in hints[0], f"{label!r}: a hint naming another mistake\n{out}"


@pytest.mark.parametrize("name, label, fn", CORRECT, ids=[f"{c[0]}: {c[1]}" for c in CORRECT])
def test_correct_variant_is_accepted(name, label, fn, capsys):
    ok = _check(name)(fn)
    out = capsys.readouterr().out
    assert ok is True, out
    assert out.startswith(f"✓ {name}: all"), out


@pytest.mark.parametrize("name", NAMES)
def test_stub_gets_the_friendly_note(name, capsys):
    assert _check(name)(CATALOGUE[name].stub) is False
    out = capsys.readouterr().out
    assert out.startswith("…") and "not implemented yet" in out and "reference" in out, out


@pytest.mark.parametrize("name", NAMES)
def test_not_a_function_is_told_so(name, capsys):
    assert _check(name)(3.0) is False
    assert "pass your function itself" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_each_candidate_mistake_is_named_by_its_own_hint(name, capsys):
    """The answer a hint's candidate describes, submitted as it is, fails with that hint — so no earlier hint
    explains all of its failing cases, and the cases tell the mistakes apart."""
    for hint in base.SPECS[name]()["hints"]:
        if hint.candidate is None:
            continue
        assert _check(name)(hint.candidate) is False, hint.text
        out = capsys.readouterr().out
        assert f"→ {hint.text}" in out, f"{hint.text!r} not named; got\n{out}"


@pytest.mark.parametrize("name", NAMES)
def test_candidate_mistakes_differ_on_the_cases_where_they_fail(name):
    """Numerically: for every hint j and every hint i before it, some case where j's mistake fails gives a
    different value under i's mistake (else i would be named for j's mistake)."""
    spec = base.SPECS[name]()
    cases = spec["cases"]
    for case in cases:
        if case.expected is base._MISSING:
            case.expected = spec["reference"](*[base._copy(a) for a in case.args])
    like = [h for h in spec["hints"] if h.candidate is not None]
    values = [[base.evaluate(h.candidate, c) for c in cases] for h in like]
    for j, hj in enumerate(like):
        failing = [k for k, c in enumerate(cases) if values[j][k] is not None
                   and not base.close(values[j][k], c.expected, hj.rtol)]
        assert failing, f"{hj.text!r} is right on every case"
        for i in range(j):
            assert any(values[i][k] is None or not base.close(values[i][k], values[j][k], like[i].rtol, equal_nan=True)
                       for k in failing), f"{like[i].text!r} coincides with {hj.text!r} on every case where the latter fails"


def test_exception_is_reported_with_the_line_that_raised(capsys):
    def gd_step(w, centre, hessian, lr):
        grad = hessian @ (w - centre)
        return w - lr * grad.T @ np.ones((3, 3))

    assert not exercises.check_gd_step(gd_step)
    out = capsys.readouterr().out
    assert "raised ValueError" in out and "`gd_step`, line" in out and "grad.T @ np.ones((3, 3))" in out, out


def test_not_implemented_deep_in_a_library_is_an_error_not_a_stub(capsys):
    def uses_a_missing_feature(h):
        import torch
        return torch.ones(2).to_sparse().view(1, 2)            # raises NotImplementedError or RuntimeError inside torch

    assert not exercises.check_max_stable_lr(uses_a_missing_feature)
    out = capsys.readouterr().out
    assert out.startswith("✗") and "raised" in out and "not implemented yet" not in out.splitlines()[0], out


def test_hint_only_when_it_explains_every_failing_case(capsys):
    """Nesterov's threshold on every case but one explains not every failing case: no hint at all."""
    def mostly_nesterov(lr, b):
        return 99.0 if b == 0.9 else (2 + 2 * b) / (lr * (1 + 2 * b))

    assert not exercises.check_heavy_ball_threshold(mostly_nesterov)
    out = capsys.readouterr().out
    assert "→" not in out and "Nesterov" not in out, out
    assert not exercises.check_heavy_ball_threshold(lambda lr, b: (2 + 2 * b) / (lr * (1 + 2 * b)))
    assert "→ that is Nesterov's threshold" in capsys.readouterr().out
    assert not exercises.check_heavy_ball_threshold(lambda lr, b: (1 + b) / lr)      # = Nesterov's at β = 0.5
    out = capsys.readouterr().out
    assert "missing a factor 2" in out and "Nesterov" not in out, out


def test_float32_answer_within_tolerance_shows_no_phantom_difference(capsys):
    assert exercises.check_gd_step(lambda w, m, a, lr: (w - lr * a @ (w - m)).astype(np.float32))
    assert not exercises.check_gd_step(lambda w, m, a, lr: w - lr * a @ (w - m) + 1e-4)
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "expected" in x)
    expected, got = line.split("expected ")[1].split(", got ")
    assert expected != got, line      # enough digits to show the difference
