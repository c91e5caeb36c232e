"""flatlab.adaptive: AdamCM, Adam's preconditioned sharpness, schedules/clipping, SWA and PAPA."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flatlab import adaptive
from flatlab.adaptive import (AdamCM, adam_preconditioner, adam_threshold, average_models, fit_scheduled,
                              landscape_run, linear_warmup, make_adaptive_optimizer, papa, papa_pull_,
                              preconditioned_sharpness, swa)
from flatlab.landscapes import sharp_and_flat
from flatlab.models import MLP
from flatlab.train import fit, make_loss


def _train(opt_factory, steps=25, seed=0):
    torch.manual_seed(seed)
    model = MLP(4, [16, 16], 3, seed=seed)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    opt = opt_factory(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model, opt


# ----------------------------------------------------------------------------------------------
# AdamCM
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(buffer_size=0), dict(buffer_size=4, kappa=0.0)])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adamcm_without_buffer_is_adam_bit_for_bit(kwargs, wd):
    ref, _ = _train(lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd))
    got, _ = _train(lambda p: AdamCM(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd, **kwargs))
    for a, b in zip(ref.parameters(), got.parameters()):
        assert torch.equal(a, b)


def test_adamcm_first_step_is_adam_and_buffer_changes_later_steps():
    ref, _ = _train(lambda p: torch.optim.Adam(p, lr=0.01), steps=1)
    one, _ = _train(lambda p: AdamCM(p, lr=0.01, buffer_size=3), steps=1)
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), one.parameters()))
    ref, _ = _train(lambda p: torch.optim.Adam(p, lr=0.01), steps=3)
    three, _ = _train(lambda p: AdamCM(p, lr=0.01, buffer_size=3), steps=3)
    assert not all(torch.equal(a, b) for a, b in zip(ref.parameters(), three.parameters()))


def _hand_adamcm(grad_fn, w0, steps, lr, b1, b2, eps, size, decay, kappa):
    """Adam+CM written out with plain floats, one coordinate list at a time."""
    w = list(w0)
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    buf, prio = [], []
    for t in range(1, steps + 1):
        g = grad_fn(w)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        direction = list(m)
        if buf:
            mean = [sum(col) / len(buf) for col in zip(*buf)]
            direction = [mi + kappa * ci for mi, ci in zip(m, mean)]
        prio = [p * decay for p in prio]
        gnorm = math.sqrt(sum(gi * gi for gi in g))
        if len(buf) < size:
            buf.append(list(m))
            prio.append(gnorm)
        else:
            low = min(range(len(prio)), key=prio.__getitem__)
            if gnorm > prio[low]:
                buf[low], prio[low] = list(m), gnorm
        w = [wi - lr / (1 - b1 ** t) * di / (math.sqrt(vi / (1 - b2 ** t)) + eps)
             for wi, di, vi in zip(w, direction, v)]
    return w, prio


def test_adamcm_matches_hand_computed_steps_on_a_quadratic():
    a = [4.0, 0.5]

    def grad_fn(w):
        return [ai * wi for ai, wi in zip(a, w)]

    w0 = [1.0, -2.0]
    for steps in (1, 2, 3, 6):
        expected, prio = _hand_adamcm(grad_fn, w0, steps, lr=0.1, b1=0.9, b2=0.99, eps=1e-8, size=2, decay=0.5,
                                      kappa=1.0)
        w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
        opt = AdamCM([w], lr=0.1, betas=(0.9, 0.99), eps=1e-8, buffer_size=2, decay=0.5, kappa=1.0)
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (torch.tensor(a, dtype=torch.float64) * w ** 2).sum()).backward()
            opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.state[w]["cm_priority"].numpy(), prio, rtol=1e-12)


def test_adamcm_second_step_by_hand():
    """w=1, L=½w²: step 1 is Adam's (w₁ = 1 − η); step 2 adds the stored momentum m₁ = 0.1."""
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = AdamCM([w], lr=0.1, betas=(0.9, 0.999), eps=0.0, buffer_size=1, decay=0.5)
    for _ in range(2):
        opt.zero_grad()
        (0.5 * w ** 2).sum().backward()
        opt.step()
    g1, g2 = 1.0, 0.9
    m1, m2 = 0.1 * g1, 0.9 * 0.1 * g1 + 0.1 * g2
    v2 = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    w2 = 0.9 - 0.1 / (1 - 0.81) * (m2 + m1) / math.sqrt(v2 / (1 - 0.999 ** 2))
    assert float(w.detach()) == pytest.approx(w2, rel=1e-12)
    # buffer full (size 1): m₂ replaces m₁ only if ‖g₂‖ = 0.9 beats the decayed priority 0.5·1.0
    assert float(opt.state[w]["cm_buffer"][0]) == pytest.approx(m2)


