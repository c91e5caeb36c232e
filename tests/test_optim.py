"""flatlab.optim against analytic references: hand-computed steps on quadratics, the closed-form
mean-field posterior of Bayesian linear regression, exact endpoints of MixSAM, and one interface
test that every optimizer passes (scikit-learn style)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from flatlab.models import MLP
from flatlab.curvature import SharpestDirections
from flatlab.optim import (MFVI, REGISTRY, SAM, AdamCM, MixSAM, NudgedSGD, OrthoGrad, VariationalSAM, calibration,
                           frozen_bn_stats, gaussian_kl, kl_gradients, make_optimizer, nudge, sam_perturbation,
                           asam_param_groups)
from flatlab.train import fit

A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)  # a non-diagonal SPD Hessian


def quadratic_closure(opt, w, a=A):
    def closure():
        opt.zero_grad()
        loss = 0.5 * w @ a @ w
        loss.backward()
        return loss
    return closure


def ce_closure(opt, model, x, y):
    """The usual closure: clear the gradients, cross-entropy of ``model`` on (x, y), backward, return the loss."""
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return closure


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ----------------------------------------------------------------------------------------------
# the shared interface: every optimizer passes these
# ----------------------------------------------------------------------------------------------
def _nudged(ps, lr=0.1, **kw):
    """Nudged-SGD along a fixed random direction (the interface does not need the true eigenvectors)."""
    ps = list(ps)
    n, dtype = sum(p.numel() for p in ps), ps[0].dtype
    basis = torch.linalg.qr(torch.randn(n, 1, generator=torch.Generator().manual_seed(0), dtype=dtype))[0]
    return NudgedSGD(ps, lr=lr, gamma=0.5, k=1, eigenvectors=lambda k: (torch.ones(k, dtype=dtype), basis[:, :k]),
                     **kw)


FACTORIES = {   # every flatlab optimizer (each family of flatlab.optim; the registry test checks none is missed)
    "SAM": lambda ps, **kw: SAM(ps, **kw),
    "ASAM": lambda ps, **kw: SAM(ps, adaptive=True, **kw),
    "MFVI": lambda ps, **kw: MFVI(ps, dataset_size=100, **kw),
    "MixSAM": lambda ps, **kw: MixSAM(ps, dataset_size=100, **kw),
    "VariationalSAM": lambda ps, **kw: VariationalSAM(ps, dataset_size=100, **kw),
    "NudgedSGD": _nudged,
    "AdamCM": lambda ps, **kw: AdamCM(ps, **kw),
    "OrthoGrad": lambda ps, **kw: OrthoGrad(ps, torch.optim.SGD, **({"lr": 0.1} | kw)),
}
CLOSURE_REQUIRED = {"SAM", "ASAM", "MFVI", "MixSAM", "VariationalSAM"}   # the others follow torch: optional
# settings under which each one decreases the quadratic quickly
FAST = {
    "SAM": dict(lr=0.1), "ASAM": dict(lr=0.1),
    "MFVI": dict(lr=0.05, init_std=1e-3, learn_std=False), "MixSAM": dict(lr=0.05, init_std=1e-3),
    "VariationalSAM": dict(lr=0.05, init_std=1e-3), "NudgedSGD": dict(lr=0.1), "AdamCM": dict(lr=0.05),
}


def test_the_interface_suite_covers_every_registered_optimizer():
    """Every optimizer class the registry builds from flatlab.optim is in FACTORIES (torch's own are torch's)."""
    w = torch.nn.Parameter(torch.ones(3))
    extra = {"mfvi": dict(dataset_size=10), "mixsam": dict(dataset_size=10), "vsam": dict(dataset_size=10),
             "nudged": dict(eigenvectors=lambda k: (torch.ones(k), torch.eye(3)[:, :k]))}
    built = {type(make_optimizer([w], name, 0.1, **extra.get(name, {}))) for name in REGISTRY}
    ours = {cls.__name__ for cls in built if cls.__module__.startswith("flatlab.")}
    assert ours == {"SAM", "MFVI", "MixSAM", "VariationalSAM", "NudgedSGD", "AdamCM", "OrthoGrad"}
    assert ours <= set(FACTORIES)
    with pytest.raises(ValueError, match="optimizer='sgdd' is unknown; allowed values: sgd, momentum"):
        make_optimizer([w], "sgdd", 0.1)
    with pytest.raises(ValueError, match="lr=-1"):
        make_optimizer([w], "sam", -1)


@pytest.fixture(params=list(FACTORIES))
def name(request):
    return request.param


def test_constructs_with_defaults_and_has_torch_conventions(name):
    w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = FACTORIES[name]([w])
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups[0]["params"] == [w] and opt.param_groups[0]["lr"] > 0
    assert name.replace("ASAM", "SAM") in repr(opt)


def test_step_returns_the_closure_loss(name):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = FACTORIES[name]([w])
    seen = []

    def closure():
        opt.zero_grad()
        loss = 0.5 * w @ A @ w
        loss.backward()
        seen.append(loss)
        return loss

    out = opt.step(closure)
    assert torch.is_tensor(out) and out.dim() == 0 and math.isfinite(float(out.detach()))
    assert any(out is s for s in seen)
    if name in ("SAM", "ASAM", "MixSAM", "VariationalSAM", "NudgedSGD", "AdamCM", "OrthoGrad"):  # loss at the mean
        assert float(out.detach()) == pytest.approx(0.5 * float(torch.tensor([1.0, -2.0], dtype=torch.float64) @ A
                                                      @ torch.tensor([1.0, -2.0], dtype=torch.float64)))


def test_decreases_a_quadratic(name):
    if name == "OrthoGrad":
        pytest.skip("⊥Grad steps orthogonally to w, so it cannot shrink w towards ½wᵀAw's minimum at 0 "
                    "(tests/test_grokking.py checks its projection and training)")
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = FACTORIES[name]([w], **FAST[name])
    start = float(0.5 * w.detach() @ A @ w.detach())
    closure = quadratic_closure(opt, w)
    for _ in range(150):
        opt.step(closure)
    assert float(0.5 * w.detach() @ A @ w.detach()) < start / 20


def test_missing_closure_is_a_clear_error(name):
    w = torch.nn.Parameter(torch.ones(2))
    opt = FACTORIES[name]([w])
    if name in CLOSURE_REQUIRED:
        with pytest.raises(ValueError, match="needs a closure"):
            opt.step()
    else:   # torch's convention: without a closure, step on the gradients in .grad (none yet: no move)
        assert opt.step() is None and torch.equal(w.detach(), torch.ones(2))
    with pytest.raises(TypeError, match="closure must be callable"):
        opt.step(42)


def test_closure_without_backward_is_a_named_error(name):
    """A closure that forgets loss.backward() would make the step silently do nothing."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = FACTORIES[name]([w])
    with pytest.raises(ValueError, match=rf"{type(opt).__name__}.step\(closure\): after closure\(\) no parameter has a "
                                         "gradient"):
        opt.step(lambda: (w ** 2).sum())


