"""How loudly each hidden neuron speaks to the readout: :func:`neuron_gains` — the norm of its readout weights and,
with BatchNorm, its scale |γ| — for chapter 05's comparison with the neurons' IPR (Doshi et al., arXiv:2310.13061:
BatchNorm "de-amplifies" memorizing neurons)."""
from __future__ import annotations

import torch

from ..models import ModularMLP


def neuron_gains(model: ModularMLP) -> dict[str, torch.Tensor]:
    """Per hidden neuron n: ``"readout"`` ‖W_out[:, n]‖ (the column of the output layer it feeds) and, when the model
    has a BatchNorm (``batchnorm=True``), ``"batchnorm"`` |γ_n|, the scale BatchNorm gives it before the readout.

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0, batchnorm=True)
    >>> {k: tuple(v.shape) for k, v in neuron_gains(m).items()}
    {'readout': (8,), 'batchnorm': (8,)}
    """
    if not isinstance(model, ModularMLP):
        raise TypeError(f"model must be a ModularMLP, got {type(model).__name__}")
    with torch.no_grad():
        gains = {"readout": model.out.weight.norm(dim=0).clone()}
        if model.norm is not None:
            gains["batchnorm"] = model.norm.weight.abs().clone()
    return gains
