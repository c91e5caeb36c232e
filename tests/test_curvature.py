"""Tests of flatlab.curvature against exact references (dense Hessians, closed forms)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from flatlab import curvature as cv

DT = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is fastest and immune to a busy second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# fixtures and references
# ----------------------------------------------------------------------------------------------
ACTS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "gelu": nn.GELU, "relu": nn.ReLU}


def mlp(seed: int, act: str = "tanh", sizes=(5, 12, 12, 3)) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTS[act]())
    return nn.Sequential(*layers).to(DT)


def cls_data(seed: int, n: int = 40, d: int = 5, c: int = 3):
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randint(0, c, (n,), generator=g)


def reg_data(seed: int, n: int = 40, d: int = 5, c: int = 3):
    g = torch.Generator().manual_seed(200 + seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randn(n, c, generator=g, dtype=DT)


def dense_hessian(model, loss_fn, data) -> torch.Tensor:
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    x, y = data
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def f(flat):
        ps, i = {}, 0
        for n, p in zip(names, params):
            ps[n] = flat[i:i + p.numel()].view_as(p)
            i += p.numel()
        return loss_fn(functional_call(model, ps, (x,)), y)

    return torch.autograd.functional.hessian(f, flat0, vectorize=True)


class Quadratic(nn.Module):
    """L(w) = ½ wᵀAw through a "model" whose output is w itself."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return self.w.expand(x.shape[0], -1)


def quad_loss(A):
    return lambda out, y: 0.5 * out[0] @ A @ out[0]


