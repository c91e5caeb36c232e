"""Pruning (Doshi et al., arXiv:2310.13061): remove hidden neurons (:func:`prune_neurons`) and compare
pruning the low-IPR neurons with pruning random ones (:func:`pruning_report`)."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..models import ModularMLP
from .forward import logits
from .fourier import ipr_threshold, neuron_ipr
from .recipe import GrokRun


def prune_neurons(model: ModularMLP, neurons: Sequence[int]) -> ModularMLP:
    """A copy of ``model`` with the given hidden neurons removed (input row, bias and output column zeroed).

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    >>> float(prune_neurons(m, [0, 1]).out.weight.detach()[:, :2].abs().sum())
    0.0
    """
    if not isinstance(model, ModularMLP):
        raise TypeError(f"model must be a ModularMLP, got {type(model).__name__}")
    idx = torch.as_tensor(list(neurons), dtype=torch.long)
    n_hidden = model.hidden.weight.shape[0]
    if idx.numel() and (idx.min() < 0 or idx.max() >= n_hidden):
        raise ValueError(f"neurons must be indices in 0..{n_hidden - 1}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.hidden.weight[idx] = 0
        out.hidden.bias[idx] = 0
        out.out.weight[:, idx] = 0
    return out


def accuracy_on(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of pairs ``x`` whose predicted class equals ``y``."""
    with torch.no_grad():
        return float((logits(model, x).argmax(1) == y).float().mean())


def pruning_report(run: GrokRun, n_random: int = 10, threshold: float | None = None) -> dict[str, float]:
    """Prune the low-IPR neurons of a trained ModularMLP and as many random neurons; compare accuracies.

    Returns test accuracy before/after each pruning, the accuracy on the corrupted training examples
    with respect to their (noisy) training labels and their true labels, the IPR threshold and the
    number of low-IPR neurons. Random pruning is averaged over ``n_random`` draws (seeded by the run).
    """
    model, ds = run.model, run.dataset
    values = neuron_ipr(model)
    thr = ipr_threshold(values) if threshold is None else float(threshold)
    low = torch.nonzero(values < thr).reshape(-1).tolist()
    mask = ds.meta.get("corrupted", torch.zeros(ds.n_train, dtype=torch.bool))
    xc, noisy, true = ds.x_train[mask], ds.y_train[mask], ds.meta.get("clean_y_train", ds.y_train)[mask]

    def stats(m):
        out = {"test_acc": accuracy_on(m, ds.x_test, ds.y_test)}
        if bool(mask.any()):
            out["corrupted_fit"] = accuracy_on(m, xc, noisy)
            out["corrupted_true"] = accuracy_on(m, xc, true)
        return out

    base, pruned = stats(model), stats(prune_neurons(model, low))
    g = torch.Generator().manual_seed(run.config.seed)
    n_hidden = values.numel()
    draws = [stats(prune_neurons(model, torch.randperm(n_hidden, generator=g)[: len(low)].tolist()))
             for _ in range(n_random)]
    report = {"ipr_threshold": thr, "n_low_ipr": len(low), "n_hidden": n_hidden}
    for key in base:
        report[f"{key}_before"] = base[key]
        report[f"{key}_low_ipr_pruned"] = pruned[key]
        report[f"{key}_random_pruned"] = float(np.mean([d[key] for d in draws]))
    return report
