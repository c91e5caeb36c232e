"""flatlab.sgdnoise against exact references: the corrupted fraction and its seed, the memorization metrics of
models whose predictions are known, equal η/B for every example under the two cyclic schedules, one
hand-computed SGD step through train_schedule, and bad input."""
import numpy as np
import pandas as pd
import pytest
import torch

import flatlab.config
import flatlab.sgdnoise as sn
from flatlab.data import Dataset, gaussian_clouds, sparse_regression
from flatlab.models import MLP


def clouds(n=40):
    return gaussian_clouds(n_train=n, n_test=30, n_classes=3, seed=0)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.3, 0.5])
def test_noisy_labels_corrupts_exactly_the_fraction_and_nothing_else(fraction):
    base = clouds(40)
    ds = sn.noisy_labels(base, fraction, seed=3)
    mask = ds.meta["corrupted"]
    assert int(mask.sum()) == round(fraction * 40)
    assert torch.equal(mask, ds.y_train != base.y_train)          # every corrupted label is another class
    assert torch.equal(ds.meta["clean_y_train"], base.y_train)
    assert torch.equal(ds.y_test, base.y_test) and torch.equal(ds.x_train, base.x_train)
    assert int(ds.y_train.min()) >= 0 and int(ds.y_train.max()) < 3


