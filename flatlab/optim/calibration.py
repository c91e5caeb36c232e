"""Calibration of a predictive distribution (Guo et al. 2017, arXiv:1706.04599) and the noise control: a
Bayesian-model-average-style predictive from isotropic weight noise around a point estimate."""
from __future__ import annotations


import numpy as np
import torch
from torch import Tensor, nn

from .. import _validate as _v
from ._common import LINKS, _model_average


# ----------------------------------------------------------------------------------------------
# calibration of a predictive distribution
# ----------------------------------------------------------------------------------------------
def calibration(probs: Tensor, y: Tensor, n_bins: int = 10) -> dict:
    """Reliability diagram and expected calibration error of class probabilities.

    Predictions are binned by confidence ``c = max_k p_k`` into ``n_bins`` equal-width bins;
    ``ECE = Σ_b (n_b/n) |accuracy_b − confidence_b|`` (Guo et al. 2017). Returns a dict with
    ``ece``, ``accuracy``, ``nll`` and per-bin arrays ``bin_confidence``, ``bin_accuracy``,
    ``bin_count``, ``bin_edges`` (NaN for empty bins).

    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]]); y = torch.tensor([0, 1])
    >>> round(calibration(p, y, n_bins=2)["ece"], 3)  # one bin: confidence 0.75, accuracy 0.5
    0.25
    """
    if not isinstance(probs, Tensor) or probs.dim() != 2:
        raise ValueError(f"probs must be a 2-D tensor (examples × classes), got "
                         f"{tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__}")
    if not isinstance(y, Tensor) or y.shape != probs.shape[:1]:
        raise ValueError(f"y must be a tensor of {probs.shape[0]} labels, got "
                         f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}")
    n_bins = _v.integer("n_bins", n_bins, 1)
    probs = probs.detach().double()
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    sum_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, conf)
    sum_acc = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = (sum_conf / count).numpy()
        bin_acc = (sum_acc / count).numpy()
    ece = float((torch.abs(sum_acc - sum_conf)).sum() / len(y))
    nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
    return {"ece": ece, "accuracy": float(correct.mean()), "nll": nll, "bin_confidence": bin_conf,
            "bin_accuracy": bin_acc, "bin_count": count.numpy(), "bin_edges": edges.numpy()}


def noise_predictive(model: nn.Module, x: Tensor, std: float, samples: int = 32, link: str = "softmax",
                     seed: int = 0) -> Tensor:
    """Average prediction under isotropic weight noise: ``(1/S) Σ_s link(f(x; w + std·ξ_s))``, ``ξ_s ~ N(0, I)``.

    The control for a posterior predictive: the same number of samples and a noise of matched size,
    but no learned structure — any weight noise softens an overconfident network, so a posterior's
    calibration means something only when it beats this. Runs in eval mode through
    ``torch.func.functional_call``: the parameters are never written. Noise from
    ``torch.Generator().manual_seed(seed)``.

    >>> model = torch.nn.Linear(2, 3)
    >>> p = noise_predictive(model, torch.zeros(4, 2), std=0.1, samples=5)
    >>> torch.allclose(p.sum(1), torch.ones(4))
    True
    """
    from torch.func import functional_call

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    std = _v.non_negative("std", std)
    samples = _v.integer("samples", samples, 1)
    _v.choice("link", link, LINKS)
    gen = torch.Generator().manual_seed(_v.seed("seed", seed))
    named = {n: p.detach() for n, p in model.named_parameters()}

    def sampled_forward(inputs: Tensor) -> Tensor:
        noisy = {n: p + std * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
                 for n, p in named.items()}
        return functional_call(model, noisy, (inputs,))

    with torch.no_grad():
        return _model_average(model, x, samples, link, sampled_forward)