QDATA = (torch.zeros(1, 1, dtype=DT), torch.zeros(1, dtype=DT))


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise(model, snap):
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap[k]), k
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Hessian-vector products
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["tanh", "softplus"])
def test_matvec_and_hvp_equal_dense(act):
    model, data = mlp(0, act), cls_data(0)
    H = dense_hessian(model, F.cross_entropy, data)
    op = cv.HessianOperator(model, F.cross_entropy, data)
    assert op.dim == H.shape[0] == sum(p.numel() for p in model.parameters())
    v = torch.randn(op.dim, dtype=DT, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(op.matvec(v), H @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op.matvec(v), H @ v, rtol=1e-10, atol=1e-12)
    assert op.n_products == 2
    # scipy view: float64 in and out, same numbers
    lin = op.as_linear_operator()
    out = lin.matvec(v.numpy())
    assert out.dtype == np.float64 and np.allclose(out, (H @ v).numpy(), rtol=1e-10, atol=1e-12)
    # gradient
    model.zero_grad()
    F.cross_entropy(model(data[0]), data[1]).backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(op.grad, g)
    # the functional hvp on a function of a parameter list, list and flat forms
    params = [p.detach() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    f = lambda ps: F.cross_entropy(functional_call(model, dict(zip(names, ps)), (data[0],)), data[1])
    torch.testing.assert_close(cv.hvp(f, params, v), H @ v, rtol=1e-10, atol=1e-12)
    hv_list = cv.hvp(f, params, list(cv._split(v, params)))
    torch.testing.assert_close(torch.cat([h.reshape(-1) for h in hv_list]), H @ v, rtol=1e-10, atol=1e-12)


def test_hvp_single_tensor_and_frozen_params():
    w = torch.tensor([1.0, 2.0], dtype=DT)
    torch.testing.assert_close(cv.hvp(lambda t: (t ** 3).sum(), w, torch.ones(2, dtype=DT)),
                               torch.tensor([6.0, 12.0], dtype=DT))
    model, data = mlp(1), cls_data(1)
    model[0].weight.requires_grad_(False)
    op = cv.HessianOperator(model, F.cross_entropy, data)
    assert op.dim == sum(p.numel() for p in model.parameters() if p.requires_grad)
    H = dense_hessian(model, F.cross_entropy, data)
    assert H.shape == (op.dim, op.dim)
    v = torch.randn(op.dim, dtype=DT)
    torch.testing.assert_close(op.matvec(v), H @ v, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# top eigenvalues
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("act,task", [("tanh", "cls"), ("softplus", "reg"), ("gelu", "cls"),
                                      ("relu", "reg")])
def test_top_eigenvalues_match_dense(seed, act, task):
    model = mlp(seed, act)
    data, loss = (cls_data(seed), F.cross_entropy) if task == "cls" else (reg_data(seed), F.mse_loss)
    ref = torch.linalg.eigvalsh(dense_hessian(model, loss, data)).flip(0)[:4]
    vals = cv.top_eigenvalues(model, loss, data, k=4)
    assert vals.shape == (4,) and torch.all(vals[:-1] >= vals[1:])
    rel = (vals - ref).abs() / ref.abs()
    assert rel.max() < 1e-4, (vals, ref)


def test_top_eigenvalues_vectors_and_bigger_model():
    # ~1,400 parameters, k=5, eigenvectors satisfy H u = λ u
    model, data = mlp(3, "softplus", sizes=(8, 40, 24, 4)), cls_data(3, n=60, d=8, c=4)
    H = dense_hessian(model, F.cross_entropy, data)
    ref = torch.linalg.eigvalsh(H).flip(0)[:5]
    vals, vecs = cv.top_eigenvalues(model, F.cross_entropy, data, k=5, return_vectors=True)
    assert ((vals - ref).abs() / ref.abs()).max() < 1e-4
    assert vecs.shape == (H.shape[0], 5)
    torch.testing.assert_close(vecs.T @ vecs, torch.eye(5, dtype=DT), atol=1e-8, rtol=0)
    resid = (H @ vecs - vecs * vals).norm(dim=0) / vals.abs()
    assert resid.max() < 1e-3
    # warm start from the top eigenvector gives the same answer
    again = cv.top_eigenvalues(model, F.cross_entropy, data, k=1, v0=vecs[:, 0])
    assert abs(float(again[0] - ref[0])) / float(ref[0]) < 1e-6


def test_top_eigenvalues_float32_and_deterministic():
    model = mlp(4).float()
    x, y = cls_data(4)
    a = cv.top_eigenvalues(model, F.cross_entropy, (x.float(), y), k=2)
    b = cv.top_eigenvalues(model, F.cross_entropy, (x.float(), y), k=2)
    assert a.dtype == torch.float32 and torch.equal(a, b)
    ref = cv.top_eigenvalues(model.double(), F.cross_entropy, (x, y), k=2)
    assert ((a.double() - ref).abs() / ref).max() < 1e-4


# ----------------------------------------------------------------------------------------------
# trace
# ----------------------------------------------------------------------------------------------
def _random_quadratic(dim: int, seed: int, spectrum=None):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=DT))
    if spectrum is None:
        spectrum = torch.rand(dim, generator=g, dtype=DT) * 2 - 0.5
    A = Q @ torch.diag(spectrum) @ Q.T
    A = 0.5 * (A + A.T)
    w = torch.randn(dim, generator=g, dtype=DT)
    return Quadratic(w), quad_loss(A), A


def test_hutchinson_error_shrinks_like_inverse_sqrt_n():
    model, loss, A = _random_quadratic(40, 0)
    tr = float(torch.trace(A))
    err = {n: np.mean([abs(cv.hessian_trace(model, loss, QDATA, n_samples=n, seed=s) - tr)
                       for s in range(30)]) for n in (10, 160)}
    ratio = err[10] / err[160]
    assert 2.0 < ratio < 8.0, ratio  # 1/√n predicts 4
    # and it is unbiased-looking: a big-n estimate is close
    assert abs(cv.hessian_trace(model, loss, QDATA, n_samples=2000) - tr) < 4 * err[160] / math.sqrt(12)


def test_hutch_plus_plus_beats_hutchinson_at_equal_matvecs():
    dim = 100
    spectrum = 1.0 / torch.arange(1, dim + 1, dtype=DT) ** 2
    model, loss, A = _random_quadratic(dim, 1, spectrum)
    tr = float(torch.trace(A))
    errs = {m: np.mean([abs(cv.hessian_trace(model, loss, QDATA, n_samples=30, method=m, seed=s) - tr)
                        for s in range(15)]) for m in cv.TRACE_METHODS}
    assert errs["hutch++"] < 0.3 * errs["hutchinson"], errs
    # equal cost: exactly n_samples Hessian-vector products for both methods
    op = cv.HessianOperator(model, loss, QDATA)
    for m in cv.TRACE_METHODS:
        before = op.n_products
        cv._trace(op, 31, m, 0)
        assert op.n_products - before == 31
    # a rank-5 Hessian is traced exactly once the sketch has >= 5 columns
    low = torch.zeros(dim, dtype=DT)
    low[:5] = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0], dtype=DT)
    model, loss, A = _random_quadratic(dim, 2, low)
    assert cv.hessian_trace(model, loss, QDATA, n_samples=18, method="hutch++") == pytest.approx(15.0, rel=1e-10)


