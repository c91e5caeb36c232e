import numpy as np
import pytest

from flatlab.exercises import implicit as ex
from flatlab.implicit import effective_rank


def test_effective_rank_reference_passes_and_agrees_with_the_library(capsys):
    assert ex.check_effective_rank(ex.effective_rank_reference)
    assert capsys.readouterr().out.startswith("✓ effective_rank")
    s = np.array([5.0, 2.0, 0.5, 0.0])
    assert np.isclose(ex.effective_rank_reference(s), effective_rank(s))


def test_effective_rank_squared_normalization_is_named(capsys):
    def squared(s):
        q = s[s > 0] ** 2 / (s[s > 0] ** 2).sum()
        return float(np.exp(-(q * np.log(q)).sum()))

    assert not ex.check_effective_rank(squared)
    assert "not of their squares" in capsys.readouterr().out


def test_effective_rank_returning_entropy_is_named(capsys):
    def entropy(s):
        p = s[s > 0] / s.sum()
        return float(-(p * np.log(p)).sum())

    assert not ex.check_effective_rank(entropy)
    out = capsys.readouterr().out
    assert "returned the entropy" in out and "expected" in out


def test_effective_rank_mixing_log2_and_exp_is_named(capsys):
    def bits(s):
        p = s[s > 0] / s.sum()
        return float(np.exp(-(p * np.log2(p)).sum()))

    assert not ex.check_effective_rank(bits)
    assert "do not mix log2 with exp" in capsys.readouterr().out


def test_effective_rank_counting_nonzero_is_named(capsys):
    assert not ex.check_effective_rank(lambda s: float((s > 0).sum()))
    assert "(the rank)" in capsys.readouterr().out


def test_effective_rank_zero_singular_values_nan_is_named(capsys):
    def naive(s):
        p = s / s.sum()
        with np.errstate(all="ignore"):
            return float(np.exp(-(p * np.log(p)).sum()))

    assert not ex.check_effective_rank(naive)
    assert "0·log 0" in capsys.readouterr().out


def test_effective_rank_stub_and_crash(capsys):
    def stub(s):
        raise NotImplementedError

    assert not ex.check_effective_rank(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_effective_rank(lambda s: s.nope)
    assert "raised AttributeError" in capsys.readouterr().out


def test_natural_gradient_reference_passes(capsys):
    assert ex.check_natural_gradient_linear(ex.natural_gradient_linear_reference)
    assert "✓ natural_gradient_linear" in capsys.readouterr().out


def test_natural_gradient_torch_solution_passes(capsys):
    import torch

    def with_torch(x, g, lam):
        x, g = torch.as_tensor(x), torch.as_tensor(g)
        return torch.linalg.solve(x.T @ x / len(x) + lam * torch.eye(x.shape[1], dtype=x.dtype), g)

    assert ex.check_natural_gradient_linear(with_torch)


def test_natural_gradient_forgetting_n_is_named(capsys):
    assert not ex.check_natural_gradient_linear(lambda x, g, lam: np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), g))
    assert "divide XᵀX by n" in capsys.readouterr().out


def test_natural_gradient_forgetting_damping_is_named(capsys):
    assert not ex.check_natural_gradient_linear(lambda x, g, lam: np.linalg.solve(x.T @ x / len(x), g))
    assert "add the damping" in capsys.readouterr().out


def test_natural_gradient_multiplying_by_fisher_is_named(capsys):
    assert not ex.check_natural_gradient_linear(lambda x, g, lam: (x.T @ x / len(x) + lam * np.eye(x.shape[1])) @ g)
    assert "do not multiply by it" in capsys.readouterr().out


def test_natural_gradient_plain_gradient_is_named(capsys):
    assert not ex.check_natural_gradient_linear(lambda x, g, lam: g)
    assert "plain gradient" in capsys.readouterr().out


def test_natural_gradient_wrong_gram_matrix_is_named(capsys):
    assert not ex.check_natural_gradient_linear(lambda x, g, lam: np.ones(len(x)))
    assert "not XXᵀ" in capsys.readouterr().out


def test_natural_gradient_stub(capsys):
    def stub(x, g, lam):
        raise NotImplementedError

    assert not ex.check_natural_gradient_linear(stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_normalized_margin_reference_passes_and_agrees_with_the_library(capsys):
    import torch

    from flatlab.implicit import normalized_margin

    assert ex.check_normalized_margin(ex.normalized_margin_reference)
    assert capsys.readouterr().out.startswith("✓ normalized_margin")
    assert ex.check_normalized_margin(normalized_margin)          # flatlab's torch version takes numpy too
    x, y, w = np.array([[2.0, 0.0], [-1.0, -3.0]]), np.array([1.0, -1.0]), np.array([1.0, 2.0])
    by_library = normalized_margin(torch.tensor(w), torch.tensor(x), torch.tensor(y))
    assert np.isclose(ex.normalized_margin_reference(w, x, y), by_library)
    assert np.isclose(ex.normalized_margin_reference(7 * w, x, y), ex.normalized_margin_reference(w, x, y))


def test_normalized_margin_svm_direction_has_the_svm_margin():
    import torch

    from flatlab.implicit import mirrored, svm_direction

    x = torch.tensor([[2.0, 1.0], [1.8, 0.6], [3.0, -0.5]], dtype=torch.float64)
    xm, ym = mirrored(x, torch.ones(3, dtype=torch.float64))
    svm = svm_direction(xm, ym)
    assert np.isclose(ex.normalized_margin_reference(svm.w.numpy(), xm.numpy(), ym.numpy()), svm.margin)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda w, x, y: (y * (x @ w)).min(), "divide by ‖w‖"),
    (lambda w, x, y: (y * (x @ w)).min() / (w @ w), "not ‖w‖²"),
    (lambda w, x, y: (x @ w).min() / np.linalg.norm(w), "multiply by the labels"),
    (lambda w, x, y: np.abs(x @ w).min() / np.linalg.norm(w), "keep the sign"),
    (lambda w, x, y: (y * (x @ w)).mean() / np.linalg.norm(w), "not their mean"),
    (lambda w, x, y: (y * (x @ w)).max() / np.linalg.norm(w), "not the largest"),
    (lambda w, x, y: (y * (x @ w) / np.linalg.norm(x, axis=1)).min() / np.linalg.norm(w), "gives a cosine"),
    (lambda w, x, y: y * (x @ w) / np.linalg.norm(w), "take the minimum over the points"),
])
def test_normalized_margin_mistakes_are_named(capsys, wrong, phrase):
    assert not ex.check_normalized_margin(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ normalized_margin") and phrase in out, out


def test_normalized_margin_stub_and_crash(capsys):
    def stub(w, x, y):
        raise NotImplementedError

    assert not ex.check_normalized_margin(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_normalized_margin(lambda w, x, y: w.nope)
    assert "raised AttributeError" in capsys.readouterr().out