def test_state_dict_round_trip_continues_identically(name):
    torch.manual_seed(0)
    model = MLP(2, [8], 3, seed=0)
    opt = FACTORIES[name](model.parameters(), lr=0.05)
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))

    for _ in range(5):
        opt.step(ce_closure(opt, model, x, y))
    clone = copy.deepcopy(model)
    opt2 = FACTORIES[name](clone.parameters(), lr=0.9)  # different settings, overwritten by the load
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups[0]["lr"] == 0.05
    for o, m in ((opt, model), (opt2, clone)):
        torch.manual_seed(1)
        for _ in range(5):
            o.step(ce_closure(o, m, x, y))
    assert torch.equal(flat(model), flat(clone))


@pytest.mark.parametrize("make", [lambda ps: SAM(ps, "sgd", rho=0.1, lr=0.1, momentum=0.9),
                                  lambda ps: MFVI(ps, lr=0.05, dataset_size=16, base_optimizer="sgd", momentum=0.9),
                                  lambda ps: MixSAM(ps, lr=0.05, dataset_size=16, mix=0.5),
                                  lambda ps: VariationalSAM(ps, lr=0.05, dataset_size=16)],
                         ids=["SAM", "MFVI", "MixSAM", "VariationalSAM"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_two_pass_optimizer_keeps_its_base_and_continues_identically(make, how):
    import pickle

    torch.manual_seed(0)
    model = MLP(2, [8], 3, seed=0)
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    opt = make(model.parameters())

    def run(m, o, steps):
        for _ in range(steps):
            o.step(ce_closure(o, m, x, y))

    run(model, opt, 3)
    pair = (model, opt)
    model2, opt2 = copy.deepcopy(pair) if how == "deepcopy" else pickle.loads(pickle.dumps(pair))
    for m, o in ((model, opt), (model2, opt2)):
        torch.manual_seed(1)
        run(m, o, 3)
    assert torch.equal(flat(model), flat(model2))


def test_lr_scheduler_drives_the_update(name):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = FACTORIES[name]([w], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.0 if t >= 1 else 1.0)
    closure = quadratic_closure(opt, w)
    opt.step(closure)
    sched.step()
    before = w.detach().clone()
    if name in ("SAM", "ASAM"):
        opt.step(closure)
        assert torch.equal(w.detach(), before)  # lr 0: no move
    else:
        opt.step(closure)
        assert torch.allclose(w.detach(), before, atol=0)  # lr 0 reaches the base optimizer too


def test_works_inside_fit_and_same_seed_same_numbers(name, clouds):
    runs = []
    for _ in range(2):
        model = MLP(2, [16], 3, seed=0)
        opt = FACTORIES[name](model.parameters(), lr=0.05 if name in ("SAM", "ASAM") else 0.01)
        h = fit(model, clouds, opt, 60, batch_size=32, seed=3, progress=False)
        assert not h.diverged and h.final.train_loss < h.iloc[0].train_loss
        runs.append(flat(model))
    assert torch.equal(runs[0], runs[1])


# ----------------------------------------------------------------------------------------------
# SAM and ASAM: hand-computed steps
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_one_step_on_a_quadratic_equals_the_hand_computed_update(adaptive):
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    rho, lr = 0.3, 0.1
    g = A @ w0
    t = w0.abs() + 0.01 if adaptive else torch.ones(2, dtype=torch.float64)  # ASAM: T = |w| + η (η = 0.01)
    eps = rho * t ** 2 * g / torch.linalg.norm(t * g)
    expected = w0 - lr * (A @ (w0 + eps))
    w = torch.nn.Parameter(w0.clone())
    opt = SAM([w], "sgd", rho=rho, adaptive=adaptive, lr=lr)
    loss = opt.step(quadratic_closure(opt, w))
    assert torch.allclose(w.detach(), expected, rtol=0, atol=1e-12)
    assert float(loss.detach()) == pytest.approx(float(0.5 * w0 @ A @ w0))
    assert torch.allclose(w.grad, A @ (w0 + eps))  # .grad holds the gradient at the perturbed point


def test_asam_param_groups_scale_the_weights_only_as_kwon_et_al():
    torch.manual_seed(0)
    lin = torch.nn.Linear(2, 1).double()
    W0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    rho, lr = 0.4, 0.1
    opt = SAM(asam_param_groups(lin), "sgd", rho=rho, lr=lr)
    assert repr(opt).startswith("ASAM")

    def loss_at(W, b):
        return F.mse_loss(x @ W.T + b, y)

    def closure():
        opt.zero_grad()
        loss = loss_at(lin.weight, lin.bias)
        loss.backward()
        return loss

    opt.step(closure)
    Wr, br = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    gW, gb = torch.autograd.grad(loss_at(Wr, br), (Wr, br))
    tW = W0.abs() + 0.01                                    # the bias keeps T = 1
    norm = torch.sqrt(((tW * gW) ** 2).sum() + (gb ** 2).sum())
    Wp, bp = (W0 + rho * tW ** 2 * gW / norm).requires_grad_(), (b0 + rho * gb / norm).requires_grad_()
    gWp, gbp = torch.autograd.grad(loss_at(Wp, bp), (Wp, bp))
    assert torch.allclose(lin.weight.detach(), W0 - lr * gWp, atol=1e-12)
    assert torch.allclose(lin.bias.detach(), b0 - lr * gbp, atol=1e-12)
    with pytest.raises(ValueError, match="weight"):
        asam_param_groups(torch.nn.Module())
    with pytest.raises(TypeError, match="model"):
        asam_param_groups([W0])


def test_sam_first_and_second_step_match_step():
    w0 = torch.tensor([0.5, 1.5], dtype=torch.float64)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    oa = SAM([a], "sgd", rho=0.2, lr=0.05, momentum=0.9)
    ob = SAM([b], "sgd", rho=0.2, lr=0.05, momentum=0.9)
    for _ in range(3):
        oa.step(quadratic_closure(oa, a))
        (0.5 * b @ A @ b).backward()
        ob.first_step(zero_grad=True)
        (0.5 * b @ A @ b).backward()
        ob.second_step(zero_grad=True)
    assert torch.equal(a.detach(), b.detach())
    with pytest.raises(RuntimeError, match="first_step"):
        ob.second_step()


def test_sam_norm_is_global_over_parameter_groups_with_per_group_rho():
    u0, v0 = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([-3.0], dtype=torch.float64)
    u, v = torch.nn.Parameter(u0.clone()), torch.nn.Parameter(v0.clone())
    opt = SAM([{"params": [u]}, {"params": [v], "rho": 0.5}], "sgd", rho=0.1, lr=1.0)

    def closure():
        opt.zero_grad()
        loss = (u ** 2).sum() + (v ** 2).sum()  # gradient 2w
        loss.backward()
        return loss

    opt.step(closure)
    g = torch.cat([2 * u0, 2 * v0])
    norm = g.norm()
    eu, ev = 0.1 * 2 * u0 / norm, 0.5 * 2 * v0 / norm
    assert torch.allclose(u.detach(), u0 - 2 * (u0 + eu)) and torch.allclose(v.detach(), v0 - 2 * (v0 + ev))


@pytest.mark.parametrize("base,kwargs", [("sgd", dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
                                         ("adam", dict(lr=1e-2)), (torch.optim.AdamW, dict(lr=1e-2))])
def test_rho_zero_sam_is_its_base_optimizer_bit_for_bit(base, kwargs, clouds):
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}.get(base, base)
    a, b = MLP(2, [16, 16], 3, seed=0), MLP(2, [16, 16], 3, seed=0)
    fit(a, clouds, SAM(a.parameters(), base, rho=0.0, **kwargs), 40, batch_size=32, seed=0, progress=False)
    fit(b, clouds, cls(b.parameters(), **kwargs), 40, batch_size=32, seed=0, progress=False)
    assert torch.equal(flat(a), flat(b))


def test_sam_gradient_accumulation_matches_the_full_batch_step():
    torch.manual_seed(0)
    x, y = torch.randn(32, 2), torch.randint(0, 3, (32,))
    a, b = MLP(2, [8], 3, seed=0), MLP(2, [8], 3, seed=0)
    oa, ob = SAM(a.parameters(), rho=0.1, lr=0.1), SAM(b.parameters(), rho=0.1, lr=0.1)

    def closure():
        oa.zero_grad()
        loss = F.cross_entropy(a(x), y)
        loss.backward()
        return loss

    oa.step(closure)
    for _ in range(2):  # two micro-batches, each half of the mean loss, at w and then at w + ε
        for half in (slice(0, 16), slice(16, 32)):
            (0.5 * F.cross_entropy(b(x[half]), y[half])).backward()
        if _ == 0:
            ob.first_step(zero_grad=True)
    ob.second_step(zero_grad=True)
    assert torch.allclose(flat(a), flat(b), atol=1e-6)


def test_sam_perturbation_function():
    g = [torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])]
    before = [t.clone() for t in g]
    eps = sam_perturbation(g, rho=0.5)
    assert torch.allclose(eps[0], torch.tensor([0.3, 0.0])) and torch.allclose(eps[1], torch.tensor([[0.4]]))
    assert all(torch.equal(a, b) for a, b in zip(g, before))  # inputs untouched
    assert all(torch.equal(e, torch.zeros_like(e)) for e in sam_perturbation([torch.zeros(3)], 0.1))
    w = [torch.tensor([2.0, -1.0])]
    e = sam_perturbation([torch.tensor([1.0, 1.0])], 1.0, params=w, adaptive=True, eta=0.0)[0]
    assert torch.allclose(e, torch.tensor([4.0, 1.0]) / math.sqrt(5.0))  # ρ T²g/‖Tg‖, T = |w|
    e = sam_perturbation([torch.tensor([1.0, 1.0])], 1.0, params=w, adaptive=True, eta=1.0)[0]
    assert torch.allclose(e, torch.tensor([9.0, 4.0]) / math.sqrt(13.0))  # T = |w| + η = (3, 2)
    assert torch.equal(w[0], torch.tensor([2.0, -1.0]))  # the weights are not modified
    with pytest.raises(ValueError, match="eta"):
        sam_perturbation([torch.ones(2)], 1.0, params=w, adaptive=True, eta=-1.0)
    with pytest.raises(ValueError, match="params"):
        sam_perturbation([torch.ones(2)], 1.0, adaptive=True)


