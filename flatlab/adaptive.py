"""Adaptive optimizers, schedules and weight averaging: where Adam, warmup and averaging end up.

- :class:`AdamCM` — Adam whose first moment is augmented by a small buffer of *critical momenta*
  (past momenta kept by priority ‖g‖ with decay), so that it overshoots narrow basins.
- :func:`preconditioned_sharpness` — λ_max(P⁻¹H) with Adam's preconditioner P = diag(√v̂ + ε), and
  :func:`adam_threshold` — its stability threshold (2+2β₁)/((1−β₁)η) ≈ 38/η for β₁ = 0.9.
- :func:`linear_warmup`, :func:`fit_scheduled` — a training loop with a learning-rate schedule and
  gradient-norm clipping (``torch.nn.utils.clip_grad_norm_``) that returns a ``flatlab.train.History``.
  RAdam is ``torch.optim.RAdam``, reused as is.
- Weight averaging: :func:`swa` (``torch.optim.swa_utils.AveragedModel``, ``update_bn`` when the
  model has BatchNorm) and :func:`papa` — a population trained in parallel (stacked parameters,
  ``torch.func.vmap``) and pulled toward its average every few steps; :func:`average_models`.

References
----------
- Kingma & Ba 2015, "Adam: a method for stochastic optimization" (arXiv:1412.6980).
- Malviya et al. 2023, "Promoting exploration in memory-augmented Adam using critical momenta"
  (arXiv:2307.09638) — Adam+CM; McRae et al. 2022, critical gradients (arXiv:2106.10708).
- Cohen et al. 2022, "Adaptive gradient methods at the edge of stability" (arXiv:2207.14484).
- Kalra & Barkeshli 2024, "Why warmup the learning rate?" (arXiv:2406.09405); Liu et al. 2020,
  RAdam, "On the variance of the adaptive learning rate and beyond" (arXiv:1908.03265).
- Zhang, He, Sra & Jadbabaie 2020, "Why gradient clipping accelerates training" (arXiv:1905.11881).
- Izmailov et al. 2018, "Averaging weights leads to wider optima and better generalization" (SWA,
  arXiv:1803.05407); Jolicoeur-Martineau et al. 2023, "PopulAtion Parameter Averaging (PAPA)"
  (arXiv:2304.03094).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse.linalg as spla
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from . import _validate as _v
from .curvature import HessianOperator, NonFiniteLossError
from .data import Dataset
from .optim import AdamCM, make_optimizer
from .train import History, _start_point, evaluate, fit, make_loss, optimizer_trajectory

__all__ = [
    "AdamCM",
    "adam_preconditioner",
    "preconditioned_sharpness",
    "adam_threshold",
    "PreconditionedSharpnessProbe",
    "linear_warmup",
    "fit_scheduled",
    "make_adaptive_optimizer",
    "ADAPTIVE_OPTIMIZERS",
    "landscape_run",
    "average_models",
    "swa",
    "SWAResult",
    "papa",
    "papa_pull_",
    "PAPAResult",
    "PAPA_OPTIMIZERS",
    "lambda_max",
    "train_to_loss",
    "warmup_grid",
]

ADAPTIVE_OPTIMIZERS = ("sgd", "momentum", "adam", "adamcm", "radam")


# ----------------------------------------------------------------------------------------------
# Adam's preconditioned sharpness and its edge of stability
# ----------------------------------------------------------------------------------------------
def adam_threshold(lr: float, beta1: float = 0.9) -> float:
    """Stability threshold of Adam's preconditioned sharpness: λ_max(P⁻¹H) < (2+2β₁)/((1−β₁)η).

    With a frozen preconditioner P, Adam is EMA-style heavy-ball momentum on the quadratic with
    curvature P⁻¹H: z² − (1+β₁−(1−β₁)ηλ)z + β₁ has a root at −1 when λ = (2+2β₁)/((1−β₁)η) — 38/η
    for β₁ = 0.9 (Cohen et al. 2022, arXiv:2207.14484).

    >>> round(adam_threshold(1e-3), 6)
    38000.0
    """
    lr = _v.positive("lr", lr)
    beta1 = _v.number("beta1", beta1, 0, 1, high_open=True)
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


def adam_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module) -> Tensor:
    """Adam's diagonal preconditioner P = √v̂ + ε, v̂ = v/(1−β₂ᵗ), as one flat float64 vector.

    Read from the state of ``torch.optim.Adam``/``AdamW``/:class:`AdamCM` (``exp_avg_sq``, ``step``);
    entries follow ``model.parameters()`` restricted to ``requires_grad`` (the order of
    ``flatlab.curvature.HessianOperator``).

    >>> model = torch.nn.Linear(2, 1); opt = torch.optim.Adam(model.parameters(), lr=0.1)
    >>> model(torch.ones(4, 2)).pow(2).mean().backward(); opt.step()
    >>> adam_preconditioner(opt, model).shape
    torch.Size([3])
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        group = groups.get(id(p))
        if group is None or "betas" not in group or "eps" not in group:
            raise ValueError(f"parameter {name!r} is not optimized by an Adam-type optimizer "
                             f"(torch.optim.Adam, AdamW or flatlab.adaptive.AdamCM)")
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            raise ValueError(f"optimizer has no second moment for {name!r} yet: take at least one step first")
        step = float(state["step"])
        v_hat = state["exp_avg_sq"].detach().double() / (1 - group["betas"][1] ** step)
        parts.append((v_hat.sqrt() + group["eps"]).reshape(-1))
    return torch.cat(parts)


