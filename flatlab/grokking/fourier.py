"""Fourier and IPR diagnostics: the token embedding, its energy per frequency (Nanda et al.,
arXiv:2301.05217), top-k fraction and key frequencies, the inverse participation ratio of each hidden
neuron and the Otsu threshold that splits periodic from memorizing neurons (Doshi et al.)."""
from __future__ import annotations

import torch
from torch import nn

from ..models import ModularMLP
from .transformer import OneLayerTransformer


def embedding_matrix(model: nn.Module) -> torch.Tensor:
    """The p × d' token embedding: [E_a, E_b] side by side for a ModularMLP, E for the transformer."""
    if isinstance(model, ModularMLP):
        return torch.cat([model.embed_a.weight, model.embed_b.weight], dim=1).detach()
    if isinstance(model, OneLayerTransformer):
        return model.token_embedding().detach()
    raise TypeError(f"model must be a ModularMLP or OneLayerTransformer, got {type(model).__name__}")


def fourier_energy(signal: torch.Tensor) -> torch.Tensor:
    """Energy per frequency k = 0 … ⌊p/2⌋ of the columns of a p × d matrix over the token axis:
    e_k = Σ_d |F_{k,d}|² (+ |F_{p−k,d}|² for 0 < k < p/2, its mirror), F = DFT along axis 0.

    >>> a = torch.arange(7.0)
    >>> int(fourier_energy(torch.cos(2 * torch.pi * 3 * a / 7)[:, None]).argmax())
    3
    """
    if not isinstance(signal, torch.Tensor) or not signal.is_floating_point():
        raise TypeError("signal must be a floating-point torch tensor of shape (p, d)")
    if signal.dim() == 1:
        signal = signal[:, None]
    if signal.dim() != 2 or signal.shape[0] < 2:
        raise ValueError(f"signal must have shape (p, d) with p ≥ 2, got {tuple(signal.shape)}")
    p = signal.shape[0]
    power = torch.fft.fft(signal.detach().double(), dim=0).abs() ** 2
    energy = power.sum(dim=1)
    half = p // 2
    out = energy[: half + 1].clone()
    mirror = torch.arange(1, (p + 1) // 2)
    out[mirror] += energy[p - mirror]
    return out


def top_k_fraction(energy: torch.Tensor, k: int = 10) -> float:
    """Fraction of the non-DC energy held by the ``k`` strongest frequencies (k = 0 excluded).

    >>> top_k_fraction(torch.tensor([5.0, 1.0, 3.0, 0.0]), k=1)
    0.75
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be an integer ≥ 1")
    e = torch.as_tensor(energy, dtype=torch.float64)[1:]
    total = float(e.sum())
    if total <= 0:
        return float("nan")
    return float(torch.sort(e, descending=True).values[:k].sum()) / total


def key_frequencies(energy: torch.Tensor, fraction: float = 0.8) -> list[int]:
    """The fewest frequencies (k ≥ 1, strongest first) holding ``fraction`` of the non-DC energy."""
    if not (0 < fraction <= 1):
        raise ValueError(f"fraction={fraction!r} must be in (0, 1]")
    e = torch.as_tensor(energy, dtype=torch.float64)[1:]
    order = torch.argsort(e, descending=True)
    cum = torch.cumsum(e[order], 0) / e.sum()
    n = int((cum < fraction - 1e-12).sum()) + 1
    return [int(i) + 1 for i in order[:n]]


def ipr(power: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Inverse participation ratio of a non-negative power spectrum: IPR = Σ_k P_k² / (Σ_k P_k)².

    1 when one frequency holds everything, 1/n when n frequencies share it equally.

    >>> ipr(torch.tensor([0.0, 3.0, 0.0])), ipr(torch.ones(4))
    (tensor(1.), tensor(0.2500))
    """
    if not isinstance(power, torch.Tensor) or not power.is_floating_point():
        raise TypeError("power must be a floating-point torch tensor")
    if (power < 0).any():
        raise ValueError("power must be non-negative (pass |F|², not the complex spectrum)")
    total = power.sum(dim=dim)
    return (power**2).sum(dim=dim) / total**2


def neuron_spectra(model: ModularMLP) -> torch.Tensor:
    """Non-DC Fourier power of each hidden neuron's input weights over the tokens, shape (hidden, ⌊p/2⌋).

    Neuron n sees u_n(a) = (E_a W_aᵀ)[a, n] and v_n(b) = (E_b W_bᵀ)[b, n]; its spectrum is the sum of
    the two signals' energies per frequency k = 1 … ⌊p/2⌋ (the DC term acts like a bias and is dropped).
    """
    if not isinstance(model, ModularMLP):
        raise TypeError(f"model must be a ModularMLP, got {type(model).__name__}")
    with torch.no_grad():
        d = model.embed_a.weight.shape[1]
        w = model.hidden.weight
        u = model.embed_a.weight @ w[:, :d].T  # (p, hidden)
        v = model.embed_b.weight @ w[:, d:].T
        spec = torch.stack([fourier_energy(u[:, [n]]) + fourier_energy(v[:, [n]]) for n in range(w.shape[0])])
    return spec[:, 1:]


def neuron_ipr(model: ModularMLP) -> torch.Tensor:
    """IPR of every hidden neuron's Fourier spectrum (periodic neurons near 1, memorizing ones near 1/⌊p/2⌋)."""
    return ipr(neuron_spectra(model))


def ipr_threshold(values: torch.Tensor) -> float:
    """Split 1-D values into two groups: the threshold maximizing the between-group variance (Otsu)."""
    v = torch.sort(torch.as_tensor(values, dtype=torch.float64).reshape(-1)).values
    if len(v) < 2:
        raise ValueError("need at least two values to split")
    best, thr = -1.0, float(v[0])
    for i in range(1, len(v)):
        lo, hi = v[:i], v[i:]
        score = len(lo) * len(hi) * float(lo.mean() - hi.mean()) ** 2
        if score > best:
            best, thr = score, float((v[i - 1] + v[i]) / 2)
    return thr
