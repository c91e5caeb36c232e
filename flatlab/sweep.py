"""Sweeps over hyper-parameters and seeds: one tidy DataFrame, many small models trained at once.

``sweep(make_run, grid, seeds, backend)`` calls ``make_run(**point, seed=seed)`` for every grid point
and seed; each call returns a :class:`Run` (a model, a data set and the SGD settings ``fit`` takes).
The runs are trained by one of four backends and their histories stacked into one DataFrame with a
row per run × evaluation (the grid values, ``seed`` and ``run`` identify the run):

- ``"loop"``: ``flatlab.train.fit`` on each run, one after the other (the reference);
- ``"vmap"``: runs that share a data set, an architecture, a batch size and a loss are trained
  *together*: their parameters are stacked along a leading model axis and one step updates all of
  them. Stacks of Linear layers and element-wise activations (``flatlab.MLP``) run as batched
  matrix products (``torch.baddbmm``, one autograd call per step for the whole ensemble); other
  modules through ``torch.func`` (``vmap(grad_and_value(functional_call))``). Same seeds → same
  initial parameters, the same minibatch order as ``fit`` and the same SGD update (PyTorch's
  momentum and weight decay), so the numbers equal the loop's to float32 rounding;
- ``"joblib"``: the loop, run by ``joblib.Parallel`` in worker processes (one torch thread each);
- ``"ray"``: the loop as Ray tasks (``ray.remote``, one CPU each): a local instance
  (``ray.init(num_cpus=2, include_dashboard=False)``) unless Ray is already initialized or
  ``RAY_ADDRESS`` names a cluster (``pip install 'flatlab[cluster]'``).

Results are cached on disk (one pickle per sweep under ``flatlab.config.cache_dir()/sweeps``), keyed by
the *content* of the runs — initial parameters, data, hyper-parameters, probes — and the backend, so
re-running a sweep (or a widget reopening it) returns the stored frame at once. The content is hashed
on every call (a data set edited in place or given a new tensor is a new key); entries are written
atomically, a damaged entry is recomputed, and an unusable cache directory gives one warning and the
sweep runs uncached.

References: Jastrzębski et al. 2017, "Three factors influencing minima in SGD" (arXiv:1711.04623);
Cohen et al. 2021, "Gradient descent on neural networks typically occurs at the edge of stability"
(arXiv:2103.00065); Goyal et al. 2017, "Accurate, large minibatch SGD" (linear warmup,
arXiv:1706.02677); torch.func (functorch) model ensembling tutorial; Moritz et al. 2018, "Ray: a
distributed framework for emerging AI applications" (arXiv:1712.05889).
"""
from __future__ import annotations

import copy
import inspect
import itertools
import math
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from . import _validate as _v
from .config import atomic_write, cache_dir_or_none, cache_path, cache_warning
from .data import Dataset
from .models import MLP
from .train import LOSSES, _check_model_fits, check_dataset, fit, make_loss

__all__ = ["Run", "sweep", "finals", "train_batched", "BACKENDS", "VMAP_IMPLS"]

BACKENDS = ("vmap", "loop", "joblib", "ray")
VMAP_IMPLS = ("auto", "bmm", "func")
RUN_OPTIMIZERS = ("sgd", "adam", "adamw")
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Softplus, nn.Sigmoid, nn.Identity, nn.LeakyReLU, nn.ELU,
                nn.SiLU)
_CACHE_VERSION = 2
_RESERVED = ("seed", "run", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr_t", "diverged",
             "stopped_early")