# ----------------------------------------------------------------------------------------------
# BatchNorm
# ----------------------------------------------------------------------------------------------
def bn_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_frozen_bn_stats_restores_running_statistics():
    model = bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
    with frozen_bn_stats(model):
        model(torch.randn(16, 3) * 3 + 1)
    after = {k: v for k, v in model.state_dict().items() if k in before}
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(TypeError, match="model"):
        with frozen_bn_stats("not a model"):
            pass


@pytest.mark.parametrize("make", [
    lambda m: SAM(m.parameters(), rho=0.5, lr=0.1, model=m),
    lambda m: MFVI(m.parameters(), dataset_size=10, mc_samples=3, init_std=0.1, model=m),
    lambda m: VariationalSAM(m.parameters(), dataset_size=10, model=m),
], ids=["SAM", "MFVI", "VariationalSAM"])
def test_running_statistics_are_updated_once_per_step(make):
    x, y = torch.randn(16, 3) * 2 + 1, torch.randint(0, 2, (16,))
    model, reference = bn_model(), bn_model()
    opt = make(model)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    reference(x)  # one forward pass at the initial weights (the BN layer sees the same inputs only at w)
    assert int(model[1].num_batches_tracked) == 1
    if isinstance(opt, (SAM, VariationalSAM)):  # the counted pass is the one at w
        assert torch.allclose(model[1].running_mean, reference[1].running_mean)


