"""Weight averaging: the average of models, SWA along one run (Izmailov et al. 2018, arXiv:1803.05407) and PAPA
across a population (Jolicoeur-Martineau et al. 2023, arXiv:2304.03094)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .. import _validate as _v
from ..data import Dataset
from ..train import EpochSampler, History, Recorder, evaluate, fit, make_loss
from .schedules import make_adaptive_optimizer


# ----------------------------------------------------------------------------------------------
# weight averaging: SWA and PAPA
# ----------------------------------------------------------------------------------------------
def _check_same_architecture(models: Sequence[nn.Module], name: str = "models") -> None:
    if not isinstance(models, (list, tuple)) or len(models) == 0:
        raise ValueError(f"{name} must be a non-empty list of torch.nn.Module")
    for i, m in enumerate(models):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{name}[{i}] must be a torch.nn.Module, got {type(m).__name__}")
    ref = {k: v.shape for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        other = {k: v.shape for k, v in m.state_dict().items()}
        if other != ref:
            raise ValueError(f"{name}[{i}] does not have the parameters and shapes of {name}[0]")


def average_models(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> nn.Module:
    """A copy of ``models[0]`` whose floating-point parameters and buffers are Σᵢ wᵢ θᵢ (uniform by default).

    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> m = average_models([a, b])
    >>> bool(torch.allclose(m.weight, (a.weight + b.weight) / 2))
    True
    """
    _check_same_architecture(models)
    if weights is None:
        w = np.full(len(models), 1.0 / len(models))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(models),) or not np.all(np.isfinite(w)) or abs(w.sum() - 1) > 1e-9 or np.any(w < 0):
            raise ValueError(f"weights must be {len(models)} non-negative numbers summing to 1, got {weights!r}")
    out = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    new = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            new[key] = sum(float(wi) * s[key].detach() for wi, s in zip(w, states))
        else:
            new[key] = value.clone()
    out.load_state_dict(new)
    return out


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@dataclass
class SWAResult:
    """``averaged``: the SWA model (an ``nn.Module``); ``snapshots``: the averaged iterates (copies);
    ``history``: the training run (a ``flatlab.train.History``)."""

    averaged: nn.Module
    snapshots: list
    history: History


def swa(model: nn.Module, dataset: Dataset, optimizer: torch.optim.Optimizer, steps: int, *, every: int = 20,
        start: int = 0, batch_size: int | None = None, loss: str = "auto", seed: int = 0,
        keep_snapshots: bool = True, **fit_kwargs) -> SWAResult:
    """Stochastic weight averaging: train ``steps`` more steps and average the iterates
    θ_SWA = (1/n) Σ θ_{t_i} at t_i = ``start`` + ``every``, ``start`` + 2·``every``, … (Izmailov et al. 2018).

    The running average is ``torch.optim.swa_utils.AveragedModel``; when the model has BatchNorm
    layers its statistics are recomputed on the training set with ``swa_utils.update_bn``.
    ``model`` itself ends at the last iterate. Extra keyword arguments go to :func:`flatlab.fit` (``schedule``,
    ``clip``, …).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> m = MLP(2, [8], 3, seed=0); opt = torch.optim.SGD(m.parameters(), lr=0.1)
    >>> len(swa(m, gaussian_clouds(), opt, 40, every=10).snapshots)
    4
    """
    from torch.optim.swa_utils import AveragedModel, update_bn

    every = _v.integer("every", every, 1)
    start = _v.integer("start", start, 0)
    averaged = AveragedModel(model, use_buffers=False)
    snapshots: list[nn.Module] = []

    def collect(m: nn.Module, step: int) -> None:
        if step > start and (step - start) % every == 0:
            averaged.update_parameters(m)
            if keep_snapshots:
                snapshots.append(copy.deepcopy(m))

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer instance, got {type(optimizer).__name__}")
    history = fit(model, dataset, optimizer, steps, batch_size=batch_size, loss=loss, seed=seed, callback=collect,
                  **{"progress": False, **fit_kwargs})
    if int(averaged.n_averaged) == 0:
        raise ValueError(f"no iterate was averaged: steps={steps} must exceed start={start} by at least every={every}")
    result = copy.deepcopy(averaged.module)
    if _has_batchnorm(result):
        x = dataset.x_train
        size = batch_size or len(x)
        update_bn([x[i:i + size] for i in range(0, len(x), size)], result)
    result.eval()
    return SWAResult(result, snapshots, history)


def papa_pull_(stacked: Sequence[Tensor], alpha: float) -> None:
    """PAPA's pull toward the population average, in place: θᵢ ← α θᵢ + (1−α) θ̄ for each stacked
    tensor of shape (population, …). The average θ̄ is unchanged; deviations shrink by α.

    >>> t = torch.tensor([[0.0], [2.0]]); papa_pull_([t], 0.5); t.flatten().tolist()
    [0.5, 1.5]
    """
    alpha = _v.number("alpha", alpha, 0, 1)
    with torch.no_grad():
        for t in stacked:
            if not isinstance(t, Tensor) or t.dim() < 1:
                raise ValueError("stacked must hold tensors with a leading population dimension")
            mean = t.mean(0, keepdim=True)
            t.mul_(alpha).add_(mean, alpha=1 - alpha)


@dataclass
class PAPAResult:
    """``average``: the population average (an ``nn.Module``); ``members``: the trained members;
    ``history``: a ``flatlab.train.History`` (step, members' mean train loss, the average's train and test loss
    and accuracy; ``info`` describes the run)."""

    average: nn.Module
    members: list
    history: History


PAPA_OPTIMIZERS = ("sgd", "momentum", "adam", "radam")


def papa(models: Sequence[nn.Module], dataset: Dataset, steps: int, *, optimizer: str = "adam", lr: float = 1e-3,
         alpha: float = 0.99, pull_every: int = 10, batch_size: int | None = None, loss: str = "auto",
         seed: int = 0, eval_every: int | None = None, **optimizer_kwargs) -> PAPAResult:
    """PopulAtion Parameter Averaging (Jolicoeur-Martineau et al. 2023, arXiv:2304.03094).

    The population (``models``: same architecture, e.g. different initializations) is trained in
    parallel — its parameters stacked along a leading dimension and evaluated with
    ``torch.func.vmap(functional_call)``, each member on its own minibatch order — and every
    ``pull_every`` steps each member is pulled toward the average, θᵢ ← α θᵢ + (1−α) θ̄
    (:func:`papa_pull_`). The result is the average θ̄ of the final population. ``optimizer`` is
    one of ``"sgd"``, ``"momentum"``, ``"adam"``, ``"radam"`` — elementwise rules, so one optimizer
    over the stacked tensors is exactly one optimizer per member. ``alpha=1`` is an ensemble
    trained independently and averaged only at the end.

    Departures from the paper: the authors pull with α = 0.99 (every 10 steps) and start from a
    *diverse* population — different initializations, data orders, augmentations and regularization —
    and their headline result is a test-accuracy gain of the average over its members. The default
    here is their α = 0.99; chapter 06 uses α = 0.9 on copies of one trained SGD net whose only
    diversity is the minibatch order, and measures curvature and training loss, not an accuracy gain.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> pop = [MLP(2, [8], 3, seed=s) for s in range(3)]
    >>> res = papa(pop, gaussian_clouds(), 30, optimizer="sgd", lr=0.1)
    >>> len(res.members), list(res.history.columns)[:2]
    (3, ['step', 'members_train_loss'])
    """
    from torch.func import functional_call, stack_module_state

    _check_same_architecture(models)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a flatlab.data.Dataset, got {type(dataset).__name__}")
    steps = _v.integer("steps", steps, 1)
    if optimizer not in PAPA_OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is unknown; allowed values: {', '.join(PAPA_OPTIMIZERS)}")
    alpha = _v.number("alpha", alpha, 0, 1)
    pull_every = _v.integer("pull_every", pull_every, 1)
    if batch_size is not None:
        batch_size = _v.integer("batch_size", batch_size, 1)
        if batch_size > dataset.n_train:
            raise ValueError(f"batch_size={batch_size} must be <= the training-set size {dataset.n_train}")
    eval_every = max(1, steps // 20) if eval_every is None else _v.integer("eval_every", eval_every, 1)
    loss_fn = make_loss(dataset, loss)
    k = len(models)
    params, buffers = stack_module_state(list(models))
    names = list(params)
    leaves = [params[n] for n in names]  # leaf tensors (population, …) with requires_grad
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p: dict, b: dict, x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    batched = torch.vmap(forward, in_dims=(0, 0, 0))
    opt = make_adaptive_optimizer(leaves, optimizer, lr, **optimizer_kwargs)
    seed = _v.seed("seed", seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = dataset.train
    sampler = EpochSampler(dataset.n_train, batch_size or dataset.n_train, [gen] * k)  # the members draw in turn

    def members() -> list[nn.Module]:
        out = []
        for i, m in enumerate(models):
            member = copy.deepcopy(m)
            member.load_state_dict({**{nm: params[nm][i].detach().clone() for nm in names},
                                    **{nm: buffers[nm][i].clone() for nm in buffers}}, strict=False)
            out.append(member)
        return out

    def stacked_loss(idx: Tensor | None) -> tuple[Tensor, Tensor]:
        if idx is None:
            xs = x_all.expand(k, *x_all.shape)
            ys = y_all.expand(k, *y_all.shape)
        else:
            xs, ys = x_all[idx], y_all[idx]
        out = batched(params, buffers, xs)
        per_member = torch.stack([loss_fn(out[i], ys[i]) for i in range(k)])
        return per_member.sum(), per_member

    rec = Recorder()

    def record(step: int) -> None:
        with torch.no_grad():
            _, per = stacked_loss(None)
            ev = evaluate(average_models(members()), dataset, loss_fn)
            rec.add(step, {"members_train_loss": float(per.mean())},
                    **{f"average_{key}": value for key, value in ev.items()})

    record(0)
    for step in range(1, steps + 1):
        idx = None if batch_size is None else sampler.next()
        opt.zero_grad(set_to_none=True)
        total, _ = stacked_loss(idx)
        total.backward()
        opt.step()
        if step % pull_every == 0:
            papa_pull_(leaves, alpha)
        if step % eval_every == 0 or step == steps:
            record(step)
    final = members()
    history = rec.history(optimizer=optimizer, lr=lr, alpha=alpha, pull_every=pull_every, batch_size=batch_size,
                          steps=steps, seed=seed, dataset=dataset.name, members=k)
    return PAPAResult(average_models(final), final, history)
