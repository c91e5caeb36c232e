"""flatlab.implicit against exact references: sklearn's SVM, pinv, linprog, closed-form natural gradients,
autograd, dense Jacobians and known spectra."""
import math

import numpy as np
import pytest
import torch

import flatlab
from flatlab import implicit as I

D = torch.float64


@pytest.fixture(scope="module")
def separable():
    ds = flatlab.data.separable_logistic(n_train=30, dim=5, margin=0.1, seed=0)  # margin 0.5 puts many points exactly on the margin: libsvm then needs ~15 s
    return I.mirrored(ds)


@pytest.fixture(scope="module")
def sparse():
    return flatlab.data.sparse_regression(n_train=40, dim=100, k=3, seed=0)


@pytest.fixture(scope="module")
def completion():
    return flatlab.data.low_rank_matrix(n=10, rank=2, observed_fraction=0.6, seed=0)


# --- max margin ------------------------------------------------------------------------------------
def test_mirrored_doubles_data_and_rejects_non_binary():
    X, y = I.mirrored(torch.tensor([[1.0, 2.0]]), torch.tensor([1.0]))
    assert X.tolist() == [[1.0, 2.0], [-1.0, -2.0]] and y.tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match="binary"):
        I.mirrored(flatlab.data.gaussian_clouds(n_train=20))
    with pytest.raises(ValueError, match="±1"):
        I.mirrored(torch.ones(2, 2), torch.tensor([0.0, 1.0]))


def test_svm_direction_on_hand_computed_instance():
    # max-margin direction of {(2,0), (1,3)} (mirrored): the point of their hull nearest 0 is (1.8, 0.6)
    X, y = I.mirrored(torch.tensor([[2.0, 0.0], [1.0, 3.0]]), torch.tensor([1.0, 1.0]))
    sol = I.svm_direction(X, y)
    expected = torch.tensor([1.8, 0.6], dtype=D) / math.sqrt(3.6)
    assert torch.allclose(sol.w, expected, atol=1e-6)
    assert sol.margin == pytest.approx(math.sqrt(3.6), rel=1e-6) and abs(sol.intercept) < 1e-6


def test_svm_direction_agrees_with_sklearn_and_margin_is_optimal(separable):
    from sklearn.svm import SVC

    X, y = separable
    sol = I.svm_direction(X, y)
    coef = SVC(kernel="linear", C=1e8, tol=1e-10).fit(X.numpy(), y.numpy()).coef_.ravel()
    assert np.allclose(sol.w.numpy(), coef / np.linalg.norm(coef), atol=1e-8)
    assert sol.margin == pytest.approx(1 / np.linalg.norm(coef), rel=1e-5)  # hard margin: 1/‖w‖
    assert I.normalized_margin(sol.w, X, y) == pytest.approx(sol.margin)
    assert abs(sol.intercept) < 1e-6  # mirrored data: the separator passes through the origin
    # no other direction has a larger margin (random directions near the optimum)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        w = sol.w + 0.05 * torch.randn(5, generator=g, dtype=D)
        assert I.normalized_margin(w, X, y) <= sol.margin * (1 + 1e-7)


def test_gd_converges_in_direction_to_svm_and_normalized_gd_is_faster(separable):
    X, y = separable
    svm = I.svm_direction(X, y)
    h = I.train_logistic(X, y, steps=20_000, lr=1.0, reference=svm.w)
    cos = h.cos.to_numpy()[1:]
    # cos rises like 1 − O(1/log² t); it may wobble by ~1e-5 early on, so compare decades
    assert cos[-1] > 0.99 and (np.diff(cos) > -1e-4).all() and (np.diff(cos) > 0).mean() > 0.8
    assert cos[-1] > float(h.cos[h.step >= 2000].iloc[0]) > float(h.cos[h.step >= 200].iloc[0])
    assert (np.diff(h.norm.to_numpy()[1:]) > 0).all()  # the norm grows without bound
    hn = I.train_logistic(X, y, steps=3000, lr=1.0, method="normalized", reference=svm.w)
    assert 1 - hn.cos.iloc[-1] < 1e-4 and 1 - hn.cos.iloc[-1] < 1 - h.cos.iloc[-1]
    assert np.isfinite(hn.margin[1:]).all() and hn.margin.iloc[-1] == pytest.approx(svm.margin, rel=1e-2)
    big = I.train_logistic(X, y, steps=15_000, lr=1.0, method="normalized", reference=svm.w)
    # the loss itself underflows float64 (< 1e-308); computed in the log domain the steps stay exact
    assert big.log10_loss.iloc[-1] < -330 and 1 - big.cos.iloc[-1] < 1e-4 and not big.diverged


