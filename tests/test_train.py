import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from flatlab import data
from flatlab.models import MLP, ModularMLP
from flatlab.train import History, evaluate, fit, make_loss


def small_model(seed=0):
    return MLP(2, [16], 3, seed=seed)


def test_fit_learns_and_records(clouds):
    h = fit(small_model(), clouds, "sgd", steps=200, lr=0.2, eval_every=20, progress=False)
    assert isinstance(h, History) and not h.diverged
    assert list(h.columns[:6]) == ["step", "train_loss", "train_acc", "test_loss", "test_acc", "lr"]
    assert h.step.tolist() == list(range(0, 201, 20))
    assert h.final.train_loss < 0.5 * h.train_loss.iloc[0] and h.final.test_acc > 0.8


def test_same_seed_same_history(clouds):
    a = fit(small_model(1), clouds, "sgd", steps=60, lr=0.1, batch_size=16, seed=4, progress=False)
    b = fit(small_model(1), clouds, "sgd", steps=60, lr=0.1, batch_size=16, seed=4, progress=False)
    c = fit(small_model(1), clouds, "sgd", steps=60, lr=0.1, batch_size=16, seed=5, progress=False)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not a.train_loss.equals(c.train_loss)


def test_divergence_is_reported_not_raised(clouds):
    h = fit(small_model(), clouds, "sgd", steps=100, lr=500.0, progress=False)
    assert h.diverged and 1 <= h.diverged_step <= 100
    assert h.step.iloc[-1] == h.diverged_step and (math.isinf(h.train_loss.iloc[-1]) or h.train_loss.iloc[-1] > 1e3)


def test_target_loss_stops_early(clouds):
    h = fit(small_model(), clouds, "sgd", steps=2000, lr=0.3, target_loss=0.3, eval_every=10, progress=False)
    assert h.stopped_early and h.final.train_loss <= 0.3 and h.final.step < 2000


def test_land_stops_on_the_target_loss(clouds):
    """Without landing the last (large) step overshoots the target; with it the run ends on the target, at a point
    of the segment between the last two evaluations, and that row is the model's own full-batch loss."""
    args = dict(steps=2000, lr=1.0, momentum=0.9, target_loss=0.3, eval_every=10, progress=False, seed=1)
    plain = fit(small_model(), clouds, "sgd", **args)
    model = small_model()
    landed = fit(model, clouds, "sgd", land=True, **args)
    assert plain.final.train_loss < 0.29                      # the overshoot this guards against
    assert landed.final.step == plain.final.step and landed.stopped_early
    assert 0.3 * (1 - 1e-3) <= landed.final.train_loss <= 0.3 and 0 < landed.info["land_t"] < 1
    assert evaluate(model, clouds)["train_loss"] == pytest.approx(landed.final.train_loss, abs=1e-7)
    pd.testing.assert_frame_equal(landed.iloc[:-1], plain.iloc[:-1], check_exact=True)   # same run up to the end
    with pytest.raises(ValueError, match="land=True needs a target_loss"):
        fit(small_model(), clouds, "sgd", steps=10, land=True, progress=False)
    with pytest.raises(TypeError, match="land"):
        fit(small_model(), clouds, "sgd", steps=10, target_loss=0.1, land="yes", progress=False)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-0.1), "lr=-0.1 must be a positive"),
    (dict(lr=0.0), "lr=0.0 must be a positive"),
    (dict(steps=0), "steps=0 must be a positive integer"),
    (dict(steps=-5), "steps=-5"),
    (dict(batch_size=10_000), "batch_size=10000 must be an integer between 1 and the training-set size 120"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(loss="hinge"), "loss='hinge' is unknown; allowed values: auto, cross_entropy, mse, logistic"),
    (dict(eval_every=0), "eval_every=0"),
    (dict(momentum=1.5), "momentum=1.5"),
])
def test_bad_arguments_name_the_parameter(clouds, kwargs, match):
    args = dict(steps=10, lr=0.1, progress=False) | kwargs
    steps = args.pop("steps")
    with pytest.raises(ValueError, match=match):
        fit(small_model(), clouds, "sgd", steps, **args)


def test_unknown_optimizer_and_wrong_shapes(clouds):
    with pytest.raises(ValueError, match="optimizer='lion' is unknown; allowed values: sgd, adam, adamw"):
        fit(small_model(), clouds, "lion", 10, progress=False)
    with pytest.raises(ValueError, match=r"does not fit the model: inputs of shape \(120, 2\)"):
        fit(MLP(40, [8], 3), clouds, "sgd", 10, progress=False)
    with pytest.raises(ValueError, match="has 3 classes but the model outputs shape \\(5,\\)"):
        fit(MLP(2, [8], 5), clouds, "sgd", 10, progress=False)
    with pytest.raises(ValueError, match="does not fit the model"):
        fit(ModularMLP(p=7), clouds, "sgd", 10, progress=False)
    with pytest.raises(TypeError, match="dataset must be a flatlab.data.Dataset"):
        fit(small_model(), (clouds.x_train, clouds.y_train), "sgd", 10)
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    opt.param_groups[0]["lr"] = -1
    with pytest.raises(ValueError, match="lr=-1"):
        fit(model, clouds, opt, 10, progress=False)