# ----------------------------------------------------------------------------------------------
# spectral density (SLQ)
# ----------------------------------------------------------------------------------------------
def test_slq_moments_and_density():
    model, data = mlp(5, "tanh", sizes=(5, 8, 3)), cls_data(5)
    H = dense_hessian(model, F.cross_entropy, data)
    dim = H.shape[0]
    n_probes = 64
    nodes, weights = cv.slq_nodes(model, F.cross_entropy, data, n_probes=n_probes, lanczos_steps=12, seed=7)
    assert nodes.shape == weights.shape == (n_probes, 12)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-12)
    first = float(np.mean((weights * nodes).sum(1)))
    # first moment == Hutchinson / dim with the same probes, to rounding
    hutch = cv.hessian_trace(model, F.cross_entropy, data, n_samples=n_probes, seed=7)
    assert first == pytest.approx(hutch / dim, rel=1e-10, abs=1e-14)
    # second moment is exact too (Gauss quadrature, degree < 2m): zᵀH²z / dim
    zs = cv._rademacher(dim, n_probes, 7)
    second = float(np.mean([(H @ z).square().sum() / dim for z in zs]))
    assert float(np.mean((weights * nodes ** 2).sum(1))) == pytest.approx(second, rel=1e-9)
    # and close to the dense trace: within 4 standard deviations of Hutchinson's estimator
    tr = float(torch.trace(H))
    off = H - torch.diag(torch.diag(H))
    std = math.sqrt(2 * float(off.square().sum()) / n_probes)
    assert abs(first * dim - tr) < 4 * std
    # the density integrates to 1 on its grid and is non-negative
    grid, dens = cv.spectral_density(model, F.cross_entropy, data, n_probes=4, lanczos_steps=20)
    assert grid.ndim == 1 and dens.shape == grid.shape and np.all(dens >= 0)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
    ev = torch.linalg.eigvalsh(H)
    assert grid[0] < float(ev[0]) and grid[-1] > float(ev[-1])
    # on a user grid with a given sigma as well
    g2 = np.linspace(float(ev[0]) - 1, float(ev[-1]) + 1, 4001)
    _, d2 = cv.spectral_density(model, F.cross_entropy, data, n_probes=4, lanczos_steps=20, grid=g2, sigma=0.05)
    assert np.trapezoid(d2, g2) == pytest.approx(1.0, abs=1e-6)


def test_slq_full_krylov_recovers_spectrum():
    # with m = dim steps, Ritz values with non-negligible weight are exact eigenvalues
    model, loss, A = _random_quadratic(12, 3)
    nodes, weights = cv.slq_nodes(model, loss, QDATA, n_probes=2, lanczos_steps=50)
    ev = torch.linalg.eigvalsh(A).numpy()
    assert nodes.shape == (2, 12)
    for row_n, row_w in zip(nodes, weights):
        for t in row_n[row_w > 1e-8]:
            assert np.min(np.abs(ev - t)) < 1e-8