def test_log_logistic_loss_matches_direct_formula_and_survives_underflow():
    m = torch.tensor([-30.0, -1.0, 0.0, 0.5, 5.0, 30.0], dtype=D)
    assert torch.allclose(I.log_logistic_loss(m), torch.log(torch.nn.functional.softplus(-m)), rtol=1e-12)
    big = I.log_logistic_loss(torch.tensor([800.0, 1e5], dtype=D))
    assert big.tolist() == [-800.0, -1e5]


def test_normalized_gd_first_step_is_gradient_over_loss(separable):
    X, y = separable
    w0 = torch.zeros(5, dtype=D, requires_grad=True)
    loss = torch.nn.functional.softplus(-(X @ w0) * y).mean()
    (g,) = torch.autograd.grad(loss, w0)
    h = I.train_logistic(X, y, steps=1, lr=0.3, method="normalized")
    assert torch.allclose(h.info["w"], -0.3 * g / loss.detach(), atol=1e-12)
    hg = I.train_logistic(X, y, steps=1, lr=0.3)
    assert torch.allclose(hg.info["w"], -0.3 * g, atol=1e-12)


def test_ngd_on_logistic_regression_is_invariant_to_linear_reparameterization(separable):
    X, y = separable
    A = torch.diag(torch.tensor([0.2, 0.5, 1.0, 2.0, 5.0], dtype=D))
    cosine = lambda a, b: float(a @ b / a.norm() / b.norm())  # noqa: E731
    ngd, ngd_a = (I.train_logistic(X, y, steps=20, method="ngd", reparam=r) for r in (None, A))
    gd, gd_a = (I.train_logistic(X, y, steps=2000, reparam=r) for r in (None, A))
    assert 1 - cosine(ngd.info["w"], ngd_a.info["w"]) < 1e-6
    assert 1 - cosine(gd.info["w"], gd_a.info["w"]) > 1e-3


# --- interpolants ---------------------------------------------------------------------------------
def test_min_l2_interpolant_equals_pinv_and_row_space_formula(sparse):
    X, y = sparse.x_train.double(), sparse.y_train.double()
    w = I.min_l2_interpolant(X, y)
    assert torch.allclose(X @ w, y, atol=1e-9)
    assert torch.allclose(w, X.T @ torch.linalg.solve(X @ X.T, y), atol=1e-9)


def test_min_l1_interpolant_recovers_the_sparse_truth_on_an_easy_instance(sparse):
    X, y = sparse.x_train.double(), sparse.y_train.double()
    w = I.min_l1_interpolant(X, y)
    assert torch.allclose(w, sparse.meta["w_star"].double(), atol=1e-7)
    assert float(w.abs().sum()) <= float(I.min_l2_interpolant(X, y).abs().sum())


def test_min_l1_on_hand_instance_and_infeasible_system():
    w = I.min_l1_interpolant(torch.tensor([[1.0, 2.0]]), torch.tensor([2.0]))
    assert torch.allclose(w, torch.tensor([0.0, 1.0], dtype=D))
    with pytest.raises(ValueError, match="no solution"):
        I.min_l1_interpolant(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([1.0, 2.0]))


def test_nuclear_norm_completion_recovers_low_rank_matrix():
    ds = flatlab.data.low_rank_matrix(n=20, rank=1, observed_fraction=0.6, seed=1)
    errs = I.completion_errors(I.nuclear_norm_completion(ds), ds)
    assert errs["test_error"] < 1e-3 and errs["train_error"] < 1e-3 and errs["effective_rank"] < 1.01


