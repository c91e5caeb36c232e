import math

import numpy as np

from flatlab import exercises


def test_reference_passes(capsys):
    assert exercises.check_max_stable_lr(exercises.max_stable_lr_reference)
    assert capsys.readouterr().out.startswith("✓")


def test_smallest_eigenvalue_mistake_is_named(capsys):
    assert not exercises.check_max_stable_lr(lambda h: 2 / np.linalg.eigvalsh(h).min())
    assert "smallest eigenvalue" in capsys.readouterr().out


def test_one_over_lambda_mistake_is_named(capsys):
    assert not exercises.check_max_stable_lr(lambda h: 1 / np.linalg.eigvalsh(h).max())
    assert "not 1/λ" in capsys.readouterr().out


def test_diagonal_mistake_is_named(capsys):
    assert not exercises.check_max_stable_lr(lambda h: 2 / np.max(np.diag(h)))
    out = capsys.readouterr().out
    assert "diagonal entries are not the eigenvalues" in out and "expected" in out


def test_stub_gets_friendly_note(capsys):
    def stub(h):
        raise NotImplementedError

    assert not exercises.check_max_stable_lr(stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_crashing_solution_is_reported(capsys):
    assert not exercises.check_max_stable_lr(lambda h: h.nonexistent)
    assert "raised AttributeError" in capsys.readouterr().out


def test_power_iteration_reference_passes(capsys):
    assert exercises.check_power_iteration(exercises.power_iteration_reference)
    assert "✓ power_iteration" in capsys.readouterr().out


def test_power_iteration_without_normalization_is_named(capsys):
    import torch

    def no_normalize(matvec, dim, n_iter=100):
        v = torch.ones(dim, dtype=torch.float64)
        for _ in range(n_iter):
            v = matvec(v)
        return float(v @ matvec(v)), v

    assert not exercises.check_power_iteration(no_normalize)
    assert "normalize v" in capsys.readouterr().out


def test_power_iteration_returning_norm_of_v_is_named(capsys):
    def wrong_value(matvec, dim, n_iter=100):
        value, v = exercises.power_iteration_reference(matvec, dim, n_iter)
        return float(v.norm()), v

    assert not exercises.check_power_iteration(wrong_value)
    assert "Rayleigh quotient" in capsys.readouterr().out


def test_power_iteration_too_few_iterations_is_named(capsys):
    def lazy(matvec, dim, n_iter=100):
        return exercises.power_iteration_reference(matvec, dim, 3)

    assert not exercises.check_power_iteration(lazy)
    assert "iterate n_iter times" in capsys.readouterr().out


def test_power_iteration_stub(capsys):
    def stub(matvec, dim, n_iter=100):
        raise NotImplementedError

    assert not exercises.check_power_iteration(stub)
    assert "not implemented yet" in capsys.readouterr().out


# chapter 00: one GD step on a quadratic basin
def test_gd_step_reference_passes(capsys):
    assert exercises.check_gd_step(exercises.gd_step_reference)
    assert "✓ gd_step" in capsys.readouterr().out


def test_gd_step_wrong_sign_is_named(capsys):
    assert not exercises.check_gd_step(lambda w, m, a, lr: w + lr * a @ (w - m))
    out = capsys.readouterr().out
    assert "wrong sign" in out and "expected" in out


def test_gd_step_forgotten_centre_is_named(capsys):
    assert not exercises.check_gd_step(lambda w, m, a, lr: w - lr * a @ w)
    assert "subtract the centre" in capsys.readouterr().out


def test_gd_step_elementwise_product_is_named(capsys):
    assert not exercises.check_gd_step(lambda w, m, a, lr: w - lr * a * (w - m))
    assert "matrix product" in capsys.readouterr().out


def test_gd_step_in_place_update_is_named(capsys):
    def in_place(w, m, a, lr):
        w -= lr * a @ (w - m)
        return w

    assert not exercises.check_gd_step(in_place)
    assert "modified in place" in capsys.readouterr().out


def test_gd_step_stub(capsys):
    def stub(w, centre, hessian, lr):
        raise NotImplementedError

    assert not exercises.check_gd_step(stub)
    assert "not implemented yet" in capsys.readouterr().out


# chapter 00: GD steps to shrink the error by a factor
def _steps(rho, factor):
    return math.inf if rho >= 1 else math.ceil(math.log(factor) / -math.log(rho))


def test_steps_to_shrink_reference_passes(capsys):
    assert exercises.check_steps_to_shrink(exercises.steps_to_shrink_reference)
    assert "✓ steps_to_shrink" in capsys.readouterr().out


def test_steps_to_shrink_reference_values():
    assert exercises.steps_to_shrink_reference(np.diag([20.0, 5.0]), 0.09, 1e3) == 31   # ρ = |1 − 1.8| = 0.8
    assert exercises.steps_to_shrink_reference(np.diag([0.5, 0.25]), 0.09, 1e3) == 304  # ρ = 1 − 0.0225
    assert exercises.steps_to_shrink_reference(np.diag([20.0, 0.5]), 0.11, 1e3) == math.inf


def test_steps_to_shrink_largest_eigenvalue_only_is_named(capsys):
    def lambda_max_only(h, lr, factor):
        return _steps(abs(1 - lr * np.linalg.eigvalsh(h).max()), factor)

    assert not exercises.check_steps_to_shrink(lambda_max_only)
    assert "slowest direction sets the pace" in capsys.readouterr().out


def test_steps_to_shrink_missing_absolute_value_is_named(capsys):
    def no_abs(h, lr, factor):
        return _steps(np.max(1 - lr * np.linalg.eigvalsh(h)), factor)

    assert not exercises.check_steps_to_shrink(no_abs)
    out = capsys.readouterr().out
    assert "take |1 − ηλ|" in out and "return math.inf" in out


def test_steps_to_shrink_rounding_down_is_named(capsys):
    def floor(h, lr, factor):
        rho = np.max(np.abs(1 - lr * np.linalg.eigvalsh(h)))
        return math.inf if rho >= 1 else math.floor(math.log(factor) / -math.log(rho))

    assert not exercises.check_steps_to_shrink(floor)
    assert "round up" in capsys.readouterr().out


def test_steps_to_shrink_stub(capsys):
    def stub(hessian, lr, factor):
        raise NotImplementedError

    assert not exercises.check_steps_to_shrink(stub)
    assert "not implemented yet" in capsys.readouterr().out


# chapter 01: Hutchinson's trace estimator
def _probes(kind, dim, n, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        if kind == "gaussian":
            yield torch.randn(dim, generator=g, dtype=torch.float64)
        else:
            v = torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1
            yield v / v.norm() if kind == "unit" else v


def test_hutchinson_trace_reference_passes(capsys):
    assert exercises.check_hutchinson_trace(exercises.hutchinson_trace_reference)
    assert "✓ hutchinson_trace" in capsys.readouterr().out


def test_hutchinson_trace_reference_on_a_dense_matrix():
    import torch

    h = torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    assert abs(exercises.hutchinson_trace_reference(lambda v: h @ v, 2, 4000) - 3.0) < 0.05


def test_hutchinson_trace_gaussian_probes_are_named(capsys):
    def gaussian(matvec, dim, n_samples=100, seed=0):
        return sum(float(v @ matvec(v)) for v in _probes("gaussian", dim, n_samples, seed)) / n_samples

    assert not exercises.check_hutchinson_trace(gaussian)
    assert "Rademacher" in capsys.readouterr().out


def test_hutchinson_trace_normalized_probes_are_named(capsys):
    def unit(matvec, dim, n_samples=100, seed=0):
        return sum(float(v @ matvec(v)) for v in _probes("unit", dim, n_samples, seed)) / n_samples

    assert not exercises.check_hutchinson_trace(unit)
    assert "do not normalize the probes" in capsys.readouterr().out


def test_hutchinson_trace_sum_instead_of_mean_is_named(capsys):
    def summed(matvec, dim, n_samples=100, seed=0):
        return sum(float(v @ matvec(v)) for v in _probes("rademacher", dim, n_samples, seed))

    assert not exercises.check_hutchinson_trace(summed)
    assert "do not sum" in capsys.readouterr().out


def test_hutchinson_trace_single_probe_is_named(capsys):
    def one_probe(matvec, dim, n_samples=100, seed=0):
        v = next(_probes("rademacher", dim, 1, seed))
        return sum(float(v @ matvec(v)) for _ in range(n_samples)) / n_samples

    assert not exercises.check_hutchinson_trace(one_probe)
    assert "fresh random probe" in capsys.readouterr().out


def test_hutchinson_trace_stub(capsys):
    def stub(matvec, dim, n_samples=100, seed=0):
        raise NotImplementedError

    assert not exercises.check_hutchinson_trace(stub)
    assert "not implemented yet" in capsys.readouterr().out


# chapter 01: filter normalization
def _rows(t):
    return t.reshape(t.shape[0], -1).norm(dim=1).reshape(-1, *[1] * (t.dim() - 1))


def test_filter_normalize_reference_passes(capsys):
    assert exercises.check_filter_normalize(exercises.filter_normalize_reference)
    assert "✓ filter_normalize" in capsys.readouterr().out


def test_filter_normalize_reference_matches_random_direction():
    import torch

    from flatlab import curvature

    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    raw = curvature.random_direction(model, filter_normalize=False, seed=3)
    ours = exercises.filter_normalize_reference(raw, [p.detach() for p in model.parameters()])
    theirs = curvature.random_direction(model, seed=3)
    assert all(torch.allclose(a, b) for a, b in zip(ours, theirs))


def test_filter_normalize_biases_not_zeroed_is_named(capsys):
    def keeps_biases(direction, weights):
        return [d * _rows(w) / _rows(d) if d.dim() > 1 else d.clone() for d, w in zip(direction, weights)]

    assert not exercises.check_filter_normalize(keeps_biases)
    assert "zero direction" in capsys.readouterr().out


def test_filter_normalize_whole_tensor_norm_is_named(capsys):
    import torch

    def per_tensor(direction, weights):
        return [d * w.norm() / d.norm() if d.dim() > 1 else torch.zeros_like(d) for d, w in zip(direction, weights)]

    assert not exercises.check_filter_normalize(per_tensor)
    out = capsys.readouterr().out
    assert "each filter (row) separately" in out and "row norms" in out


def test_filter_normalize_unflattened_conv_filter_is_named(capsys):
    import torch

    def no_flatten(direction, weights):
        return [d * w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True) if d.dim() > 1 else torch.zeros_like(d)
                for d, w in zip(direction, weights)]

    assert not exercises.check_filter_normalize(no_flatten)
    assert "flatten each filter" in capsys.readouterr().out


def test_filter_normalize_stub(capsys):
    def stub(direction, weights):
        raise NotImplementedError

    assert not exercises.check_filter_normalize(stub)
    assert "not implemented yet" in capsys.readouterr().out