# ----------------------------------------------------------------------------------------------
# sharpness
# ----------------------------------------------------------------------------------------------
def test_worst_case_sharpness_first_order_by_hand():
    model, loss, A = _random_quadratic(6, 4)
    w = model.w.detach().clone()
    L = lambda v: float(0.5 * v @ A @ v)
    g = A @ w
    for rho in (0.01, 0.3):
        expect = L(w + rho * g / g.norm()) - L(w)
        assert cv.worst_case_sharpness(model, loss, QDATA, rho=rho) == pytest.approx(expect, rel=1e-12)
        # adaptive with T = |w| on every parameter: ε = ρ |w|² g / ‖|w| g‖
        eps = rho * w.abs() ** 2 * g / (w.abs() * g).norm()
        got = cv.worst_case_sharpness(model, loss, QDATA, rho=rho, adaptive=True, eta=0.0, weights_only=False)
        assert got == pytest.approx(L(w + eps) - L(w), rel=1e-12)
        assert cv.adaptive_sharpness(model, loss, QDATA, rho=rho, eta=0.0, weights_only=False) == got
        # with an offset: T = |w| + η
        t = w.abs() + 0.3
        eps = rho * t ** 2 * g / (t * g).norm()
        got = cv.adaptive_sharpness(model, loss, QDATA, rho=rho, eta=0.3, weights_only=False)
        assert got == pytest.approx(L(w + eps) - L(w), rel=1e-12)
    # multi-step ascent: at least the first-order value, at most the bound ρ‖g‖ + ½ρ²λ_max
    rho = 0.5
    first = cv.worst_case_sharpness(model, loss, QDATA, rho=rho)
    multi = cv.worst_case_sharpness(model, loss, QDATA, rho=rho, steps=10)
    bound = rho * float(g.norm()) + 0.5 * rho ** 2 * float(torch.linalg.eigvalsh(A)[-1])
    assert first <= multi <= bound + 1e-12
    # a ball that reaches a diverging point reports it (NaN), it does not hide it
    m = Quadratic(torch.tensor([0.1, 0.1], dtype=DT))
    log_loss = lambda out, y: -torch.log(out[0].sum())
    for steps in (1, 3):
        assert math.isnan(cv.worst_case_sharpness(m, log_loss, QDATA, rho=1.0, steps=steps))


def test_average_sharpness_matches_half_sigma2_trace():
    dim = 5
    spectrum = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.25], dtype=DT)
    model, loss, A = _random_quadratic(dim, 5, spectrum)
    w = model.w.detach()
    sigma = 0.1
    got = cv.average_sharpness(model, loss, QDATA, sigma=sigma, n_samples=3000)
    assert got == pytest.approx(0.5 * sigma ** 2 * float(torch.trace(A)), rel=0.06)
    got = cv.average_sharpness(model, loss, QDATA, sigma=sigma, n_samples=3000, adaptive=True, eta=0.0,
                               weights_only=False)
    assert got == pytest.approx(0.5 * sigma ** 2 * float((torch.diag(A) * w ** 2).sum()), rel=0.08)
    got = cv.average_sharpness(model, loss, QDATA, sigma=sigma, n_samples=3000, adaptive=True, eta=0.5,
                               weights_only=False)
    assert got == pytest.approx(0.5 * sigma ** 2 * float((torch.diag(A) * (w.abs() + 0.5) ** 2).sum()), rel=0.08)
    # same seed, same number
    a = cv.average_sharpness(model, loss, QDATA, sigma=sigma, n_samples=5, seed=3)
    assert a == cv.average_sharpness(model, loss, QDATA, sigma=sigma, n_samples=5, seed=3)


def test_every_measure_restores_parameters_bit_for_bit():
    model, data = mlp(6, "relu"), cls_data(6)
    model.add_module("bn", nn.BatchNorm1d(3).to(DT))  # a buffer that a forward would update
    other = mlp(7, "relu")
    other.add_module("bn", nn.BatchNorm1d(3).to(DT))
    snap = snapshot(model)
    d1, d2 = cv.random_direction(model, seed=1), cv.random_direction(model, seed=2)
    dim = sum(p.numel() for p in model.parameters())
    cv.HessianOperator(model, F.cross_entropy, data).matvec(torch.ones(dim, dtype=DT))
    cv.top_eigenvalues(model, F.cross_entropy, data, k=2)
    cv.hessian_trace(model, F.cross_entropy, data, n_samples=6, method="hutch++")
    cv.spectral_density(model, F.cross_entropy, data, n_probes=2, lanczos_steps=5)
    cv.worst_case_sharpness(model, F.cross_entropy, data, rho=0.1, steps=3)
    cv.worst_case_sharpness(model, F.cross_entropy, data, rho=0.1, steps=3, adaptive=True)
    cv.average_sharpness(model, F.cross_entropy, data, n_samples=3, adaptive=True)
    cv.loss_line(model, F.cross_entropy, data, d1, [-1.0, 0.5])
    cv.loss_surface(model, F.cross_entropy, data, d1, d2, [-1.0, 1.0], [0.0, 2.0])
    cv.interpolate(model, other, F.cross_entropy, data, [0.3, 1.7])
    assert_bitwise(model, snap)