def test_nuclear_norm_completion_is_below_the_truths_nuclear_norm():
    # here too few entries are observed: the minimum-nuclear-norm completion is not the truth, and it is smaller
    ds = flatlab.data.low_rank_matrix(n=12, rank=1, observed_fraction=0.6, seed=1)
    w = I.nuclear_norm_completion(ds)
    nuc = lambda a: float(torch.linalg.matrix_norm(a.double(), "nuc"))  # noqa: E731
    assert I.completion_errors(w, ds)["train_error"] < 1e-3
    assert nuc(w) < nuc(ds.meta["matrix"]) and I.completion_errors(w, ds)["test_error"] > 0.1


# --- natural gradient -----------------------------------------------------------------------------
def test_conjugate_gradient_solves_spd_systems_with_and_without_preconditioner():
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=D))[0]
    a = q @ torch.diag(torch.logspace(-2, 2, 20, dtype=D)) @ q.T
    b = torch.randn(20, generator=g, dtype=D)
    x, it = I.conjugate_gradient(lambda v: a @ v, b, iters=200, tol=1e-12)
    assert torch.allclose(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-10) and it <= 200
    inv = torch.linalg.inv(a)
    xp, itp = I.conjugate_gradient(lambda v: a @ v, b, iters=200, tol=1e-12, precond=lambda r: inv @ r)
    assert torch.allclose(xp, torch.linalg.solve(a, b), rtol=1e-8) and itp <= 2


def test_natural_gradient_on_linear_model_equals_closed_form():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 6, generator=g, dtype=D)
    grad = torch.randn(6, generator=g, dtype=D)
    weights = torch.rand(30, generator=g, dtype=D) / 30  # e.g. p(1−p)/N for logistic regression
    for damping in (0.0, 1e-3, 0.5):
        d = I.natural_gradient(lambda t: X @ t, torch.zeros(6, dtype=D), grad, damping=damping, weights=weights)
        fisher = X.T @ (weights[:, None] * X) + damping * torch.eye(6, dtype=D)
        assert torch.allclose(d, torch.linalg.solve(fisher, grad), rtol=1e-7, atol=1e-9)


def test_natural_gradient_on_nonlinear_model_matches_dense_jacobian():
    g = torch.Generator().manual_seed(2)
    theta = torch.randn(8, generator=g, dtype=D)
    f = lambda t: torch.tanh(t.reshape(2, 4)).sum(0) * t[:4]  # noqa: E731
    grad = torch.randn(8, generator=g, dtype=D)
    J = torch.autograd.functional.jacobian(f, theta)
    d = I.natural_gradient(f, theta, grad, damping=0.1)
    assert torch.allclose(d, torch.linalg.solve(J.T @ J + 0.1 * torch.eye(8, dtype=D), grad), rtol=1e-7)


def test_block_preconditioner_inverts_each_factor_block():
    n, depth, lam = 4, 3, 1e-2
    model = I.DeepMatrixFactorization(n, depth, init_scale=0.7, seed=3)
    theta = torch.cat([f.detach().reshape(-1) for f in model.factors])
    J = torch.autograd.functional.jacobian(lambda t: I._product(list(t.reshape(depth, n, n))).reshape(-1), theta)
    pc = I._block_preconditioner(theta, depth, n, lam)
    v = torch.randn(depth * n * n, dtype=D, generator=torch.Generator().manual_seed(0))
    blocks = [J[:, i * n * n:(i + 1) * n * n] for i in range(depth)]
    expected = torch.cat([torch.linalg.solve(b.T @ b + lam * torch.eye(n * n, dtype=D), vi)
                          for b, vi in zip(blocks, v.split(n * n))])
    assert torch.allclose(pc(v), expected, rtol=1e-6, atol=1e-8)


def test_ngd_with_function_space_metric_is_depth_independent(completion):
    w1 = I.train_ngd_factorization(completion, depth=1, init_scale=1e-2, steps=60, seed=0).info["w"]
    w2 = I.train_ngd_factorization(completion, depth=2, init_scale=1e-2, steps=60, seed=0).info["w"]
    assert np.linalg.norm(w2 - w1) / np.linalg.norm(w1) < 0.05
    gd = I.train_factorization(completion, depth=2, init_scales=1e-2, steps=4000, seed=0).solutions[0]
    assert np.linalg.norm(gd - w1) / np.linalg.norm(w1) > 0.1  # GD on depth 2 is not depth-1 GD