def test_optimizer_instance_and_two_pass_closure(clouds):
    class TwoPass(torch.optim.SGD):
        calls = 0

        def step(self, closure):
            first = closure()
            second = closure()
            TwoPass.calls += 2
            super().step()
            return first if first is not None else second

    model = small_model()
    h = fit(model, clouds, TwoPass(model.parameters(), lr=0.1), 20, progress=False)
    assert TwoPass.calls == 40 and not h.diverged and h.info["optimizer"] == "TwoPass"


def test_probes_add_columns(clouds):
    class NormProbe:
        every = 5

        def __call__(self, model, dataset, step):
            return {"weight_norm": float(sum(p.detach().norm() ** 2 for p in model.parameters()) ** 0.5)}

    h = fit(small_model(), clouds, "sgd", steps=20, lr=0.1, eval_every=5, probes=[NormProbe()], progress=False)
    assert h.weight_norm.notna().all() and len(h) == 5
    with pytest.raises(TypeError, match="probe"):
        fit(small_model(), clouds, "sgd", steps=5, probes=[lambda m, d, s: {}], progress=False)


def test_losses_for_each_task():
    sep = data.separable_logistic(n_train=40)
    h = fit(torch.nn.Linear(2, 1, bias=False), sep, "sgd", 100, lr=1.0, progress=False)
    assert h.final.train_acc == 1.0
    reg = data.sparse_regression(n_train=20, dim=10, k=2)
    h = fit(torch.nn.Linear(10, 1, bias=False), reg, "sgd", 300, lr=0.05, progress=False)
    assert h.final.train_loss < 1e-3 and math.isnan(h.final.train_acc)
    ds = data.gaussian_clouds(n_train=30)
    mse = make_loss(ds, "mse")
    out = torch.zeros(30, 3)
    assert float(mse(out, ds.y_train)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cross_entropy"):
        make_loss(reg, "cross_entropy")


def test_evaluate_keeps_mode(clouds):
    model = small_model()
    model.train()
    row = evaluate(model, clouds)
    assert model.training and set(row) == {"train_loss", "train_acc", "test_loss", "test_acc"}


def test_fit_schedule_clip_and_callback(clouds):
    model = MLP(2, [8], 3, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.4)
    seen = []
    h = fit(model, clouds, opt, 6, schedule=lambda t: min(1.0, (t + 1) / 3), clip=1e6, eval_every=1,
            callback=lambda m, step: seen.append(step), progress=False)
    assert h.lr.tolist()[1:] == pytest.approx([0.4 / 3, 0.8 / 3, 0.4, 0.4, 0.4, 0.4])
    assert opt.param_groups[0]["lr"] == 0.4 and seen == [1, 2, 3, 4, 5, 6]
    assert (h.grad_norm.iloc[1:] > 0).all() and "grad_norm" not in fit(model, clouds, "sgd", 2, lr=0.1).columns
    with pytest.raises(ValueError, match="clip"):
        fit(model, clouds, "sgd", 2, lr=0.1, clip=-1.0)
    with pytest.raises(TypeError, match="schedule"):
        fit(model, clouds, "sgd", 2, lr=0.1, schedule=0.5)
    with pytest.raises(TypeError, match="callback"):
        fit(model, clouds, "sgd", 2, lr=0.1, callback="average")


def test_epoch_sampler_draws_without_replacement_and_streams_in_turn():
    from flatlab.train import EpochSampler
    g = torch.Generator().manual_seed(3)
    s = EpochSampler(10, 3, [g])
    epoch = torch.cat([s.next()[0] for _ in range(3)])            # three full batches, the tenth index dropped
    assert len(set(epoch.tolist())) == 9 and epoch.max() < 10
    ref = torch.Generator().manual_seed(3)
    first, second = torch.randperm(10, generator=ref), torch.randperm(10, generator=ref)
    assert epoch.tolist() == first[:9].tolist() and s.next()[0].tolist() == second[:3].tolist()
    # one generator, two streams: the members' orders are drawn in turn from it
    two = EpochSampler(6, 2, [torch.Generator().manual_seed(0)] * 2)
    ref = torch.Generator().manual_seed(0)
    a, b = torch.randperm(6, generator=ref), torch.randperm(6, generator=ref)
    assert two.next().tolist() == [a[:2].tolist(), b[:2].tolist()]
    # a reshuffle draws only for the streams asked for
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    part = EpochSampler(4, 4, gens)
    part.next()
    state = gens[1].get_state()
    assert part.next([0]).shape == (1, 4) and torch.equal(gens[1].get_state(), state)


# ---------------------------------------------------------------------------------------------
# the one History builder and the 2-D runners
# ---------------------------------------------------------------------------------------------
def test_recorder_applies_fits_divergence_rule_and_builds_the_history():
    from flatlab.train import History, Recorder

    rec = Recorder(divergence_factor=10.0)
    rec.add(0, {"train_loss": 200.0, "test_loss": 1.0}, lr=0.1)
    assert rec.limit == 2000.0                      # max(1e3, 10 × 200)
    assert not rec.diverges(1999.0) and rec.diverges(2001.0) and rec.diverges(float("inf"))
    assert rec.diverges(1.0, finite_params=False)
    rec.diverge(7, float("nan"), lr=0.1)
    rec.stop()
    h = rec.history(seed=3)
    assert isinstance(h, History) and h.diverged and h.diverged_step == 7 and h.stopped_early
    assert h.info == {"seed": 3} and h.train_loss.iloc[-1] == float("inf") and np.isnan(h.test_acc.iloc[-1])
    frame = rec.frame()
    assert list(frame.columns[-2:]) == ["diverged", "stopped_early"] and bool(frame.diverged.all())
    small = Recorder()
    small.add(0, {"train_loss": 0.05})
    assert small.limit == 1e3                      # max(1e3, 1e4 × 0.05): the floor of fit's rule
    assert Recorder(divergence_factor=None).diverges(1e300) is False


def test_fit_and_the_sweeps_share_the_recorders_rows():
    """fit's History and the vmapped sweep's frame of the same run hold the same rows (the one builder)."""
    from flatlab.sweep import Run
    from flatlab.sweep.batched import train_batched

    ds = data.gaussian_clouds(n_train=64, seed=0)
    model = MLP(2, [8], 3, seed=0)
    h = fit(copy.deepcopy(model), ds, "sgd", 30, lr=0.2, batch_size=16, eval_every=10, seed=4, progress=False)
    (df,) = train_batched([Run(copy.deepcopy(model), ds, steps=30, lr=0.2, batch_size=16, eval_every=10)], seeds=[4])
    assert list(df.step) == list(h.step) == [0, 10, 20, 30]
    np.testing.assert_allclose(df.train_loss, h.train_loss, rtol=1e-5)
    assert not df.diverged.any() and not h.diverged


def test_heavy_ball_is_torch_sgd_with_momentum_and_drives_trajectory():
    from flatlab.landscapes import sharp_and_flat
    from flatlab.train import HeavyBall, optimizer_trajectory, trajectory

    a = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    b = nn.Parameter(a.detach().clone())
    hb, sgd = HeavyBall([a], lr=0.05, momentum=0.7), torch.optim.SGD([b], lr=0.05, momentum=0.7)
    lam = torch.tensor([3.0, 0.5], dtype=torch.float64)
    for _ in range(40):
        for p, opt in ((a, hb), (b, sgd)):
            p.grad = lam * p.detach()
            opt.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-12)
    # trajectory is HeavyBall through optimizer_trajectory; with gradient noise, the draws come from its seed
    land = sharp_and_flat()
    t = trajectory(land, (-0.9, 0.4), lr=0.05, steps=60, momentum=0.5, noise=0.3, seed=2)
    w = nn.Parameter(torch.tensor([-0.9, 0.4], dtype=torch.float64))
    ref = optimizer_trajectory(land, w, HeavyBall([w], 0.05, 0.5), 60, 0.05, 0.5, noise=0.3,
                               generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(t.points, ref.points)
    # the closed-form loop by hand, step 1 and 2
    g = torch.Generator().manual_seed(2)
    w0 = torch.tensor([-0.9, 0.4], dtype=torch.float64)
    w1 = w0 - 0.05 * (land.grad(w0) + 0.3 * torch.randn(2, generator=g, dtype=torch.float64))
    w2 = w1 - 0.05 * (land.grad(w1) + 0.3 * torch.randn(2, generator=g, dtype=torch.float64)) + 0.5 * (w1 - w0)
    np.testing.assert_allclose(t.points[2], w2.numpy(), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="momentum"):
        HeavyBall([w], lr=0.1, momentum=1.0)


def test_landscape_run_by_name_and_by_factory_agree():
    from flatlab.landscapes import sharp_and_flat
    from flatlab.train import landscape_run

    land = sharp_and_flat()
    by_name = landscape_run(land, (-1.2, 0.8), "adam", lr=0.02, steps=50, betas=(0.8, 0.99))
    by_factory = landscape_run(land, (-1.2, 0.8), lambda ps, lr, **kw: torch.optim.Adam(ps, lr=lr, **kw), lr=0.02,
                               steps=50, betas=(0.8, 0.99))
    np.testing.assert_array_equal(by_name.points, by_factory.points)
    assert by_name.momentum == 0.8
    with pytest.raises(ValueError, match="optimizer"):
        landscape_run(land, (0.0, 0.0), "nope", lr=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        landscape_run(land, (0.0, 0.0), 3, lr=0.1)


def test_trajectory_leaves_a_numpy_start_unchanged():
    """The runners step a Parameter in place; a start given as a numpy row must not move with it."""
    from flatlab.landscapes import sharp_and_flat
    from flatlab.train import landscape_run, trajectory

    starts = np.array([[-0.9, 0.4], [-1.1, 0.6]])
    before = starts.copy()
    trajectory(sharp_and_flat(), starts[0], lr=0.05, steps=20, momentum=0.5)
    landscape_run(sharp_and_flat(), starts[1], "sgd", lr=0.05, steps=20)
    np.testing.assert_array_equal(starts, before)
