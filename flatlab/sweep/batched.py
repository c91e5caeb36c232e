"""The vmap backend: :func:`train_batched` trains runs that share a data set, an architecture, a batch size and a
loss together on an ``_Ensemble`` (each run's own minibatch order, SGD update, schedule, probes and stop), and
``VMAP_IMPLS``."""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from .. import _validate as _v
from ..train import EpochSampler, Recorder, check_dataset, make_loss
from .ensemble import _Ensemble, _evaluate_ensemble, _load
from .fingerprints import _same_data, _structure
from .loop import _final_values
from .run import Run



VMAP_IMPLS = ("auto", "bmm", "func")


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
    # All runs of the stack share n and the batch size, so they reshuffle at the same steps: one sampler, a stream
    # per run (fit's sampler, so a run's minibatches are those fit would draw with its seed).
    sampler = EpochSampler(n, bs, gens) if bs is not None else None
    recs = [Recorder(divergence_factor=1e4) for _ in range(m)]  # fit's divergence rule, one per run
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
            row = recs[i].add(step, evals[k], lr=runs[i].lr_at(max(step, 1)))
            probes = [p for p in runs[i].probes if step % p.every == 0 or step == runs[i].steps]
            if probes:
                _load(work, params, slot)
                for p in probes:
                    row.update(p(work, ds, step))

    record(0, list(range(m)))
    lrs, mom, wd = hyper()
    max_steps = max(r.steps for r in runs)
    for step in range(1, max_steps + 1):
        if not active:
            break
        if bs is None:
            xb, yb = x_all, y_all
        else:
            idx = sampler.next(active)
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
            if recs[i].diverges(value, finite[slot]):
                recs[i].diverge(step, value, lr=r.lr_at(step))
                done.append(slot)
            elif step % r.every == 0 or step == r.steps or (r.target_loss is not None and value <= r.target_loss):
                evaluate.append(slot)
        if evaluate:
            record(step, evaluate)
            for slot in evaluate:
                i = active[slot]
                if runs[i].target_loss is not None and recs[i].last["train_loss"] <= runs[i].target_loss:
                    recs[i].stop()
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
                    recs[i].last.update(_final_values(runs[i], work, step))
            keep = [s for s in range(len(active)) if s not in set(done)]
            params = {k: v[keep] for k, v in params.items()}
            if buf is not None:
                buf = {k: v[keep] for k, v in buf.items()}
            active = [active[s] for s in keep]
            lrs, mom, wd = hyper()
    return [rec.frame() for rec in recs]
