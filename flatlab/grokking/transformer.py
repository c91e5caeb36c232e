"""The one-layer transformer for ``a ∘ b mod p`` (:class:`OneLayerTransformer`) and the check of its
integer-pair input."""
from __future__ import annotations

import torch
from torch import nn


class OneLayerTransformer(nn.Module):
    """A one-layer transformer for ``a ∘ b mod p``: tokens [a, b, =] → attention → ReLU MLP → logits at '='.

    x₀ = E[t] + P; x₁ = x₀ + Attn(x₀) (``n_heads`` heads, no LayerNorm, as in Nanda et al.);
    x₂ = x₁ + W_out ReLU(W_in x₁); logits = U x₂ at the last position. Small enough for a CPU
    (d_model 32, d_mlp 128: ~19k parameters for p = 59).

    >>> model = OneLayerTransformer(p=7, d_model=16, n_heads=2, d_mlp=32, seed=0)
    >>> model(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2, 7])
    """

    def __init__(self, p: int = 59, d_model: int = 32, n_heads: int = 4, d_mlp: int = 128, seed: int | None = None):
        super().__init__()
        for name, value in (("p", p), ("d_model", d_model), ("n_heads", n_heads), ("d_mlp", d_mlp)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "p" else 1):
                raise ValueError(f"{name}={value!r} must be an integer ≥ {2 if name == 'p' else 1}")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if seed is not None:
            torch.manual_seed(seed)
        self.p, self.n_heads = p, n_heads
        self.embed = nn.Embedding(p + 1, d_model)  # token p is '='
        self.pos = nn.Parameter(torch.randn(3, d_model) / d_model**0.5)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_pairs(x, self.p)
        tokens = torch.cat([x, torch.full_like(x[:, :1], self.p)], dim=1)
        h = self.embed(tokens) + self.pos  # (B, 3, d)
        b, t, d = h.shape
        q, k, v = self.qkv(h).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.n_heads) ** 0.5, dim=-1)
        h = h + self.attn_out((att @ v).transpose(1, 2).reshape(b, t, d))
        last = h[:, -1]
        last = last + self.mlp_out(torch.relu(self.mlp_in(last)))
        return self.unembed(last)

    def token_embedding(self) -> torch.Tensor:
        """The p × d embedding of the residues (without '=')."""
        return self.embed.weight[: self.p]


def _check_pairs(x, p: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2 or x.dtype not in (torch.long, torch.int32):
        raise ValueError(f"input x must be integer pairs of shape (batch, 2), got {getattr(x, 'shape', type(x))}")
    if x.numel() and (x.min() < 0 or x.max() >= p):
        raise ValueError(f"input x must hold residues in 0..{p - 1}")
