"""Chapter 05 check functions: the references pass, plausible mistakes fail with a message naming them."""
import pytest
import torch

from flatlab.exercises import grokking as ex


def _stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- StableMax
def test_stablemax_reference_passes(capsys):
    assert ex.check_stablemax(ex.stablemax_reference)
    assert capsys.readouterr().out.startswith("✓ stablemax")


def test_stablemax_reference_agrees_with_the_library():
    from flatlab.grokking import stablemax

    x = torch.randn(6, 9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ex.stablemax_reference(x), stablemax(x))


@pytest.mark.parametrize("wrong, message", [
    (lambda x: torch.softmax(x, -1), "that is softmax"),
    (lambda x: (x + 1) / (x + 1).sum(-1, keepdim=True), "for x < 0 use s(x) = 1/(1 − x)"),
    (lambda x: ex._normalized(torch.where(x >= 0, x + 1, 1 / (1 + x))), "sign slip"),
    (lambda x: ex._raw_s(x), "divide s(x_i) by Σ_j s(x_j)"),
    (lambda x: ex._raw_s(x) / ex._raw_s(x).sum(0, keepdim=True), "normalize over the last axis"),
])
def test_stablemax_mistakes_are_named(capsys, wrong, message):
    assert not ex.check_stablemax(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ stablemax") and message in out and "expected" in out


def test_stablemax_stub_and_crash(capsys):
    assert not ex.check_stablemax(_stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_stablemax(lambda x: x.nonexistent())
    assert "raised AttributeError" in capsys.readouterr().out
    assert not ex.check_stablemax(lambda x: x.sum())
    assert "expected a tensor of shape" in capsys.readouterr().out


# ----------------------------------------------------------------------------- ⊥Grad
def test_orthogonal_gradient_reference_passes_and_matches_library(capsys):
    from flatlab.grokking import orthogonal_gradient

    assert ex.check_orthogonal_gradient(ex.orthogonal_gradient_reference)
    assert "✓ orthogonal_gradient" in capsys.readouterr().out
    g, w = torch.randn(5, 4), torch.randn(5, 4)
    assert torch.allclose(ex.orthogonal_gradient_reference(g, w), orthogonal_gradient(g, w), atol=1e-6)


def _proj(g, w):
    return (g * w).sum() / (w * w).sum() * w


@pytest.mark.parametrize("wrong, message", [
    (lambda g, w: g - _proj(g, w), "rescale g⊥ to the norm of the original gradient"),
    (lambda g, w: _proj(g, w), "component *along* w"),
    (lambda g, w: (g + _proj(g, w)) * g.norm() / (g + _proj(g, w)).norm(), "subtract the projection"),
    (lambda g, w: (lambda q: q * g.norm() / q.norm())(g - (g * w).sum() / w.norm() * w), "not by ‖w‖"),
    (lambda g, w: g, "not orthogonal to w"),
])
def test_orthogonal_gradient_mistakes_are_named(capsys, wrong, message):
    assert not ex.check_orthogonal_gradient(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ orthogonal_gradient") and message in out


def test_orthogonal_gradient_stub_and_shape(capsys):
    assert not ex.check_orthogonal_gradient(_stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_orthogonal_gradient(lambda g, w: ex.orthogonal_gradient_reference(g, w).reshape(-1))
    assert "shaped like grad" in capsys.readouterr().out


# ----------------------------------------------------------------------------- IPR
def test_ipr_reference_passes_and_matches_library(capsys):
    from flatlab.grokking import ipr

    assert ex.check_ipr(ex.ipr_reference)
    assert "✓ ipr" in capsys.readouterr().out
    p = torch.rand(4, 10)
    assert torch.allclose(ex.ipr_reference(p), ipr(p))


@pytest.mark.parametrize("wrong, message", [
    (lambda p: p.sum(-1) ** 2 / (p**2).sum(-1), "participation ratio"),
    (lambda p: (p**2).sum(-1), "normalize"),
    (lambda p: (p**4).sum(-1) / ((p**2).sum(-1)) ** 2, "already a power"),
    (lambda p: (p**2).sum(-1) / (p**2).sum(-1).sqrt(), "not by ‖P‖"),
])
def test_ipr_mistakes_are_named(capsys, wrong, message):
    assert not ex.check_ipr(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ ipr") and message in out


def test_ipr_wrong_axis_and_stub(capsys):
    assert not ex.check_ipr(lambda p: (p**2).sum() / p.sum() ** 2)
    assert "over the last axis" in capsys.readouterr().out
    assert not ex.check_ipr(_stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_checks_are_reachable_from_flatlab_exercises():
    import flatlab

    assert flatlab.exercises.check_stablemax is not None and flatlab.exercises.check_ipr is not None
