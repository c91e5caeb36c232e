"""flatlab.grokking: StableMax, ⊥Grad, collapse probe, Fourier/IPR diagnostics, pruning, the recipe."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from flatlab import grokking as gk
from flatlab.data import modular_arithmetic
from flatlab.models import ModularMLP
from flatlab.train import History, fit


# ----------------------------------------------------------------------------- StableMax
def test_stablemax_s_by_hand():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    expected = torch.tensor([1 / 4, 1 / 2, 1 / 1.5, 1.0, 1.5, 3.0])
    assert torch.allclose(gk.stablemax_s(x), expected)


def test_stablemax_hand_computed_probabilities_and_loss():
    x = torch.tensor([[-1.0, 0.0, 2.0]])  # s = (1/2, 1, 3), sum 4.5
    p = gk.stablemax(x)
    assert torch.allclose(p, torch.tensor([[1 / 9, 2 / 9, 6 / 9]]))
    assert torch.allclose(gk.log_stablemax(x), torch.log(p))
    loss = gk.stablemax_cross_entropy(x, torch.tensor([2]))
    assert float(loss) == pytest.approx(-math.log(6 / 9), rel=1e-6)
    per = gk.stablemax_cross_entropy(torch.cat([x, x]), torch.tensor([0, 1]), reduction="none")
    assert torch.allclose(per, torch.tensor([math.log(9.0), math.log(4.5)]))


def test_stablemax_is_a_distribution_and_stays_finite_for_huge_logits():
    g = torch.Generator().manual_seed(0)
    x = 50 * torch.randn(64, 11, generator=g)
    x[0, 3] = 1e30  # exp would overflow; s grows linearly
    p = gk.stablemax(x)
    assert torch.isfinite(p).all() and (p > 0).all()
    assert torch.allclose(p.sum(1), torch.ones(64, dtype=p.dtype), atol=1e-6)
    assert torch.isfinite(gk.log_stablemax(x)).all()
    # monotone: a larger logit gets a larger probability
    row = torch.tensor([[-2.0, -1.0, 0.0, 1.0, 5.0]])
    assert (gk.stablemax(row).diff(dim=1) > 0).all()


def test_stablemax_gradient_matches_float64_finite_differences():
    x = torch.tensor([[-1.5, 0.3, 2.0, -0.2]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1])
    assert torch.autograd.gradcheck(lambda z: gk.stablemax_cross_entropy(z, y), (x,))


def test_stablemax_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        gk.stablemax(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="torch tensor"):
        gk.stablemax([1.0, 2.0])
    with pytest.raises(ValueError, match="reduction='max'"):
        gk.stablemax_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="max")
    with pytest.raises(ValueError, match="y must be integer class labels"):
        gk.stablemax_cross_entropy(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="loss='hardmax'"):
        gk.loss_function("hardmax")


# ----------------------------------------------------------------------------- ⊥Grad
def test_orthogonal_gradient_is_orthogonal_with_original_norm():
    g0 = torch.Generator().manual_seed(1)
    for shape in [(5,), (4, 3), (2, 3, 4)]:
        w, g = torch.randn(shape, generator=g0), torch.randn(shape, generator=g0)
        out = gk.orthogonal_gradient(g, w)
        assert out.shape == g.shape
        assert abs(float((out * w).sum())) < 1e-5 * float(out.norm() * w.norm())
        assert float(out.norm()) == pytest.approx(float(g.norm()), rel=1e-5)
        # it is the rescaled projection: parallel to g - (g·w/w·w) w
        proj = g - (g * w).sum() / (w * w).sum() * w
        assert torch.allclose(out, proj * g.norm() / proj.norm(), atol=1e-6)
        raw = gk.orthogonal_gradient(g, w, rescale=False)
        assert torch.allclose(raw, proj, atol=1e-6)


def test_orthogonal_gradient_edge_cases_and_errors():
    g = torch.tensor([1.0, 2.0])
    assert torch.equal(gk.orthogonal_gradient(g, torch.zeros(2)), g)  # w = 0: nothing to remove
    assert torch.equal(gk.orthogonal_gradient(g, 3 * g), g)  # g ∥ w: g⊥ = 0, keep g
    with pytest.raises(ValueError, match="shape"):
        gk.orthogonal_gradient(torch.zeros(3), torch.zeros(2))
    with pytest.raises(TypeError):
        gk.orthogonal_gradient([1.0], torch.zeros(1))


def test_orthograd_optimizer_projects_per_parameter_and_steps():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model(x).sum()  # warm
    opt = gk.OrthoGrad(model.parameters(), torch.optim.SGD, lr=0.1)
    ref = [p.detach().clone() for p in model.parameters()]

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert torch.is_tensor(loss)
    for p, w0 in zip(model.parameters(), ref):
        assert abs(float((p.grad * w0).sum())) < 1e-5 * float(p.grad.norm() * w0.norm())
        assert torch.allclose(p.detach(), w0 - 0.1 * p.grad)
    assert opt.param_groups[0]["lr"] == 0.1 and "state" in opt.state_dict()
    with pytest.raises(TypeError, match="base_optimizer"):
        gk.OrthoGrad(model.parameters(), "adamw")


def test_orthograd_works_inside_fit(clouds):
    from flatlab.models import MLP

    model = MLP(2, [16], 3, seed=0)
    opt = gk.OrthoGrad(model.parameters(), torch.optim.AdamW, lr=1e-2, weight_decay=0.0)
    h = fit(model, clouds, opt, steps=30, progress=False)
    assert not h.diverged and h.final.train_loss < h.iloc[0].train_loss


# ----------------------------------------------------------------------------- collapse probe
def test_collapse_probe_counts_exact_zeros():
    logits = torch.tensor([[200.0, 0.0, 0.0], [200.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 30.0, 0.0]])
    y = torch.tensor([0, 1, 0, 1])
    # row 0: loss exactly 0 in float32; row 1: wrong class, huge loss; row 2: ordinary; row 3: e^-30 ≈ 1e-13 < ε
    out = gk.softmax_collapse(logits, y)
    per = F.cross_entropy(logits, y, reduction="none")
    assert out["collapsed"] == pytest.approx(float((per == 0).float().mean())) == pytest.approx(0.5)
    assert out["max_logit"] == 200.0
    # in float64 the same logits do not collapse at gap 30 (e^-30 > 2^-53)
    out64 = gk.softmax_collapse(logits.double(), y)
    assert out64["collapsed"] == pytest.approx(0.25)


def test_collapse_probe_errors_and_fit_probe(clouds):
    with pytest.raises(ValueError, match="logits must be"):
        gk.softmax_collapse(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="every=0"):
        gk.CollapseProbe(every=0)
    ds = modular_arithmetic(p=7, train_fraction=0.5, seed=0)
    h = fit(ModularMLP(7, 8, 16, seed=0), ds, "adamw", steps=20, lr=1e-2, probes=[gk.CollapseProbe(every=5)],
            progress=False)
    assert {"collapsed", "max_logit"} <= set(h.columns)


# ----------------------------------------------------------------------------- Fourier & IPR
def test_fourier_energy_of_a_pure_cosine_embedding_is_one_frequency():
    p, d = 59, 16
    a = torch.arange(p, dtype=torch.float64)[:, None]
    phases = torch.linspace(0, 3, d, dtype=torch.float64)[None, :]
    emb = torch.cos(2 * torch.pi * 7 * a / p + phases) + 0.5  # + a DC offset
    e = gk.fourier_energy(emb)
    assert e.shape == (p // 2 + 1,)
    assert int(e[1:].argmax()) + 1 == 7
    assert gk.top_k_fraction(e, k=1) == pytest.approx(1.0, abs=1e-10)
    assert gk.key_frequencies(e, 0.8) == [7]
    # Parseval: the spectrum holds all the energy
    assert float(e.sum()) == pytest.approx(p * float((emb**2).sum()), rel=1e-10)


def test_fourier_energy_even_p_and_two_frequencies():
    p = 8
    a = torch.arange(p, dtype=torch.float64)
    sig = torch.stack([torch.cos(2 * torch.pi * 1 * a / p), torch.cos(torch.pi * a)], dim=1)
    e = gk.fourier_energy(sig)
    assert e.shape == (5,) and float(e[1]) == pytest.approx(32.0) and float(e[4]) == pytest.approx(64.0)  # p·Σx²
    assert float(e[[0, 2, 3]].abs().max()) < 1e-20
    assert gk.top_k_fraction(e, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k=0"):
        gk.top_k_fraction(e, 0)
    with pytest.raises(TypeError, match="floating-point"):
        gk.fourier_energy(torch.arange(5))


def test_random_embedding_spreads_energy():
    e = gk.fourier_energy(torch.randn(59, 128, generator=torch.Generator().manual_seed(0)))
    assert 0.3 < gk.top_k_fraction(e, 10) < 0.5  # ≈ 10/29 for white noise


def test_ipr_one_hot_is_one_flat_is_one_over_n():
    assert float(gk.ipr(torch.tensor([0.0, 0.0, 5.0, 0.0]))) == pytest.approx(1.0)
    for n in (2, 7, 29):
        assert float(gk.ipr(torch.ones(n))) == pytest.approx(1 / n)
    batch = gk.ipr(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert torch.allclose(batch, torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="non-negative"):
        gk.ipr(torch.tensor([1.0, -1.0]))


def test_neuron_ipr_finds_a_periodic_neuron():
    p = 31
    m = ModularMLP(p, 8, 4, seed=0)
    a = torch.arange(p, dtype=torch.float32)
    with torch.no_grad():
        m.embed_a.weight.zero_()
        m.embed_b.weight.zero_()
        m.hidden.weight.zero_()
        m.embed_a.weight[:, 0] = torch.cos(2 * torch.pi * 5 * a / p)
        m.embed_b.weight[:, 0] = torch.sin(2 * torch.pi * 5 * a / p)
        m.hidden.weight[0, 0] = 1.0  # neuron 0: periodic, frequency 5
        m.hidden.weight[0, 8] = 2.0
        g = torch.Generator().manual_seed(0)
        m.embed_a.weight[:, 1] = torch.randn(p, generator=g)
        m.hidden.weight[1, 1] = 1.0  # neuron 1: a random (memorizing-like) pattern
    spectra = gk.neuron_spectra(m)
    assert spectra.shape == (4, p // 2) and int(spectra[0].argmax()) + 1 == 5
    values = gk.neuron_ipr(m)
    assert float(values[0]) == pytest.approx(1.0, abs=1e-6) and float(values[1]) < 0.3
    thr = gk.ipr_threshold(torch.tensor([0.05, 0.06, 0.07, 0.8, 0.9]))
    assert 0.07 < thr < 0.8


def test_prune_neurons_removes_exactly_those():
    m = ModularMLP(7, 4, 8, seed=0)
    x = torch.tensor([[a, b] for a in range(7) for b in range(7)])
    pruned = gk.prune_neurons(m, [2, 5])
    h = torch.relu(m.hidden(torch.cat([m.embed_a(x[:, 0]), m.embed_b(x[:, 1])], 1)))
    h[:, [2, 5]] = 0
    assert torch.allclose(pruned(x), m.out(h), atol=1e-6)
    assert torch.equal(gk.prune_neurons(m, [])(x), m(x))
    assert float(m.out.weight.detach()[:, 2].abs().sum()) > 0  # the original is untouched
    with pytest.raises(ValueError, match="indices in 0..7"):
        gk.prune_neurons(m, [8])


# ----------------------------------------------------------------------------- models
def test_fast_logits_match_the_model_and_its_gradients():
    m = ModularMLP(11, 6, 10, seed=3)
    x = torch.tensor([[a, b] for a in range(11) for b in range(11)])
    y = (x[:, 0] + x[:, 1]) % 11
    assert torch.allclose(gk.logits(m, x), m(x), atol=1e-5)
    g1 = torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters()))
    g2 = torch.autograd.grad(F.cross_entropy(gk.logits(m, x), y), list(m.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g1, g2))


def test_one_layer_transformer_shapes_seed_and_errors():
    a = gk.OneLayerTransformer(p=7, d_model=16, n_heads=2, d_mlp=32, seed=0)
    b = gk.OneLayerTransformer(p=7, d_model=16, n_heads=2, d_mlp=32, seed=0)
    x = torch.tensor([[1, 2], [6, 0]])
    assert a(x).shape == (2, 7) and torch.equal(a(x), b(x))
    assert gk.embedding_matrix(a).shape == (7, 16)
    with pytest.raises(ValueError, match="residues in 0..6"):
        a(torch.tensor([[1, 7]]))
    with pytest.raises(ValueError, match="divisible"):
        gk.OneLayerTransformer(p=7, d_model=10, n_heads=3)


def test_one_layer_transformer_fits_a_small_task():
    run = gk.grok(p=7, train_fraction=0.6, model="transformer", embed_dim=16, hidden=32, lr=1e-2,
                  weight_decay=0.0, steps=150, eval_every=25)
    assert run.history.train_acc.iloc[-1] == 1.0 and isinstance(run.model, gk.OneLayerTransformer)


# ----------------------------------------------------------------------------- the recipe
def test_config_validation_names_the_field():
    for bad, match in [(dict(lr=-1.0), "lr=-1.0"), (dict(loss="hinge"), "loss='hinge'"),
                       (dict(train_fraction=1.0), "train_fraction"), (dict(dtype="float16"), "dtype='float16'"),
                       (dict(model="rnn"), "model='rnn'"), (dict(steps=0), "steps=0"),
                       (dict(weight_decay=-0.1), "weight_decay"), (dict(stop_factor=0.5), "stop_factor"),
                       (dict(op="^"), "op='\\^'"), (dict(threads=0), "threads=0")]:
        with pytest.raises(ValueError, match=match):
            gk.grok(**bad)
    with pytest.raises(TypeError, match="GrokConfig"):
        gk.build({"lr": 1.0})
    with pytest.raises(TypeError, match="unexpected keyword"):
        gk.grok(learning_rate=1.0)


def test_short_recipe_run_is_reproducible():
    a = gk.grok(p=23, steps=60, eval_every=10, seed=2)
    b = gk.grok(p=23, steps=60, eval_every=10, seed=2)
    c = gk.grok(p=23, steps=60, eval_every=10, seed=3)
    assert isinstance(a.history, History)
    cols = ["step", "train_loss", "train_acc", "test_loss", "test_acc", "collapsed", "max_logit", "weight_norm"]
    pd.testing.assert_frame_equal(pd.DataFrame(a.history[cols]), pd.DataFrame(b.history[cols]))
    assert not np.allclose(a.history.test_loss, c.history.test_loss)
    assert a.history.step.tolist()[:12] == list(range(11)) + [20]
    assert not a.history.diverged and a.history.info["lr"] == 0.05


def test_fast_recipe_groks_on_a_small_p():
    """p = 23, 60 % of the pairs: the training set is fitted quickly, the test set much later."""
    run = gk.grok(p=23, train_fraction=0.6, steps=1500, eval_every=10, stop_at_test_acc=0.95, seed=0)
    h = run.history
    t_train, t_test = gk.steps_to(h, "train_acc", 1.0), gk.steps_to(h, "test_acc", 0.95)
    assert t_train is not None and t_test is not None and t_test >= 3 * t_train
    assert h.stopped_early and h.step.iloc[-1] == t_test
    assert gk.grokking_delay(h) == pytest.approx(t_test / t_train)


def test_divergence_is_reported():
    run = gk.grok(p=7, steps=30, lr=1e30, weight_decay=0.0, eval_every=5)
    assert run.history.diverged and run.history.diverged_step is not None
    assert math.isinf(run.history.train_loss.iloc[-1])


def test_corrupted_labels_add_columns():
    run = gk.grok(p=11, train_fraction=0.6, label_noise=0.2, steps=5, eval_every=5)
    assert {"corrupted_fit", "corrupted_true", "clean_train_acc"} <= set(run.history.columns)
    rep = gk.pruning_report(run, n_random=2)
    assert {"test_acc_before", "test_acc_low_ipr_pruned", "test_acc_random_pruned", "corrupted_fit_before"} <= set(rep)


def test_steps_to_and_classify_phase():
    h = pd.DataFrame({"step": [0, 10, 20, 200], "train_acc": [0.0, 0.5, 1.0, 1.0], "test_acc": [0.0, 0.0, 0.1, 0.96]})
    assert gk.steps_to(h, "train_acc", 1.0) == 20 and gk.classify_phase(h) == "grokking"
    h2 = h.assign(test_acc=[0.0, 0.5, 0.96, 0.97])
    assert gk.classify_phase(h2) == "comprehension"
    assert gk.classify_phase(h.assign(test_acc=0.1)) == "memorization"
    assert gk.classify_phase(h.assign(train_acc=0.5)) == "confusion"
    with pytest.raises(ValueError, match="column='nope'"):
        gk.steps_to(h, "nope")


def test_phase_sweep_table_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path))
    base = gk.GrokConfig(p=11, steps=20, eval_every=10)
    table, hist = gk.phase_sweep([0.0, 1.0], [0.5], base)
    assert list(table.columns[:3]) == ["weight_decay", "train_fraction", "phase"] and len(table) == 2
    assert set(table.phase) <= set(gk.PHASES) and (0.0, 0.5) in hist
    assert len(list((tmp_path / "grokking").glob("*.pkl"))) == 2
    again, hist2 = gk.phase_sweep([0.0, 1.0], [0.5], base)
    pd.testing.assert_frame_equal(pd.DataFrame(hist[(1.0, 0.5)]), pd.DataFrame(hist2[(1.0, 0.5)]))


def test_phase_sweep_in_worker_processes_gives_the_same_runs():
    """Two worker processes train the cells side by side: every history and phase as one after another."""
    base = gk.GrokConfig(p=11, steps=30, eval_every=10)
    one, h1 = gk.phase_sweep([0.0, 1.0], [0.4, 0.6], base, cache=False, n_jobs=1)
    two, h2 = gk.phase_sweep([0.0, 1.0], [0.4, 0.6], base, cache=False, n_jobs=2)
    pd.testing.assert_frame_equal(one.drop(columns="seconds"), two.drop(columns="seconds"))
    for key in h1:
        pd.testing.assert_frame_equal(pd.DataFrame(h1[key]), pd.DataFrame(h2[key]))
    with pytest.raises(ValueError, match="n_jobs"):
        gk.phase_sweep([1.0], [0.5], base, n_jobs=0)


def test_stablemax_cross_entropy_is_computed_in_float64_like_the_authors():
    """At a large correct logit float32 loses StableMax's loss and its correct-class gradient; the float64
    computation (the authors' choice) keeps both, and returns the logits' dtype."""
    from flatlab.grokking import log_stablemax, stablemax_cross_entropy

    def loss_and_grad(dtype, fn):
        x = torch.zeros(1, 59, dtype=dtype)
        x[0, 0] = 1e8
        x.requires_grad_(True)
        loss = fn(x)
        loss.backward()
        return loss.detach(), x.grad[0, 0].item()

    ref_loss, ref_grad = loss_and_grad(torch.float64, lambda x: -log_stablemax(x, dim=1)[0, 0])
    naive_loss, naive_grad = loss_and_grad(torch.float32, lambda x: -log_stablemax(x, dim=1)[0, 0])
    ours_loss, ours_grad = loss_and_grad(torch.float32, lambda x: stablemax_cross_entropy(x, torch.tensor([0])))
    assert naive_loss.item() == 0.0 and abs(naive_grad / ref_grad - 1) > 0.05   # the float32 failure
    assert ours_loss.dtype == torch.float32
    assert abs(ours_loss.item() / ref_loss.item() - 1) < 1e-6 and abs(ours_grad / ref_grad - 1) < 1e-6


def test_nlm_cosine_is_the_rate_at_which_scaling_the_weights_lowers_the_loss():
    from flatlab.grokking import logits, nlm_cosine

    torch.manual_seed(0)
    m = ModularMLP(p=11, embed_dim=4, hidden=16, seed=0).double()
    x, y = torch.randint(0, 11, (40, 2)), torch.randint(0, 11, (40,))
    for p in m.parameters():
        p.grad = torch.full_like(p, 7.0)
    c = nlm_cosine(m, x, y, F.cross_entropy)
    params = list(m.parameters())
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(F.cross_entropy(logits(m, x), y), params)])
    w = torch.cat([t.detach().reshape(-1) for t in params])
    assert c == pytest.approx(float(-(g @ w) / (g.norm() * w.norm())), rel=1e-12)
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in m.parameters())   # .grad untouched
    # Euler: ∇L·θ = d/dc L(cθ) at c = 1, so cos·‖∇L‖‖θ‖ is minus the slope of the loss along the weights
    from torch.func import functional_call

    names = [n for n, _ in m.named_parameters()]
    along = lambda cc: float(F.cross_entropy(functional_call(m, {n: cc * t for n, t in zip(names, params)}, (x,)), y))
    slope = (along(1 + 1e-6) - along(1 - 1e-6)) / 2e-6
    assert c * float(g.norm() * w.norm()) == pytest.approx(-slope, rel=1e-5)


def test_grok_records_the_nlm_cosine_only_when_asked():
    from flatlab.grokking import GrokConfig, grok

    plain = grok(GrokConfig(p=13, steps=30, eval_every=10))
    assert "nlm_cos" not in plain.history
    tracked = grok(GrokConfig(p=13, steps=30, eval_every=10, track_nlm=True))
    assert tracked.history.nlm_cos.between(-1, 1).all()
    assert (plain.history.test_acc.to_numpy() == tracked.history.test_acc.to_numpy()).all()   # measuring changes nothing
    with pytest.raises(TypeError, match="track_nlm"):
        GrokConfig(track_nlm="yes").validate()
    from flatlab.widgets.grokking import nlm_figure

    fig = nlm_figure({"tracked": tracked.history})
    assert len(fig.data) == 1 and list(fig.data[0].x) == [s for s in tracked.history.step if s > 0]
    with pytest.raises(ValueError, match="track_nlm=True"):
        nlm_figure({"plain": plain.history})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_stablemax_cross_entropy_gradient_equals_autograd_through_log_stablemax(reduction):
    from flatlab.grokking import log_stablemax, stablemax_cross_entropy

    torch.manual_seed(0)
    x = (torch.randn(50, 13, dtype=torch.float64) * 20).requires_grad_(True)
    y = torch.randint(0, 13, (50,))
    weights = torch.rand(50, dtype=torch.float64)          # an upstream gradient that is not all ones

    def total(loss):
        return (loss * weights).sum() if reduction == "none" else loss

    ref = -log_stablemax(x, dim=1).gather(1, y[:, None])[:, 0]
    ref = ref.mean() if reduction == "mean" else ref.sum() if reduction == "sum" else ref
    g_ref, = torch.autograd.grad(total(ref), x)
    ours = stablemax_cross_entropy(x, y, reduction=reduction)
    g_ours, = torch.autograd.grad(total(ours), x)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, rtol=1e-10, atol=1e-14)


def test_grok_many_in_workers_is_grok_one_after_another_bit_for_bit():
    """Worker processes give the runs grok gives here (each seeds itself), in order, and leave torch's global random
    state as the sequential calls would (the last run's dropout draws included)."""
    configs = [gk.GrokConfig(p=11, steps=30, eval_every=10, seed=1),
               gk.GrokConfig(p=11, steps=20, eval_every=10, seed=2, dropout=0.3)]
    torch.manual_seed(123)
    sequential = [gk.grok(c) for c in configs]
    after_sequential = torch.rand(3)
    torch.manual_seed(456)
    parallel = gk.grok_many(configs, n_jobs=2)
    assert torch.equal(torch.rand(3), after_sequential)
    for a, b in zip(sequential, parallel):
        assert a.config == b.config
        pd.testing.assert_frame_equal(a.history.drop(columns="seconds", errors="ignore"),
                                      b.history.drop(columns="seconds", errors="ignore"))
        assert all(torch.equal(u, v) for u, v in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    with pytest.raises(TypeError, match=r"configs\[1\] must be a flatlab.grokking.GrokConfig"):
        gk.grok_many([configs[0], "p=11"])
    with pytest.raises(ValueError, match="n_jobs"):
        gk.grok_many(configs, n_jobs=0)


def test_grok_progress_bar_moves_with_the_evaluations_and_closes(recording_bars):
    bars = recording_bars
    run = gk.grok(p=7, steps=40, eval_every=10, progress=True)
    (bar,) = bars
    assert bar.total == 40 and bar.n == 40 and "test=" in bar.postfix and bar.disable  # closed (tqdm disables on close)
    assert list(run.history.step)[-1] == 40
    gk.grok(p=7, steps=40, eval_every=10)   # short runs: no bar by default
    gk.grok_many([gk.GrokConfig(p=7, steps=5), gk.GrokConfig(p=7, steps=5)], n_jobs=1)   # one bar over the runs
    assert len(bars) == 2 and bars[1].n == 2 and bars[1].desc.startswith("grokking runs")
    gk.grok_many([gk.GrokConfig(p=7, steps=1000, eval_every=500)])   # one long run: its own bar over the steps
    assert len(bars) == 3 and bars[2].total == 1000 and bars[2].desc == "grokking"
    gk.grok_many([gk.GrokConfig(p=7, steps=5)])   # one short run: none
    assert len(bars) == 3
    with pytest.raises((TypeError, ValueError), match="progress"):
        gk.grok(p=7, steps=5, progress="yes")
