"""Grokking on a CPU in seconds: a tuned recipe, StableMax, ⊥Grad and the diagnostics of chapter 05.

A network fits its training set early and generalizes much later ("grokking"). Here a+b mod 59
with two 64-dim embeddings → 128 ReLU → 59 logits, full-batch AdamW (lr 5e-2, weight decay 1,
β = (0.9, 0.98)) on 40 % of the pairs fits the training set in ~20 steps and reaches 95 % test
accuracy at steps 370–410 (seeds 0–3) — about a second on one CPU core. :func:`grok` runs it::

    run = grok(GrokConfig(steps=800))          # or grok(weight_decay=3.0, train_fraction=0.6)
    run.history                                # a flatlab.train.History, one row per evaluation
    steps_to(run.history, "test_acc", 0.95)

Tuning notes (measured on a 2-core CPU, seeds 0–3): lr 3e-2 (DESIGN.md's prototype) reaches 95 % test
at steps 540–680 here, lr 5e-2 at 370–410, lr 1e-1 at 250–290 but fits the training set 3× later.

The loop is lean on purpose (``flatlab.train.fit`` evaluates the full train and test sets through
the generic model call and knows no StableMax loss): the first layer acts on the concatenated
embeddings, so W·[E_a(a); E_b(b)] = (E_a W_aᵀ)[a] + (E_b W_bᵀ)[b] is two p×h tables gathered per
example — the same function and gradients as ``ModularMLP.forward``, fewer flops — AdamW is the
fused kernel, and training runs on one thread. Subnormal floats are flushed to zero while training
(``flush_denormal``): once the logits are in the hundreds, softmax produces subnormal probabilities
that make CPU arithmetic several times slower. The collapse itself is decided by normal floats (a loss
is exactly 0 when Σ_j e^{x_j − x_y} rounds to 1), and Adam's update of a gradient below 1e-38 is zero
either way; runs with and without flushing gave the same histories to 4 digits here.

Also here: StableMax and ⊥Grad (Prieto et al., "Grokking at the edge of numerical stability",
arXiv:2501.04697), a softmax-collapse probe, the Fourier spectrum of the embeddings (Nanda et al.,
arXiv:2301.05217), the inverse participation ratio of neurons and pruning (Doshi et al., "To grok or
not to grok", arXiv:2310.13061), weight norms (Liu et al., Omnigrok, arXiv:2210.01117), a small
one-layer transformer, and a (cached) phase sweep over weight decay × train fraction. Grokking:
Power et al., arXiv:2201.02177.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import _validate as _v
from .data import MODULAR_OPS, Dataset, modular_arithmetic
from .models import ModularMLP
from .optim import make_optimizer
from .optim import OrthoGrad as OrthoGrad  # re-exported: chapter 05 calls gk.OrthoGrad
from .optim import orthogonal_gradient as orthogonal_gradient
from .optim import orthogonalize_gradients_ as orthogonalize_gradients_
from .train import History

LOSSES = ("softmax", "stablemax")
MODELS = ("mlp", "transformer")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PHASES = ("comprehension", "grokking", "memorization", "confusion")


# ----------------------------------------------------------------------------- StableMax
def _check_logits(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"logits must be a torch tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {x.dtype}")
    return x


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """The StableMax map s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0 (positive, grows linearly).

    >>> stablemax_s(torch.tensor([-1.0, 0.0, 2.0]))
    tensor([0.5000, 1.0000, 3.0000])
    """
    x = _check_logits(x)
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax: log s(x_i) − log Σ_j s(x_j), with log s(x) = sign(x)·log(1 + |x|).

    >>> log_stablemax(torch.tensor([0.0, 1.0])).exp()
    tensor([0.3333, 0.6667])
    """
    x = _check_logits(x)
    log_s = torch.sign(x) * torch.log1p(x.abs())
    return log_s - torch.log(stablemax_s(x).sum(dim=dim, keepdim=True))


def stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax(x)_i = s(x_i) / Σ_j s(x_j): softmax with exp replaced by the linear-growth s.

    >>> stablemax(torch.tensor([0.0, 1.0]))
    tensor([0.3333, 0.6667])
    """
    s = stablemax_s(x)
    return s / s.sum(dim=dim, keepdim=True)


def stablemax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy with StableMax probabilities: −log StableMax(x)_y (mean over examples).

    Computed in float64 and returned in the logits' dtype, as in the authors' ``stablemax_cross_entropy``
    (Prieto et al. 2025): in float32, once the correct logit x_y is large the two terms of the
    correct-class gradient, 1/(1 + x_y) and 1/Σ_j s(x_j), round to the same number and the gradient is
    lost (for x_y = 1e8 and 58 other logits at 0, float32 gives a loss of exactly 0 and a correct-class
    gradient 8 % off; see tests/test_grokking.py).

    >>> round(float(stablemax_cross_entropy(torch.tensor([[0.0, 1.0]]), torch.tensor([1]))), 6)  # −log(2/3)
    0.405465
    """
    _check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(logits.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.long, torch.int64, torch.int32) or y.shape != logits.shape[:1]:
        raise ValueError(f"y must be integer class labels of shape ({logits.shape[0]},)")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction={reduction!r} is unknown; allowed values: mean, sum, none")
    losses = -log_stablemax(logits.to(torch.float64), dim=1).gather(1, y.long()[:, None])[:, 0].to(logits.dtype)
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


def loss_function(name: str):
    """The training loss by name: ``"softmax"`` (cross-entropy) or ``"stablemax"``."""
    if name == "softmax":
        return F.cross_entropy
    if name == "stablemax":
        return stablemax_cross_entropy
    raise ValueError(f"loss={name!r} is unknown; allowed values: {', '.join(LOSSES)}")