def test_asam_operator_is_kwons_weights_plus_eta_and_one_on_biases():
    # a linear model: L(w, b) = mean((xw + b − y)²), quadratic, so the first-order ε is checkable by hand
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, dtype=DT), torch.randn(16, 1, dtype=DT)
    model = nn.Linear(3, 1).to(DT)
    W, b = model.weight.detach().clone(), model.bias.detach().clone()
    L = lambda W_, b_: float(F.mse_loss(x @ W_.T + b_, y))
    Wr, br = W.clone().requires_grad_(), b.clone().requires_grad_()
    gW, gb = torch.autograd.grad(F.mse_loss(x @ Wr.T + br, y), (Wr, br))
    tW = W.abs() + 0.01                                   # weights: |w| + η; the bias: T = 1
    norm = torch.sqrt(((tW * gW) ** 2).sum() + (gb ** 2).sum())
    rho = 0.2
    expect = L(W + rho * tW ** 2 * gW / norm, b + rho * gb / norm) - L(W, b)
    got = cv.adaptive_sharpness(model, F.mse_loss, (x, y), rho=rho)
    assert got == pytest.approx(expect, rel=1e-12)
    assert cv.worst_case_sharpness(model, F.mse_loss, (x, y), rho=rho, adaptive=True) == got
    # no parameter named like a weight: say so rather than silently measure plain sharpness
    qmodel, qloss, _ = _random_quadratic(4, 1)
    with pytest.raises(ValueError, match="weights_only=True but no parameter"):
        cv.adaptive_sharpness(qmodel, qloss, QDATA)
    for bad, kw in ((ValueError, dict(eta=-0.1)), (TypeError, dict(weights_only="yes")),
                    (TypeError, dict(adaptive=None))):
        with pytest.raises(bad, match=next(iter(kw))):
            cv.worst_case_sharpness(model, F.mse_loss, (x, y), **{"adaptive": True, **kw})


def test_adaptive_sharpness_is_invariant_to_relu_rescaling():
    model, data = mlp(8, "relu", sizes=(5, 16, 3)), cls_data(8)
    scaled = mlp(8, "relu", sizes=(5, 16, 3))
    with torch.no_grad():
        scaled[0].weight.mul_(10.0), scaled[0].bias.mul_(10.0), scaled[2].weight.div_(10.0)
    torch.testing.assert_close(model(data[0]), scaled(data[0]))
    exact = dict(eta=0.0, weights_only=False)  # T = |w| on every parameter: exactly invariant
    for steps in (1, 4):
        a = cv.adaptive_sharpness(model, F.cross_entropy, data, rho=0.2, steps=steps, **exact)
        b = cv.adaptive_sharpness(scaled, F.cross_entropy, data, rho=0.2, steps=steps, **exact)
        assert a == pytest.approx(b, rel=1e-8)
    # the paper's operator (|w| + η on weights, 1 on biases) is not: the rescaled biases are ×10 larger
    a = cv.adaptive_sharpness(model, F.cross_entropy, data, rho=0.2)
    b = cv.adaptive_sharpness(scaled, F.cross_entropy, data, rho=0.2)
    assert abs(a - b) > 1e-3 * abs(a)
    plain_a = cv.worst_case_sharpness(model, F.cross_entropy, data, rho=0.2)
    plain_b = cv.worst_case_sharpness(scaled, F.cross_entropy, data, rho=0.2)
    assert abs(plain_a - plain_b) > 0.1 * abs(plain_a)
    la = cv.top_eigenvalues(model, F.cross_entropy, data)
    lb = cv.top_eigenvalues(scaled, F.cross_entropy, data)
    assert float(lb / la) > 10


