"""How loudly each hidden neuron speaks to the readout: :func:`neuron_gains` — the norm of its readout weights, with
BatchNorm its scale |γ|, and on given inputs its effective gain — for chapter 05's comparison with the neurons' IPR
(Doshi et al., arXiv:2310.13061: BatchNorm "de-amplifies" memorizing neurons)."""
from __future__ import annotations

import torch

from .. import _validate as _v
from ..models import ModularMLP
from .forward import hidden_units


def hidden_outputs(model: ModularMLP, x: torch.Tensor) -> torch.Tensor:
    """What the readout sees from each hidden neuron on pairs ``x``, shape (len(x), hidden): the ReLU units, after the
    BatchNorm (with its running statistics) when the model has one — :func:`~flatlab.grokking.forward.hidden_units`
    when evaluating, after the pair check. No dropout, no gradients."""
    if not isinstance(model, ModularMLP):
        raise TypeError(f"model must be a ModularMLP, got {type(model).__name__}")
    _v.instance("x", x, torch.Tensor, "a tensor of integer pairs, shape (batch, 2)")
    if len(model.check_pairs(x)) < 2:
        raise ValueError(f"x must be at least two integer pairs (a spread needs two), got {len(x)}")
    with torch.no_grad():
        return hidden_units(model, x)


def neuron_gains(model: ModularMLP, x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per hidden neuron n: ``"readout"`` ‖W_out[:, n]‖ (the column of the output layer it feeds); with a BatchNorm
    (``batchnorm=True``) ``"batchnorm"`` |γ_n|, the scale BatchNorm gives it; and with inputs ``x`` ``"effective"``
    std_x(h_n)·‖W_out[:, n]‖, the typical size of its contribution to the logits, where h_n is what the readout sees
    from it (:func:`hidden_outputs`). The effective gain compares networks with and without BatchNorm: γ and the
    readout column can trade scale without changing the function, their product with the activation's spread cannot.

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0, batchnorm=True)
    >>> {k: tuple(v.shape) for k, v in neuron_gains(m, torch.tensor([[1, 2], [3, 4]])).items()}
    {'readout': (8,), 'batchnorm': (8,), 'effective': (8,)}
    """
    if not isinstance(model, ModularMLP):
        raise TypeError(f"model must be a ModularMLP, got {type(model).__name__}")
    with torch.no_grad():
        gains = {"readout": model.out.weight.norm(dim=0).clone()}
        if model.norm is not None:
            gains["batchnorm"] = model.norm.weight.abs().clone()
        if x is not None:
            gains["effective"] = hidden_outputs(model, x).std(0) * gains["readout"]
    return gains