def test_noisy_labels_is_seeded():
    a, b, c = (sn.noisy_labels(clouds(200), 0.3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.y_train, b.y_train) and not torch.equal(a.y_train, c.y_train)
    assert torch.equal(sn.noisy_clouds(seed=4).x_train, sn.noisy_clouds(seed=4).x_train)
    assert int(sn.noisy_clouds(0.3, seed=0).meta["corrupted"].sum()) == round(0.3 * 512)


class Lookup(torch.nn.Module):
    """Predicts ``labels[i]`` for the input whose first feature is i (logits 5 on that class, 0 elsewhere)."""

    def __init__(self, labels, k):
        super().__init__()
        self.register_buffer("table", 5.0 * torch.nn.functional.one_hot(labels, k).float())

    def forward(self, x):
        return self.table[x[:, 0].long()]


def indexed(n=20, k=4, fraction=0.25):
    x = torch.arange(n, dtype=torch.float32)[:, None]
    y = torch.arange(n) % k
    return sn.noisy_labels(Dataset("indexed", x, y, x, y, "classification", k), fraction, seed=0)


def test_label_metrics_of_known_predictions():
    ds = indexed()
    clean = ds.meta["clean_y_train"]
    honest = sn.label_metrics(Lookup(clean, 4), ds)          # learned the rule, ignored the corruption
    assert honest["memorized"] == 0.0 and honest["clean_train_acc"] == 1.0 and honest["test_acc"] == 1.0
    rote = sn.label_metrics(Lookup(ds.y_train, 4), ds)        # reproduces every corrupted label
    assert rote["memorized"] == 1.0 and rote["clean_train_acc"] == 1.0 and rote["test_acc"] == 0.75
    logit = 5.0  # cross-entropy of a correct prediction with logits (5, 0, 0, 0)
    assert honest["clean_train_loss"] == pytest.approx(np.log(np.exp(logit) + 3) - logit, rel=1e-6)


def test_the_two_cyclic_schedules_have_equal_noise_for_every_example():
    kw = dict(lr=0.2, batch_size=8, n_train=512, factors=(1, 2, 4, 2), cycles=2, epochs_per_phase=2)
    clr, cbs = sn.cyclic_schedule("lr", **kw), sn.cyclic_schedule("batch", **kw)

    def per_example(plan):  # η/B of the step that each example (in processing order) belongs to
        return np.concatenate([np.full(r.steps * r.batch_size, r.lr / r.batch_size) for r in plan.itertuples()])

    a, b = per_example(clr), per_example(cbs)
    assert len(a) == len(b) == 2 * 4 * 2 * 512 and np.allclose(a, b, rtol=1e-12)
    assert np.allclose(clr.lr * clr.steps, cbs.lr * cbs.steps)      # equal SDE time Σ η in every phase
    assert set(clr.batch_size) == {8} and set(cbs.lr) == {0.2}
    assert cbs.steps.tolist()[:4] == [128, 64, 32, 64] and clr.lr.tolist()[:4] == [0.2, 0.1, 0.05, 0.1]


def test_train_schedule_takes_the_hand_computed_sgd_step():
    ds = sn.noisy_labels(clouds(16), 0.25, seed=0)
    plan = sn.cyclic_schedule("lr", 0.5, 16, 16, factors=(1,), cycles=1, epochs_per_phase=1)  # one full-batch step
    rows = sn.train_schedule(ds, plan, seed=7, width=5)
    model = MLP(2, [5, 5], 3, seed=7)
    loss = torch.nn.functional.cross_entropy(model(ds.x_train), ds.y_train)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p -= 0.5 * g
        after = float(torch.nn.functional.cross_entropy(model(ds.x_train), ds.y_train))
    assert rows.train_loss.iloc[0] == pytest.approx(float(loss.detach()), rel=1e-6)
    assert rows.train_loss.iloc[-1] == pytest.approx(after, rel=1e-5)
    assert rows.steps.tolist() == [0, 1] and rows.time.tolist() == [0.0, 0.5]
    assert rows.memorized.iloc[-1] == sn.label_metrics(model, ds)["memorized"]


def test_schedules_that_agree_step_for_step_give_identical_runs():
    ds = sn.noisy_labels(clouds(32), 0.25, seed=0)
    kw = dict(n_train=32, factors=(1,), cycles=2, epochs_per_phase=1)
    a = sn.train_schedule(ds, sn.cyclic_schedule("lr", 0.1, 8, **kw), seed=1, width=6)
    b = sn.train_schedule(ds, sn.cyclic_schedule("batch", 0.1, 8, **kw), seed=1, width=6)
    pd.testing.assert_frame_equal(a, b)
    c = sn.train_schedule(ds, sn.cyclic_schedule("batch", 0.1, 8, **kw), seed=2, width=6)
    assert not a.equals(c)


def test_compare_schedules_shares_the_sde_clock_and_the_start():
    ds = sn.noisy_labels(clouds(32), 0.25, seed=0)
    df = sn.compare_schedules(ds, lr=0.1, batch_size=4, control_factor=2, seed=0, width=6, cycles=1,
                              epochs_per_phase=1, factors=(1, 2))
    times = df.pivot_table(index="phase", columns="schedule", values="time")
    assert np.allclose(times.to_numpy(), times.iloc[:, [0]].to_numpy())
    assert df[df.phase == 0].train_loss.nunique() == 1
    assert sn.schedule_gap(df, "cyclic lr", "cyclic lr", "test_acc") == 0.0


def test_memorization_sweep_and_table():
    ds = sn.noisy_labels(clouds(32), 0.25, seed=0)
    df = sn.memorization_sweep(ds, batch_sizes=[4, 16], lr=0.1, steps=20, seeds=[0, 1], width=6, eval_every=5,
                               cache=False)
    assert np.allclose(df.noise, 0.1 / df.batch_size)
    start = df[df.step == 0].groupby("seed").train_loss
    assert (start.nunique() == 1).all()                     # one seed, one initialization across batch sizes
    tab = sn.memorization_table(df, late=0.25)
    run = df[(df.batch_size == 4) & (df.seed == 1)]
    assert tab.set_index(["batch_size", "seed"]).test_late[(4, 1)] == pytest.approx(run[run.step >= 15].test_acc.mean())
    assert len(tab) == 4


def test_the_experiments_leave_the_global_random_state_alone():
    """A chapter's later cells draw the same numbers whether or not these experiments ran before them."""
    ds = sn.noisy_labels(clouds(32), 0.25, seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sn.train_schedule(ds, sn.cyclic_schedule("batch", 0.1, 8, 32, factors=(1, 2), cycles=1), seed=5, width=4)
    sn.memorization_sweep(ds, batch_sizes=[8], steps=3, seeds=[5], width=4, cache=False)
    assert torch.equal(torch.rand(3), expected)
    threads = torch.get_num_threads()
    with flatlab.config.threads(1):   # the context the experiments train in
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("call,exc,word", [
    (lambda: sn.noisy_labels(clouds(), 1.0), ValueError, "fraction"),
    (lambda: sn.noisy_labels(clouds(), "0.3"), TypeError, "fraction"),
    (lambda: sn.noisy_labels(sparse_regression(), 0.2), ValueError, "classification"),
    (lambda: sn.noisy_labels("data", 0.2), TypeError, "dataset"),
    (lambda: sn.label_metrics(MLP(2, [4], 3), clouds()), ValueError, "noisy_labels"),
    (lambda: sn.noisy_clouds(-0.1), ValueError, "label_noise"),
    (lambda: sn.cyclic_schedule("momentum", 0.1, 8, 64), ValueError, "kind"),
    (lambda: sn.cyclic_schedule("lr", 0.1, 24, 64), ValueError, "divide"),
    (lambda: sn.cyclic_schedule("batch", 0.1, 8, 64, factors=()), TypeError, "factors"),
    (lambda: sn.cyclic_schedule("batch", 0.1, 8, 64, factors=[1, 0]), ValueError, "factors[1]"),
    (lambda: sn.cyclic_schedule("lr", -0.1, 8, 64), ValueError, "lr"),
    (lambda: sn.memorization_sweep(sn.noisy_clouds(), batch_sizes=[1024]), ValueError, "batch_sizes"),
    (lambda: sn.memorization_sweep(sn.noisy_clouds(), batch_sizes=8), TypeError, "batch_sizes"),
    (lambda: sn.memorization_table(pd.DataFrame({"run": [0]})), ValueError, "memorization_sweep"),
    (lambda: sn.train_schedule(sn.noisy_clouds(), pd.DataFrame()), ValueError, "schedule"),
    (lambda: sn.compare_schedules(sn.noisy_clouds(), control_factor=1), ValueError, "control_factor"),
    (lambda: sn.schedule_gap(pd.DataFrame({"schedule": ["x"], "phase": [1], "a": [0.0]}), "x", "y", "a"),
     ValueError, "'y'"),
    (lambda: sn.MemorizationProbe(every=0), ValueError, "every"),
])
def test_bad_input_names_the_parameter(call, exc, word):
    with pytest.raises(exc, match=None) as info:
        call()
    assert word in str(info.value)