# ----------------------------------------------------------------------------------------------
# directions, lines, surfaces
# ----------------------------------------------------------------------------------------------
def test_random_direction_filter_normalized():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 3),
                          nn.LayerNorm(3))
    d = cv.random_direction(model, seed=3)
    ps = list(model.parameters())
    assert [t.shape for t in d] == [p.shape for p in ps]
    conv_w, lin_w = ps[0].detach(), ps[2].detach()
    torch.testing.assert_close(d[0].flatten(1).norm(dim=1), conv_w.flatten(1).norm(dim=1))
    torch.testing.assert_close(d[2].norm(dim=1), lin_w.norm(dim=1))
    for i in (1, 3, 4, 5):  # biases and LayerNorm: zero
        assert not d[i].any()
    assert all(torch.equal(a, b) for a, b in zip(d, cv.random_direction(model, seed=3)))
    assert not torch.equal(d[0], cv.random_direction(model, seed=4)[0])
    raw = cv.random_direction(model, filter_normalize=False, seed=3)
    assert raw[1].any()


def test_loss_line_surface_interpolate_by_hand():
    model, data = mlp(9), reg_data(9)
    other = mlp(10)
    x, y = data
    d1, d2 = cv.random_direction(model, seed=1), cv.random_direction(model, seed=2)
    alphas, betas = np.array([-0.5, 0.0, 0.25]), np.array([0.0, 1.0])

    def loss_at(ws):
        names = [n for n, _ in model.named_parameters()]
        return float(F.mse_loss(functional_call(model, dict(zip(names, ws)), (x,)), y))

    w = [p.detach() for p in model.parameters()]
    line = cv.loss_line(model, F.mse_loss, data, d1, alphas)
    with torch.no_grad():
        base = float(F.mse_loss(model(x), y))
    assert line[1] == pytest.approx(base, rel=1e-14)
    for a, v in zip(alphas, line):
        assert v == pytest.approx(loss_at([wi + a * di for wi, di in zip(w, d1)]), rel=1e-12)
    surf = cv.loss_surface(model, F.mse_loss, data, d1, d2, alphas, betas)
    assert surf.shape == (3, 2)
    np.testing.assert_allclose(surf[:, 0], line, rtol=1e-12)
    assert surf[2, 1] == pytest.approx(
        loss_at([wi + 0.25 * a + 1.0 * b for wi, a, b in zip(w, d1, d2)]), rel=1e-12)
    # a flat direction vector works as well as the list
    flat = torch.cat([t.reshape(-1) for t in d1])
    np.testing.assert_allclose(cv.loss_line(model, F.mse_loss, data, flat, alphas), line, rtol=1e-14)
    # interpolation: the endpoints are the two models, the midpoint the averaged weights
    wb = [p.detach() for p in other.parameters()]
    vals = cv.interpolate(model, other, F.mse_loss, data, [0.0, 0.5, 1.0])
    with torch.no_grad():
        end = float(F.mse_loss(other(x), y))
    assert vals[0] == pytest.approx(base, rel=1e-14)
    assert vals[2] == pytest.approx(end, rel=1e-14)
    assert vals[1] == pytest.approx(loss_at([0.5 * a + 0.5 * b for a, b in zip(w, wb)]), rel=1e-12)


# ----------------------------------------------------------------------------------------------
# linear stability thresholds
# ----------------------------------------------------------------------------------------------
def _companion(opt: str, lr: float, beta: float, lam: float) -> np.ndarray:
    """State (w_t, w_{t-1}) → (w_{t+1}, w_t) for the optimizer on ½λw²."""
    if opt == "gd":
        return np.array([[1 - lr * lam]])
    if opt == "heavy_ball":  # w⁺ = w − ηλw + β(w − w⁻)
        return np.array([[1 + beta - lr * lam, -beta], [1.0, 0.0]])
    # nesterov: y = w + β(w − w⁻), w⁺ = y − ηλy
    return np.array([[(1 - lr * lam) * (1 + beta), -(1 - lr * lam) * beta], [1.0, 0.0]])


@pytest.mark.parametrize("opt,beta", [("gd", 0.0), ("heavy_ball", 0.0), ("heavy_ball", 0.5),
                                      ("heavy_ball", 0.9), ("nesterov", 0.5), ("nesterov", 0.9)])