def test_adamcm_closure_state_dict_and_resume():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))

    def run(split):
        model = MLP(4, [8], 3, seed=1)
        opt = AdamCM(model.parameters(), lr=0.05, buffer_size=3)

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        for _ in range(split):
            loss = opt.step(closure)
        if split < 10:
            saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
            model = MLP(4, [8], 3, seed=2)
            model.load_state_dict(saved_model)
            opt = AdamCM(model.parameters(), lr=0.05, buffer_size=3)
            opt.load_state_dict(saved_opt)
            for _ in range(10 - split):
                loss = opt.step(closure)
        return model, loss

    a, loss_a = run(10)
    b, _ = run(4)
    assert torch.is_tensor(loss_a) and loss_a.ndim == 0
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(betas=(1.0, 0.9)), "betas\\[0\\]"), (dict(betas=(0.9, -0.1)), "betas\\[1\\]"), (dict(betas=(0.9,)), "betas"),
    (dict(eps=-1e-8), "eps"), (dict(weight_decay=-0.1), "weight_decay"), (dict(buffer_size=-1), "buffer_size"),
    (dict(decay=1.5), "decay"), (dict(decay=-0.1), "decay"), (dict(kappa=-1.0), "kappa"),
])
def test_adamcm_rejects_bad_hyperparameters_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AdamCM([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_adamcm_type_errors():
    with pytest.raises(TypeError, match="buffer_size"):
        AdamCM([torch.nn.Parameter(torch.zeros(2))], buffer_size=2.5)
    with pytest.raises(TypeError, match="lr"):
        AdamCM([torch.nn.Parameter(torch.zeros(2))], lr="0.1")
    with pytest.raises(TypeError, match="betas must be a pair"):  # a number where a pair is meant
        AdamCM([torch.nn.Parameter(torch.zeros(2))], betas=0.9)


def test_adamcm_param_groups_have_their_own_buffers():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = AdamCM([{"params": [a], "buffer_size": 2}, {"params": [b], "buffer_size": 0}], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((a ** 2).sum() + (b ** 2).sum()).backward()
        opt.step()
    assert "cm_buffer" in opt.state[a] and "cm_buffer" not in opt.state[b]
    assert opt.state[a]["cm_buffer"].shape == (2, 3)


# ----------------------------------------------------------------------------------------------
# preconditioned sharpness and threshold
# ----------------------------------------------------------------------------------------------
def _flat_hessian(model, loss_fn, x, y):
    params = [p for p in model.parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [n for n, _ in model.named_parameters()]

    def f(flat):
        chunks = torch.split(flat, sizes)
        named = {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}
        return loss_fn(torch.func.functional_call(model, named, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    return torch.autograd.functional.hessian(f, flat)


def test_preconditioned_lambda_max_equals_dense_eigenvalue():
    torch.manual_seed(0)
    model = MLP(3, [5], 2, activation="tanh", seed=0).double()
    x, y = torch.randn(40, 3, dtype=torch.float64), torch.randn(40, 2, dtype=torch.float64)
    loss_fn = F.mse_loss
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(5):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    # P = √v̂ + ε, written out from the optimizer state
    p_manual = torch.cat([(opt.state[p]["exp_avg_sq"] / (1 - 0.999 ** 5)).sqrt().reshape(-1) + 1e-8
                          for p in model.parameters()])
    torch.testing.assert_close(adam_preconditioner(opt, model), p_manual)
    h = _flat_hessian(model, loss_fn, x, y)
    s = p_manual.rsqrt()
    dense = torch.linalg.eigvalsh(s[:, None] * h * s[None, :])
    got = preconditioned_sharpness(model, loss_fn, (x, y), opt, k=2, tol=1e-10)
    np.testing.assert_allclose(got.numpy(), dense.flip(0)[:2].numpy(), rtol=1e-7)
    # the same numbers as the (non-symmetric) P⁻¹H
    nonsym = torch.linalg.eigvals(h / p_manual[:, None]).real.max()
    assert float(got[0]) == pytest.approx(float(nonsym), rel=1e-7)


def test_preconditioner_of_ones_gives_plain_lambda_max():
    from flatlab.curvature import top_eigenvalues

    model = MLP(3, [6], 2, seed=0)
    data = (torch.randn(30, 3), torch.randint(0, 2, (30,)))
    plain = top_eigenvalues(model, F.cross_entropy, data, k=1, tol=1e-8)
    n = sum(p.numel() for p in model.parameters())
    pre = preconditioned_sharpness(model, F.cross_entropy, data, torch.ones(n), tol=1e-8)
    assert float(pre[0]) == pytest.approx(float(plain[0]), rel=1e-5)


def test_preconditioned_sharpness_input_errors():
    model = MLP(3, [4], 2, seed=0)
    data = (torch.randn(10, 3), torch.randint(0, 2, (10,)))
    n = sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="entries"):
        preconditioned_sharpness(model, F.cross_entropy, data, torch.ones(n + 1))
    with pytest.raises(ValueError, match="> 0"):
        preconditioned_sharpness(model, F.cross_entropy, data, torch.zeros(n))
    with pytest.raises(TypeError, match="preconditioner"):
        preconditioned_sharpness(model, F.cross_entropy, data, "adam")
    with pytest.raises(ValueError, match="at least one step"):
        preconditioned_sharpness(model, F.cross_entropy, data, torch.optim.Adam(model.parameters()))
    with pytest.raises(ValueError, match="Adam-type"):
        adam_preconditioner(torch.optim.SGD(model.parameters(), lr=0.1), model)


def test_adam_threshold_formula_and_its_meaning():
    assert adam_threshold(1e-3) == pytest.approx(38_000.0)
    assert adam_threshold(0.01, beta1=0.0) == pytest.approx(2 / 0.01)
    assert adam_threshold(0.5, beta1=0.5) == pytest.approx((2 + 1) / (0.5 * 0.5))
    # EMA momentum m ← β m + (1−β) λ w, w ← w − η m on ½λw²: stable just below the threshold, not above
    lr, beta = 0.01, 0.9
    for factor, stable in ((0.97, True), (1.03, False)):
        lam, w, m = factor * adam_threshold(lr, beta), 1.0, 0.0
        for _ in range(3000):
            m = beta * m + (1 - beta) * lam * w
            w -= lr * m
        assert (abs(w) < 1.0) is stable
    with pytest.raises(ValueError, match="lr"):
        adam_threshold(0.0)
    with pytest.raises(ValueError, match="beta1"):
        adam_threshold(0.1, beta1=1.0)


def test_preconditioned_probe_in_fit(clouds):
    model = MLP(2, [8], 3, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    probe = adaptive.PreconditionedSharpnessProbe(make_loss(clouds), opt, every=5)
    h = fit(model, clouds, opt, 10, eval_every=5, probes=[probe], progress=False)
    assert math.isnan(h.precond_lambda_max.iloc[0])  # no second moment before the first step
    assert (h.precond_lambda_max.iloc[1:] > 0).all() and (h.lambda_max.iloc[1:] > 0).all()
    with torch.no_grad():
        model.net[0].weight.fill_(float("nan"))  # a diverged model: NaN instead of an error
    assert math.isnan(probe(model, clouds, 11)["precond_lambda_max"])


# ----------------------------------------------------------------------------------------------
# schedules, clipping, training loop
# ----------------------------------------------------------------------------------------------
def test_linear_warmup_matches_lambdalr_convention():
    f = linear_warmup(3)
    assert [f(s) for s in range(5)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0])
    assert linear_warmup(0)(0) == 1.0
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup(3))
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.3])
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup(-1)


def test_fit_scheduled_follows_schedule_and_restores_lr(clouds):
    model = MLP(2, [8], 3, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.4)
    h = fit_scheduled(model, clouds, opt, 8, schedule=linear_warmup(4), eval_every=1)
    assert h.lr.tolist()[1:] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4])
    assert opt.param_groups[0]["lr"] == 0.4 and h.info["warmup_steps"] == 4
    assert (h.grad_norm.iloc[1:] > 0).all()


