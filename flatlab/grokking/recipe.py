"""The grokking recipe: :class:`GrokConfig` (the chapter's tuned defaults, ``MODELS``, ``DTYPES``),
:class:`GrokRun`, the :func:`threads` context, :func:`build` (data, model, optimizer) and :func:`grok`,
the lean full-batch training loop with its evaluation; :func:`grok_many` runs several side by side."""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from .. import _validate as _v
from ..config import PROGRESS_MIN_STEPS
from ..config import threads as threads   # the recipe's thread context (re-exported: gk.threads)
from ..data import MODULAR_OPS, Dataset, modular_arithmetic
from ..models import ModularMLP
from ..optim import make_optimizer
from ..train import History, Recorder
from .collapse import softmax_collapse
from .forward import logits, nlm_cosine, weight_norm
from .losses import LOSSES, loss_function
from .milestones import steps_to
from .transformer import OneLayerTransformer

MODELS = ("mlp", "transformer")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


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
    batchnorm: bool = False       # BatchNorm1d on the hidden units after the ReLU (mlp only)
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
        _v.boolean("batchnorm", self.batchnorm)
        for name in ("dropout", "batchnorm"):
            if getattr(self, name) and self.model != "mlp":
                raise ValueError(f"{name}={getattr(self, name)!r} needs model='mlp' (the transformer has neither), "
                                 f"got model={self.model!r}")
        total = self.p * (self.p - 1 if self.op == "/" else self.p)
        n_train = max(1, int(round(self.train_fraction * total)))
        if n_train >= total:
            raise ValueError(f"train_fraction={self.train_fraction!r} leaves the test split empty: with p={self.p} "
                             f"and op={self.op!r} there are {total} pairs and {n_train} would be for training; "
                             f"choose train_fraction below {1 - 0.5 / total:.6g}")
        return self

    def replace(self, **changes) -> "GrokConfig":
        """A copy with ``changes`` (``dataclasses.replace``): ``noisy.replace(weight_decay=5.0)``.

        >>> GrokConfig(p=7).replace(weight_decay=0.0).weight_decay
        0.0
        """
        return replace(self, **changes)

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
        model = ModularMLP(config.p, config.embed_dim, config.hidden, seed=config.seed, batchnorm=config.batchnorm)
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


def grok(config: GrokConfig | None = None, progress: bool | None = None, **overrides) -> GrokRun:
    """Train one configuration full-batch and return a :class:`GrokRun` (history: step, train/test loss
    and accuracy, lr, collapsed, max_logit, weight_norm, corrupted-label columns when labels are noisy, and
    ``nlm_cos`` — :func:`nlm_cosine` of the raw gradient — with ``track_nlm=True``).

    Each step: logits on all training pairs, loss (softmax or StableMax cross-entropy), backward,
    optional ⊥Grad, AdamW step. Evaluations at step 0, every step up to ``eval_every``, then every
    ``eval_every`` steps and at the end. A non-finite loss stops the run (``history.diverged``).
    ``run.seconds`` is the wall time of the whole call (data, model, training, evaluations). ``progress``: a progress
    bar over the steps, moved at each evaluation with the test accuracy beside it (default: for runs of ≥ 1000 steps,
    as ``flatlab.fit`` does).

    >>> run = grok(p=13, steps=20, eval_every=5)
    >>> list(run.history.step)[-1], run.history.diverged
    (20, False)
    """
    t0 = time.perf_counter()
    config = replace(config or GrokConfig(), **overrides)
    show = config.steps >= PROGRESS_MIN_STEPS if progress is None else _v.boolean("progress", progress)
    ds, model, opt = build(config)
    loss_fn = loss_function(config.loss)
    init_model, fitted_model = copy.deepcopy(model), None
    torch.manual_seed(config.seed)
    x, y = ds.train
    rec, stop_at = Recorder(divergence_factor=None), None   # a non-finite loss stops the run
    bar = None
    if show:
        from ..config import progress_bar
        bar = progress_bar(total=config.steps, desc="grokking", leave=False)
    with threads(config.threads, config.flush_denormal):
        try:
            rec.add(0, _evaluate(model, ds, loss_fn, config.track_nlm), lr=config.lr)
            model.train()
            for step in range(1, config.steps + 1):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(logits(model, x, config.dropout, training=True), y)
                if not torch.isfinite(loss):
                    rec.diverge(step, math.inf, lr=config.lr)
                    break
                loss.backward()
                opt.step()
                if step <= config.eval_every or step % config.eval_every == 0 or step == config.steps:
                    row = rec.add(step, _evaluate(model, ds, loss_fn, config.track_nlm), lr=config.lr)
                    if bar is not None:
                        bar.update(step - bar.n)
                        bar.set_postfix(test=f"{row['test_acc']:.0%}", refresh=False)
                    if fitted_model is None and row["train_acc"] >= 1.0:
                        fitted_model = copy.deepcopy(model)
                    if (config.stop_at_test_acc is not None and stop_at is None
                            and row["test_acc"] >= config.stop_at_test_acc):
                        stop_at = math.ceil(config.stop_factor * step)
                        rec.stop()
                    if stop_at is not None and step >= stop_at:
                        break
            model.eval()
        finally:
            if bar is not None:
                bar.close()
    seconds = time.perf_counter() - t0
    history = rec.history(recipe="grokking", **asdict(config), seconds=seconds, dataset=ds.name)
    return GrokRun(config, model, ds, history, seconds, init_model, fitted_model)


