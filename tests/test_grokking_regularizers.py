"""Dropout and BatchNorm in the grokking model (chapter 05, section 4): the fast forward, the config, the gains."""
import copy

import numpy as np
import pytest
import torch

from flatlab import grokking as gk
from flatlab.grokking import GrokConfig, grok, logits
from flatlab.models import ModularMLP
from flatlab.widgets import grokking as gw

X = torch.tensor([[1, 2], [3, 4], [0, 6], [5, 5], [2, 0]])


def test_batchnorm_forward_matches_the_module_in_both_modes():
    m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0, batchnorm=True)
    with torch.no_grad():
        m.norm.weight.uniform_(0.5, 2.0)
        m.norm.bias.uniform_(-1, 1)
        m.norm.running_mean.uniform_(0, 1)
        m.norm.running_var.uniform_(0.5, 2)
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    assert torch.allclose(logits(a, X, training=False), b.eval()(X), atol=1e-5)     # running statistics
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    assert torch.allclose(logits(a, X, training=True), b.train()(X), atol=1e-5)     # batch statistics …
    assert torch.allclose(a.norm.running_mean, b.norm.running_mean, atol=1e-6)     # … and the same running update
    assert not torch.allclose(a.norm.running_mean, m.norm.running_mean)


def test_dropout_keeps_the_expected_logits_and_drops_about_half_the_units():
    m = ModularMLP(p=7, embed_dim=4, hidden=64, seed=0)
    torch.manual_seed(0)
    with torch.no_grad():
        draws = torch.stack([logits(m, X, dropout=0.5, training=True) for _ in range(4000)])
        plain = logits(m, X)
    assert torch.allclose(draws.mean(0), plain, atol=0.02 * float(plain.abs().max()) + 1e-3)  # E[h·mask/keep] = h
    assert not torch.allclose(draws[0], plain)
    assert torch.equal(logits(m, X, dropout=0.5, training=False), plain)           # no dropout when evaluating


def test_the_config_checks_batchnorm_and_the_regularizers_model():
    with pytest.raises(TypeError, match="batchnorm"):
        GrokConfig(batchnorm="yes").validate()
    for field in (dict(batchnorm=True), dict(dropout=0.5)):
        with pytest.raises(ValueError, match="model='mlp'"):
            GrokConfig(model="transformer", **field).validate()
    with pytest.raises(TypeError, match="batchnorm"):
        ModularMLP(p=7, batchnorm=1)
    assert GrokConfig(batchnorm=True).key() != GrokConfig().key()


def test_grok_with_batchnorm_trains_its_scale_and_statistics():
    run = grok(p=13, steps=30, eval_every=10, batchnorm=True, weight_decay=0.1)
    assert run.model.norm is not None and not run.history.diverged
    assert float(run.model.norm.running_mean.abs().sum()) > 0
    assert not torch.allclose(run.model.norm.weight, torch.ones_like(run.model.norm.weight))


def test_neuron_gains_are_the_readout_column_norms_and_the_batchnorm_scale():
    m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0, batchnorm=True)
    with torch.no_grad():
        m.norm.weight.copy_(torch.linspace(-2, 2, 8))
    g = gk.neuron_gains(m)
    expected = torch.sqrt((m.out.weight.detach() ** 2).sum(0))
    assert torch.allclose(g["readout"], expected) and torch.allclose(g["batchnorm"], torch.linspace(-2, 2, 8).abs())
    assert set(gk.neuron_gains(ModularMLP(p=7, embed_dim=4, hidden=8))) == {"readout"}
    # the effective gain: the spread of what the readout sees from each neuron times its readout column's norm
    h = gk.hidden_outputs(m, X)
    assert torch.allclose(m.out(h), logits(copy.deepcopy(m), X), atol=1e-5)      # what the readout sees, exactly
    assert torch.allclose(gk.neuron_gains(m, X)["effective"], h.std(0) * expected)
    for bad, error in ((X.float(), ValueError), (X[:1], ValueError), (X + 7, ValueError), ("pairs", TypeError)):
        with pytest.raises(error, match="x"):
            gk.neuron_gains(m, bad)
    with pytest.raises(TypeError, match="ModularMLP"):
        gk.neuron_gains(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="ModularMLP"):
        gk.hidden_outputs(torch.nn.Linear(2, 2), X)


def test_gain_figure_one_panel_per_entry_and_bad_entries():
    ipr, gain = np.linspace(0.1, 0.9, 8), np.linspace(1, 2, 8)
    fig = gw.gain_figure({"a": (ipr, gain, "|γ|"), "b": (ipr, gain[::-1], "norm")})
    assert len(fig.data) == 2 and list(fig.data[1].y) == pytest.approx(list(gain[::-1]))
    with pytest.raises(ValueError, match="points"):
        gw.gain_figure({})
    with pytest.raises(ValueError, match="gain_name"):
        gw.gain_figure({"a": (ipr, gain)})
    with pytest.raises(ValueError, match="8 IPRs but 3 gains"):
        gw.gain_figure({"a": (ipr, gain[:3], "|γ|")})
