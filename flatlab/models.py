"""Small models that train in seconds on a CPU.

``MLP`` (width, depth, activation and init-scale knobs) and ``ModularMLP`` (two token embeddings →
hidden ReLU layer → logits) for modular arithmetic. Models know nothing about optimizers or data.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import _validate as _v

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
}


def _scale_init(module: nn.Module, init_scale: float) -> None:
    init_scale = _v.positive("init_scale", init_scale)
    if init_scale != 1.0:
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(init_scale)


def _widths(hidden) -> list[int]:
    if _is_int(hidden):
        return [_v.integer("hidden", hidden, 1)]
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple, range, np.ndarray, torch.Tensor)):
        raise TypeError(f"hidden must be a width or a sequence of widths (positive integers), e.g. [64, 64]; "
                        f"got {type(hidden).__name__} {hidden!r}")
    return [_v.integer(f"hidden[{i}]", h, 1) for i, h in enumerate(hidden)]


def _is_int(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and (
        isinstance(value, (int, np.integer)) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0))


class MLP(nn.Module):
    """Fully connected network ``in_dim → hidden[0] → … → out_dim`` with one activation.

    ``init_scale`` multiplies every parameter after PyTorch's default initialization.

    >>> model = MLP(40, [64, 64], 10, activation="tanh")
    >>> model(torch.zeros(3, 40)).shape
    torch.Size([3, 10])
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (64, 64), out_dim: int = 10,
                 activation: str = "relu", init_scale: float = 1.0, bias: bool = True, seed: int | None = None):
        super().__init__()
        in_dim, out_dim = _v.integer("in_dim", in_dim, 1), _v.integer("out_dim", out_dim, 1)
        hidden = _widths(hidden)
        _v.choice("activation", activation, ACTIVATIONS)
        bias = _v.boolean("bias", bias)
        seed = _v.seed("seed", seed, allow_none=True)
        _v.positive("init_scale", init_scale)
        self.in_dim, self.out_dim, self.hidden, self.activation = in_dim, out_dim, list(hidden), activation
        if seed is not None:
            torch.manual_seed(seed)
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < len(dims) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        _scale_init(self, init_scale)

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers, input to output."""
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"input x must have shape (batch, {self.in_dim}), got {tuple(x.shape)}")
        return self.net(x)


class ModularMLP(nn.Module):
    """Embedding MLP for ``a ∘ b mod p``: [E_a(a); E_b(b)] → ReLU(hidden) → p logits.

    ``batchnorm=True`` puts a ``BatchNorm1d`` on the hidden units after the ReLU (``model.norm``): each neuron's
    output is standardized over the batch and scaled by its own γ before the readout (chapter 05's choice of
    placement; without it ``model.norm`` is None).

    >>> model = ModularMLP(p=7, embed_dim=8, hidden=16)
    >>> model(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2, 7])
    """

    def __init__(self, p: int = 59, embed_dim: int = 64, hidden: int = 128, init_scale: float = 1.0,
                 seed: int | None = None, batchnorm: bool = False):
        super().__init__()
        self.p = p = _v.integer("p", p, 2)
        embed_dim, hidden = _v.integer("embed_dim", embed_dim, 1), _v.integer("hidden", hidden, 1)
        seed = _v.seed("seed", seed, allow_none=True)
        _v.positive("init_scale", init_scale)
        if seed is not None:
            torch.manual_seed(seed)
        self.embed_a = nn.Embedding(p, embed_dim)
        self.embed_b = nn.Embedding(p, embed_dim)
        self.hidden = nn.Linear(2 * embed_dim, hidden)
        self.out = nn.Linear(hidden, p)
        self.norm = nn.BatchNorm1d(hidden) if _v.boolean("batchnorm", batchnorm) else None
        _scale_init(self, init_scale)

    def check_pairs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` when it is integer pairs of shape (batch, 2) with residues in 0..p−1; else a ValueError."""
        if x.dim() != 2 or x.shape[1] != 2 or x.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"input x must be integer pairs of shape (batch, 2), got {tuple(x.shape)} {x.dtype}")
        if x.numel() and (x.min() < 0 or x.max() >= self.p):
            raise ValueError(f"input x must hold residues in 0..{self.p - 1}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_pairs(x)
        h = torch.cat([self.embed_a(x[:, 0]), self.embed_b(x[:, 1])], dim=1)
        h = torch.relu(self.hidden(h))
        return self.out(h if self.norm is None else self.norm(h))


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


HOMOGENEOUS = ("relu", "linear")


def rescale_layers(model: MLP, alpha: float, layer: int = 0) -> MLP:
    """A copy of ``model`` with layer ``layer`` multiplied by α and layer ``layer+1``'s weight by 1/α.

    For a positively homogeneous activation (ReLU: relu(αz) = α relu(z) for α > 0) the copy
    computes *exactly the same function* — yet its Hessian, and so its sharpness, changes
    (Dinh et al. 2017, "Sharp minima can generalize for deep nets", arXiv:1703.04933).

    >>> m = MLP(4, [8, 8], 2, seed=0)
    >>> x = torch.randn(3, 4)
    >>> torch.allclose(m(x), rescale_layers(m, 10.0)(x), atol=1e-5)
    True
    """
    import copy

    if not isinstance(model, MLP):
        raise TypeError(f"model must be a flatlab MLP, got {type(model).__name__}")
    if model.activation not in HOMOGENEOUS:
        raise ValueError(f"model.activation={model.activation!r} is not positively homogeneous: rescaling would "
                         f"change the function; allowed activations: {', '.join(HOMOGENEOUS)}")
    alpha = _v.positive("alpha", alpha)
    n_layers = len(model.linears)
    if n_layers < 2:
        raise ValueError(f"model has {n_layers} linear layer(s): rescaling needs a layer followed by another")
    layer = _v.integer("layer", layer, 0, n_layers - 2, hint="a layer followed by another")
    out = copy.deepcopy(model)
    first, second = out.linears[layer], out.linears[layer + 1]
    with torch.no_grad():
        first.weight.mul_(alpha)
        if first.bias is not None:
            first.bias.mul_(alpha)
        second.weight.div_(alpha)
    return out