def test_clipping_bounds_the_sgd_step(clouds):
    model = MLP(2, [8], 3, seed=0)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    h = fit_scheduled(model, clouds, opt, 1, clip=1e-3, eval_every=1)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-3)
    assert h.grad_norm.iloc[-1] > 1e-3  # the recorded norm is the one before clipping


def test_fit_scheduled_detects_divergence_and_validates(clouds):
    model = MLP(2, [8], 3, seed=0)
    h = fit_scheduled(model, clouds, torch.optim.SGD(model.parameters(), lr=1e4), 50)
    assert h.diverged and h.diverged_step is not None
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="clip"):
        fit_scheduled(model, clouds, opt, 5, clip=0.0)
    with pytest.raises(TypeError, match="schedule"):
        fit_scheduled(model, clouds, opt, 5, schedule=3)
    with pytest.raises(TypeError, match="optimizer"):
        fit_scheduled(model, clouds, "adam", 5)
    with pytest.raises(ValueError, match="batch_size"):
        fit_scheduled(model, clouds, opt, 5, batch_size=10_000)
    with pytest.raises(ValueError, match="steps"):
        fit_scheduled(model, clouds, opt, 0)


def test_fit_scheduled_is_reproducible(clouds):
    def run():
        model = MLP(2, [8], 3, seed=0)
        opt = AdamCM(model.parameters(), lr=0.05, buffer_size=3)
        return fit_scheduled(model, clouds, opt, 30, batch_size=16, schedule=linear_warmup(10), clip=1.0, seed=3)

    a, b = run(), run()
    assert a.train_loss.tolist() == b.train_loss.tolist()


