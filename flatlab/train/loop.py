"""``fit``: train a model on a data set, stop on divergence or at a target loss (and land on it)."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn

from .. import _validate as _v
from ..data import Dataset
from .core import Probe, _check_model_fits, _check_optimizer, _schedule_factor, check_dataset, evaluate, make_loss, make_optimizer
from .history import History, Recorder
from .sampler import EpochSampler


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

    rec = Recorder(divergence_factor)
    base_lrs = [g["lr"] for g in opt.param_groups]
    params = [p for g in opt.param_groups for p in g["params"]]
    grad_norm = math.nan
    calls, got_grad = 0, False

    def record(step: int) -> dict:
        row = rec.add(step, evaluate(model, dataset, loss_fn), lr=opt.param_groups[0]["lr"])
        if track_norm:
            row["grad_norm"] = grad_norm
        for p in probes:
            if step % p.every == 0 or step == steps:
                row.update(p(model, dataset, step))
        return row

    record(0)
    above = [p.detach().clone() for p in params] if land else None  # parameters of the last evaluation above target
    land_t = None
    from ..config import PROGRESS_MIN_STEPS

    show = progress if progress is not None else steps >= PROGRESS_MIN_STEPS
    bar = None
    if show:
        from ..config import progress_bar
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
            if rec.diverges(value) or not all(torch.isfinite(p).all() for p in model.parameters()):
                rec.diverge(step, value, lr=opt.param_groups[0]["lr"], **({"grad_norm": grad_norm} if track_norm else {}))
                break
            if step % eval_every == 0 or step == steps or (target_loss is not None and value <= target_loss):
                row = record(step)
                if target_loss is not None and row["train_loss"] <= target_loss:
                    rec.stop()
                    if land:
                        land_t = _land(model, dataset, loss_fn, params, above, target_loss)
                        rec.rows.pop()
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
    history = rec.history(optimizer=type(opt).__name__, lr=opt.param_groups[0]["lr"], batch_size=batch_size,
                          steps=steps, seed=seed, dataset=dataset.name)
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

    def move(t: float) -> None:
        for p, a, b in zip(params, above, below):
            p.copy_(torch.lerp(a, b, t))

    def loss_at(t: float) -> float:
        move(t)
        return float(loss_fn(model(x), y))

    lo, hi, at_hi = 0.0, 1.0, loss_at(1.0)   # loss(lo) > target ≥ loss(hi)
    t = hi                                     # where the parameters are now
    for _ in range(max_halvings):
        if at_hi >= target * (1 - rtol):
            break
        t = 0.5 * (lo + hi)
        value = loss_at(t)
        if value > target:
            lo = t
        else:
            hi, at_hi = t, value
    if t != hi:   # the last point tried was above the target: go back to the best one below it
        move(hi)
    model.train(was_training)
    return hi