@pytest.mark.parametrize("lr", [0.01, 0.3])
def test_stability_threshold_companion_matrix(opt, beta, lr):
    thr = cv.stability_threshold(lr, opt, momentum=beta)
    radius = lambda lam: max(abs(np.linalg.eigvals(_companion(opt, lr, beta, lam))))
    assert radius(thr * (1 - 1e-4)) < 1 < radius(thr * (1 + 1e-4))
    # PyTorch's SGD implements exactly these recurrences
    for factor, grows in ((0.9, False), (1.1, True)):
        w = torch.nn.Parameter(torch.tensor([1.0], dtype=DT))
        opt_ = torch.optim.SGD([w], lr=lr, momentum=beta, nesterov=(opt == "nesterov"))
        for _ in range(500):
            opt_.zero_grad()
            (0.5 * factor * thr * w ** 2).sum().backward()
            opt_.step()
        assert (abs(float(w.detach())) > 1.0) == grows


def test_stability_threshold_values():
    assert cv.stability_threshold(0.1) == pytest.approx(20.0)
    assert cv.stability_threshold(0.1, "heavy_ball", 0.9) == pytest.approx(38.0)
    assert cv.stability_threshold(0.1, "nesterov", 0.9) == pytest.approx(38.0 / 2.8)
    assert cv.stability_threshold(0.1, "nesterov", 0.0) == pytest.approx(20.0)


# ----------------------------------------------------------------------------------------------
# the training-loop probe
# ----------------------------------------------------------------------------------------------
def test_curvature_probe_warm_start_matches_cold():
    model = mlp(11, "tanh", sizes=(5, 20, 3))
    x, y = cls_data(11, n=80)
    ds = SimpleNamespace(x_train=x, y_train=y)
    sub = (x[:50], y[:50])
    probe = cv.CurvatureProbe(F.cross_entropy, every=5, k=2, trace=True, n_trace_samples=10,
                              max_examples=50, tol=1e-6)
    assert probe.name == "curvature" and probe.every == 5
    cold = cv.top_eigenvalues(model, F.cross_entropy, sub, k=2, tol=1e-6)
    first = probe(model, ds, 0)
    assert set(first) == {"lambda_max", "lambda_2", "trace"}
    second = probe(model, ds, 5)  # warm: v0 from the previous eigenvectors
    for out in (first, second):
        assert out["lambda_max"] == pytest.approx(float(cold[0]), rel=1e-9)
        assert out["lambda_2"] == pytest.approx(float(cold[1]), rel=1e-9)
    assert second["trace"] == pytest.approx(cv.hessian_trace(model, F.cross_entropy, sub, n_samples=10),
                                            rel=1e-12)
    # a model of a different size: the stale vectors are ignored
    assert probe(mlp(12, "tanh", sizes=(5, 7, 3)), ds, 10)["lambda_max"] > 0
    # after a small change of the weights the warm start gives the cold answer, for fewer products
    probe = cv.CurvatureProbe(F.cross_entropy, k=1, max_examples=50, tol=1e-6)
    probe(model, ds, 0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.02)
    before = probe.n_products
    warm = probe(model, ds, 15)["lambda_max"]
    warm_cost = probe.n_products - before
    op = cv.HessianOperator(model, F.cross_entropy, sub)
    cold = float(cv._top_eigs(op, 1, 1e-6, ncv=8)[0][0])
    assert warm == pytest.approx(cold, rel=1e-9)
    assert warm_cost < op.n_products
    # a diverged model: NaN values, not an exception inside the training loop
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    out = cv.CurvatureProbe(F.cross_entropy, k=2, trace=True)(model, ds, 20)
    assert set(out) == {"lambda_max", "lambda_2", "trace"} and all(math.isnan(v) for v in out.values())