# ----------------------------------------------------------------------------------------------
# MFVI and friends: hand-computed steps
# ----------------------------------------------------------------------------------------------
def noise_like(seed, *shapes):
    flat_noise = torch.randn(sum(math.prod(s) for s in shapes), generator=torch.Generator().manual_seed(seed),
                             dtype=torch.float64)
    return [t.view(s) for t, s in zip(flat_noise.split([math.prod(s) for s in shapes]), shapes)]


def test_mfvi_one_step_equals_the_hand_computed_reparameterized_gradient():
    mu0, sigma, lam, n, lr = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.3, 2.0, 10, 0.1
    (xi,) = noise_like(7, (2,))
    w_s = mu0 + sigma * xi
    g = A @ w_s
    mu1 = mu0 - lr * (g + lam * mu0 / n)
    s1 = math.log(sigma) - lr * (sigma * g * xi + (lam * sigma ** 2 - 1) / n)  # ∇_s = σ ∇_σ
    w = torch.nn.Parameter(mu0.clone())
    opt = MFVI([w], lr=lr, dataset_size=n, prior_precision=lam, init_std=sigma, base_optimizer="sgd",
               generator=torch.Generator().manual_seed(7))
    loss = opt.step(quadratic_closure(opt, w))
    (mean, std), = opt.posterior()
    assert torch.allclose(mean, mu1, atol=1e-12) and torch.allclose(std, s1.exp(), atol=1e-12)
    assert float(loss.detach()) == pytest.approx(float(0.5 * w_s @ A @ w_s))


def test_mfvi_softplus_parameterization_step():
    mu0, sigma, lam, n, lr = torch.tensor([0.5, 1.0], dtype=torch.float64), 0.2, 1.0, 4, 0.05
    (xi,) = noise_like(3, (2,))
    g = A @ (mu0 + sigma * xi)
    s0 = math.log(math.expm1(sigma))
    grad_sigma = g * xi + (lam * sigma - 1 / sigma) / n
    s1 = s0 - lr * grad_sigma * torch.sigmoid(torch.tensor(s0, dtype=torch.float64))
    w = torch.nn.Parameter(mu0.clone())
    opt = MFVI([w], lr=lr, dataset_size=n, prior_precision=lam, init_std=sigma, base_optimizer="sgd",
               std_param="softplus", generator=torch.Generator().manual_seed(3))
    opt.step(quadratic_closure(opt, w))
    (mean, std), = opt.posterior()
    assert torch.allclose(std, F.softplus(s1), atol=1e-12)
    assert torch.allclose(mean, mu0 - lr * (g + lam * mu0 / n), atol=1e-12)


def test_mixsam_interior_step_uses_the_documented_formula():
    mu0, sigma, rho, m, lam, n, lr = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.2, 0.3, 0.25, 1.0, 5, 0.1
    (xi,) = noise_like(11, (2,))
    g0 = A @ mu0
    eps = (1 - m) * rho * g0 / g0.norm() + m * sigma * xi
    g = A @ (mu0 + eps)
    w = torch.nn.Parameter(mu0.clone())
    opt = MixSAM([w], lr=lr, dataset_size=n, prior_precision=lam, init_std=sigma, rho=rho, mix=m,
                 base_optimizer="sgd", generator=torch.Generator().manual_seed(11))
    opt.step(quadratic_closure(opt, w))
    (mean, std), = opt.posterior()
    assert torch.allclose(mean, mu0 - lr * (g + lam * mu0 / n), atol=1e-12)
    s1 = math.log(sigma) - lr * (sigma * m * g * xi + (lam * sigma ** 2 - 1) / n)
    assert torch.allclose(std, s1.exp(), atol=1e-12)


def test_variational_sam_step_takes_the_worst_case_in_the_sigma_ball():
    mu0, sigma, rho, lam, n, lr = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.2, 2.0, 1.0, 5, 0.1
    g0 = A @ mu0
    delta = rho * sigma * g0 / (sigma * g0).norm()
    eps = sigma * delta
    g = A @ (mu0 + eps)
    w = torch.nn.Parameter(mu0.clone())
    opt = VariationalSAM([w], lr=lr, dataset_size=n, prior_precision=lam, init_std=sigma, rho=rho,
                         base_optimizer="sgd")
    opt.step(quadratic_closure(opt, w))
    (mean, std), = opt.posterior()
    assert torch.allclose(mean, mu0 - lr * (g + lam * mu0 / n), atol=1e-12)
    assert torch.allclose(std, (math.log(sigma) - lr * (sigma * g * delta + (lam * sigma ** 2 - 1) / n)).exp(),
                          atol=1e-12)
    assert float((eps / sigma).norm()) == pytest.approx(rho)


@pytest.mark.parametrize("base,kwargs", [("sgd", dict(lr=0.1, momentum=0.9)), ("adam", dict(lr=1e-2))])
def test_mixsam_endpoints_are_exactly_sam_and_mfvi(base, kwargs, clouds):
    n, lam = clouds.n_train, 2.0

    def run(make):
        torch.manual_seed(0)
        model = MLP(2, [16, 16], 3, seed=0)
        fit(model, clouds, make(model), 30, batch_size=32, seed=0, progress=False)
        return flat(model)

    mix0 = run(lambda m: MixSAM(m.parameters(), dataset_size=n, prior_precision=lam, mix=0.0, rho=0.07,
                                base_optimizer=base, **kwargs))
    sam = run(lambda m: SAM(m.parameters(), base, rho=0.07, weight_decay=lam / n, **kwargs))
    assert torch.equal(mix0, sam)
    mix1 = run(lambda m: MixSAM(m.parameters(), dataset_size=n, prior_precision=lam, mix=1.0, rho=0.07,
                                init_std=0.05, base_optimizer=base, **kwargs))
    mfvi = run(lambda m: MFVI(m.parameters(), dataset_size=n, prior_precision=lam, init_std=0.05,
                              base_optimizer=base, **kwargs))
    assert torch.equal(mix1, mfvi)
    half = run(lambda m: MixSAM(m.parameters(), dataset_size=n, prior_precision=lam, mix=0.5, rho=0.07,
                                init_std=0.05, base_optimizer=base, **kwargs))
    assert not torch.equal(half, sam) and not torch.equal(half, mfvi)