def test_ngd_depth_one_is_gradient_descent_with_damped_step(completion):
    h = I.train_ngd_factorization(completion, depth=1, init_scale=1e-2, steps=1, lr=0.5, damping=0.25,
                                  max_step=1e9, seed=0)
    w0 = I.DeepMatrixFactorization(10, 1, 1e-2, seed=0).matrix().detach()
    m, mask = completion.meta["matrix"].double(), completion.meta["mask"]
    expected = w0 - 0.5 / 1.25 * torch.where(mask, w0 - m, torch.zeros_like(m))
    assert np.allclose(h.info["w"], expected.numpy(), atol=1e-10)


# --- diagonal linear networks ---------------------------------------------------------------------
def test_diagonal_net_parameterization():
    net = I.DiagonalLinearNet(4, alpha=0.3)
    assert torch.equal(net.weight, torch.zeros(4, dtype=D))
    with torch.no_grad():
        net.u.copy_(torch.tensor([1.0, 2.0, 0.0, 1.0]))
        net.v.copy_(torch.tensor([0.0, 1.0, 3.0, 1.0]))
    assert net.weight.tolist() == [1.0, 3.0, -9.0, 0.0]
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert net(x).tolist() == [-5.0]


def test_train_diagonal_step_equals_autograd_gd_on_the_module(sparse):
    X, y = sparse.x_train.double(), sparse.y_train.double()
    for alpha in (0.1, 2.0):
        net = I.DiagonalLinearNet(100, alpha=alpha)
        lr = I.diagonal_lr(X, y, alpha)
        loss = 0.5 * ((net(X) - y) ** 2).mean()
        gu, gv = torch.autograd.grad(loss, [net.u, net.v])
        with torch.no_grad():
            expected = (net.u - lr * gu) ** 2 - (net.v - lr * gv) ** 2
        runs = I.train_diagonal(X, y, [alpha], steps=1, tol=0)
        assert np.allclose(runs.solutions[0], expected.numpy(), atol=1e-12)


def test_small_init_recovers_sparse_truth_large_init_min_l2(sparse):
    sweep = I.diagonal_sweep(sparse, [1e-2, 3.0], steps=60_000)
    small, large = sweep.table.iloc[0], sweep.table.iloc[1]
    assert small.converged and large.converged and not sweep.table.diverged.any()
    assert small.error_truth < 0.05 and large.error_l2 < 0.01
    assert sweep.index(0.011) == 0 and sweep.index(100) == 1


def test_divergence_is_reported_not_raised(sparse):
    X, y = sparse.x_train.double(), sparse.y_train.double()
    runs = I.train_diagonal(X, y, [0.1, 1.0], steps=500, lr=[0.05, 50.0])
    assert runs.summary.diverged.tolist() == [False, True] and runs.diverged
    assert np.isfinite(runs.solutions[0]).all()


def test_sgd_is_seeded(sparse):
    X, y = sparse.x_train.double(), sparse.y_train.double()
    a = I.train_diagonal(X, y, [0.1], steps=300, batch_size=4, seed=1).solutions[0]
    b = I.train_diagonal(X, y, [0.1], steps=300, batch_size=4, seed=1).solutions[0]
    c = I.train_diagonal(X, y, [0.1], steps=300, batch_size=4, seed=2).solutions[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# --- deep matrix factorization --------------------------------------------------------------------
def test_deep_factorization_is_the_product_of_its_factors():
    model = I.DeepMatrixFactorization(5, depth=3, init_scale=0.5, seed=0)
    w1, w2, w3 = (f.detach() for f in model.factors)
    assert torch.allclose(model.matrix(), w3 @ w2 @ w1)
    idx = torch.tensor([[0, 1], [4, 2]])
    assert torch.allclose(model(idx), (w3 @ w2 @ w1)[idx[:, 0], idx[:, 1]])
    assert float(model.factors[0].detach().std()) == pytest.approx(0.5, rel=0.4)
    same = I.DeepMatrixFactorization(5, depth=3, init_scale=0.5, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.factors, same.factors))