# ----------------------------------------------------------------------------------------------
# one run
# ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One training run of a sweep: the arguments of ``flatlab.fit`` plus a warmup and final probes.

    SGD (PyTorch's, with ``momentum`` and ``weight_decay``) for ``steps`` steps on minibatches of
    ``batch_size`` (None: full batch) drawn like ``fit`` draws them from ``seed`` (None: the sweep's
    seed); the learning rate at step t is ``lr · min(1, t / warmup)`` (``warmup=0``: constant).
    ``probes`` are called during training as in ``fit``; ``final_probes`` once on the trained model,
    their values land on the run's last row (e.g. λ_max where a run stopped at ``target_loss``).
    The vmap backend needs ``optimizer="sgd"``; ``"adam"``/``"adamw"`` run on the other backends.

    >>> from flatlab.models import MLP; from flatlab.data import gaussian_clouds
    >>> run = Run(MLP(2, [8], 3, seed=0), gaussian_clouds(), steps=100, lr=0.1, batch_size=32)
    >>> run.lr_at(1), Run(run.model, run.dataset, 100, lr=0.1, warmup=10).lr_at(5)
    (0.1, 0.05)
    """

    model: nn.Module
    dataset: Dataset
    steps: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int | None = None
    loss: str = "auto"
    eval_every: int | None = None
    target_loss: float | None = None
    probes: Sequence[Any] = ()
    final_probes: Sequence[Any] = ()
    warmup: int = 0
    seed: int | None = None
    optimizer: str = "sgd"

    def __post_init__(self):
        _v.instance("model", self.model, nn.Module, "a torch.nn.Module")
        _v.instance("dataset", self.dataset, Dataset, "a flatlab.data.Dataset")
        self.steps = _v.integer("steps", self.steps, 1)
        self.lr = _v.positive("lr", self.lr)
        self.momentum = _v.number("momentum", self.momentum, 0, 1, high_open=True)
        self.weight_decay = _v.non_negative("weight_decay", self.weight_decay)
        self.batch_size = _v.integer("batch_size", self.batch_size, 1, allow_none=True)
        check_dataset(self.dataset)
        if self.batch_size is not None and self.batch_size > self.dataset.n_train:
            raise ValueError(f"batch_size={self.batch_size} must be at most the training-set size "
                             f"{self.dataset.n_train} (or None for full batch)")
        _v.choice("loss", self.loss, LOSSES)
        self.eval_every = _v.integer("eval_every", self.eval_every, 1, allow_none=True)
        self.target_loss = _v.non_negative("target_loss", self.target_loss, allow_none=True)
        self.warmup = _v.integer("warmup", self.warmup, 0)
        self.seed = _v.seed("seed", self.seed, allow_none=True)
        _v.choice("optimizer", self.optimizer, RUN_OPTIMIZERS)
        if self.warmup and self.optimizer != "sgd":
            raise ValueError(f"warmup={self.warmup} is only supported with optimizer='sgd'")
        for name in ("probes", "final_probes"):
            probes = list(getattr(self, name))
            for p in probes:
                if not callable(p) or (name == "probes" and (not isinstance(getattr(p, "every", None), int)
                                                              or p.every < 1)):
                    raise TypeError(f"each of {name} must be callable as probe(model, dataset, step)"
                                    + (" with an integer .every >= 1" if name == "probes" else ""))
            setattr(self, name, probes)
        _check_model_fits(self.model, self.dataset, make_loss(self.dataset, self.loss))

    @property
    def every(self) -> int:
        """Evaluation period (``fit``'s default: steps // 50)."""
        return self.eval_every or max(1, self.steps // 50)

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (1-based): ``lr · min(1, step / warmup)``."""
        return self.lr if not self.warmup else self.lr * min(1.0, step / self.warmup)


class _WarmupSGD(torch.optim.SGD):
    """PyTorch SGD whose learning rate follows ``Run.lr_at`` (the group's lr is the one just used)."""

    def __init__(self, params, run: Run):
        super().__init__(params, lr=run.lr_at(1), momentum=run.momentum, weight_decay=run.weight_decay)
        self._run, self._t = run, 0

    def step(self, closure=None):
        self._t += 1
        for group in self.param_groups:
            group["lr"] = self._run.lr_at(self._t)
        return super().step(closure)


# ----------------------------------------------------------------------------------------------
# loop backend (also what joblib and Ray workers run)
# ----------------------------------------------------------------------------------------------
def _final_values(run: Run, model: nn.Module, step: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in run.final_probes:
        out.update(p(model, run.dataset, step))
    return out


def _run_loop(run: Run, seed: int) -> pd.DataFrame:
    """Train one run with ``fit`` (on a copy of its model); a plain DataFrame with run-level columns."""
    model = copy.deepcopy(run.model)
    opt: Any = run.optimizer
    kwargs: dict[str, Any] = dict(lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
    if run.warmup:
        opt, kwargs = _WarmupSGD(model.parameters(), run), {}
    h = fit(model, run.dataset, opt, run.steps, batch_size=run.batch_size, loss=run.loss,
            eval_every=run.eval_every, probes=run.probes, target_loss=run.target_loss,
            seed=seed if run.seed is None else run.seed, progress=False, **kwargs)
    df = pd.DataFrame(h)
    for key, value in _final_values(run, model, int(df.step.iloc[-1])).items():
        df.loc[df.index[-1], key] = value
    df["diverged"], df["stopped_early"] = bool(h.diverged), bool(h.stopped_early)
    return df


def _run_in_worker(run: Run, seed: int) -> pd.DataFrame:
    torch.set_num_threads(1)  # one thread per worker process: the workers share the cores
    return _run_loop(run, seed)


# ----------------------------------------------------------------------------------------------
# vmap backend: an ensemble of models trained in lock step
# ----------------------------------------------------------------------------------------------
def _bmm_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a Linear/element-wise stack (``flatlab.MLP`` or ``nn.Sequential``), else None."""
    if isinstance(model, MLP) and type(model).forward is MLP.forward:
        net = model.net
    elif type(model) is nn.Sequential:
        net = model
    else:
        return None
    if len(net) == 0:
        return None
    for layer in net:
        if not (type(layer) is nn.Linear or isinstance(layer, _ELEMENTWISE)):
            return None
    if any(b is not None for b in net.buffers()):
        return None
    return list(net)


def _structure(model: nn.Module) -> tuple:
    return (type(model).__qualname__, repr(model),
            tuple((n, tuple(p.shape), str(p.dtype), p.requires_grad) for n, p in model.named_parameters()),
            tuple((n, tuple(b.shape), str(b.dtype)) for n, b in model.named_buffers()))


def _loss_kind(dataset: Dataset, loss: str) -> str:
    """What ``make_loss(dataset, loss)`` computes: cross_entropy, mse_onehot, mse or logistic."""
    if loss == "auto":
        loss = {"classification": "cross_entropy", "binary": "logistic", "regression": "mse"}[dataset.task]
    if loss == "mse" and dataset.task == "classification":
        return "mse_onehot"
    return loss


def _softmax_pair(out: Tensor) -> tuple[Tensor, Tensor]:
    """softmax and log-softmax over the last axis in one pass (torch's kernels are slow on a short
    last axis such as 10 classes: 3× here)."""
    z = out - out.amax(-1, keepdim=True)
    e = z.exp()
    total = e.sum(-1, keepdim=True)
    return e / total, z - total.log()


class _Ensemble:
    """M models with stacked parameters ``{name: (M, ...)}``: outputs, per-model losses, gradients.

    ``bmm``: a Linear/activation stack as batched matrix products; the backward pass is written out
    (ReLU, tanh, sigmoid, identity with any of make_loss's losses) or left to autograd (other
    activations). ``func``: any module, ``torch.func.vmap(grad_and_value(functional_call))``.
    """

    _MANUAL = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)

    def __init__(self, template: nn.Module, dataset: Dataset, loss: str, impl: str):
        self.kind = _loss_kind(dataset, loss)
        self.n_classes = dataset.n_classes
        self.y_event = tuple(dataset.y_train.shape[1:])
        self.x_event = tuple(dataset.x_train.shape[1:])
        self.names = [n for n, p in template.named_parameters() if p.requires_grad]
        frozen = {n: p.detach() for n, p in template.named_parameters() if not p.requires_grad}
        buffers = {n: b.detach() for n, b in template.named_buffers()}
        layers = _bmm_layers(template)
        if impl == "bmm" and (layers is None or frozen):
            raise ValueError("vmap_impl='bmm' needs a flatlab.MLP or an nn.Sequential of Linear layers and "
                             "element-wise activations (all trainable); use vmap_impl='func' for other models")
        self.impl = "bmm" if impl in ("auto", "bmm") and layers is not None and not frozen else "func"
        if self.impl == "bmm":
            prefix = "net." if isinstance(template, MLP) else ""
            self.layers: list[tuple] = []
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Linear):
                    self.layers.append(("linear", f"{prefix}{i}.weight",
                                        None if layer.bias is None else f"{prefix}{i}.bias"))
                else:
                    self.layers.append(("act", layer, None))
            self.manual = all(type(a) in self._MANUAL for k, a, _ in self.layers if k == "act")
        else:
            from torch.func import functional_call, grad_and_value, vmap

            loss_fn = make_loss(dataset, loss)

            def loss_single(params, x, y):
                return loss_fn(functional_call(template, (params, frozen, buffers), (x,)), y)

            def out_single(params, x):
                return functional_call(template, (params, frozen, buffers), (x,))

            self._gv = {s: vmap(grad_and_value(loss_single), in_dims=(0, None, None) if s else (0, 0, 0))
                        for s in (True, False)}
            self._out = {s: vmap(out_single, in_dims=(0, None if s else 0)) for s in (True, False)}

    # -- losses of M models at once (the formulas of flatlab.train.make_loss) ------------------
    def _residual_target(self, out: Tensor, y: Tensor) -> Tensor:
        if self.kind == "mse_onehot":
            return torch.nn.functional.one_hot(y, self.n_classes).to(out.dtype)
        return y

    def losses(self, out: Tensor, y: Tensor) -> Tensor:
        """Per-model loss (M,) of outputs (M, N, ...) against targets (N, ...) or (M, N, ...)."""
        m = out.shape[0]
        if y.dim() == len(self.y_event) + 1:
            y = y.unsqueeze(0).expand(m, *y.shape)
        if self.kind == "cross_entropy":
            logp = _softmax_pair(out)[1]
            return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
        if self.kind == "mse_onehot":
            return 0.5 * (out - self._residual_target(out, y)).pow(2).sum(-1).mean(1)
        if self.kind == "logistic":
            return torch.nn.functional.softplus(-y * out.reshape(y.shape)).flatten(1).mean(1)
        return 0.5 * (out.reshape(y.shape) - y).pow(2).flatten(1).mean(1)

    def _loss_and_grad(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-model losses (M,) and d loss_m / d out (the models' losses are independent)."""
        if self.kind == "cross_entropy":
            p, logp = _softmax_pair(out)
            values = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
            p.scatter_add_(-1, y.unsqueeze(-1), torch.full(y.unsqueeze(-1).shape, -1.0, dtype=out.dtype))
            return values, p / out.shape[1]
        values = self.losses(out, y)
        if self.kind == "mse_onehot":
            return values, (out - self._residual_target(out, y)) / out.shape[1]
        per_model = y[0].numel()
        if self.kind == "logistic":
            z = -y * out.reshape(y.shape)
            return values, (-y * torch.sigmoid(z) / per_model).reshape(out.shape)
        return values, ((out.reshape(y.shape) - y) / per_model).reshape(out.shape)

    # -- forward and backward ------------------------------------------------------------------
    def _linear(self, params, w_name, b_name, h):
        w = params[w_name].transpose(1, 2)
        return torch.bmm(h, w) if b_name is None else torch.baddbmm(params[b_name].unsqueeze(1), h, w)

    def outputs(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """Outputs (M, N, ...) for shared inputs x (N, ...) or per-model inputs (M, N, ...)."""
        shared = x.dim() == len(self.x_event) + 1
        if self.impl == "func":
            return self._out[shared](params, x)
        m = params[self.names[0]].shape[0]
        h = x.unsqueeze(0).expand(m, *x.shape) if shared else x
        for kind, a, b in self.layers:
            h = self._linear(params, a, b, h) if kind == "linear" else a(h)
        return h

    def grads_and_losses(self, params: dict[str, Tensor], x: Tensor, y: Tensor
                         ) -> tuple[dict[str, Tensor], Tensor]:
        """Gradients {name: (M, ...)} of each model's minibatch loss, and the losses (M,)."""
        shared = x.dim() == len(self.x_event) + 1
        if self.impl == "func":
            grads, values = self._gv[shared](params, x, y)
            return grads, values.detach()
        m = params[self.names[0]].shape[0]
        if shared:
            x = x.unsqueeze(0).expand(m, *x.shape)
            y = y.unsqueeze(0).expand(m, *y.shape)
        if not self.manual:
            leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
            with torch.enable_grad():
                values = self.losses(self.outputs(leaves, x), y)
                grads = torch.autograd.grad(values.sum(), [leaves[n] for n in self.names])
            return dict(zip(self.names, grads)), values.detach()
        with torch.no_grad():
            inputs, acts = [], []  # input of each Linear layer; (activation, its output) pairs
            h = x
            for kind, a, b in self.layers:
                if kind == "linear":
                    inputs.append(h)
                    h = self._linear(params, a, b, h)
                else:
                    h = a(h)
                acts.append(h)
            values, d = self._loss_and_grad(h, y)
            grads: dict[str, Tensor] = {}
            k = len(inputs)
            for pos in range(len(self.layers) - 1, -1, -1):
                kind, a, b = self.layers[pos]
                if kind == "act":
                    out = acts[pos]
                    if isinstance(a, nn.ReLU):
                        d = d * (out > 0)
                    elif isinstance(a, nn.Tanh):
                        d = d * (1 - out * out)
                    elif isinstance(a, nn.Sigmoid):
                        d = d * (out * (1 - out))
                    continue
                k -= 1
                grads[a] = torch.bmm(d.transpose(1, 2), inputs[k])
                if b is not None:
                    grads[b] = d.sum(1)
                if k > 0:
                    d = torch.bmm(d, params[a])
        return grads, values


@torch.no_grad()
def _evaluate_ensemble(ens: _Ensemble, params: dict[str, Tensor], ds: Dataset, chunk: int = 16) -> list[dict]:
    """``flatlab.train.evaluate`` for every model of the stack (full train and test sets)."""
    m = params[ens.names[0]].shape[0]
    rows: list[dict] = [{} for _ in range(m)]
    for lo in range(0, m, chunk):
        sub = {n: p[lo:lo + chunk] for n, p in params.items()}
        for split in ("train", "test"):
            x, y = getattr(ds, split)
            if len(x) == 0:
                for r in rows[lo:lo + chunk]:
                    r[f"{split}_loss"], r[f"{split}_acc"] = float("nan"), float("nan")
                continue
            out = ens.outputs(sub, x)
            losses = ens.losses(out, y).tolist()
            if ds.task == "classification":
                accs = (out.argmax(-1) == y).float().mean(1).tolist()
            elif ds.task == "binary":
                accs = (torch.sign(out.reshape(out.shape[0], *y.shape)) == y).float().flatten(1).mean(1).tolist()
            else:
                accs = [float("nan")] * out.shape[0]
            for j in range(out.shape[0]):
                rows[lo + j][f"{split}_loss"], rows[lo + j][f"{split}_acc"] = losses[j], accs[j]
    return rows


def _load(module: nn.Module, params: dict[str, Tensor], j: int) -> nn.Module:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in params:
                p.copy_(params[name][j])
    return module


def train_batched(runs: Sequence[Run], seeds: Sequence[int] | None = None, impl: str = "auto",
                  progress: Callable[[int], None] | None = None) -> list[pd.DataFrame]:
    """Train runs that share a data set, an architecture, a batch size and a loss *together*.

    Parameters of the M models are stacked ``θ[name]: (M, ...)``; every step draws each run's
    minibatch exactly as ``fit`` does (its own ``torch.Generator(seed)`` permutation, reshuffled each
    epoch), computes the M minibatch losses and their gradients at once, and applies PyTorch's SGD
    update to each model: ``b ← βb + (g + λθ)``, ``θ ← θ − η_t b``. Each run keeps its own
    evaluation schedule, probes, target loss and divergence test (``fit``'s); finished runs leave
    the stack. ``impl``: ``"bmm"`` (batched matrix products, Linear/activation stacks), ``"func"``
    (``torch.func.vmap``, any module) or ``"auto"``. Returns one DataFrame per run with the columns
    of ``fit``'s History plus ``diverged`` and ``stopped_early``.

    >>> from flatlab.models import MLP; from flatlab.data import gaussian_clouds
    >>> ds = gaussian_clouds(n_train=64)
    >>> runs = [Run(MLP(2, [8], 3, seed=s), ds, steps=20, lr=0.1, batch_size=16) for s in range(3)]
    >>> [len(h) for h in train_batched(runs, seeds=[0, 1, 2])]
    [21, 21, 21]
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs must not be empty")
    for i, r in enumerate(runs):
        _v.instance(f"runs[{i}]", r, Run, "a flatlab.sweep.Run")
    _v.choice("impl", impl, VMAP_IMPLS)
    check_dataset(runs[0].dataset)  # again: the data may have been edited since the runs were made
    seeds = [0] * len(runs) if seeds is None else list(seeds)
    if len(seeds) != len(runs):
        raise ValueError(f"seeds has {len(seeds)} entries for {len(runs)} runs")
    first = runs[0]
    structure = _structure(first.model)
    for i, r in enumerate(runs):
        if r.optimizer != "sgd":
            raise ValueError(f"runs[{i}].optimizer={r.optimizer!r}: the vmap backend trains SGD only; "
                             f"use backend='loop', 'joblib' or 'ray'")
        if (r.dataset is not first.dataset and not _same_data(r.dataset, first.dataset)) or \
                r.batch_size != first.batch_size or r.loss != first.loss or _structure(r.model) != structure:
            raise ValueError(f"runs[{i}] differs from runs[0] in its data set, batch size, loss or architecture; "
                             f"train_batched needs them equal (sweep groups runs for you)")
    ds, bs = first.dataset, first.batch_size
    make_loss(ds, first.loss)  # validates the loss for the task
    template = copy.deepcopy(first.model)
    ens = _Ensemble(template, ds, first.loss, impl)
    m = len(runs)
    params = {n: torch.stack([dict(r.model.named_parameters())[n].detach() for r in runs]).clone()
              for n in ens.names}
    dtype = params[ens.names[0]].dtype
    work = copy.deepcopy(template)  # a module to hand to probes, loaded with one run's parameters
    x_all, y_all = ds.train
    n = ds.n_train
    run_seeds = [s if r.seed is None else r.seed for r, s in zip(runs, seeds)]
    torch.manual_seed(run_seeds[0])  # as fit does: the global RNG state after a sweep is reproducible
    gens = [torch.Generator().manual_seed(s) for s in run_seeds]
    # All runs of the stack share n and the batch size, so they reshuffle at the same steps.
    orders = torch.stack([torch.randperm(n, generator=g) for g in gens]) if bs is not None else None
    pos = 0
    rows: list[list[dict]] = [[] for _ in range(m)]
    diverged, stopped = [False] * m, [False] * m
    active = list(range(m))  # run index held by each slot of the stack
    buf: dict[str, Tensor] | None = None
    warm = any(r.warmup for r in runs)

    def vec(values: list[float]) -> Tensor:
        return torch.tensor(values, dtype=dtype)

    def hyper() -> tuple[Tensor, Tensor | None, Tensor | None]:
        mom = [runs[i].momentum for i in active]
        wd = [runs[i].weight_decay for i in active]
        return (vec([runs[i].lr for i in active]), vec(mom) if any(mom) else None, vec(wd) if any(wd) else None)

    def record(step: int, slots: list[int]) -> None:
        sub = {k: v[slots] for k, v in params.items()}
        evals = _evaluate_ensemble(ens, sub, ds)
        for k, slot in enumerate(slots):
            i = active[slot]
            row = {"step": step, **evals[k], "lr": runs[i].lr_at(max(step, 1))}
            probes = [p for p in runs[i].probes if step % p.every == 0 or step == runs[i].steps]
            if probes:
                _load(work, params, slot)
                for p in probes:
                    row.update(p(work, ds, step))
            rows[i].append(row)

    record(0, list(range(m)))
    initial = [rows[i][0]["train_loss"] for i in range(m)]
    lrs, mom, wd = hyper()
    max_steps = max(r.steps for r in runs)
    for step in range(1, max_steps + 1):
        if not active:
            break
        if bs is None:
            xb, yb = x_all, y_all
        else:
            if pos + bs > n:
                orders = torch.stack([torch.randperm(n, generator=gens[i]) for i in active])
                pos = 0
            idx = orders[:, pos:pos + bs]
            pos += bs
            xb, yb = x_all[idx], y_all[idx]
        grads, values = ens.grads_and_losses(params, xb, yb)
        if warm:
            lrs = vec([runs[i].lr_at(step) for i in active])
        with torch.no_grad():
            new_buf, total = {}, torch.zeros(len(active), dtype=torch.float64)
            for name in ens.names:
                p, g = params[name], grads[name]
                shape = (-1,) + (1,) * (p.dim() - 1)
                if wd is not None:
                    g = g + wd.view(shape) * p
                if mom is not None:
                    g = g.clone() if buf is None else buf[name] * mom.view(shape) + g
                    new_buf[name] = g
                params[name] = p = p - lrs.view(shape) * g
                total += p.flatten(1).sum(1, dtype=torch.float64)  # non-finite iff some entry is
            buf = new_buf if mom is not None else None
        values = values.tolist()
        finite = torch.isfinite(total).tolist()
        done, evaluate = [], []
        for slot, i in enumerate(active):
            r, value = runs[i], values[slot]
            if not math.isfinite(value) or value > max(1e3, 1e4 * max(initial[i], 1e-12)) or not finite[slot]:
                diverged[i] = True
                rows[i].append({"step": step, "train_loss": value if math.isfinite(value) else float("inf"),
                                "train_acc": float("nan"), "test_loss": float("nan"), "test_acc": float("nan"),
                                "lr": r.lr_at(step)})
                done.append(slot)
            elif step % r.every == 0 or step == r.steps or (r.target_loss is not None and value <= r.target_loss):
                evaluate.append(slot)
        if evaluate:
            record(step, evaluate)
            for slot in evaluate:
                i = active[slot]
                if runs[i].target_loss is not None and rows[i][-1]["train_loss"] <= runs[i].target_loss:
                    stopped[i] = True
                    done.append(slot)
                elif step >= runs[i].steps:
                    done.append(slot)
        if progress is not None:
            progress(len(active))
        if done:
            for slot in done:
                i = active[slot]
                if runs[i].final_probes:
                    _load(work, params, slot)
                    rows[i][-1].update(_final_values(runs[i], work, step))
            keep = [s for s in range(len(active)) if s not in set(done)]
            params = {k: v[keep] for k, v in params.items()}
            if buf is not None:
                buf = {k: v[keep] for k, v in buf.items()}
            if orders is not None:
                orders = orders[keep]
            active = [active[s] for s in keep]
            lrs, mom, wd = hyper()
    out = []
    for i in range(m):
        df = pd.DataFrame(rows[i])
        df["diverged"], df["stopped_early"] = diverged[i], stopped[i]
        out.append(df)
    return out


def _same_data(a: Dataset, b: Dataset) -> bool:
    return _dataset_fingerprint(a) == _dataset_fingerprint(b)


# ----------------------------------------------------------------------------------------------
# fingerprints (cache keys and grouping)
# ----------------------------------------------------------------------------------------------
_FP_MEMO: dict | None = None  # within one sweep call only: {(id(ds), tensor ids and versions): ...}


@contextmanager
def _fingerprint_memo():
    """Within the block a data set's fingerprint is computed once per (object, tensors, tensor versions);
    outside it, on every call. Nothing is remembered across calls, so an edit between two sweeps
    (in place, which bumps ``tensor._version``, through ``.data`` or NumPy, which does not, or by
    assigning a new tensor) is always seen."""
    global _FP_MEMO
    outer = _FP_MEMO
    if outer is None:
        _FP_MEMO = {}
    try:
        yield
    finally:
        _FP_MEMO = outer


def _tensor_fp(t: Tensor) -> str:
    return joblib.hash((str(t.dtype), tuple(t.shape), t.detach().cpu().contiguous().numpy()))


def _dataset_fingerprint(ds: Dataset) -> str:
    tensors = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    memo_key = (id(ds), ds.name, ds.task, ds.n_classes, tuple((id(t), t._version) for t in tensors))
    if _FP_MEMO is not None:
        hit = _FP_MEMO.get(memo_key)
        if hit is not None and hit[0] is ds and all(a is b for a, b in zip(hit[1], tensors)):
            return hit[2]
    fp = joblib.hash((ds.name, ds.task, ds.n_classes, [_tensor_fp(t) for t in tensors]))
    if _FP_MEMO is not None:
        _FP_MEMO[memo_key] = (ds, tensors, fp)  # holding the objects keeps their ids from being reused
    return fp


def _value_fp(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        return _tensor_fp(value)
    if isinstance(value, np.ndarray):
        return joblib.hash(value)
    if isinstance(value, Dataset):
        return _dataset_fingerprint(value)
    if isinstance(value, (list, tuple)):
        return [_value_fp(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _value_fp(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, nn.Module):
        return (_structure(value), [_tensor_fp(t) for t in value.state_dict().values()])
    if inspect.isfunction(value) or inspect.ismethod(value):
        return _callable_fp(value, depth + 1)
    if callable(value) and not hasattr(value, "__dict__"):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    if hasattr(value, "__dict__"):
        return (type(value).__module__, type(value).__qualname__,
                {k: _value_fp(v, depth + 1) for k, v in sorted(vars(value).items())})
    return repr(value)


def _code_fp(code) -> tuple:
    consts = tuple(_code_fp(c) if inspect.iscode(c) else repr(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names)


def _callable_fp(fn: Callable, depth: int = 0) -> Any:
    if inspect.ismethod(fn):
        return ("method", _value_fp(fn.__self__, depth), fn.__func__.__qualname__)
    code = getattr(fn, "__code__", None)
    if code is None:
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    closure = [_value_fp(c.cell_contents, depth + 1) for c in (fn.__closure__ or ())]
    return (fn.__module__, fn.__qualname__, _code_fp(code), closure, _value_fp(fn.__defaults__, depth + 1))


def _run_fingerprint(run: Run, seed: int) -> Any:
    spec = {f.name: getattr(run, f.name) for f in fields(run) if f.name not in ("model", "dataset")}
    spec["seed"] = seed if run.seed is None else run.seed
    return (_value_fp(run.model), _dataset_fingerprint(run.dataset), _value_fp(spec))


# ----------------------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------------------
def _points(grid: Any) -> list[dict]:
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid must not be empty: give {name: [values, ...]} or a list of dicts")
        keys = list(grid)
        values = []
        for k in keys:
            v = grid[k]
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
                v = [v]
            v = list(v)
            if not v:
                raise ValueError(f"grid[{k!r}] is empty: give at least one value")
            values.append(v)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        points = [dict(p) if isinstance(p, Mapping) else None for p in grid]
        if not points:
            raise ValueError("grid must not be empty: give {name: [values, ...]} or a list of dicts")
        if any(p is None for p in points):
            raise ValueError("grid given as a list must hold dicts {name: value}")
        if any(set(p) != set(points[0]) for p in points):
            raise ValueError("grid given as a list of dicts needs the same names in every dict")
    else:
        raise ValueError(f"grid must be a dict {{name: [values, ...]}} or a list of dicts, "
                         f"got {type(grid).__name__}")
    for name in points[0]:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid names must be identifiers (make_run's keyword arguments), got {name!r}")
        if name in _RESERVED:
            raise ValueError(f"grid name {name!r} is reserved (a column of the sweep frame); "
                             f"reserved: {', '.join(_RESERVED)}" + ("; seeds go in seeds=..." if name == "seed" else ""))
    return points


def _seeds(seeds: Any) -> list[int]:
    example = "e.g. seeds=range(4) or seeds=[0]"
    if isinstance(seeds, (bool, int, np.integer, str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a non-empty sequence of non-negative integers, {example}; "
                        f"got {type(seeds).__name__} {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError(f"seeds=[] must be a non-empty sequence of non-negative integers, {example}")
    seeds = [_v.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} holds duplicates")
    return seeds


def _init_ray(n_jobs: int):
    """Ray, initialized: connected to ``RAY_ADDRESS`` when set, else a local instance of n_jobs CPUs."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("backend='ray' needs Ray: pip install 'flatlab[cluster]' (or pip install ray)") from err
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)  # connects to the cluster named by RAY_ADDRESS
        else:
            ray.init(num_cpus=max(1, n_jobs), include_dashboard=False, log_to_driver=False)
    return ray


def _execute(backend: str, runs: list[Run], seeds: list[int], n_jobs: int, impl: str,
             progress: bool) -> list[pd.DataFrame]:
    """Train every run with ``backend``; one frame per run, in order (what the cache stores)."""
    from .config import progress_bar

    bar = progress_bar(total=sum(r.steps for r in runs), unit="step", desc=f"sweep ({backend}, {len(runs)} runs)",
               disable=not progress, leave=False)
    try:
        if backend == "loop":
            out = []
            for r, s in zip(runs, seeds):
                out.append(_run_loop(r, s))
                bar.update(r.steps)
            return out
        if backend == "vmap":
            out: list[pd.DataFrame | None] = [None] * len(runs)
            groups: dict[tuple, list[int]] = {}
            for i, r in enumerate(runs):
                k = (_dataset_fingerprint(r.dataset), _structure(r.model), r.batch_size, r.loss, r.optimizer)
                groups.setdefault(k, []).append(i)
            for idx in groups.values():
                if runs[idx[0]].optimizer != "sgd":  # nothing to batch: the loop trains it
                    for i in idx:
                        out[i] = _run_loop(runs[i], seeds[i])
                        bar.update(runs[i].steps)
                    continue
                frames = train_batched([runs[i] for i in idx], [seeds[i] for i in idx], impl=impl,
                                       progress=bar.update)
                for i, f in zip(idx, frames):
                    out[i] = f
            return out  # type: ignore[return-value]
        if backend == "joblib":
            jobs = (joblib.delayed(_run_in_worker)(r, s) for r, s in zip(runs, seeds))
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
            out = []
            for r, f in zip(runs, parallel(jobs)):
                out.append(f)
                bar.update(r.steps)
            return out
        ray = _init_ray(n_jobs)
        task = ray.remote(num_cpus=1)(_run_in_worker)
        refs = [task.remote(r, s) for r, s in zip(runs, seeds)]
        steps = {ref: r.steps for ref, r in zip(refs, runs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            bar.update(sum(steps[ref] for ref in ready))
        return ray.get(refs)
    finally:
        bar.close()


def sweep(make_run: Callable[..., Run], grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]],
          seeds: Iterable[int] = (0,), backend: str = "vmap", *, cache: bool | str | Path = True,
          n_jobs: int = 2, progress: bool = True, vmap_impl: str = "auto") -> pd.DataFrame:
    """Train ``make_run(**point, seed=s)`` for every grid point and seed; one tidy DataFrame.

    ``grid``: ``{name: values}`` (the Cartesian product) or a list of ``{name: value}`` points.
    The frame has a row per run × evaluation: the grid names, ``seed``, ``run`` (0, 1, … in the order
    points × seeds), then ``fit``'s History columns (step, train/test loss and accuracy, lr, probe
    columns, final-probe columns on each run's last row), ``diverged`` and ``stopped_early``; History's
    ``lr`` column is renamed ``lr_t`` (the rate of the step just taken) so a grid may be named ``lr``.
    ``backend``: ``"vmap"`` (many models at once), ``"loop"``, ``"joblib"`` or ``"ray"`` (``n_jobs``
    workers). ``cache``: True (under ``cache_dir()/sweeps``), a directory, or False. ``frame.attrs``
    holds ``backend``, ``from_cache`` and ``seconds``.

    >>> import flatlab
    >>> ds = flatlab.data.gaussian_clouds(n_train=64)
    >>> make = lambda lr, seed: Run(flatlab.MLP(2, [8], 3, seed=seed), ds, steps=20, lr=lr, batch_size=16)
    >>> df = sweep(make, {"lr": [0.05, 0.1]}, seeds=[0, 1], cache=False, progress=False)
    >>> df.groupby(["lr", "seed"]).size().tolist()
    [21, 21, 21, 21]
    """
    _v.choice("backend", backend, BACKENDS)
    _v.choice("vmap_impl", vmap_impl, VMAP_IMPLS)
    _v.function("make_run", make_run, "make_run(**point, seed=seed) -> Run")
    n_jobs = _v.integer("n_jobs", n_jobs, 1)
    progress = _v.boolean("progress", progress)
    if cache is not None and not isinstance(cache, (bool, str, os.PathLike)):
        raise TypeError(f"cache must be True, False, None or a directory (str or Path), got {type(cache).__name__}")
    if isinstance(cache, str) and not cache.strip():
        raise ValueError("cache='' names no directory: give a directory, True (the default location) or False")
    points, seed_list = _points(grid), _seeds(seeds)
    if backend == "ray":
        _init_ray(n_jobs)  # fail early (ImportError) before building the runs
    runs, run_seeds, ids = [], [], []
    for point in points:
        for s in seed_list:
            run = make_run(**point, seed=s)
            if not isinstance(run, Run):
                raise TypeError(f"make_run(**{point}, seed={s}) returned {type(run).__name__}; "
                                f"it must return a flatlab.sweep.Run")
            runs.append(run)
            run_seeds.append(s)
            ids.append({**point, "seed": s})
    t0 = time.perf_counter()
    from_cache = False
    with _fingerprint_memo():
        if cache is False or cache is None:
            frames = _execute(backend, runs, run_seeds, n_jobs, vmap_impl, progress)
        else:
            location = cache_path() / "sweeps" if cache is True else Path(os.path.expanduser(str(cache)))
            key = joblib.hash((_CACHE_VERSION, backend, vmap_impl if backend == "vmap" else "",
                               [_run_fingerprint(r, s) for r, s in zip(runs, run_seeds)]))
            path = location / key / "output.pkl"
            frames = _load_cached(path, key, len(runs))
            from_cache = frames is not None
            if frames is None:
                frames = _execute(backend, runs, run_seeds, n_jobs, vmap_impl, progress)
                _store_cached(path, key, frames)
    parts = []
    for k, (ident, f) in enumerate(zip(ids, frames)):
        f = f.rename(columns={"lr": "lr_t"})
        for j, (name, value) in enumerate(ident.items()):
            f.insert(j, name, [value] * len(f))
        f.insert(len(ident), "run", k)
        parts.append(f)
    df = pd.concat(parts, ignore_index=True)
    df.attrs.update(backend=backend, from_cache=from_cache, seconds=time.perf_counter() - t0,
                    grid=list(points[0]))
    return df


def _load_cached(path: Path, key: str, n_runs: int) -> list[pd.DataFrame] | None:
    """The frames stored under ``path``, or None: missing, or damaged (then recomputed, with a warning)."""
    try:
        with open(path, "rb") as fh:
            stored = pickle.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:  # unreadable: the cache is not usable, the sweep runs
        cache_warning(path.parent, err)
        return None
    except Exception as err:  # truncated, unreadable, or written by an incompatible version
        warnings.warn(f"the cached sweep {path} is damaged ({type(err).__name__}: {err}); recomputing it",
                      RuntimeWarning, stacklevel=3)
        return None
    frames = stored.get("frames") if isinstance(stored, dict) else None
    if (stored.get("key") if isinstance(stored, dict) else None) != key or not isinstance(frames, list) \
            or len(frames) != n_runs or not all(isinstance(f, pd.DataFrame) for f in frames):
        warnings.warn(f"the cached sweep {path} does not hold this sweep's results; recomputing it",
                      RuntimeWarning, stacklevel=3)
        return None
    return frames


def _store_cached(path: Path, key: str, frames: list[pd.DataFrame]) -> None:
    """Write the frames atomically; an unusable directory warns once and the sweep goes on uncached."""
    if cache_dir_or_none(root=path.parent) is None:
        return
    atomic_write(path, lambda fh: pickle.dump({"version": _CACHE_VERSION, "key": key, "frames": frames}, fh,
                                              protocol=pickle.HIGHEST_PROTOCOL))


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run of a sweep frame (where final probes are recorded).

    >>> finals(pd.DataFrame({"run": [0, 0, 1], "step": [0, 5, 0]})).step.tolist()
    [5, 0]
    """
    if "run" not in df.columns:
        raise ValueError("df must be a sweep frame with a 'run' column")
    return df.groupby("run", sort=True).tail(1).reset_index(drop=True)


class _CallableModule(type(os)):
    """``flatlab.sweep(...)`` calls :func:`sweep`, while ``flatlab.sweep.Run`` … stay reachable."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