# ----------------------------------------------------------------------------------------------
# bad input: clear errors naming the argument
# ----------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_argument():
    model, data = mlp(0), cls_data(0)
    dim = sum(p.numel() for p in model.parameters())
    ce = F.cross_entropy
    with pytest.raises(ValueError, match="k="):
        cv.top_eigenvalues(model, ce, data, k=0)
    with pytest.raises(ValueError, match="k="):
        cv.top_eigenvalues(model, ce, data, k=dim)
    with pytest.raises(ValueError, match="tol"):
        cv.top_eigenvalues(model, ce, data, tol=0)
    with pytest.raises(ValueError, match="v0"):
        cv.top_eigenvalues(model, ce, data, v0=torch.ones(3))
    with pytest.raises(ValueError, match="data"):
        cv.top_eigenvalues(model, ce, data[0])
    with pytest.raises(ValueError, match="data"):
        cv.HessianOperator(model, ce, (data[0], data[1][:-1]))
    with pytest.raises(ValueError, match=r"data.*\(40, 7\)"):
        cv.HessianOperator(model, ce, (torch.randn(40, 7, dtype=DT), data[1]))
    with pytest.raises(ValueError, match="data"):  # labels out of range for the loss
        cv.HessianOperator(model, ce, (data[0], data[1] + 10))
    with pytest.raises(TypeError, match="data"):
        cv.HessianOperator(model, ce, (data[0].numpy(), data[1]))
    frozen = mlp(0).requires_grad_(False)
    with pytest.raises(ValueError, match="model"):
        cv.HessianOperator(frozen, ce, data)
    with pytest.raises(TypeError, match="model"):
        cv.top_eigenvalues("not a model", ce, data)
    broken = mlp(0)
    with torch.no_grad():
        broken[0].weight[0, 0] = float("nan")
    for fn in (cv.top_eigenvalues, cv.hessian_trace, cv.worst_case_sharpness, cv.average_sharpness):
        with pytest.raises(ValueError, match="loss is nan"):
            fn(broken, ce, data)
    with pytest.raises(ValueError, match="method.*hutchinson, hutch\\+\\+"):
        cv.hessian_trace(model, ce, data, method="girard")
    with pytest.raises(ValueError, match="n_samples"):
        cv.hessian_trace(model, ce, data, n_samples=2, method="hutch++")
    with pytest.raises(ValueError, match="n_samples"):
        cv.hessian_trace(model, ce, data, n_samples=0)
    with pytest.raises(ValueError, match="n_probes"):
        cv.spectral_density(model, ce, data, n_probes=0)
    with pytest.raises(ValueError, match="sigma"):
        cv.spectral_density(model, ce, data, sigma=-1.0)
    with pytest.raises(ValueError, match="rho"):
        cv.worst_case_sharpness(model, ce, data, rho=0)
    with pytest.raises(ValueError, match="steps"):
        cv.worst_case_sharpness(model, ce, data, steps=0)
    with pytest.raises(ValueError, match="sigma"):
        cv.average_sharpness(model, ce, data, sigma=-0.1)
    with pytest.raises(ValueError, match="direction"):
        cv.loss_line(model, ce, data, [torch.ones(2)], [0.0])
    with pytest.raises(ValueError, match="alphas"):
        cv.loss_line(model, ce, data, cv.random_direction(model), [])
    with pytest.raises(ValueError, match="d2"):
        cv.loss_surface(model, ce, data, cv.random_direction(model), [torch.ones(1)], [0.0], [0.0])
    with pytest.raises(ValueError, match="model_b"):
        cv.interpolate(model, mlp(0, sizes=(5, 4, 3)), ce, data, [0.5])
    with pytest.raises(ValueError, match="lr"):
        cv.stability_threshold(0.0)
    with pytest.raises(ValueError, match="lr"):
        cv.stability_threshold(-0.1, "heavy_ball", 0.9)
    with pytest.raises(ValueError, match="momentum"):
        cv.stability_threshold(0.1, "heavy_ball", momentum=1.0)
    with pytest.raises(ValueError, match="momentum"):
        cv.stability_threshold(0.1, "nesterov", momentum=-0.1)
    with pytest.raises(ValueError, match="optimizer.*gd, heavy_ball, nesterov"):
        cv.stability_threshold(0.1, "adam")
    with pytest.raises(ValueError, match="every"):
        cv.CurvatureProbe(ce, every=0)
    with pytest.raises(ValueError, match="k="):
        cv.CurvatureProbe(ce, k=dim)(model, SimpleNamespace(x_train=data[0], y_train=data[1]), 0)
    with pytest.raises(ValueError, match="v must have shape"):
        cv.HessianOperator(model, ce, data).matvec(torch.ones(dim + 1, dtype=DT))