def test_train_factorization_step_equals_autograd(completion):
    depth, init = 3, 0.3
    model = I.DeepMatrixFactorization(10, depth, init, seed=0)
    m, mask = completion.meta["matrix"].double(), completion.meta["mask"]
    lr = I.factorization_lr(completion, depth)
    loss = 0.5 * (torch.where(mask, model.matrix() - m, torch.zeros_like(m)) ** 2).sum()
    grads = torch.autograd.grad(loss, list(model.factors))
    with torch.no_grad():
        expected = I._product([f - lr * g for f, g in zip(model.factors, grads)])
    runs = I.train_factorization(completion, depth, [init], steps=1, tol=0, seed=0, lr_scale=0.5)
    assert np.allclose(runs.solutions[0], expected.numpy(), atol=1e-12)


def test_depth_lowers_effective_rank_and_held_out_error(completion):
    sweep = I.factorization_sweep(completion, depths=(1, 3), init_scales=(1e-2,), steps=6000)
    d1, d3 = sweep.run(1, 1e-2)[0], sweep.run(3, 1e-2)[0]
    assert d1.converged and d3.converged
    assert d3.test_error < 0.5 * d1.test_error and d3.effective_rank < d1.effective_rank
    hist = sweep.run(3, 1e-2)[1]
    assert {"sv1", "effective_rank", "test_error"} <= set(hist.columns)
    with pytest.raises(ValueError, match="depth=5"):
        sweep.run(5, 1e-2)


def test_factorization_divergence_is_reported(completion):
    runs = I.train_factorization(completion, 2, [0.5], steps=200, lr=10.0)
    assert runs.summary.diverged.iloc[0] and runs.diverged


def test_factorization_runs_are_reproducible(completion):
    a = I.train_factorization(completion, 2, [1e-2, 1e-1], steps=300, seed=4)
    b = I.train_factorization(completion, 2, [1e-2, 1e-1], steps=300, seed=4)
    assert all(np.array_equal(a.solutions[i], b.solutions[i]) for i in range(2))
    assert a.history.equals(b.history)


def test_with_spectrum_keeps_mask_and_singular_vectors(completion):
    new = I.with_spectrum(completion, [5.0, 1.0])
    assert torch.equal(new.meta["mask"], completion.meta["mask"])
    assert torch.allclose(torch.linalg.svdvals(new.meta["matrix"].double())[:2], torch.tensor([5.0, 1.0], dtype=D))
    assert torch.equal(new.x_train, completion.x_train)
    with pytest.raises(ValueError, match="singular_values"):
        I.with_spectrum(completion, [1.0])


def test_half_times():
    import pandas as pd

    h = pd.DataFrame({"step": [0, 10, 20, 30], "sv1": [0, 3, 4, 4], "sv2": [0, 0, 1, 4]})
    assert I.half_times(h, 2) == [10.0, 30.0]
    assert I.half_times(h, 2, targets=[4, 2]) == [10.0, 20.0]
    with pytest.raises(ValueError, match="sv3"):
        I.half_times(h, 3)


# --- effective rank -------------------------------------------------------------------------------
@pytest.mark.parametrize("spectrum, expected", [([1.0, 0.0, 0.0], 1.0), ([2.0, 2.0, 0.0], 2.0),
                                                ([1.0] * 7, 7.0), ([3.0, 1.0], math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))])
def test_effective_rank_of_known_spectra(spectrum, expected):
    assert I.effective_rank(np.array(spectrum)) == pytest.approx(expected, rel=1e-12)