def test_make_adaptive_optimizer_names():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_adaptive_optimizer(p, "radam", 0.1), torch.optim.RAdam)
    assert make_adaptive_optimizer(p, "momentum", 0.1).param_groups[0]["momentum"] == 0.9
    assert isinstance(make_adaptive_optimizer(p, "adamcm", 0.1, buffer_size=2), AdamCM)
    with pytest.raises(ValueError, match="allowed values: sgd, momentum, adam, adamcm, radam"):
        make_adaptive_optimizer(p, "lion", 0.1)


# ----------------------------------------------------------------------------------------------
# 2-D landscape
# ----------------------------------------------------------------------------------------------
def test_adamcm_leaves_the_sharp_minimum_where_adam_stays():
    land = sharp_and_flat()
    centre = np.array(land.basin("sharp").centre)
    for angle in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        start = centre + 0.2 * np.array([np.cos(angle), np.sin(angle)])
        assert landscape_run(land, start, "adam", lr=0.1, steps=200).basin == "sharp"
        assert landscape_run(land, start, "adamcm", lr=0.1, steps=200).basin == "flat"


def test_landscape_run_adamcm_without_buffer_is_adam():
    land = sharp_and_flat()
    a = landscape_run(land, (-1.2, 0.7), "adam", lr=0.05, steps=50)
    b = landscape_run(land, (-1.2, 0.7), "adamcm", lr=0.05, steps=50, buffer_size=0)
    assert np.array_equal(a.points, b.points) and a.points.shape == (51, 2)
    with pytest.raises(ValueError, match="start"):
        landscape_run(land, (1.0, 2.0, 3.0))


