"""Training loops: ``fit`` for models on data sets, ``trajectory`` for GD on 2-D landscapes.

``fit`` returns a :class:`History` (a pandas DataFrame, one row per evaluation) with
``diverged`` / ``diverged_step`` attributes: a NaN/inf (or exploding) loss stops the run
cleanly instead of raising. Probes are called on the model every ``probe.every`` steps and add
columns to the history (e.g. ``flatlab.curvature.CurvatureProbe`` adds ``lambda_max``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import _validate as _v
from . import optim
from .data import Dataset
from .landscapes import Landscape

LOSSES = ("auto", "cross_entropy", "mse", "logistic")
OPTIMIZERS = ("sgd", "adam", "adamw")


class Probe(Protocol):
    """What ``fit`` needs of a probe: ``every`` (steps) and a call returning named numbers."""

    every: int

    def __call__(self, model: nn.Module, dataset: Dataset, step: int) -> dict[str, float]: ...


class History(pd.DataFrame):
    """One row per evaluation: step, train_loss, train_acc, test_loss, test_acc, lr, probes.

    Attributes: ``diverged`` (bool), ``diverged_step`` (int or None), ``stopped_early`` (the run
    reached ``target_loss``), ``info`` (a dict describing the run).
    """

    _metadata = ["diverged", "diverged_step", "stopped_early", "info"]

    @property
    def _constructor(self):
        return History

    @property
    def final(self) -> pd.Series:
        """The last evaluated row."""
        return self.iloc[-1]


class EpochSampler:
    """Minibatch indices without replacement, reshuffled when an epoch cannot fill another batch (its last,
    incomplete batch is dropped) — the one sampler of ``fit``, PAPA's population and the vmapped sweeps.

    One *stream* per entry of ``generators``, each with its own order; a generator may appear several times
    (PAPA draws its members' orders from one generator in turn). ``next(streams)`` returns the next batch of
    each listed stream as a ``(len(streams), batch_size)`` index tensor; all streams share the position in the
    epoch, and a reshuffle draws new orders for the listed streams only (a sweep's stopped runs draw no more).

    >>> s = EpochSampler(5, 2, [torch.Generator().manual_seed(0)])
    >>> [s.next()[0].tolist() for _ in range(3)]   # two batches of the first epoch, then a new epoch
    [[4, 0], [1, 3], [3, 4]]
    """

    def __init__(self, n: int, batch_size: int, generators: Sequence[torch.Generator]):
        self.n, self.batch_size, self.generators = n, batch_size, list(generators)
        self._orders = {i: torch.randperm(n, generator=g) for i, g in enumerate(self.generators)}
        self._pos = 0

    def next(self, streams: Iterable[int] | None = None) -> torch.Tensor:
        streams = range(len(self.generators)) if streams is None else list(streams)
        if self._pos + self.batch_size > self.n:
            for i in streams:
                self._orders[i] = torch.randperm(self.n, generator=self.generators[i])
            self._pos = 0
        idx = torch.stack([self._orders[i][self._pos:self._pos + self.batch_size] for i in streams])
        self._pos += self.batch_size
        return idx


def make_loss(dataset: Dataset, loss: str = "auto") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``(model_output, y) -> scalar`` for a data set.

    ``"auto"``: cross-entropy for classification, logistic for ±1 labels, MSE for regression.
    ``"mse"`` on a classification task regresses one-hot targets: mean over examples of
    ½‖f(x) − e_y‖² (the setting of Cohen et al.'s edge-of-stability experiments).
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    _v.choice("loss", loss, LOSSES)
    if loss == "auto":
        loss = {"classification": "cross_entropy", "binary": "logistic", "regression": "mse"}[dataset.task]
    if loss == "cross_entropy":
        if dataset.task != "classification":
            raise ValueError(f"loss='cross_entropy' needs a classification task, not {dataset.task!r}")
        return F.cross_entropy
    if loss == "logistic":
        if dataset.task != "binary":
            raise ValueError(f"loss='logistic' needs ±1 labels (task 'binary'), not {dataset.task!r}")
        return lambda out, y: F.softplus(-y * out.reshape(y.shape)).mean()
    if dataset.task == "classification":
        k = dataset.n_classes
        return lambda out, y: 0.5 * (out - F.one_hot(y, k).to(out.dtype)).pow(2).sum(1).mean()
    return lambda out, y: 0.5 * (out.reshape(y.shape) - y).pow(2).mean()


def accuracy(out: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Fraction correct (NaN for regression)."""
    if task == "classification":
        return float((out.argmax(1) == y).float().mean())
    if task == "binary":
        return float((torch.sign(out.reshape(y.shape)) == y).float().mean())
    return float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, loss_fn=None) -> dict[str, float]:
    """Full-batch loss and accuracy on the train and test sets."""
    loss_fn = loss_fn or make_loss(dataset)
    was_training = model.training
    model.eval()
    row = {}
    for split in ("train", "test"):
        x, y = getattr(dataset, split)
        if len(x) == 0:
            row[f"{split}_loss"], row[f"{split}_acc"] = float("nan"), float("nan")
            continue
        out = model(x)
        row[f"{split}_loss"] = float(loss_fn(out, y))
        row[f"{split}_acc"] = accuracy(out, y, dataset.task)
    model.train(was_training)
    return row


def make_optimizer(params: Iterable, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                   weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """Build a torch optimizer by name (``"sgd"``, ``"adam"``, ``"adamw"``) with checked arguments, through
    :func:`flatlab.optim.make_optimizer` (which knows every optimizer; ``fit`` accepts any instance)."""
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or a torch.optim.Optimizer instance, "
                        f"got {type(optimizer).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is unknown; allowed values: {', '.join(OPTIMIZERS)} "
                         "or a torch.optim.Optimizer instance")
    lr = _v.positive("lr", lr)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    weight_decay = _v.non_negative("weight_decay", weight_decay)
    betas = _v.pair("betas", betas, 0, 1, high_open=True)
    if optimizer == "sgd":
        return optim.make_optimizer(params, "sgd", lr, momentum=momentum, weight_decay=weight_decay)
    return optim.make_optimizer(params, optimizer, lr, betas=betas, weight_decay=weight_decay)


def check_dataset(dataset: Dataset) -> None:
    """Raise a ValueError naming the problem when ``dataset`` cannot be trained on.

    Checked on the *whole* train and test sets: at least one training example; finite features
    (and finite targets for regression); classification labels integers in ``0..n_classes-1``;
    binary labels ±1. ``fit`` and ``flatlab.sweep`` call it before training, so a mistyped or
    mutated data set is reported as such, not as a diverged run or a crash mid-run.
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    if dataset.n_train == 0:
        raise ValueError(f"dataset {dataset.name!r} has no training examples (x_train has shape "
                         f"{tuple(dataset.x_train.shape)}): fit needs at least one")
    k = dataset.n_classes
    if dataset.task == "classification" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"dataset.n_classes={k!r} must be a positive integer (≥ 1) for a classification task")
    for split in ("train", "test"):
        x, y = getattr(dataset, split)
        _v.finite_tensor(f"dataset.x_{split}", x)
        if dataset.task == "classification":
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise ValueError(f"dataset.y_{split} must hold integer class labels 0..{k - 1} (dtype torch.long), "
                                 f"got dtype {y.dtype}; convert with y.long()")
            if y.dim() != 1:
                raise ValueError(f"dataset.y_{split} must be a vector of class labels, got shape {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
                bad = int(((y < 0) | (y >= k)).sum())
                raise ValueError(f"dataset.y_{split} holds {bad} label(s) outside 0..{k - 1} (found "
                                 f"{int(y.min())}..{int(y.max())}); labels must be in 0..n_classes-1 = 0..{k - 1}")
        elif dataset.task == "binary":
            if y.numel() and not bool(((y == 1) | (y == -1)).all()):
                raise ValueError(f"dataset.y_{split} must hold labels ±1 for the binary task (task 'binary'); "
                                 f"found other values, e.g. {y[(y != 1) & (y != -1)][0].item()!r}")
        else:
            _v.finite_tensor(f"dataset.y_{split}", y)


def _check_model_fits(model: nn.Module, dataset: Dataset, loss_fn) -> None:
    """One forward pass on two training examples, in eval mode and without gradients, so the model's
    state (BatchNorm running statistics, dropout's random numbers, every module's mode) is unchanged."""
    x, y = dataset.x_train[:2], dataset.y_train[:2]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
            loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"dataset {dataset.name!r} does not fit the model: inputs of shape {tuple(dataset.x_train.shape)} "
            f"({dataset.x_train.dtype}) with targets {tuple(dataset.y_train.shape)} gave: {err}") from None
    finally:
        for m, mode in modes:
            m.training = mode
    if dataset.task == "classification" and (out.dim() != 2 or out.shape[1] != dataset.n_classes):
        raise ValueError(f"dataset {dataset.name!r} has {dataset.n_classes} classes but the model outputs "
                         f"shape {tuple(out.shape[1:])}")


def _check_optimizer(opt: torch.optim.Optimizer, model: nn.Module) -> None:
    """The optimizer must train this model: its parameters are the model's, some require grad, and
    its groups' learning rate, weight decay and momentum are finite and in range."""
    own = {id(p) for p in model.parameters()}
    params = [p for g in opt.param_groups for p in g["params"]]
    foreign = sum(id(p) not in own for p in params)
    if foreign:
        raise ValueError(f"optimizer holds {foreign} of {len(params)} parameter tensor(s) that are not parameters of "
                         f"the model: fit would train nothing it evaluates; build the optimizer over this model, "
                         f"e.g. torch.optim.SGD(model.parameters(), lr=0.1)")
    if not any(p.requires_grad for p in params):
        raise ValueError("none of the optimizer's parameters requires grad (requires_grad=False): nothing can train")
    for i, group in enumerate(opt.param_groups):
        where = f"optimizer.param_groups[{i}]"
        _v.positive("lr", group["lr"], hint=where)
        for key in ("weight_decay", "momentum"):
            if isinstance(group.get(key), (int, float, np.number, torch.Tensor)):
                _v.non_negative(key, group[key], hint=where)


def _schedule_factor(value, step: int) -> float:
    """The checked learning-rate multiplier ``schedule(step - 1)`` of step ``step``."""
    return _v.non_negative(f"schedule({step - 1})", value,
                           hint=f"the learning-rate multiplier η_t/η of step {step}")


def fit(model: nn.Module, dataset: Dataset, optimizer: str | torch.optim.Optimizer = "sgd", steps: int = 1000, *,
        lr: float | None = None, momentum: float = 0.0, weight_decay: float = 0.0, batch_size: int | None = None,
        loss: str = "auto", eval_every: int | None = None, probes: Iterable[Probe] = (),
        target_loss: float | None = None, seed: int = 0, progress: bool | None = None,
        divergence_factor: float = 1e4, schedule: Callable[[int], float] | None = None,
        clip: float | None = None, callback: Callable[[nn.Module, int], None] | None = None,
        land: bool = False) -> History:
    """Train ``model`` on ``dataset`` for ``steps`` optimizer steps and return its :class:`History`.

    Each step: a minibatch B (sampled without replacement, reshuffled every epoch; full batch when
    ``batch_size`` is None), loss L_B(w), ``optimizer.step(closure)`` (so two-pass optimizers such
    as SAM work unchanged). Every ``eval_every`` steps (and at step 0 and the last step) the full
    train and test sets are evaluated and every probe with ``step % probe.every == 0`` is called.

    The run stops early when the full-batch train loss reaches ``target_loss`` (compare sharpness
    at equal loss) and when the loss diverges: NaN/inf, or larger than ``divergence_factor`` × the
    initial loss (and > 1e3) — then ``history.diverged`` is True and ``history.diverged_step`` says
    when. ``seed`` fixes the minibatch order and torch's global RNG (stochastic optimizers).

    One step can jump well past ``target_loss`` (a momentum step near the end of training lowered the
    loss by 30 % in chapter 02), and a run stopped lower looks flatter. With ``land=True`` the run lands
    *on* the target: between the parameters of the last evaluation above the target and those of the
    one below it, bisection along the straight segment finds the point whose full-batch train loss is
    ``target_loss`` to within 0.1 % and not above it (or after 40 halvings), the model is left there and the last row
    re-evaluated (same ``step``; ``history.info["land_t"]`` is the position on the segment, 1 = the
    iterate itself). Only parameters move; buffers and the optimizer's state stay those of the iterate.

    Options for adaptive-optimizer studies: before step t every group's learning rate is set to its
    base value × ``schedule(t − 1)`` (the ``LambdaLR`` convention; restored afterwards); ``clip``
    clips the gradient norm (``clip_grad_norm_``) after each backward pass; ``callback(model, step)``
    runs after every step (e.g. to average weights). With a schedule or clipping the history also has
    ``grad_norm`` (before clipping, at the evaluated steps).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> h = fit(MLP(2, [16], 3, seed=0), gaussian_clouds(), "sgd", steps=50, lr=0.1, progress=False)
    >>> bool(h.final.train_acc > 0.8), h.diverged
    (True, False)
    """
    _v.instance("model", model, nn.Module, "a torch.nn.Module")
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    steps = _v.integer("steps", steps, 1)
    check_dataset(dataset)
    if batch_size is not None:
        batch_size = _v.integer("batch_size", batch_size, hint="or None for full batch")
        if not (1 <= batch_size <= dataset.n_train):
            raise ValueError(f"batch_size={batch_size!r} must be an integer between 1 and the training-set size "
                             f"{dataset.n_train} (or None for full batch)")
    eval_every = _v.integer("eval_every", eval_every, 1, allow_none=True) or max(1, steps // 50)
    target_loss = _v.non_negative("target_loss", target_loss, allow_none=True)
    seed = _v.seed("seed", seed)
    if progress is not None:
        progress = _v.boolean("progress", progress)
    _v.positive("divergence_factor", divergence_factor)
    _v.function("schedule", schedule, "schedule(completed_steps) -> learning-rate multiplier", allow_none=True)
    clip = _v.positive("clip", clip, allow_none=True)
    _v.function("callback", callback, "callback(model, step)", allow_none=True)
    land = _v.boolean("land", land)
    if land and target_loss is None:
        raise ValueError("land=True needs a target_loss to land on")
    track_norm = schedule is not None or clip is not None
    probes = list(probes)
    for p in probes:
        if not callable(p) or not isinstance(getattr(p, "every", None), int) or p.every < 1:
            raise TypeError("each probe must be callable as probe(model, dataset, step) and have an integer .every ≥ 1")
    loss_fn = make_loss(dataset, loss)
    if isinstance(optimizer, torch.optim.Optimizer):
        for name, value, default in (("lr", lr, None), ("momentum", momentum, 0.0), ("weight_decay", weight_decay, 0.0)):
            if value is not default and value != default:
                raise ValueError(f"{name}={value!r} must not be given together with an optimizer instance "
                                 f"(set it on the optimizer)")
        opt = optimizer
    else:
        opt = make_optimizer(model.parameters(), optimizer, lr=0.1 if lr is None else lr, momentum=momentum,
                             weight_decay=weight_decay)
    _check_optimizer(opt, model)
    _check_model_fits(model, dataset, loss_fn)

    torch.manual_seed(seed)
    sampler = EpochSampler(dataset.n_train, batch_size or dataset.n_train, [torch.Generator().manual_seed(seed)])
    x_all, y_all = dataset.train

    def batch():
        if batch_size is None:
            return x_all, y_all
        idx = sampler.next()[0]
        return x_all[idx], y_all[idx]

    rows: list[dict] = []
    diverged, diverged_step, stopped = False, None, False
    base_lrs = [g["lr"] for g in opt.param_groups]
    params = [p for g in opt.param_groups for p in g["params"]]
    grad_norm = math.nan
    calls, got_grad = 0, False

    def record(step: int) -> dict:
        row = {"step": step, **evaluate(model, dataset, loss_fn), "lr": opt.param_groups[0]["lr"]}
        if track_norm:
            row["grad_norm"] = grad_norm
        for p in probes:
            if step % p.every == 0 or step == steps:
                row.update(p(model, dataset, step))
        rows.append(row)
        return row

    record(0)
    initial_loss = rows[0]["train_loss"]
    above = [p.detach().clone() for p in params] if land else None  # parameters of the last evaluation above target
    land_t = None
    limit = max(1e3, divergence_factor * max(initial_loss, 1e-12))
    show = progress if progress is not None else steps >= 1000
    bar = None
    if show:
        from .config import progress_bar
        bar = progress_bar(total=steps, desc=f"{type(opt).__name__}", leave=False)
    model.train()
    try:
        for step in range(1, steps + 1):
            xb, yb = batch()
            if schedule is not None:
                factor = _schedule_factor(schedule(step - 1), step)
                for g, base in zip(opt.param_groups, base_lrs):
                    g["lr"] = base * factor
            norms: list[float] = []

            def closure():
                nonlocal calls, got_grad
                calls += 1
                opt.zero_grad(set_to_none=True)
                value = loss_fn(model(xb), yb)
                value.backward()
                if not got_grad:
                    got_grad = any(p.grad is not None for p in params)
                if track_norm:  # the norm before clipping, of the first pass of a two-pass optimizer
                    norms.append(float(torch.nn.utils.clip_grad_norm_(params, math.inf if clip is None else clip)))
                return value

            value = opt.step(closure)
            if step == 1 and not got_grad:
                raise ValueError(
                    f"no parameter received a gradient in step 1: {type(opt).__name__}.step(closure) "
                    + ("never called the closure (an optimizer used by fit must call closure() for the loss and "
                       "its gradients)" if calls == 0 else "called the closure, but the loss does not depend on the "
                       "optimizer's parameters"))
            value = float(value.detach()) if torch.is_tensor(value) else float("nan") if value is None else float(value)
            grad_norm = norms[0] if norms else math.nan
            if callback is not None:
                callback(model, step)
            if bar is not None:
                bar.update(1)
            if not math.isfinite(value) or value > limit or not all(torch.isfinite(p).all() for p in model.parameters()):
                diverged, diverged_step = True, step
                rows.append({"step": step, "train_loss": value if math.isfinite(value) else float("inf"),
                             "train_acc": float("nan"), "test_loss": float("nan"), "test_acc": float("nan"),
                             "lr": opt.param_groups[0]["lr"], **({"grad_norm": grad_norm} if track_norm else {})})
                break
            if step % eval_every == 0 or step == steps or (target_loss is not None and value <= target_loss):
                row = record(step)
                if target_loss is not None and row["train_loss"] <= target_loss:
                    stopped = True
                    if land:
                        land_t = _land(model, dataset, loss_fn, params, above, target_loss)
                        rows.pop()
                        record(step)
                    break
                if land:
                    torch._foreach_copy_(above, [p.detach() for p in params])
    finally:
        if schedule is not None:  # leave the optimizer with its base learning rates
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base
        if bar is not None:
            bar.close()
    history = History(rows)
    history.diverged, history.diverged_step, history.stopped_early = diverged, diverged_step, stopped
    history.info = {"optimizer": type(opt).__name__, "lr": opt.param_groups[0]["lr"], "batch_size": batch_size,
                    "steps": steps, "seed": seed, "dataset": dataset.name}
    if track_norm:
        history.info.update(clip=clip, warmup_steps=getattr(schedule, "warmup_steps", None))
    if land:
        history.info["land_t"] = land_t
    return history


@torch.no_grad()
def _land(model: nn.Module, dataset: Dataset, loss_fn, params: list[torch.Tensor], above: list[torch.Tensor], target: float,
          rtol: float = 1e-3, max_halvings: int = 40) -> float:
    """Move ``params`` to the point of the segment from ``above`` (loss > target) to themselves (loss ≤ target)
    where the full-batch train loss equals ``target`` (bisection); return its position t ∈ (0, 1]."""
    below = [p.detach().clone() for p in params]
    x, y = dataset.train
    was_training = model.training
    model.eval()

    def loss_at(t: float) -> float:
        for p, a, b in zip(params, above, below):
            p.copy_(torch.lerp(a, b, t))
        return float(loss_fn(model(x), y))

    lo, hi, at_hi = 0.0, 1.0, loss_at(1.0)   # loss(lo) > target ≥ loss(hi)
    for _ in range(max_halvings):
        if at_hi >= target * (1 - rtol):
            break
        t = 0.5 * (lo + hi)
        value = loss_at(t)
        if value > target:
            lo = t
        else:
            hi, at_hi = t, value
    loss_at(hi)
    t = hi
    model.train(was_training)
    return t


@dataclass
class Trajectory:
    """Iterates of an optimizer on a 2-D landscape."""

    points: np.ndarray  # (T+1, 2)
    losses: np.ndarray  # (T+1,)
    lr: float
    momentum: float
    diverged: bool
    diverged_step: int | None
    basin: str | None  # the basin the last iterate lies in (None if diverged)

    @property
    def end(self) -> np.ndarray:
        return self.points[-1]


def optimizer_trajectory(landscape: Landscape, w: nn.Parameter, optimizer: torch.optim.Optimizer, steps: int,
                         lr: float, momentum: float = 0.0, bound: float = 1e3) -> Trajectory:
    """Step a torch ``optimizer`` of the 2-D parameter ``w`` on ``landscape`` for ``steps`` steps.

    Every step calls ``optimizer.step(closure)``, where the closure puts the analytic gradient
    ∇L(w) into ``w.grad`` (no autograd graph) and returns L(w), so two-pass optimizers (SAM) work
    too. Leaving |w| ≤ ``bound`` or a non-finite iterate counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> w = nn.Parameter(torch.tensor([-0.95, 0.5], dtype=torch.float64))
    >>> optimizer_trajectory(sharp_and_flat(), w, torch.optim.SGD([w], lr=0.11), 300, lr=0.11).basin
    'flat'
    """
    _v.instance("landscape", landscape, Landscape, "a flatlab.landscapes.Landscape")
    _v.instance("w", w, torch.Tensor, "a 2-element torch tensor (an nn.Parameter)")
    if w.shape != (2,):
        raise ValueError(f"w must be a point (x, y) of shape (2,), got shape {tuple(w.shape)}")
    _v.instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer over [w]")
    steps = _v.integer("steps", steps, 0)
    _v.positive("lr", lr)
    _v.number("momentum", momentum, 0, 1, high_open=True)
    bound = _v.positive("bound", bound)

    def closure():
        loss, w.grad = landscape.value_and_grad(w.detach())
        return loss

    points, diverged_step = [w.detach().clone()], None
    for t in range(1, steps + 1):
        optimizer.step(closure)
        if not bool(torch.isfinite(w).all()) or float(w.detach().abs().max()) > bound:
            diverged_step = t
            break
        points.append(w.detach().clone())
    pts = torch.stack(points)
    with torch.no_grad():
        losses = landscape(pts).numpy()
    return Trajectory(pts.numpy(), losses, float(lr), float(momentum), diverged_step is not None, diverged_step,
                      None if diverged_step else landscape.which_basin(pts[-1]))


def _start_point(start) -> torch.Tensor:
    try:
        w = torch.as_tensor(np.asarray(start, dtype=float), dtype=torch.float64)
    except (TypeError, ValueError):
        raise TypeError(f"start must be a point (x, y) of two numbers, got {type(start).__name__} {start!r}") from None
    if w.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"start={tuple(w.tolist())} must be a finite point (x, y)")
    return w


def trajectory(landscape: Landscape, start, lr: float, steps: int = 300, momentum: float = 0.0,
               noise: float = 0.0, seed: int = 0, bound: float = 1e3) -> Trajectory:
    """Heavy-ball GD w ← w − η ∇L(w) + β (w − w_prev) (+ Gaussian gradient noise of std ``noise``).

    Leaving the box |w| ≤ ``bound`` or a non-finite iterate counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> land = sharp_and_flat()
    >>> trajectory(land, (-0.95, 0.5), lr=0.09).basin, trajectory(land, (-0.95, 0.5), lr=0.11).basin
    ('sharp', 'flat')
    """
    _v.instance("landscape", landscape, Landscape, "a flatlab.landscapes.Landscape")
    lr = _v.positive("lr", lr)
    steps = _v.integer("steps", steps, 1)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    noise = _v.non_negative("noise", noise)
    seed = _v.seed("seed", seed)
    bound = _v.positive("bound", bound)
    w = _start_point(start)
    gen = torch.Generator().manual_seed(seed)
    points, prev = [w.clone()], w.clone()
    diverged_step = None
    for t in range(1, steps + 1):
        g = landscape.grad(w)
        if noise:
            g = g + noise * torch.randn(2, generator=gen, dtype=torch.float64)
        w, prev = w - lr * g + momentum * (w - prev), w
        if not torch.isfinite(w).all() or w.abs().max() > bound:
            diverged_step = t
            break
        points.append(w.clone())
    pts = torch.stack(points)
    with torch.no_grad():
        losses = landscape(pts).numpy()
    return Trajectory(pts.numpy(), losses, float(lr), float(momentum), diverged_step is not None, diverged_step,
                      None if diverged_step else landscape.which_basin(pts[-1]))