def test_effective_rank_of_matrices():
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))[0]
    m = q @ np.diag([4.0, 4.0, 0, 0, 0, 0]) @ q.T
    assert I.effective_rank(m) == pytest.approx(2.0, rel=1e-9)
    assert I.effective_rank(torch.eye(5)) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="zero matrix"):
        I.effective_rank(np.zeros((3, 3)))


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: I.DiagonalLinearNet(0), "dim=0"),
    (lambda: I.DiagonalLinearNet(3, alpha=-1.0), "alpha=-1.0"),
    (lambda: I.DeepMatrixFactorization(4, depth=0), "depth=0"),
    (lambda: I.DeepMatrixFactorization(4, init_scale=0.0), "init_scale=0.0"),
    (lambda: I.train_logistic(torch.ones(2, 2), torch.ones(2), method="adam"), "method='adam'"),
    (lambda: I.train_logistic(torch.ones(2, 2), torch.ones(2), lr=-1.0), "lr=-1.0"),
    (lambda: I.train_logistic(torch.ones(2, 2), torch.ones(3)), "x has 2 rows"),
    (lambda: I.train_logistic(torch.ones(2, 2), torch.ones(2), reparam=torch.eye(3)), "reparam"),
    (lambda: I.train_diagonal(torch.ones(2, 3), torch.ones(2), [0.1], steps=0), "steps=0"),
    (lambda: I.train_diagonal(torch.ones(2, 3), torch.ones(2), [0.1], batch_size=5), "batch_size=5"),
    (lambda: I.train_diagonal(torch.ones(2, 3), torch.ones(2), [0.1], lr=[0.1, 0.2]), "lr has 2 entries"),
    (lambda: I.train_diagonal(torch.ones(2, 3), torch.ones(2), []), "alphas"),
    (lambda: I.min_l2_interpolant(torch.ones(3), torch.ones(3)), "x must have 2"),
    (lambda: I.min_l2_interpolant(torch.tensor([[float("nan")]]), torch.ones(1)), "NaN"),
    (lambda: I.svm_direction(torch.ones(2, 2), torch.ones(2), C=0.0), "C=0.0"),
    (lambda: I.effective_rank(np.ones((2, 2, 2))), "1-D or 2-D"),
    (lambda: I.effective_rank(np.array([1.0, -1.0])), "non-negative"),
    (lambda: I.natural_gradient(lambda t: t, torch.ones(2), torch.ones(3), damping=0.1), "grad has shape"),
    (lambda: I.natural_gradient(lambda t: t, torch.ones(2), torch.ones(2), damping=-1.0), "damping=-1.0"),
    (lambda: I.natural_gradient("f", torch.ones(2), torch.ones(2), damping=0.1), "f must be a callable"),
    (lambda: I.train_factorization(flatlab.data.sparse_regression(), 2), "low_rank_matrix"),
    (lambda: I.relative_error(np.ones(2), np.zeros(2)), "reference must be non-zero"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_bad_ngd_metric_and_factorization_arguments(completion):
    with pytest.raises(ValueError, match="metric='empirical'"):
        I.train_ngd_factorization(completion, metric="empirical")
    with pytest.raises(ValueError, match="init_scales"):
        I.train_factorization(completion, 2, [-1.0])
    with pytest.raises(ValueError, match="max_step"):
        I.train_ngd_factorization(completion, max_step=0)


def test_logistic_runs_are_reproducible(separable):
    X, y = separable
    a = I.train_logistic(X, y, steps=50, method="ngd")
    b = I.train_logistic(X, y, steps=50, method="ngd")
    assert a.equals(b) and torch.equal(a.info["w"], b.info["w"])


def test_diagonal_hessian_matches_autograd_and_bounds_the_l1_norm():
    """Closed-form trace and λ_max against the autograd Hessian of L(u, v), away from interpolation (residual
    term present) and at a trained end point; the trace is ≥ the weighted ℓ1 norm, near-equal when trained."""
    from flatlab import implicit
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(12, generator=g, dtype=torch.float64)
    u, v = torch.rand(5, generator=g, dtype=torch.float64), torch.rand(5, generator=g, dtype=torch.float64)

    def loss(uv):
        w = uv[:5] ** 2 - uv[5:] ** 2
        return 0.5 * ((x @ w - y) ** 2).mean()

    dense = torch.autograd.functional.hessian(loss, torch.cat([u, v]))
    h = implicit.diagonal_hessian(x, y, (u * u).numpy(), (v * v).numpy())
    assert h["trace"] == pytest.approx(float(torch.trace(dense)), rel=1e-12)
    assert h["dense_trace"] == pytest.approx(h["trace"], rel=1e-12)
    assert h["lambda_max"] == pytest.approx(float(torch.linalg.eigvalsh(dense)[-1]), rel=1e-10)
    assert h["l1_bound"] <= h["trace"]
    run = implicit.train_diagonal(x[:4], y[:4], [0.05], steps=20_000)
    usq, vsq = run.factors[0]
    end = implicit.diagonal_hessian(x[:4], y[:4], usq, vsq)
    assert end["l1_bound"] <= end["trace"] <= 1.05 * end["l1_bound"]
    with pytest.raises(ValueError, match="non-negative"):
        implicit.diagonal_hessian(x, y, -np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        implicit.diagonal_hessian(x, y, np.ones(4), np.ones(4))