# ----------------------------------------------------------------------------------------------
# weight averaging
# ----------------------------------------------------------------------------------------------
def test_swa_average_is_the_mean_of_its_snapshots(clouds):
    model = MLP(2, [8], 3, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    res = swa(model, clouds, opt, 30, every=5, start=10, batch_size=16)
    assert len(res.snapshots) == 4  # steps 15, 20, 25, 30
    mean = average_models(res.snapshots)
    for a, b in zip(res.averaged.parameters(), mean.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(res.snapshots[-1].parameters(), model.parameters()):
        assert torch.equal(a, b)  # the model ends at the last iterate
    with pytest.raises(ValueError, match="no iterate"):
        swa(model, clouds, opt, 5, every=10)


def test_swa_recomputes_batchnorm_statistics(clouds):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    res = swa(model, clouds, torch.optim.SGD(model.parameters(), lr=0.1), 20, every=5)
    bn = res.averaged[1]
    with torch.no_grad():
        pre = res.averaged[0](clouds.x_train)
    torch.testing.assert_close(bn.running_mean, pre.mean(0), rtol=1e-4, atol=1e-5)


def test_average_models_weights_and_errors():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    m = average_models([a, b], weights=[0.25, 0.75])
    torch.testing.assert_close(m.weight, 0.25 * a.weight + 0.75 * b.weight)
    with pytest.raises(ValueError, match="weights"):
        average_models([a, b], weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="models\\[1\\]"):
        average_models([a, torch.nn.Linear(3, 1)])
    with pytest.raises(ValueError, match="non-empty"):
        average_models([])


def test_papa_pull_moves_members_toward_their_mean():
    torch.manual_seed(0)
    t = torch.randn(5, 3, 2)
    mean, dev = t.mean(0), t - t.mean(0)
    papa_pull_([t], 0.9)
    torch.testing.assert_close(t.mean(0), mean)
    torch.testing.assert_close(t - t.mean(0), 0.9 * dev)
    papa_pull_([t], 0.0)
    torch.testing.assert_close(t, mean.expand_as(t))
    with pytest.raises(ValueError, match="alpha"):
        papa_pull_([t], 1.5)


def test_papa_population_of_one_is_plain_training(clouds):
    model = MLP(2, [8], 3, seed=0)
    res = papa([copy.deepcopy(model)], clouds, 10, optimizer="sgd", lr=0.2, alpha=1.0, batch_size=16, seed=4)
    ref = copy.deepcopy(model)
    fit_scheduled(ref, clouds, torch.optim.SGD(ref.parameters(), lr=0.2), 10, batch_size=16, seed=4)
    for a, b in zip(res.members[0].parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_papa_full_pull_keeps_members_equal_and_is_reproducible(clouds):
    pop = [MLP(2, [8], 3, seed=s) for s in range(3)]
    res = papa(pop, clouds, 12, optimizer="adam", lr=0.01, alpha=0.0, pull_every=4, batch_size=16)
    for p in zip(*[m.parameters() for m in res.members]):
        for q in p[1:]:
            torch.testing.assert_close(q, p[0])
    for a, b in zip(res.average.parameters(), res.members[0].parameters()):
        torch.testing.assert_close(a, b)
    again = papa([MLP(2, [8], 3, seed=s) for s in range(3)], clouds, 12, optimizer="adam", lr=0.01, alpha=0.0,
                 pull_every=4, batch_size=16)
    assert again.history.members_train_loss.tolist() == res.history.members_train_loss.tolist()
    assert {"step", "members_train_loss", "average_train_loss", "average_test_acc"} <= set(res.history.columns)


def test_papa_validates(clouds):
    pop = [MLP(2, [8], 3, seed=s) for s in range(2)]
    with pytest.raises(ValueError, match="optimizer"):
        papa(pop, clouds, 5, optimizer="adamcm")
    with pytest.raises(ValueError, match="alpha"):
        papa(pop, clouds, 5, alpha=-0.1)
    with pytest.raises(ValueError, match="pull_every"):
        papa(pop, clouds, 5, pull_every=0)
    with pytest.raises(ValueError, match="models\\[1\\]"):
        papa([pop[0], MLP(2, [9], 3)], clouds, 5)


def test_experiment_helpers(clouds):
    model = MLP(2, [8], 3, seed=0)
    table, models, hist = adaptive.train_to_loss(model, clouds, {"SGD": ("sgd", 0.5), "Adam": ("adam", 0.02)},
                                                 target_loss=0.4, max_steps=300)
    assert list(table.optimizer) == ["SGD", "Adam"] and table.reached.all()
    assert (table.train_loss <= 0.4).all() and (table.lambda_max > 0).all()
    assert math.isnan(table.precond_lambda_max[0]) and table.threshold[1] == pytest.approx(38 / 0.02)
    grid = adaptive.warmup_grid(model, clouds, [0.05], [0, 4], 8, eval_every=4)
    assert set(grid) == {("adam", 0.05, 0), ("adam", 0.05, 4), ("radam", 0.05, 0)}
    assert grid[("adam", 0.05, 4)].lr.iloc[1] == pytest.approx(0.05)


def test_frozen_start_keeps_the_weights_and_then_takes_adams_first_step(clouds):
    """Adam-2k on a full batch: the frozen steps leave every weight bit for bit, and the first real step is the
    step a fresh Adam takes (m̂ = g, v̂ = g² from identical gradients) — up to rounding of the moment averages."""
    from flatlab.adaptive import frozen_start
    assert [frozen_start(3)(s) for s in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="frozen_steps"):
        frozen_start(-1)
    start = MLP(2, [8], 3, seed=0)
    frozen, fresh = copy.deepcopy(start), copy.deepcopy(start)
    opt = torch.optim.Adam(frozen.parameters(), lr=0.05)
    fit_scheduled(frozen, clouds, opt, 4, schedule=frozen_start(4), eval_every=1)
    assert all(torch.equal(a, b) for a, b in zip(frozen.parameters(), start.parameters()))
    assert int(opt.state[next(frozen.parameters())]["step"]) == 4
    fit_scheduled(frozen, clouds, opt, 5, schedule=frozen_start(4), eval_every=1)   # steps 1–4 frozen again, then one
    fit_scheduled(fresh, clouds, torch.optim.Adam(fresh.parameters(), lr=0.05), 1, eval_every=1)
    for a, b in zip(frozen.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