def _grok_and_rng(config: GrokConfig, progress: bool | None = False) -> tuple[GrokRun, torch.Tensor]:
    return grok(config, progress=progress), torch.get_rng_state()


def _runs_with_progress(fn, args: list[tuple], n_jobs: int, desc: str) -> list:
    """``[fn(*a) for a in args]``, in ``n_jobs`` worker processes when > 1 (joblib, results in order), with a progress
    bar over the finished calls when there are several."""
    from ..config import progress
    if n_jobs > 1:
        from joblib import Parallel, delayed
        calls = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(*a) for a in args)
    else:
        calls = (fn(*a) for a in args)
    return list(progress(calls, desc, total=len(args)))


def grok_many(configs, n_jobs: int | None = None) -> list[GrokRun]:
    """``[grok(c) for c in configs]``, the runs side by side in ``n_jobs`` worker processes (joblib).

    Each run seeds itself (``GrokConfig.seed``) and is single-threaded (``GrokConfig.threads``), so a worker gives the
    run :func:`grok` gives here, bit for bit; torch's global random state is left as the last run leaves it, as the
    calls one after another would. ``None``: one worker per core this process may use (:func:`flatlab.config.cores`,
    so 1 — the runs one after another — where the harness or the test suite runs chapters side by side), at most
    one per run. A progress bar counts the finished runs; a single run has none, and shows :func:`grok`'s bar over
    its steps instead (one of ≥ 1000 steps, as ``grok`` does).

    >>> [int(r.history.step.iloc[-1]) for r in grok_many([GrokConfig(p=7, steps=5), GrokConfig(p=7, steps=10)], n_jobs=1)]
    [5, 10]
    """
    from ..config import cores

    configs = list(configs)
    for i, c in enumerate(configs):
        _v.instance(f"configs[{i}]", c, GrokConfig, "a flatlab.grokking.GrokConfig")
        c.validate()
    n_jobs = _v.integer("n_jobs", n_jobs, 1, allow_none=True)
    n_jobs = min(cores() if n_jobs is None else n_jobs, len(configs))
    step_bars = None if len(configs) == 1 else False   # None: grok's own choice (a bar for long runs)
    results = _runs_with_progress(_grok_and_rng, [(c, step_bars) for c in configs], n_jobs, "grokking runs")
    if results:
        torch.set_rng_state(results[-1][1])
    return [run for run, _ in results]