def preconditioned_sharpness(model: nn.Module, loss_fn: Callable, data: tuple[Tensor, Tensor],
                             preconditioner: Tensor | torch.optim.Optimizer, k: int = 1, tol: float = 1e-4,
                             v0: Tensor | None = None, return_vectors: bool = False):
    """Top eigenvalues of P⁻¹H (= those of the symmetric P^{-1/2} H P^{-1/2}), descending.

    ``preconditioner`` is the flat diagonal P (all entries > 0) or an Adam-type optimizer, from
    which P = √v̂ + ε is read (:func:`adam_preconditioner`). Lanczos (``scipy.sparse.linalg.eigsh``)
    on a ``LinearOperator`` x ↦ P^{-1/2} H P^{-1/2} x over :class:`flatlab.curvature.HessianOperator`.
    Returns a float64 tensor of the ``k`` values (and the eigenvectors of the symmetric form when
    ``return_vectors``).

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(16, 3), torch.randn(16, 1))
    >>> float(preconditioned_sharpness(model, torch.nn.functional.mse_loss, data, torch.ones(4))[0]) > 0
    True
    """
    op = HessianOperator(model, loss_fn, data)
    if isinstance(preconditioner, torch.optim.Optimizer):
        diag = adam_preconditioner(preconditioner, model)
    elif isinstance(preconditioner, Tensor):
        diag = preconditioner.detach().double().reshape(-1)
    else:
        raise TypeError("preconditioner must be a flat tensor (the diagonal of P) or an Adam-type optimizer, "
                        f"got {type(preconditioner).__name__}")
    if diag.numel() != op.dim:
        raise ValueError(f"preconditioner has {diag.numel()} entries but the model has {op.dim} trainable parameters")
    if not bool(torch.isfinite(diag).all()) or not bool((diag > 0).all()):
        raise ValueError("preconditioner entries must be finite and > 0")
    k = _v.integer("k", k, 1)
    if k >= op.dim:
        raise ValueError(f"k={k} must be < the number of parameters {op.dim}")
    tol = _v.positive("tol", tol)
    scale = (1.0 / diag.sqrt()).numpy()

    def mv(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1) * scale
        return op.matvec(torch.from_numpy(x)).numpy() * scale

    lin = spla.LinearOperator((op.dim, op.dim), matvec=mv, rmatvec=mv, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(op.dim) if v0 is None else \
        np.asarray(v0.detach().double().numpy() if isinstance(v0, Tensor) else v0, dtype=np.float64).reshape(-1)
    with threadpool_limits(limits=1, user_api="blas"):
        vals, vecs = spla.eigsh(lin, k=k, which="LA", tol=tol, v0=start)
    order = np.argsort(vals)[::-1]
    values = torch.as_tensor(vals[order].copy())
    if return_vectors:
        return values, torch.as_tensor(vecs[:, order].copy())
    return values


class PreconditionedSharpnessProbe:
    """A ``fit`` probe: Adam's preconditioned sharpness λ_max(P⁻¹H) (column ``precond_lambda_max``)
    and, with ``raw=True``, the plain λ_max(H) (column ``lambda_max``), on the first ``max_examples``
    training examples. P is read from ``optimizer``'s state at the moment of the call; before the
    first step (no second moment yet) and at a NaN/inf loss the values are NaN. Lanczos is
    warm-started from the previous eigenvector.

    >>> model = torch.nn.Linear(40, 10); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    >>> probe = PreconditionedSharpnessProbe(torch.nn.functional.cross_entropy, opt, every=10)
    >>> probe.every
    10
    """

    def __init__(self, loss_fn: Callable, optimizer: torch.optim.Optimizer, every: int = 20,
                 max_examples: int | None = None, raw: bool = True, tol: float = 1e-3):
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.every = _v.integer("every", every, 1)
        self.max_examples = None if max_examples is None else _v.integer("max_examples", max_examples, 1)
        self.raw, self.tol = bool(raw), _v.positive("tol", tol)
        self._v0: Tensor | None = None
        self._raw_v0: np.ndarray | None = None

    def __call__(self, model: nn.Module, dataset: Any, step: int) -> dict[str, float]:
        x, y = dataset.x_train, dataset.y_train
        if self.max_examples is not None:
            x, y = x[:self.max_examples], y[:self.max_examples]
        out = {"precond_lambda_max": math.nan}
        if self.raw:
            out["lambda_max"] = math.nan
        started = all("exp_avg_sq" in self.optimizer.state.get(p, {}) for p in model.parameters() if p.requires_grad)
        if not started:  # before the first step there is no preconditioner yet
            return out
        try:
            vals, vecs = preconditioned_sharpness(model, self.loss_fn, (x, y), self.optimizer, tol=self.tol,
                                                  v0=self._v0, return_vectors=True)
        except NonFiniteLossError:  # a diverged run: record NaN, let the training loop decide
            return out
        self._v0 = vecs[:, 0]
        out["precond_lambda_max"] = float(vals[0])
        if self.raw:
            from .curvature import top_eigenvalues

            vals, vecs = top_eigenvalues(model, self.loss_fn, (x, y), k=1, tol=self.tol, v0=self._raw_v0,
                                         return_vectors=True)
            self._raw_v0 = vecs[:, 0].numpy()
            out["lambda_max"] = float(vals[0])
        return out


# ----------------------------------------------------------------------------------------------
# schedules, clipping and a training loop that uses them
# ----------------------------------------------------------------------------------------------
def linear_warmup(warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate multiplier of linear warmup: f(s) = min(1, (s+1)/T) after s completed steps.

    Use with ``torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup(T))`` or
    :func:`fit_scheduled` (``schedule=``); ``warmup_steps=0`` is the constant schedule 1.

    >>> f = linear_warmup(4); [f(s) for s in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    warmup_steps = _v.integer("warmup_steps", warmup_steps, 0)

    def factor(s: int) -> float:
        return 1.0 if warmup_steps == 0 else min(1.0, (s + 1) / warmup_steps)

    factor.warmup_steps = warmup_steps  # type: ignore[attr-defined]
    return factor


def make_adaptive_optimizer(params: Iterable, name: str, lr: float, **kwargs) -> torch.optim.Optimizer:
    """``"sgd"``, ``"momentum"`` (SGD, β=0.9), ``"adam"``, ``"adamcm"`` (:class:`AdamCM`) or ``"radam"``
    (``torch.optim.RAdam``) with learning rate ``lr``; extra keyword arguments go to the optimizer. The chapter's
    subset of :func:`flatlab.optim.make_optimizer`, which builds them.

    >>> make_adaptive_optimizer(torch.nn.Linear(2, 1).parameters(), "radam", 1e-3).__class__.__name__
    'RAdam'
    """
    _v.choice("name", name, ADAPTIVE_OPTIMIZERS)
    return make_optimizer(params, name, lr, **kwargs)


def fit_scheduled(model: nn.Module, dataset: Dataset, optimizer: torch.optim.Optimizer, steps: int, *,
                  schedule: Callable[[int], float] | None = None, clip: float | None = None, loss: str = "auto",
                  batch_size: int | None = None, eval_every: int | None = None, probes: Iterable = (),
                  target_loss: float | None = None, seed: int = 0, divergence_factor: float = 1e4,
                  callback: Callable[[nn.Module, int], None] | None = None) -> History:
    """``flatlab.fit`` with an optimizer instance, a learning-rate ``schedule`` and gradient-norm ``clip``.

    Before step t (1-based) every group's learning rate is set to base_lr · schedule(t−1) (the
    ``LambdaLR`` convention, e.g. :func:`linear_warmup`); after the backward pass the gradient is
    clipped to norm ≤ ``clip`` by ``torch.nn.utils.clip_grad_norm_``. With a schedule or clipping the
    history has ``grad_norm`` (before clipping, at the evaluated steps); a NaN/inf loss, or one above
    ``divergence_factor`` × the initial loss (and > 1e3), stops the run with ``history.diverged``.
    ``callback(model, step)`` runs after every step (e.g. to average weights).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> m = MLP(2, [16], 3, seed=0); opt = torch.optim.Adam(m.parameters(), lr=0.05)
    >>> h = fit_scheduled(m, gaussian_clouds(), opt, 60, schedule=linear_warmup(20), clip=1.0)
    >>> bool(h.final.train_acc > 0.8), h.diverged
    (True, False)
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer instance, got {type(optimizer).__name__}")
    return fit(model, dataset, optimizer, steps, batch_size=batch_size, loss=loss, eval_every=eval_every,
               probes=probes, target_loss=target_loss, seed=seed, progress=False,
               divergence_factor=divergence_factor, schedule=schedule, clip=clip, callback=callback)


# ----------------------------------------------------------------------------------------------
# optimizers on a 2-D landscape
# ----------------------------------------------------------------------------------------------
def landscape_run(landscape, start, optimizer: str = "adam", lr: float = 0.05, steps: int = 300,
                  bound: float = 1e3, **kwargs):
    """Run a torch optimizer on a 2-D landscape: a 2-element ``nn.Parameter`` w, loss ``landscape(w)``.

    ``optimizer`` is a name of :func:`make_adaptive_optimizer` (extra keyword arguments go to it).
    Returns a ``flatlab.train.Trajectory`` (points, losses, basin of the last iterate), so
    ``flatlab.plots.landscape_figure`` draws it; leaving |w| ≤ ``bound`` counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> landscape_run(sharp_and_flat(), (-1.2, 0.8), "adam", lr=0.02, steps=200).basin
    'sharp'
    """
    steps = _v.integer("steps", steps, 1)
    w = nn.Parameter(_start_point(start).clone())
    opt = make_adaptive_optimizer([w], optimizer, lr, **kwargs)
    momentum = (kwargs.get("betas", (0.9, 0.999))[0] if optimizer in ("adam", "adamcm", "radam")
                else kwargs.get("momentum", 0.0))
    return optimizer_trajectory(landscape, w, opt, steps, lr, momentum=momentum, bound=bound)


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
    ``model`` itself ends at the last iterate. Extra keyword arguments go to :func:`fit_scheduled`.

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

    history = fit_scheduled(model, dataset, optimizer, steps, batch_size=batch_size, loss=loss, seed=seed,
                            callback=collect, **fit_kwargs)
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
    ``history``: a DataFrame (step, members' mean train loss, the average's train loss and accuracy)."""

    average: nn.Module
    members: list
    history: pd.DataFrame


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
    n = dataset.n_train
    orders = [torch.randperm(n, generator=gen) for _ in range(k)]
    pos = 0

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

    rows = []

    def record(step: int) -> None:
        with torch.no_grad():
            _, per = stacked_loss(None)
            avg = average_models(members())
            row = {"step": step, "members_train_loss": float(per.mean())}
            ev = evaluate(avg, dataset, loss_fn)
            row.update({f"average_{key}": value for key, value in ev.items()})
        rows.append(row)

    record(0)
    for step in range(1, steps + 1):
        if batch_size is None:
            idx = None
        else:
            if pos + batch_size > n:
                orders, pos = [torch.randperm(n, generator=gen) for _ in range(k)], 0
            idx = torch.stack([o[pos:pos + batch_size] for o in orders])
            pos += batch_size
        opt.zero_grad(set_to_none=True)
        total, _ = stacked_loss(idx)
        total.backward()
        opt.step()
        if step % pull_every == 0:
            papa_pull_(leaves, alpha)
        if step % eval_every == 0 or step == steps:
            record(step)
    final = members()
    return PAPAResult(average_models(final), final, pd.DataFrame(rows))


# ----------------------------------------------------------------------------------------------
# experiment helpers used by chapter 06 (short notebook cells call these)
# ----------------------------------------------------------------------------------------------
def lambda_max(model: nn.Module, dataset: Dataset, loss: str = "auto", max_examples: int | None = None,
               tol: float = 1e-3) -> float:
    """λ_max of the Hessian of the full-batch training loss (first ``max_examples`` examples).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> lambda_max(MLP(2, [8], 3, seed=0), gaussian_clouds()) > 0
    True
    """
    from .curvature import top_eigenvalues

    x, y = dataset.train
    if max_examples is not None:
        x, y = x[:max_examples], y[:max_examples]
    return float(top_eigenvalues(model, make_loss(dataset, loss), (x, y), k=1, tol=tol)[0])


def train_to_loss(model: nn.Module, dataset: Dataset, configs: dict[str, tuple], *, target_loss: float = 0.05,
                  max_steps: int = 3000, batch_size: int | None = None, eval_every: int = 10, seed: int = 0,
                  loss: str = "auto", land: bool = True) -> tuple[pd.DataFrame, dict, dict]:
    """Train a copy of ``model`` with each optimizer of ``configs`` until the full-batch training loss
    reaches ``target_loss``, then measure λ_max there (sharpness compared at equal loss). With ``land``
    (the default) every run lands on the target loss (:func:`flatlab.train.fit`'s ``land``), so the
    losses are equal to 0.1 % rather than "at or below the target".

    ``configs`` maps a label to ``(name, lr)`` or ``(name, lr, kwargs)`` for
    :func:`make_adaptive_optimizer`. Returns (table, models, histories): the table has one row per
    label — optimizer, lr, steps, train_loss, test_acc, lambda_max, reached (the target) — and,
    for Adam-type optimizers, precond_lambda_max (λ_max(P⁻¹H)) and its threshold 38/η-style
    (:func:`adam_threshold`).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> table, models, hist = train_to_loss(MLP(2, [8], 3, seed=0), gaussian_clouds(),
    ...                                     {"GD": ("sgd", 0.5)}, target_loss=0.3)
    >>> list(table.columns)[:3]
    ['optimizer', 'lr', 'steps']
    """
    from .train import fit

    if not isinstance(configs, dict) or not configs:
        raise ValueError("configs must be a non-empty dict {label: (optimizer name, lr[, kwargs])}")
    rows, models, histories = [], {}, {}
    loss_fn = make_loss(dataset, loss)
    for label, cfg in configs.items():
        if not isinstance(cfg, (tuple, list)) or len(cfg) not in (2, 3):
            raise ValueError(f"configs[{label!r}] must be (optimizer name, lr) or (name, lr, kwargs), got {cfg!r}")
        name, lr, kwargs = cfg[0], cfg[1], (cfg[2] if len(cfg) == 3 else {})
        m = copy.deepcopy(model)
        opt = make_adaptive_optimizer(m.parameters(), name, lr, **kwargs)
        h = fit(m, dataset, opt, max_steps, batch_size=batch_size, target_loss=target_loss, eval_every=eval_every,
                seed=seed, loss=loss, progress=False, land=land)
        row = {"optimizer": label, "lr": float(lr), "steps": int(h.final.step), "train_loss": float(h.final.train_loss),
               "test_acc": float(h.final.test_acc), "lambda_max": lambda_max(m, dataset, loss),
               "reached": bool(h.stopped_early)}
        if isinstance(opt, (torch.optim.Adam, AdamCM)):
            row["precond_lambda_max"] = float(preconditioned_sharpness(m, loss_fn, dataset.train, opt, tol=1e-3)[0])
            row["threshold"] = adam_threshold(lr, opt.param_groups[0]["betas"][0])
        rows.append(row)
        models[label], histories[label] = m, h
    return pd.DataFrame(rows), models, histories


def warmup_grid(model: nn.Module, dataset: Dataset, peak_lrs: Sequence[float], warmups: Sequence[int], steps: int, *,
                optimizer: str = "adam", radam: bool = True, eval_every: int = 5, seed: int = 0,
                loss: str = "auto", clip: float | None = None) -> dict:
    """Train a copy of ``model`` for every (peak η, warmup length) with linear warmup, and — with
    ``radam`` — ``torch.optim.RAdam`` at every peak η without warmup.

    Returns ``{(optimizer, peak_lr, warmup): History}`` (RAdam under ``("radam", peak_lr, 0)``); the
    chapter's warmup widget only selects among these runs.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> g = warmup_grid(MLP(2, [8], 3, seed=0), gaussian_clouds(), [0.1], [0, 5], 20)
    >>> sorted(g)
    [('adam', 0.1, 0), ('adam', 0.1, 5), ('radam', 0.1, 0)]
    """
    steps = _v.integer("steps", steps, 1)
    runs = [(optimizer, float(lr), _v.integer("warmup", w, 0)) for lr in peak_lrs for w in warmups]
    if radam:
        runs += [("radam", float(lr), 0) for lr in peak_lrs]
    out = {}
    for name, lr, w in runs:
        m = copy.deepcopy(model)
        opt = make_adaptive_optimizer(m.parameters(), name, lr)
        out[(name, lr, w)] = fit_scheduled(m, dataset, opt, steps, schedule=linear_warmup(w), eval_every=eval_every,
                                           seed=seed, loss=loss, clip=clip)
    return out