def test_mc_samples_average_the_gradients():
    mu0, sigma, n, lr = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.3, 10, 0.1
    xis = noise_like(5, (2,), (2,), (2,))
    # three samples: the optimizer draws one flat vector per sample
    gen = torch.Generator().manual_seed(5)
    xis = [torch.randn(2, generator=gen, dtype=torch.float64) for _ in range(3)]
    g = sum(A @ (mu0 + sigma * x) for x in xis) / 3
    w = torch.nn.Parameter(mu0.clone())
    opt = MFVI([w], lr=lr, dataset_size=n, prior_precision=1.0, init_std=sigma, base_optimizer="sgd",
               mc_samples=3, generator=torch.Generator().manual_seed(5))
    opt.step(quadratic_closure(opt, w))
    assert torch.allclose(w.detach(), mu0 - lr * (g + mu0 / n), atol=1e-12)


def test_variational_flat_layout_is_the_per_tensor_step():
    """The variational optimizers step every bucket (group × dtype) as one flat tensor: a group mixing float32 and
    float64 tensors, a second group with its own lr and a fixed σ, must give what the per-tensor formula gives."""
    torch.manual_seed(0)
    w32 = torch.nn.Parameter(torch.randn(3, 2))
    w64 = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(2))
    lam, n, sigma = 2.0, 10, 0.1
    opt = MFVI([{"params": [w32, w64]}, {"params": [b], "lr": 0.05, "learn_std": False}], lr=0.1, dataset_size=n,
               prior_precision=lam, init_std=sigma, base_optimizer="sgd", generator=torch.Generator().manual_seed(4))
    before = [p.detach().clone() for p in (w32, w64, b)]
    gen = torch.Generator().manual_seed(4)  # dtypes differ: one draw per bucket, in bucket order
    xi_a = torch.randn(6, generator=gen, dtype=torch.float32)
    xi_b = torch.randn(4, generator=gen, dtype=torch.float64)
    xi_c = torch.randn(2, generator=gen, dtype=torch.float32)
    xis = [xi_a.view(3, 2), xi_b, xi_c]

    def closure():
        opt.zero_grad()
        loss = (w32 ** 2).sum() + (w64 ** 3).sum() + (b ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    for p, mu, xi, lr, learn in zip((w32, w64, b), before, xis, (0.1, 0.1, 0.05), (True, True, False)):
        w = mu + sigma * xi
        g = 2 * w if p is not w64 else 3 * w ** 2
        assert torch.allclose(p.detach(), mu - lr * (g + lam * mu / n), atol=1e-6)
        assert torch.allclose(p.grad, g + lam * mu / n, atol=1e-6)  # .grad holds ∇_μ after the step, as before
        s = opt.state[p]["std_param"]
        expected = math.log(sigma) - lr * (sigma * g * xi + (lam * sigma ** 2 - 1) / n) if learn else \
            torch.full_like(mu, math.log(sigma))
        assert torch.allclose(s, torch.as_tensor(expected, dtype=s.dtype), atol=1e-6)


def test_variational_state_after_load_is_still_the_flat_buffer():
    model = MLP(2, [4], 2, seed=0)
    opt = MFVI(model.parameters(), lr=0.1, dataset_size=10, base_optimizer="sgd", momentum=0.9)
    closure = ce_closure(opt, model, torch.randn(8, 2), torch.randint(0, 2, (8,)))
    opt.step(closure)
    saved = copy.deepcopy(opt.state_dict())
    opt.step(closure)
    opt.load_state_dict(saved)
    p = next(model.parameters())
    p_state = opt.state[p]["std_param"]
    assert torch.equal(p_state, saved["state"][0]["std_param"])
    with torch.no_grad():
        p_state.fill_(-3.0)  # a view of the buffer the step reads
    assert float(opt.posterior()[0][1].max()) == pytest.approx(math.exp(-3.0))
    opt.step(closure)
    assert float(opt.posterior()[0][1].max()) < 0.06
    with torch.no_grad():
        p.data = p.data.double()
    with pytest.raises(ValueError, match="changed from .* since the optimizer was built"):
        opt.step(closure)


# ----------------------------------------------------------------------------------------------
# MFVI: the closed-form mean-field posterior of Bayesian linear regression
# ----------------------------------------------------------------------------------------------
def bayesian_linear_regression(seed=0, n=200, noise=0.5, prior_precision=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    x[:, 1] += 0.8 * x[:, 0]  # correlated features: the exact posterior is not diagonal
    y = x @ torch.randn(4, generator=g, dtype=torch.float64) + noise * torch.randn(n, generator=g, dtype=torch.float64)
    precision = x.T @ x / noise ** 2 + prior_precision * torch.eye(4, dtype=torch.float64)  # Λ
    mean = torch.linalg.solve(precision, x.T @ y / noise ** 2)
    return x, y, mean, 1 / precision.diag().sqrt()


def test_mfvi_recovers_the_closed_form_mean_field_posterior():
    """Optimum of E_q[NLL] + KL(q‖p) with q = N(μ, diag σ²): μ = Λ⁻¹Xᵀy/s², σ_i² = 1/Λ_ii."""
    noise, lam = 0.5, 1.0
    x, y, mean, std = bayesian_linear_regression(noise=noise, prior_precision=lam)
    assert (std < 0.9 / torch.linalg.inv(x.T @ x / noise ** 2 + lam * torch.eye(4)).diag().sqrt()).any()
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = MFVI([w], lr=0.01, dataset_size=len(y), prior_precision=lam, init_std=0.05)
    steps, constant = 6500, 2500  # constant learning rate, then decayed 300× to average out the sampling noise
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 if t < constant else 0.003 ** ((t - constant) / (steps - constant)))

    def closure():
        opt.zero_grad()
        loss = 0.5 * ((y - x @ w) ** 2).mean() / noise ** 2  # per-example negative log-likelihood
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        sched.step()
    (mu, sigma), = opt.posterior()
    assert ((mu - mean).abs() / mean.abs()).max() <= 0.02
    assert ((sigma - std).abs() / std).max() <= 0.05


def test_kl_helpers_match_autograd():
    mu = torch.tensor([0.3, -1.0], dtype=torch.float64, requires_grad=True)
    sd = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    kl = gaussian_kl(mu, sd, prior_precision=3.0)
    kl.backward()
    g_mu, g_sd = kl_gradients(mu.detach(), sd.detach(), 3.0, 1)
    assert torch.allclose(mu.grad, g_mu) and torch.allclose(sd.grad, g_sd)


# ----------------------------------------------------------------------------------------------
# the posterior: posterior(), sample(), predict(); calibration
# ----------------------------------------------------------------------------------------------
def test_posterior_sample_and_predict():
    model = MLP(2, [8], 3, seed=0)
    opt = MFVI(model.parameters(), dataset_size=10, init_std=0.2)
    post = opt.posterior()
    assert [m.shape for m, _ in post] == [p.shape for p in model.parameters()]
    assert all(torch.allclose(s, torch.full_like(s, 0.2)) for _, s in post)
    before = flat(model)
    with opt.sample(torch.Generator().manual_seed(0)):
        assert not torch.equal(flat(model), before)
    assert torch.equal(flat(model), before)
    x = torch.randn(5, 2)
    model.train()
    probs = opt.predict(model, x, samples=8)
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5)) and model.training
    tiny = MFVI(model.parameters(), dataset_size=10, init_std=1e-6)
    assert torch.allclose(tiny.predict(model, x, samples=2), torch.softmax(model(x), -1).detach(), atol=1e-4)
    with pytest.raises(ValueError, match="samples"):
        opt.predict(model, x, samples=0)
    with pytest.raises(ValueError, match="link"):
        opt.predict(model, x, link="probit")
    assert opt.kl() > 0