# ----------------------------------------------------------------------------- softmax collapse
def softmax_collapse(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Softmax collapse: the fraction of examples whose cross-entropy is *exactly* 0 in the logits' dtype,
    and the largest |logit|.

    A loss of exactly 0 means softmax(x)_y rounded to 1, so the correct class's gradient
    softmax_y − 1 underflows to 0 (the other classes' tiny probabilities usually do not).

    >>> softmax_collapse(torch.tensor([[100.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 0]))
    {'collapsed': 0.5, 'max_logit': 100.0}
    """
    _check_logits(logits)
    if logits.dim() != 2 or not isinstance(y, torch.Tensor) or y.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (batch, classes) and y (batch,), got {tuple(logits.shape)} and "
                         f"{tuple(getattr(y, 'shape', ()))}")
    with torch.no_grad():
        losses = F.cross_entropy(logits, y.long(), reduction="none")
        return {"collapsed": float((losses == 0).float().mean()) if len(y) else float("nan"),
                "max_logit": float(logits.abs().max()) if logits.numel() else float("nan")}


class CollapseProbe:
    """A ``flatlab.train.fit`` probe: ``collapsed`` (fraction of training examples with loss exactly 0) and
    ``max_logit`` every ``every`` steps.

    >>> probe = CollapseProbe(every=10)
    """

    def __init__(self, every: int = 10):
        self.every = _v.integer("every", every, 1)

    def __call__(self, model: nn.Module, dataset: Dataset, step: int) -> dict[str, float]:
        with torch.no_grad():
            return softmax_collapse(logits(model, dataset.x_train), dataset.y_train)


# ----------------------------------------------------------------------------- models
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


def logits(model: nn.Module, x: torch.Tensor, dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """The model's logits on pairs ``x``; for a ``ModularMLP`` through the fast table form
    W·[E_a(a); E_b(b)] + c = T_a[a] + T_b[b] with T_a = E_a W_aᵀ, T_b = E_b W_bᵀ + c (same function,
    same gradients, fewer flops). ``dropout`` applies to the hidden ReLU units when ``training``.

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    >>> x = torch.tensor([[1, 2], [6, 0]])
    >>> torch.allclose(logits(m, x), m(x), atol=1e-6)
    True
    """
    if isinstance(model, ModularMLP):
        d = model.embed_a.weight.shape[1]
        w = model.hidden.weight
        table_a = model.embed_a.weight @ w[:, :d].T
        table_b = torch.addmm(model.hidden.bias, model.embed_b.weight, w[:, d:].T)
        h = torch.relu(F.embedding(x[:, 0], table_a) + F.embedding(x[:, 1], table_b))
        if dropout and training:
            h = F.dropout(h, dropout, training=True)
        return model.out(h)
    return model(x)


def nlm_cosine(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    """Cosine between the descent direction −∇L and the weights θ, over all parameters together.

    The *naive loss minimization* direction of Prieto et al. (2025) scales the logits without changing any
    prediction; for a positively homogeneous network it is exactly θ (``f(cθ) = cᵏ f(θ)``), and through the
    weights "along their current direction" it is how an unregularized network lowers its loss once every
    training example is classified. The ModularMLP has biases, so θ scales its logits only approximately.
    A cosine near 1 means the step mostly grows the weights; NaN when the gradient is exactly zero (every
    example collapsed). ``.grad`` is not touched.

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    >>> -1 <= nlm_cosine(m, torch.tensor([[1, 2], [3, 4]]), torch.tensor([3, 0]), F.cross_entropy) <= 1
    True
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = loss_fn(logits(model, x), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    g = torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1).double() for gi, p in zip(grads, params)])
    w = torch.cat([p.detach().reshape(-1).double() for p in params])
    denom = float(g.norm() * w.norm())
    return float(-(g @ w) / denom) if denom > 0 else float("nan")


def weight_norm(model: nn.Module) -> float:
    """‖w‖₂ over all parameters (Omnigrok: grokking happens as weight decay shrinks it)."""
    with torch.no_grad():
        return math.sqrt(sum(float(torch.dot(p.reshape(-1), p.reshape(-1))) for p in model.parameters()))


# ----------------------------------------------------------------------------- the recipe
@dataclass
class GrokConfig:
    """One grokking experiment. The defaults are the chapter's tuned recipe (groks in ~1 s on one core).

    >>> GrokConfig(weight_decay=3.0).lr
    0.05
    """

    p: int = 59
    op: str = "+"
    train_fraction: float = 0.4
    label_noise: float = 0.0
    model: str = "mlp"            # "mlp" (ModularMLP) or "transformer" (OneLayerTransformer)
    embed_dim: int = 64           # per operand (mlp) / d_model (transformer)
    hidden: int = 128             # hidden ReLU units (mlp) / d_mlp (transformer)
    dropout: float = 0.0          # on the hidden units (mlp only)
    lr: float = 5e-2
    weight_decay: float = 1.0     # decoupled (AdamW)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    loss: str = "softmax"         # "softmax" or "stablemax"
    orthogonal_grad: bool = False  # ⊥Grad before the AdamW step
    track_nlm: bool = False       # record nlm_cosine (one extra backward pass per evaluation)
    dtype: str = "float32"
    steps: int = 1000
    eval_every: int = 10
    stop_at_test_acc: float | None = None  # stop once test accuracy reaches this …
    stop_factor: float = 1.0      # … at stop_factor × the step where it first did
    seed: int = 0
    threads: int | None = 1       # torch threads while training (None: leave as is)
    flush_denormal: bool = True   # treat subnormal floats as 0 while training (speed; see the module notes)

    def validate(self) -> "GrokConfig":
        """Raise ValueError/TypeError naming the first bad field; return self."""
        for name, minimum in (("p", 2), ("embed_dim", 1), ("hidden", 1), ("steps", 1), ("eval_every", 1)):
            _v.integer(name, getattr(self, name), minimum)
        _v.seed("seed", self.seed)
        _v.choice("op", self.op, MODULAR_OPS)
        _v.number("train_fraction", self.train_fraction, 0, 1, low_open=True, high_open=True)
        _v.number("label_noise", self.label_noise, 0, 1, high_open=True)
        _v.choice("model", self.model, MODELS)
        _v.number("dropout", self.dropout, 0, 1, high_open=True)
        _v.positive("lr", self.lr)
        _v.non_negative("weight_decay", self.weight_decay)
        _v.pair("betas", self.betas, 0, 1, high_open=True)
        _v.non_negative("eps", self.eps)
        _v.choice("loss", self.loss, LOSSES)
        _v.choice("dtype", self.dtype, DTYPES)
        _v.number("stop_at_test_acc", self.stop_at_test_acc, 0, 1, low_open=True, allow_none=True)
        _v.number("stop_factor", self.stop_factor, 1)
        _v.integer("threads", self.threads, 1, allow_none=True)
        _v.boolean("orthogonal_grad", self.orthogonal_grad)
        _v.boolean("track_nlm", self.track_nlm)
        _v.boolean("flush_denormal", self.flush_denormal)
        total = self.p * (self.p - 1 if self.op == "/" else self.p)
        n_train = max(1, int(round(self.train_fraction * total)))
        if n_train >= total:
            raise ValueError(f"train_fraction={self.train_fraction!r} leaves the test split empty: with p={self.p} "
                             f"and op={self.op!r} there are {total} pairs and {n_train} would be for training; "
                             f"choose train_fraction below {1 - 0.5 / total:.6g}")
        return self

    def key(self) -> str:
        """A short hash of the configuration (cache key)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class GrokRun:
    """What :func:`grok` returns: the configuration, the trained model, the data and the history."""

    config: GrokConfig
    model: nn.Module
    dataset: Dataset
    history: History
    seconds: float = float("nan")
    init_model: nn.Module | None = field(default=None, repr=False)     # the weights before training
    fitted_model: nn.Module | None = field(default=None, repr=False)   # … at the first 100 % train evaluation

    def steps_to(self, column: str = "test_acc", threshold: float = 0.95) -> int | None:
        return steps_to(self.history, column, threshold)


@contextmanager
def threads(n: int | None, flush_denormal: bool = False):
    """Temporarily run torch with ``n`` threads (``None``: unchanged) and, if asked, subnormals flushed to 0
    (flushing is switched off again on exit: torch offers no way to read its previous state)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    flushed = bool(flush_denormal) and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(old)
        if flushed:
            torch.set_flush_denormal(False)


def build(config: GrokConfig) -> tuple[Dataset, nn.Module, torch.optim.Optimizer]:
    """Data set, model and optimizer of a configuration (seeded by ``config.seed``).

    >>> ds, model, opt = build(GrokConfig(p=7, embed_dim=4, hidden=8))
    >>> ds.n_train, type(opt).__name__
    (20, 'AdamW')
    """
    if not isinstance(config, GrokConfig):
        raise TypeError(f"config must be a GrokConfig, got {type(config).__name__}")
    config.validate()
    ds = modular_arithmetic(config.p, config.op, config.train_fraction, config.label_noise, seed=config.seed)
    if config.model == "mlp":
        model = ModularMLP(config.p, config.embed_dim, config.hidden, seed=config.seed)
    else:
        heads = 4 if config.embed_dim % 4 == 0 else 1
        model = OneLayerTransformer(config.p, config.embed_dim, heads, config.hidden, seed=config.seed)
    model = model.to(DTYPES[config.dtype])
    # fused: one kernel for all parameters (≈4× less optimizer time than the per-tensor loop on a CPU)
    kwargs = dict(lr=config.lr, betas=tuple(config.betas), eps=config.eps, weight_decay=config.weight_decay,
                  fused=True)
    opt = make_optimizer(model.parameters(), "orthograd" if config.orthogonal_grad else "adamw", **kwargs)
    return ds, model, opt


def _evaluate(model, ds, loss_fn, track_nlm: bool = False) -> dict[str, float]:
    row = {}
    if track_nlm:  # the raw gradient (before ⊥Grad or the optimizer): what the loss asks for
        row["nlm_cos"] = nlm_cosine(model, ds.x_train, ds.y_train, loss_fn) if len(ds.y_train) else float("nan")
    with torch.no_grad():
        out_train = logits(model, ds.x_train)
        for split, out, y in (("train", out_train, ds.y_train), ("test", logits(model, ds.x_test), ds.y_test)):
            row[f"{split}_loss"] = float(loss_fn(out, y)) if len(y) else float("nan")
            row[f"{split}_acc"] = float((out.argmax(1) == y).float().mean()) if len(y) else float("nan")
        row.update(softmax_collapse(out_train, ds.y_train))
        mask = ds.meta.get("corrupted")
        if mask is not None and bool(mask.any()):
            pred = out_train[mask].argmax(1)
            row["corrupted_fit"] = float((pred == ds.y_train[mask]).float().mean())  # memorized noisy labels
            row["corrupted_true"] = float((pred == ds.meta["clean_y_train"][mask]).float().mean())
            row["clean_train_acc"] = float((out_train[~mask].argmax(1) == ds.y_train[~mask]).float().mean())
    row["weight_norm"] = weight_norm(model)
    return row


def grok(config: GrokConfig | None = None, **overrides) -> GrokRun:
    """Train one configuration full-batch and return a :class:`GrokRun` (history: step, train/test loss
    and accuracy, lr, collapsed, max_logit, weight_norm, corrupted-label columns when labels are noisy, and
    ``nlm_cos`` — :func:`nlm_cosine` of the raw gradient — with ``track_nlm=True``).

    Each step: logits on all training pairs, loss (softmax or StableMax cross-entropy), backward,
    optional ⊥Grad, AdamW step. Evaluations at step 0, every step up to ``eval_every``, then every
    ``eval_every`` steps and at the end. A non-finite loss stops the run (``history.diverged``).
    ``run.seconds`` is the wall time of the whole call (data, model, training, evaluations).

    >>> run = grok(p=13, steps=20, eval_every=5)
    >>> list(run.history.step)[-1], run.history.diverged
    (20, False)
    """
    t0 = time.perf_counter()
    config = replace(config or GrokConfig(), **overrides)
    ds, model, opt = build(config)
    loss_fn = loss_function(config.loss)
    init_model, fitted_model = copy.deepcopy(model), None
    torch.manual_seed(config.seed)
    x, y = ds.train
    rows, diverged_step, stop_at = [], None, None
    with threads(config.threads, config.flush_denormal):
        rows.append({"step": 0, **_evaluate(model, ds, loss_fn, config.track_nlm), "lr": config.lr})
        model.train()
        for step in range(1, config.steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(logits(model, x, config.dropout, training=True), y)
            if not torch.isfinite(loss):
                diverged_step = step
                rows.append({"step": step, "train_loss": float("inf"), "train_acc": float("nan"),
                             "test_loss": float("nan"), "test_acc": float("nan"), "lr": config.lr})
                break
            loss.backward()
            opt.step()
            if step <= config.eval_every or step % config.eval_every == 0 or step == config.steps:
                rows.append({"step": step, **_evaluate(model, ds, loss_fn, config.track_nlm), "lr": config.lr})
                if fitted_model is None and rows[-1]["train_acc"] >= 1.0:
                    fitted_model = copy.deepcopy(model)
                if (config.stop_at_test_acc is not None and stop_at is None
                        and rows[-1]["test_acc"] >= config.stop_at_test_acc):
                    stop_at = math.ceil(config.stop_factor * step)
                if stop_at is not None and step >= stop_at:
                    break
        model.eval()
    seconds = time.perf_counter() - t0
    history = History(rows)
    history.diverged, history.diverged_step = diverged_step is not None, diverged_step
    history.stopped_early = stop_at is not None
    history.info = {"recipe": "grokking", **asdict(config), "seconds": seconds, "dataset": ds.name}
    return GrokRun(config, model, ds, history, seconds, init_model, fitted_model)


def steps_to(history: pd.DataFrame, column: str = "test_acc", threshold: float = 0.95) -> int | None:
    """The first evaluated step where ``history[column] ≥ threshold`` (None if never).

    >>> steps_to(pd.DataFrame({"step": [0, 10, 20], "test_acc": [0.0, 0.5, 0.97]}))
    20
    """
    if column not in history.columns:
        raise ValueError(f"column={column!r} is not recorded; available: {', '.join(map(str, history.columns))}")
    hit = history[history[column] >= threshold]
    return None if hit.empty else int(hit["step"].iloc[0])


def grokking_delay(history: pd.DataFrame, train_threshold: float = 1.0, test_threshold: float = 0.95) -> float:
    """Steps to ``test_threshold`` test accuracy ÷ steps to ``train_threshold`` train accuracy (inf if the
    test threshold is never reached, NaN if the training set is never fitted)."""
    t_train = steps_to(history, "train_acc", train_threshold)
    t_test = steps_to(history, "test_acc", test_threshold)
    if t_train is None:
        return float("nan")
    return float("inf") if t_test is None else t_test / max(t_train, 1)


# ----------------------------------------------------------------------------- Fourier & IPR
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


# ----------------------------------------------------------------------------- phase sweep
def classify_phase(history: pd.DataFrame, grok_delay: float = 5.0, test_threshold: float = 0.95) -> str:
    """"confusion" (training set not fitted), "memorization" (fitted, test < threshold), "grokking"
    (test reached ≥ ``grok_delay`` × the fitting step) or "comprehension" (reached sooner)."""
    delay = grokking_delay(history, 1.0, test_threshold)
    if math.isnan(delay):
        return "confusion"
    if math.isinf(delay):
        return "memorization"
    return "grokking" if delay >= grok_delay else "comprehension"


def _cache_path(config: GrokConfig):
    from .config import cache_dir_or_none

    path = cache_dir_or_none("grokking")
    return None if path is None else path / f"{_CACHE_VERSION}-{config.key()}.pkl"


_CACHE_VERSION = "v1"


def cached_grok(config: GrokConfig, cache: bool = True) -> History:
    """The history of ``grok(config)``, read from / written to ``cache_dir()/grokking`` when ``cache``.

    A damaged entry is recomputed; entries are written atomically; an unusable cache directory gives
    one warning and the run goes on uncached."""
    from .config import atomic_write

    if not isinstance(config, GrokConfig):
        raise TypeError(f"config must be a GrokConfig, got {type(config).__name__}")
    if not cache:
        return grok(config).history
    config.validate()
    path = _cache_path(config)
    if path is not None and path.exists():
        try:
            return pd.read_pickle(path)
        except Exception:  # a damaged cache entry: recompute
            pass
    history = grok(config).history
    if path is not None:
        atomic_write(path, history.to_pickle)
    return history


def phase_sweep(weight_decays: Sequence[float], train_fractions: Sequence[float], base: GrokConfig | None = None,
                cache: bool = True, grok_delay: float = 5.0) -> tuple[pd.DataFrame, dict]:
    """Train ``base`` at every (weight decay, train fraction) and classify each run's phase.

    Each run stops at 95 % test accuracy (or ``base.steps``). Returns (table, histories): the table
    has one row per cell (weight_decay, train_fraction, phase, step_train, step_test, delay,
    final_test_acc, seconds); ``histories[(wd, fraction)]`` is that run's History.
    """
    base = base or GrokConfig()
    if not isinstance(base, GrokConfig):
        raise TypeError(f"base must be a GrokConfig, got {type(base).__name__}")
    base = replace(base, stop_at_test_acc=base.stop_at_test_acc or 0.95, stop_factor=1.0)
    if len(weight_decays) == 0 or len(train_fractions) == 0:
        raise ValueError("weight_decays and train_fractions must be non-empty")
    rows, histories = [], {}
    for wd in weight_decays:
        for frac in train_fractions:
            cfg = replace(base, weight_decay=float(wd), train_fraction=float(frac))
            t0 = time.perf_counter()
            h = cached_grok(cfg, cache)
            histories[(float(wd), float(frac))] = h
            rows.append({"weight_decay": float(wd), "train_fraction": float(frac),
                         "phase": classify_phase(h, grok_delay), "step_train": steps_to(h, "train_acc", 1.0),
                         "step_test": steps_to(h, "test_acc", 0.95), "delay": grokking_delay(h),
                         "final_test_acc": float(h["test_acc"].iloc[-1]), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows), histories