def test_calibration_bins_and_ece():
    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = torch.tensor([0, 1, 0, 1])
    c = calibration(p, y, n_bins=5)
    # bins of width 0.2: [0.6, 0.8) holds confidences 0.6 and 0.7 (both right), [0.8, 1] holds 0.8 (wrong)
    # and 0.9 (right): ECE = (|2 − 1.3| + |1 − 1.7|) / 4
    expected = (abs(2 - 1.3) + abs(1 - 1.7)) / 4
    assert c["ece"] == pytest.approx(expected) and c["accuracy"] == 0.75
    assert c["bin_count"].sum() == 4 and len(c["bin_edges"]) == 6
    perfect = calibration(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    assert perfect["ece"] == pytest.approx(0.0) and perfect["nll"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="probs"):
        calibration(torch.ones(3), y)
    with pytest.raises(ValueError, match="y must"):
        calibration(p, y[:2])


# ----------------------------------------------------------------------------------------------
# Nudged-SGD
# ----------------------------------------------------------------------------------------------
def spectral_quadratic(eigenvalues=(5.0, 3.0, 1.0, 0.5)):
    """A symmetric 4×4 Hessian with known eigenpairs (columns of Q, eigenvalues descending)."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    lam = torch.tensor(eigenvalues, dtype=torch.float64)
    return q @ torch.diag(lam) @ q.T, q, lam


def exact_basis(q, lam):
    return lambda k: (lam[:k], q[:, :k])


@pytest.mark.parametrize("gamma,k", [(0.1, 1), (0.1, 2), (5.0, 2), (1.0, 3)])
def test_nudged_step_on_a_quadratic_equals_the_hand_computed_step(gamma, k):
    """w⁺ = w − η Σ_i c_i (u_iᵀ g) u_i with c_i = γ on the top-k eigenvectors and 1 on the others."""
    h, q, lam = spectral_quadratic()
    w0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = NudgedSGD([w], lr=0.1, gamma=gamma, k=k, every=1, eigenvectors=exact_basis(q, lam))
    loss = opt.step(quadratic_closure(opt, w, h))
    g = h @ w0
    c = torch.tensor([gamma if i < k else 1.0 for i in range(4)], dtype=torch.float64)
    expected = w0 - 0.1 * sum(c[i] * (q[:, i] @ g) * q[:, i] for i in range(4))
    torch.testing.assert_close(w.detach(), expected, rtol=1e-13, atol=1e-14)
    assert float(loss.detach()) == pytest.approx(float(0.5 * w0 @ h @ w0))
    assert opt.eigenvalues == [(0, lam[:k].tolist())]


def test_nudged_step_with_lanczos_directions_equals_the_dense_reference():
    """On least squares the Hessian is XᵀX/n exactly: SharpestDirections (Lanczos) + NudgedSGD give the step
    built from the dense eigendecomposition."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0, 1.0, 0.5, 0.2],
                                                                             dtype=torch.float64)
    y = torch.randn(64, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(6, 1, bias=False).double()
    w0 = model.weight.detach().reshape(-1).clone()
    loss_fn = lambda out, t: 0.5 * (out - t).pow(2).mean()  # noqa: E731
    opt = NudgedSGD(model.parameters(), lr=0.05, gamma=0.2, k=2, every=1,
                    eigenvectors=SharpestDirections(model, loss_fn, (x, y), tol=1e-12))

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    h = x.T @ x / len(x)
    lam, vecs = torch.linalg.eigh(h)
    u = vecs[:, -2:]  # the top two
    grad = h @ w0 - x.T @ y.reshape(-1) / len(x)
    step = -0.05 * grad
    expected = w0 + step - 0.8 * u @ (u.T @ step)
    torch.testing.assert_close(model.weight.detach().reshape(-1), expected, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(torch.tensor(opt.eigenvalues[0][1], dtype=torch.float64), lam[-2:].flip(0),
                               rtol=1e-9, atol=0)


def test_nudged_momentum_nudges_the_step_not_the_buffer():
    """Two steps with μ = 0.9: m₁ = g₀, s₁ = N(−η m₁); m₂ = μ m₁ + g₁, s₂ = N(−η m₂), N = I − (1 − γ)UUᵀ."""
    h, q, lam = spectral_quadratic()
    w0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = NudgedSGD([w], lr=0.1, gamma=0.3, k=1, every=5, momentum=0.9, eigenvectors=exact_basis(q, lam))
    for _ in range(2):
        opt.step(quadratic_closure(opt, w, h))
    n = torch.eye(4, dtype=torch.float64) - 0.7 * torch.outer(q[:, 0], q[:, 0])
    m1 = h @ w0
    w1 = w0 + n @ (-0.1 * m1)
    m2 = 0.9 * m1 + h @ w1
    torch.testing.assert_close(w.detach(), w1 + n @ (-0.1 * m2), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(opt.state[w]["momentum_buffer"], m2, rtol=1e-13, atol=1e-14)


def test_nudged_refreshes_every_few_steps_and_only_the_span_matters():
    h, q, lam = spectral_quadratic()
    calls = []

    def skewed(k):  # a non-orthonormal basis of the same span: the optimizer orthonormalizes it
        calls.append(k)
        return lam[:k], q[:, :k] @ torch.tensor([[2.0, 1.0], [0.0, 0.5]], dtype=torch.float64)

    w, v = (torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)) for _ in range(2))
    a = NudgedSGD([w], lr=0.1, gamma=0.1, k=2, every=3, eigenvectors=skewed)
    b = NudgedSGD([v], lr=0.1, gamma=0.1, k=2, every=3, eigenvectors=exact_basis(q, lam))
    for _ in range(7):
        a.step(quadratic_closure(a, w, h))
        b.step(quadratic_closure(b, v, h))
    assert len(calls) == 3 and [s for s, _ in a.eigenvalues] == [0, 3, 6]  # before steps 1, 4 and 7
    torch.testing.assert_close(w.detach(), v.detach(), rtol=1e-12, atol=1e-13)


def test_nudged_gamma_one_is_torch_sgd_bit_for_bit_inside_fit(clouds):
    runs = []
    for make in (lambda m: NudgedSGD(m.parameters(), lr=0.1, gamma=1.0, k=3, every=4, momentum=0.5,
                                     eigenvectors=SharpestDirections(m, F.cross_entropy, clouds.train)),
                 lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.5)):
        model = MLP(2, [8], 3, seed=0)
        h = fit(model, clouds, make(model), 12, batch_size=16, seed=3, progress=False)
        runs.append((flat(model), h.train_loss.to_numpy()))
    assert torch.equal(runs[0][0], runs[1][0]) and (runs[0][1] == runs[1][1]).all()


def test_nudged_state_dict_round_trip_and_same_seed_same_numbers(clouds):
    def run(model, opt, steps, seed):
        return fit(model, clouds, opt, steps, batch_size=16, seed=seed, progress=False)

    def make(model):  # a tight Lanczos tolerance: the clone's directions start without the warm start
        return NudgedSGD(model.parameters(), lr=0.2, gamma=0.2, k=2, every=3, momentum=0.9,
                         eigenvectors=SharpestDirections(model, F.cross_entropy, clouds.train, tol=1e-10))

    model = MLP(2, [8], 3, seed=0)
    opt = make(model)
    run(model, opt, 4, seed=0)
    clone = copy.deepcopy(model)
    opt2 = make(clone)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.state["nudge"]["step"] == 4 and torch.equal(opt2.state["nudge"]["basis"], opt.state["nudge"]["basis"])
    run(model, opt, 5, seed=1)
    run(clone, opt2, 5, seed=1)
    torch.testing.assert_close(flat(model), flat(clone), rtol=1e-5, atol=1e-6)
    again = MLP(2, [8], 3, seed=0)
    opt3 = make(again)
    run(again, opt3, 4, seed=0)
    run(again, opt3, 5, seed=1)
    assert torch.equal(flat(model), flat(again))


def test_nudge_function_and_gamma_below_one_slows_the_sharp_direction_only():
    step = torch.tensor([1.0, 2.0, 3.0])
    basis = torch.tensor([[0.0], [1.0], [0.0]])
    assert torch.equal(nudge(step, basis, 0.25), torch.tensor([1.0, 0.5, 3.0]))
    assert torch.equal(nudge(step, basis, 1.0), step) and nudge(step, basis, 1.0) is not step
    with pytest.raises(ValueError, match=r"basis must be a tensor of shape \[3, k\]"):
        nudge(step, torch.ones(2, 1), 0.5)
    with pytest.raises(ValueError, match="gamma=0.0 must be a positive number"):
        nudge(step, basis, 0.0)


def nsgd(**kw):
    w = torch.nn.Parameter(torch.ones(3))
    basis = kw.pop("eigenvectors", lambda k: (torch.ones(k), torch.eye(3)[:, :k]))
    return NudgedSGD([w], **{"lr": 0.1, "gamma": 0.5, "k": 1, "every": 2, "eigenvectors": basis, **kw}), w


def nsgd_step(**kw):
    opt, w = nsgd(**kw)
    return opt.step(quadratic_closure(opt, w, torch.eye(3)))


@pytest.mark.parametrize("make,error,match", [
    (lambda: nsgd(gamma=0.0), ValueError, r"gamma=0.0 must be a positive number \(> 0\)"),
    (lambda: nsgd(gamma=-1.0), ValueError, "gamma=-1.0"),
    (lambda: nsgd(gamma=float("nan")), ValueError, "gamma=nan is not finite"),
    (lambda: nsgd(gamma=float("inf")), ValueError, "gamma=inf is not finite"),
    (lambda: nsgd(gamma="0.1"), TypeError, "gamma must be a positive number"),
    (lambda: nsgd(k=0), ValueError, r"k=0 must be a positive integer \(≥ 1\)"),
    (lambda: nsgd(k=1.0), TypeError, "k must be a positive integer.*write 1"),
    (lambda: nsgd(k=3), ValueError, "k=3 must be smaller than the number of parameters"),
    (lambda: nsgd(every=0), ValueError, "every=0 must be a positive integer"),
    (lambda: nsgd(every=2.5), TypeError, "every must be a positive integer"),
    (lambda: nsgd(lr=0.0), ValueError, "lr=0.0"),
    (lambda: nsgd(momentum=1.0), ValueError, "momentum=1.0"),
    (lambda: nsgd(eigenvectors="lanczos"), TypeError, "eigenvectors must be callable"),
    (lambda: NudgedSGD(MLP(2, [4], 3).parameters(), eigenvectors=SharpestDirections(
        MLP(2, [4], 3), F.cross_entropy, (torch.randn(4, 2), torch.zeros(4, dtype=torch.long)))),
     ValueError, "other parameters"),
    (lambda: nsgd_step(eigenvectors=lambda k: torch.eye(3)[:, :k]), TypeError, r"pair \(values, vectors\)"),
    (lambda: nsgd_step(eigenvectors=lambda k: (torch.ones(k), torch.eye(3))), ValueError,
     r"vectors of shape \(3, 3\), expected \(3, 1\)"),
    (lambda: nsgd_step(eigenvectors=lambda k: (torch.ones(k), torch.full((3, k), float("nan")))), ValueError,
     "NaN/inf"),
    (lambda: nsgd(eigenvectors=lambda k: None)[0].add_param_group({"params": [torch.nn.Parameter(torch.ones(1))]}),
     NotImplementedError, "constructor"),
    (lambda: nsgd()[0].step(42), TypeError, "closure must be callable"),
    (lambda: SharpestDirections("model", F.cross_entropy, (torch.ones(2, 2), torch.ones(2))), TypeError,
     "model must be a torch.nn.Module"),
    (lambda: SharpestDirections(MLP(2, [4], 3), F.cross_entropy, (torch.ones(2, 2),)), ValueError, "data must be"),
    (lambda: SharpestDirections(MLP(2, [4], 3), F.cross_entropy, (torch.ones(2, 2), torch.ones(2)), tol=0),
     ValueError, "tol=0"),
])
def test_nudged_sgd_bad_input_names_the_parameter(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
def w_():
    return [torch.nn.Parameter(torch.ones(2))]


@pytest.mark.parametrize("make,match", [
    (lambda: SAM(w_(), rho=-0.1), "rho=-0.1"),
    (lambda: SAM(w_(), rho=float("nan")), "rho"),
    (lambda: SAM(w_(), base_optimizer="lbfgsx"), "base_optimizer='lbfgsx' is unknown"),
    (lambda: SAM(w_(), base_optimizer=torch.nn.Linear), "base_optimizer"),
    (lambda: SAM(w_(), lr=-1.0), "learning rate"),
    (lambda: MFVI(w_(), dataset_size=0), "dataset_size=0"),
    (lambda: MFVI(w_(), dataset_size=10, init_std=0.0), "init_std=0.0"),
    (lambda: MFVI(w_(), dataset_size=10, init_std=-1.0), "init_std"),
    (lambda: MFVI(w_(), dataset_size=10, prior_precision=0.0), "prior_precision"),
    (lambda: MFVI(w_(), dataset_size=10, lr=0.0), "lr=0.0"),
    (lambda: MFVI(w_(), dataset_size=10, mc_samples=0), "mc_samples"),
    (lambda: MFVI(w_(), dataset_size=10, std_param="exp"), "std_param='exp' is unknown"),
    (lambda: MFVI(w_(), dataset_size=10, base_optimizer="rmsprop"), "base_optimizer='rmsprop'"),
    (lambda: MFVI(w_(), dataset_size=10, weight_decay=0.1), "prior_precision"),
    (lambda: MixSAM(w_(), dataset_size=10, mix=1.5), "mix=1.5"),
    (lambda: MixSAM(w_(), dataset_size=10, rho=-1.0), "rho"),
    (lambda: VariationalSAM(w_(), dataset_size=10, rho=-2.0), "rho"),
    (lambda: VariationalSAM(w_(), dataset_size=10, mc_samples=2), "mc_samples"),
])
def test_bad_hyper_parameters_raise_named_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make,match", [
    (lambda: SAM(w_(), adaptive="yes"), "adaptive must be True or False"),
    (lambda: MFVI(w_(), dataset_size=10.5), "dataset_size must be a positive integer"),
])
def test_hyper_parameters_of_the_wrong_type_raise_named_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_missing_dataset_size_and_late_param_groups():
    with pytest.raises(TypeError, match="dataset_size"):
        MFVI(w_())
    opt = MFVI(w_(), dataset_size=3)
    with pytest.raises(NotImplementedError, match="constructor"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))]})
    sam = SAM(w_(), rho=0.1, lr=0.1)
    sam.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "rho": 0.2})
    assert sam.param_groups[1]["rho"] == 0.2 and sam.param_groups is sam.base_optimizer.param_groups


def test_noise_predictive_is_the_plain_prediction_at_zero_noise_and_leaves_weights_alone():
    from flatlab.optim import noise_predictive

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).double()
    x = torch.randn(20, 3, dtype=torch.float64)
    before = [p.detach().clone() for p in model.parameters()]
    plain = torch.softmax(model(x), -1)
    torch.testing.assert_close(noise_predictive(model, x, std=0.0, samples=3), plain, rtol=1e-14, atol=1e-15)
    a = noise_predictive(model, x, std=0.5, samples=8, seed=1)
    assert torch.equal(a, noise_predictive(model, x, std=0.5, samples=8, seed=1))  # same seed, same numbers
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before)) and model.training
    # one sample by hand: w + std·ξ with ξ from the same generator, in parameter order
    gen = torch.Generator().manual_seed(2)
    noisy = [p.detach() + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in model.parameters()]
    W1, b1, W2, b2 = noisy
    expect = torch.softmax(torch.relu(x @ W1.T + b1) @ W2.T + b2, -1)
    torch.testing.assert_close(noise_predictive(model, x, std=0.3, samples=1, seed=2), expect)
    for kw, err in ((dict(std=-1.0), ValueError), (dict(std=float("nan")), ValueError), (dict(samples=0), ValueError),
                    (dict(link="tanh"), ValueError)):
        with pytest.raises(err, match=next(iter(kw))):
            noise_predictive(model, x, **{"std": 0.1, **kw})
