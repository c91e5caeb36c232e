"""Optimizers that take the gradient at a perturbed mean (SAM, ASAM, MFVI, MixSAM, variational SAM), and
Nudged-SGD, which rescales the step along the sharpest Hessian directions.

All of them compute, each step, a gradient at ``w + ε`` where ``w`` is the current mean and ``ε``
a perturbation — the shared picture of Ujváry et al. (2022):

=================  =========================================================  ==================
optimizer          perturbation ε                                             learns
=================  =========================================================  ==================
SAM                ρ g/‖g‖  (worst case in the ρ-ball, to first order)       w
ASAM               ρ T²g/‖Tg‖, T = |w|+η (worst case, |w|-scaled ball)       w
MFVI               σ ⊙ ξ,  ξ ~ N(0, I)  (reparameterization trick)            μ = w and σ
MixSAM             (1 − m)·ρ g/‖g‖ + m·σ ⊙ ξ                                  μ and σ
VariationalSAM     ρ σ² ⊙ g/‖σ ⊙ g‖  (worst case in the σ-scaled ball)       μ and σ
=================  =========================================================  ==================

with ``g = ∇L_B(w)`` the minibatch gradient at the mean. Every class follows ``torch.optim``
conventions (``param_groups``, ``state_dict``/``load_state_dict``, ``zero_grad``, learning-rate
schedulers) and is a thin :class:`torch.optim.Optimizer` over plain update functions
(:func:`sam_perturbation`, :func:`kl_gradients`) and a *base optimizer* (``torch.optim.SGD``,
``Adam`` …) that turns the final gradient into the update.

The closure contract
--------------------
``step(closure)`` is the only way to run these optimizers inside ``flatlab.train.fit`` (which calls
``optimizer.step(closure)`` once per step). ``closure()`` must

1. clear the gradients (``optimizer.zero_grad()``),
2. compute the loss on the *same minibatch* every time it is called and ``backward()`` it,
3. return the loss.

SAM, MixSAM (m < 1) and variational SAM call it twice per step (at ``w`` and at ``w + ε``), MFVI
``mc_samples`` times. A missing closure raises ``ValueError``. For BatchNorm, pass ``model=`` to
the constructor: every pass after the first then runs inside :func:`frozen_bn_stats`, so the
running statistics are updated once per step, by the pass at the unperturbed point (or, for
MFVI, the first sample). SAM also exposes ``first_step()`` / ``second_step()`` (the
davda54/sam API) for gradient accumulation and custom loops.

:class:`NudgedSGD` is a one-pass optimizer: plain SGD whose step along the top-k Hessian eigenvectors is
scaled by γ. Its closure is optional, as for ``torch.optim.SGD``; the eigenvectors come from the callable it
is given (``flatlab.curvature.SharpestDirections``: Lanczos on a fixed batch — passed in, since this
module and ``curvature`` are the same layer).

References
----------
- Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-aware minimization for efficiently
  improving generalization" (arXiv:2010.01412).
- Kwon, Kim, Park & Choi 2021, "ASAM: adaptive sharpness-aware minimization for scale-invariant
  learning of deep neural networks" (arXiv:2102.11600).
- Blundell, Cornebise, Kavukcuoglu & Wierstra 2015, "Weight uncertainty in neural networks"
  (arXiv:1505.05424) — mean-field VI with the reparameterization trick (Kingma & Welling 2014,
  arXiv:1312.6114).
- Ujváry, Telek, Kerekes, Mészáros & Huszár 2022, "Rethinking sharpness-aware minimization as
  variational inference" (arXiv:2210.10452) — MixSAM and variational SAM. The paper motivates
  interpolating between SAM and MFVI and using SAM-like perturbations in place of the
  reparameterization trick; the exact formulas below are flatlab's (documented on each class).
- Möllenhoff & Khan 2023, "SAM as an optimal relaxation of Bayes" (arXiv:2210.01620) — bSAM,
  not implemented here.
- Jastrzębski, Kenton, Ballas, Fischer, Bengio & Storkey 2019, "On the relation between the sharpest
  directions of DNN loss and the SGD step length" (ICLR 2019, arXiv:1807.05031) — Nudged-SGD
  (:class:`NudgedSGD`; its departures from the paper are listed on the class).
- Guo, Pleiss, Sun & Weinberger 2017, "On calibration of modern neural networks"
  (arXiv:1706.04599) — expected calibration error.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from . import _validate as _v

__all__ = [
    "SAM",
    "NudgedSGD",
    "nudge",
    "MFVI",
    "MixSAM",
    "VariationalSAM",
    "VariationalOptimizer",
    "frozen_bn_stats",
    "sam_perturbation",
    "asam_param_groups",
    "ASAM_ETA",
    "kl_gradients",
    "gaussian_kl",
    "calibration",
    "noise_predictive",
    "BASE_OPTIMIZERS",
    "STD_PARAMETERIZATIONS",
]

BASE_OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
STD_PARAMETERIZATIONS = ("log", "softplus")
ASAM_ETA = 0.01  # Kwon et al.'s offset in T = |w| + η (their released code's default)
LINKS = {"softmax": lambda o: torch.softmax(o, -1), "sigmoid": torch.sigmoid, "identity": lambda o: o}


def _model_average(model: nn.Module, x: Tensor, samples: int, link: str,
                   sampled_forward: Callable[[Tensor], Tensor]) -> Tensor:
    """``(1/S) Σ_s link(sampled_forward(x))`` in eval mode (the model's mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        total = None
        for _ in range(samples):
            out = LINKS[link](sampled_forward(x))
            total = out if total is None else total + out
    finally:
        model.train(was_training)
    return total / samples


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------
def _check_base_kwargs(base_kwargs: dict) -> None:
    """The common keyword arguments of the base optimizer, checked by flatlab's rules (torch's own checks
    do not name a string or a NaN clearly)."""
    if "lr" in base_kwargs:
        _v.positive("lr", base_kwargs["lr"], hint="the base optimizer's learning rate")
    for key in ("momentum", "dampening"):
        if key in base_kwargs:
            _v.number(key, base_kwargs[key], 0, 1, high_open=True)
    for key in ("weight_decay", "eps"):
        if key in base_kwargs:
            _v.non_negative(key, base_kwargs[key])
    if "betas" in base_kwargs:
        _v.pair("betas", base_kwargs["betas"], 0, 1, high_open=True)


def _check_init_std(init_std: float, dtype: torch.dtype, kind: str) -> None:
    """σ = init_std must survive in the parameters' dtype: σ > 0 and σ², 1/σ finite (the KL uses both)."""
    info = torch.finfo(dtype)
    lo, hi = math.sqrt(info.tiny), math.sqrt(info.max)
    sigma = float(_std(torch.tensor(_inverse_std(init_std, kind), dtype=dtype), kind))
    if not (lo <= init_std <= hi) or not (lo <= sigma <= hi):
        raise ValueError(f"init_std={init_std!r} {'underflows' if init_std < lo or sigma < lo else 'overflows'} in "
                         f"{dtype} (σ = {sigma:g}; the KL term needs σ², 1/σ finite and σ > 0): init_std must be "
                         f"in [{lo:.3g}, {hi:.3g}] for {dtype} parameters")


def _resolve_base(base_optimizer: Any) -> type[Optimizer]:
    if isinstance(base_optimizer, str) and base_optimizer.lower() in BASE_OPTIMIZERS:
        return BASE_OPTIMIZERS[base_optimizer.lower()]
    if isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer):
        return base_optimizer
    raise ValueError(f"base_optimizer={base_optimizer!r} is unknown; allowed values: "
                     f"{', '.join(repr(k) for k in BASE_OPTIMIZERS)} or a torch.optim.Optimizer subclass")


def _check_closure(closure: Any, name: str, passes: str) -> Callable[[], Tensor]:
    if closure is None:
        raise ValueError(
            f"{name}.step() needs a closure: {name} evaluates the gradient {passes}. Pass "
            "closure() that clears the gradients, computes the loss on the current minibatch, calls "
            "backward() and returns the loss, e.g. optimizer.step(closure)"
            + ("; or call first_step() and second_step() yourself" if name in ("SAM", "ASAM") else "") + ".")
    if not callable(closure):
        raise TypeError(f"closure must be callable, got {type(closure).__name__}")
    return closure


def _call(closure: Callable[[], Tensor], params: Sequence[Tensor], name: str) -> Tensor:
    """``closure()`` under autograd; a ValueError when it left no gradient on any parameter (a closure that
    forgets ``loss.backward()`` would otherwise make the step do nothing, silently)."""
    with torch.enable_grad():
        loss = closure()
    if not any(p.grad is not None for p in params):
        raise ValueError(f"{name}.step(closure): after closure() no parameter has a gradient (every .grad is None); "
                         "the closure must call loss.backward() before it returns the loss")
    return loss


# ----------------------------------------------------------------------------------------------
# plain update functions
# ----------------------------------------------------------------------------------------------
def sam_perturbation(grads: Sequence[Tensor], rho: float | Sequence[float],
                     params: Sequence[Tensor] | None = None, adaptive: bool | Sequence[bool] = False,
                     eps: float = 1e-12, eta: float | Sequence[float] = ASAM_ETA) -> list[Tensor]:
    """SAM's first-order worst-case perturbation ``ε = ρ T²g / ‖T g‖`` (``T = 1``, ASAM: ``T = |w| + η``).

    ``ε`` maximizes the linearized loss ``L(w) + gᵀε`` over the ball ``‖T⁻¹ε‖ ≤ ρ``. The norm is
    taken over *all* tensors together. ``rho``, ``adaptive`` and ``eta`` may be one value or one per
    tensor (per parameter group); ``params`` (the weights ``w``) are needed only when adaptive. A
    zero gradient gives ``ε = 0`` (``eps`` guards the division). The inputs are not modified.

    >>> sam_perturbation([torch.tensor([3.0, 4.0])], rho=0.5)
    [tensor([0.3000, 0.4000])]
    """
    grads = list(grads)
    n = len(grads)
    if n == 0:
        return []
    rhos = [_v.non_negative("rho", rho)] * n if not isinstance(rho, (list, tuple)) else \
        [_v.non_negative(f"rho[{i}]", r) for i, r in enumerate(rho)]
    ad = [bool(adaptive)] * n if not isinstance(adaptive, (list, tuple)) else [bool(a) for a in adaptive]
    etas = [_v.non_negative("eta", eta)] * n if not isinstance(eta, (list, tuple)) else \
        [_v.non_negative(f"eta[{i}]", e) for i, e in enumerate(eta)]
    if len(rhos) != n or len(ad) != n or len(etas) != n:
        raise ValueError(f"rho, adaptive and eta must be one value or {n} values (one per tensor)")
    if any(ad):
        if params is None or len(params) != n:
            raise ValueError("params (the weights w, one per gradient) are needed when adaptive=True")
        sel = [i for i, a in enumerate(ad) if a]                     # the adaptive tensors
        ts = torch._foreach_abs([params[i] for i in sel])             # T = |w| + η, fused over tensors
        torch._foreach_add_(ts, [etas[i] for i in sel])
        scaled = list(grads)
        for i, tg in zip(sel, torch._foreach_mul([grads[i] for i in sel], ts)):
            scaled[i] = tg                                            # T g
    else:
        scaled = grads
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled))))
    factors = [r / (norm + eps) for r in rhos]
    if any(ad):
        for i, t2g in zip(sel, torch._foreach_mul([scaled[i] for i in sel], ts)):
            scaled[i] = t2g                                           # T² g
    return list(torch._foreach_mul(scaled, factors))


def asam_param_groups(model: nn.Module, eta: float = ASAM_ETA) -> list[dict]:
    """Kwon et al.'s ASAM parameter groups: the weights adaptive (``T = |w| + η``), the rest not (``T = 1``).

    A parameter is a weight when its name contains ``"weight"`` (the rule of the authors' code); the
    biases, and anything else, go into a group with ``adaptive=False``. Pass the result to
    :class:`SAM`: ``SAM(asam_param_groups(model), "sgd", rho=0.5, lr=0.1)``. Empty groups are left out.

    >>> groups = asam_param_groups(torch.nn.Linear(3, 2))
    >>> [(len(g["params"]), g["adaptive"]) for g in groups]
    [(1, True), (1, False)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    eta = _v.non_negative("eta", eta)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    weights = [p for n, p in named if "weight" in n]
    others = [p for n, p in named if "weight" not in n]
    if not weights:
        raise ValueError("model has no trainable parameter whose name contains 'weight': ASAM would scale "
                         "nothing; use SAM(model.parameters(), adaptive=True) to scale every parameter")
    groups = [{"params": weights, "adaptive": True, "eta": eta}]
    if others:
        groups.append({"params": others, "adaptive": False, "eta": eta})
    return groups


def gaussian_kl(mean: Tensor, std: Tensor, prior_precision: float) -> Tensor:
    """``KL(N(μ, σ²) ‖ N(0, 1/λ₀))`` summed over elements: ``½ Σ [λ₀(σ² + μ²) − 1 − log(λ₀σ²)]``.

    >>> float(gaussian_kl(torch.zeros(3), torch.ones(3), prior_precision=1.0))
    0.0
    """
    prior_precision = _v.positive("prior_precision", prior_precision)
    var = std.pow(2)
    return 0.5 * (prior_precision * (var + mean.pow(2)) - 1.0 - torch.log(prior_precision * var)).sum()


def kl_gradients(mean: Tensor, std: Tensor, prior_precision: float, dataset_size: int) -> tuple[Tensor, Tensor]:
    """Gradients of ``KL(q ‖ p)/N`` with respect to μ and σ: ``(λ₀μ/N, (λ₀σ − 1/σ)/N)``.

    >>> kl_gradients(torch.tensor([2.0]), torch.tensor([1.0]), prior_precision=1.0, dataset_size=4)
    (tensor([0.5000]), tensor([0.]))
    """
    prior_precision = _v.positive("prior_precision", prior_precision)
    dataset_size = _v.integer("dataset_size", dataset_size, 1)
    return mean * (prior_precision / dataset_size), (prior_precision * std - 1.0 / std) / dataset_size


def _std(s: Tensor, kind: str) -> Tensor:
    return s.exp() if kind == "log" else F.softplus(s)


def _inverse_std(std: float, kind: str) -> float:
    if kind == "log":
        return math.log(std)
    try:
        return math.log(math.expm1(std))
    except OverflowError:  # softplus⁻¹(σ) = σ + log(1 − e^−σ) ≈ σ for large σ
        return std + math.log1p(-math.exp(-std))


# ----------------------------------------------------------------------------------------------
# BatchNorm
# ----------------------------------------------------------------------------------------------
@contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the context, BatchNorm layers still normalize with batch statistics (train mode) but
    their running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) are
    restored on exit, bit for bit — so SAM's second forward pass does not count twice.

    >>> bn = torch.nn.BatchNorm1d(3); before = bn.running_mean.clone()
    >>> with frozen_bn_stats(bn):
    ...     _ = bn(torch.randn(8, 3) + 5)
    >>> torch.equal(bn.running_mean, before)
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            saved.append((m, [(name, b.clone()) for name, b in m.named_buffers(recurse=False) if b is not None]))
    try:
        yield model
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for name, value in buffers:
                    getattr(m, name).copy_(value)


# ----------------------------------------------------------------------------------------------
# SAM / ASAM
# ----------------------------------------------------------------------------------------------
class SAM(Optimizer):
    r"""Sharpness-aware minimization: ``min_w max_{‖ε‖≤ρ} L(w + ε)``, to first order.

    Algorithm (Foret et al. 2021, Alg. 1), per step on a minibatch B::

        g  = ∇L_B(w)                      # first closure call
        ε  = ρ T² g / ‖T g‖               # T = I (SAM) or diag(|w| + η) (ASAM, adaptive=True)
        g' = ∇L_B(w + ε)                  # second closure call
        w  ← base_optimizer_step(w, g')   # e.g. SGD with momentum, Adam

    ``SAM(params, base_optimizer="sgd", rho=0.05, adaptive=False, eta=0.01, model=None, **base_kwargs)``:
    ``base_optimizer`` is a name (``"sgd"``, ``"adam"``, ``"adamw"``) or a ``torch.optim.Optimizer``
    subclass built over the *same* ``param_groups`` with ``base_kwargs`` (``lr``, ``momentum``,
    ``weight_decay`` …), so schedulers and ``state_dict`` see one set of groups. ``rho``,
    ``adaptive`` and ``eta`` may differ per parameter group. Returns the loss at ``w`` (the first call).

    ASAM as Kwon et al. (2021) define it and release it: ``T = |w| + η`` (``eta=0.01``) on the
    *weights* and ``T = 1`` on biases. ``adaptive=True`` applies ``T = |w| + η`` to every tensor of
    its groups; to scale the weights only, pass ``asam_param_groups(model)`` (biases in a group with
    ``adaptive=False``), as :func:`flatlab.curvature.adaptive_sharpness` does by default. The norm is
    global over all parameter groups (as in the paper; per-group ``rho`` only rescales ε). ``ε`` is
    undone by restoring a copy of ``w`` (the reference code subtracts it), so ``rho=0`` is its base
    optimizer bit for bit.

    Gradient accumulation: accumulate into ``.grad``, call ``first_step(zero_grad=True)``,
    accumulate again at ``w + ε``, call ``second_step(zero_grad=True)``. BatchNorm: ``model=…``
    (see :func:`frozen_bn_stats`).

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = SAM([w], "sgd", rho=0.1, lr=0.1)
    >>> def closure():
    ...     opt.zero_grad(); loss = (w ** 2).sum(); loss.backward(); return loss
    >>> opt.step(closure).item()
    5.0
    """

    def __init__(self, params: Iterable, base_optimizer: str | type[Optimizer] = "sgd", rho: float = 0.05,
                 adaptive: bool = False, model: nn.Module | None = None, eta: float = ASAM_ETA,
                 **base_kwargs: Any):
        rho = _v.non_negative("rho", rho)
        adaptive = _v.boolean("adaptive", adaptive)
        eta = _v.non_negative("eta", eta)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
        base_cls = _resolve_base(base_optimizer)
        _check_base_kwargs(base_kwargs)
        super().__init__(params, dict(rho=rho, adaptive=adaptive, eta=eta))
        self.base_optimizer = base_cls(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.model = model

    @property
    def _name(self) -> str:
        return "ASAM" if any(g["adaptive"] for g in self.param_groups) else "SAM"

    def add_param_group(self, param_group: dict) -> None:
        if not hasattr(self, "base_optimizer"):
            return super().add_param_group(param_group)
        group = dict(param_group)
        group.setdefault("rho", self.defaults["rho"])
        group.setdefault("adaptive", self.defaults["adaptive"])
        group.setdefault("eta", self.defaults["eta"])
        _v.non_negative("rho", group["rho"])
        _v.boolean("adaptive", group["adaptive"])
        _v.non_negative("eta", group["eta"])
        self.base_optimizer.add_param_group(group)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move every parameter to ``w + ε`` using the gradients now in ``.grad`` (saving ``w``)."""
        ps, gs, rhos, ads, etas = [], [], [], [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                ps.append(p)
                gs.append(p.grad)
                rhos.append(group["rho"])
                ads.append(group["adaptive"])
                etas.append(group.get("eta", self.defaults["eta"]))
        if ps:
            eps = sam_perturbation(gs, rhos, ps, ads, eta=etas)
            olds = []
            for p in ps:
                state = self.state[p]
                if "old_p" not in state:
                    state["old_p"] = torch.empty_like(p)
                olds.append(state["old_p"])
            torch._foreach_copy_(olds, ps)
            moved = [(p, e) for p, e, r in zip(ps, eps, rhos) if r != 0.0]
            if moved:
                torch._foreach_add_([p for p, _ in moved], [e for _, e in moved])
        self._moved = ps
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and take the base optimizer's step with the gradients at ``w + ε``."""
        ps = getattr(self, "_moved", None)
        if ps is None:
            raise RuntimeError("second_step() called without first_step(): call first_step() first")
        if ps:
            torch._foreach_copy_(ps, [self.state[p]["old_p"] for p in ps])
        self._moved = None
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One SAM step: ``closure()`` at ``w``, then at ``w + ε``; returns the loss at ``w``."""
        closure = _check_closure(closure, self._name, "at w and at the perturbed point w + ε")
        params = [p for group in self.param_groups for p in group["params"]]
        loss = _call(closure, params, self._name)
        self.first_step(zero_grad=True)
        with frozen_bn_stats(self.model) if self.model is not None else nullcontext():
            _call(closure, params, self._name)
        self.second_step()
        return loss

    def state_dict(self) -> dict:
        """The base optimizer's state dict (its ``param_groups`` also hold ``rho`` and ``adaptive``)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups

    def __repr__(self) -> str:
        return f"{self._name}(rho={self.defaults['rho']}, base={self.base_optimizer!r})"


# ----------------------------------------------------------------------------------------------
# Nudged-SGD
# ----------------------------------------------------------------------------------------------
def nudge(step: Tensor, basis: Tensor, gamma: float) -> Tensor:
    """Scale the components of a flat ``step`` along the orthonormal columns of ``basis`` by ``gamma``.

    ``step − (1 − γ) U Uᵀ step`` with ``U = basis`` of shape ``[dim, k]``: the part of the step in
    span(U) is multiplied by γ, the part orthogonal to it is left as it is (γ = 1: unchanged, bit
    for bit). A new tensor is returned.

    >>> nudge(torch.tensor([2.0, 3.0]), torch.tensor([[1.0], [0.0]]), 0.5)
    tensor([1., 3.])
    """
    gamma = _v.positive("gamma", gamma)
    if not isinstance(step, Tensor) or step.dim() != 1:
        raise TypeError("step must be a flat (1-D) torch tensor")
    if not isinstance(basis, Tensor) or basis.dim() != 2 or basis.shape[0] != step.numel():
        raise ValueError(f"basis must be a tensor of shape [{step.numel()}, k] (one direction per column), got "
                         f"{tuple(basis.shape) if isinstance(basis, Tensor) else type(basis).__name__}")
    if gamma == 1.0:
        return step.clone()
    return step - (1.0 - gamma) * _project(basis, step)


def _project(basis: Tensor, step: Tensor) -> Tensor:
    """``U Uᵀ s``: the part of a flat step in the span of ``basis``'s orthonormal columns (in the step's dtype)."""
    basis = basis.to(step.dtype)
    return basis @ (basis.T @ step)


class NudgedSGD(Optimizer):
    r"""Nudged-SGD (Jastrzębski et al., ICLR 2019, arXiv:1807.05031): SGD whose step along the top-k
    Hessian eigenvectors is multiplied by γ.

    Algorithm, per step t on a minibatch B (momentum μ = 0 is the paper's setting)::

        every `every` steps:  U ← top-k eigenvectors of the Hessian H = ∇²L(w)   (eigenvectors(k))
        g = ∇L_B(w);  m ← μ m + g                       # torch.optim.SGD's momentum buffer
        s = −η m;     s ← s − (1 − γ) U Uᵀ s            # the step along span(U) scaled by γ
        w ← w + s

    so the learning rate is γη along the k sharpest directions and η in every other direction.
    γ < 1 lets SGD settle where those directions are *sharper* than plain SGD's step allows
    (the step's stability limit there rises from about 2/η to 2/(γη)); γ > 1 pushes it to flatter
    regions. γ = 1 is ``torch.optim.SGD`` bit for bit (the eigenvectors are still computed).

    ``eigenvectors(k)`` is called with the parameters at the current point and returns
    ``(values, vectors)``: the top-k eigenvalues and a ``[dim, k]`` tensor whose columns are flat
    vectors over this optimizer's parameters in ``param_groups`` order — e.g.
    :class:`flatlab.curvature.SharpestDirections` (Lanczos on a fixed batch, warm-started). The
    columns are orthonormalized (QR) before use; only their span matters. ``eigenvalues`` records
    ``(step, values)`` at every refresh: λ₁ over training at no extra cost.

    Departures from the paper's algorithm and the authors' released code:

    * the Hessian is that of the loss on a fixed batch chosen by the caller (chapter 01: the first
      256 training examples); the authors' code runs Lanczos on a sample of about 2,250–2,560
      training examples (with their data augmentation);
    * the eigenvectors are recomputed every ``every`` steps; the authors' code refreshes them once
      per epoch;
    * ``k`` and γ are free; the authors' experiment scripts use K = 5 or 10, γ ∈ {0.01, 0.1, 1, 5}
      and plain SGD (μ = 0);
    * momentum, which the paper's experiments do not use, follows the released code's default
      (``correct_v``): the buffer is plain SGD's and only the applied step is nudged;
    * γ is constant; the authors' reduce-on-plateau callback scaled γ by the same factor as the
      learning rate.

    ``step(closure)`` follows torch.optim: the closure is optional (the gradients in ``.grad`` are
    used); a parameter without a gradient gets a zero step before the nudge. State dicts hold the
    momentum buffers, the current eigenvectors and the step count.

    >>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> basis = lambda k: (torch.tensor([4.0]), torch.tensor([[1.0], [0.0]]))  # H = diag(4, 1)
    >>> opt = NudgedSGD([w], lr=0.1, gamma=0.5, k=1, every=1, eigenvectors=basis)
    >>> loss = 2 * w[0] ** 2 + 0.5 * w[1] ** 2; loss.backward(); _ = opt.step()
    >>> w.detach()  # plain SGD would give (0.6, 0.9); along e₁ the step is halved
    tensor([0.8000, 0.9000])
    """

    def __init__(self, params: Iterable, lr: float = 0.1, gamma: float = 0.1, k: int = 1, every: int = 10,
                 momentum: float = 0.0, *, eigenvectors: Callable[[int], tuple[Tensor, Tensor]]):
        lr = _v.positive("lr", lr)
        self.gamma = _v.positive("gamma", gamma, hint="the factor on the step along the top-k eigenvectors")
        self.k = _v.integer("k", k, 1, hint="the number of top Hessian eigenvectors nudged")
        self.every = _v.integer("every", every, 1, hint="steps between two eigenvector refreshes")
        momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
        _v.function("eigenvectors", eigenvectors, "eigenvectors(k) -> (values, vectors [dim, k])")
        super().__init__(params, dict(lr=lr, momentum=momentum))
        self.eigenvectors = eigenvectors
        self.eigenvalues: list[tuple[int, list[float]]] = []
        self._params = [p for group in self.param_groups for p in group["params"]]
        self.dim = sum(p.numel() for p in self._params)
        if self.k >= self.dim:
            raise ValueError(f"k={self.k} must be smaller than the number of parameters ({self.dim})")
        own = getattr(eigenvectors, "params", None)
        if own is not None and [id(p) for p in own] != [id(p) for p in self._params]:
            raise ValueError("eigenvectors computes directions over other parameters (or another order) than this "
                             "optimizer's: build both over the same model, e.g. NudgedSGD(model.parameters(), …, "
                             "eigenvectors=SharpestDirections(model, loss_fn, data))")
        self.state["nudge"] = {"step": 0, "basis": None}

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "_params"):
            raise NotImplementedError("NudgedSGD takes all its parameters in the constructor: the eigenvectors "
                                      "span all of them, so a group added later would not be covered")
        super().add_param_group(param_group)
        for group in self.param_groups:
            _v.positive("lr", group["lr"])
            _v.number("momentum", group["momentum"], 0, 1, high_open=True)

    def _refresh(self) -> None:
        out = self.eigenvectors(self.k)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("eigenvectors(k) must return a pair (values, vectors), e.g. top_eigenvalues(..., "
                            f"return_vectors=True); got {type(out).__name__}")
        values, vectors = out
        vectors = torch.as_tensor(vectors)
        if vectors.shape != (self.dim, self.k):
            raise ValueError(f"eigenvectors(k={self.k}) returned vectors of shape {tuple(vectors.shape)}, expected "
                             f"({self.dim}, {self.k}): one column per direction over all of the optimizer's parameters")
        if not bool(torch.isfinite(vectors).all()):
            raise ValueError("eigenvectors(k) returned vectors with NaN/inf entries")
        basis, _ = torch.linalg.qr(vectors.detach().to(self._params[0].dtype))
        self.state["nudge"]["basis"] = basis
        self.eigenvalues.append((self.state["nudge"]["step"], [float(v) for v in torch.as_tensor(values).reshape(-1)]))

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Nudged-SGD step (refreshing the eigenvectors first when due); returns the closure's loss."""
        loss = None
        if closure is not None:
            if not callable(closure):
                raise TypeError(f"closure must be callable, got {type(closure).__name__}")
            with torch.enable_grad():
                loss = closure()
        nudge_state = self.state["nudge"]
        due = nudge_state["step"] % self.every == 0 or nudge_state["basis"] is None
        finite = loss is None or not isinstance(loss, Tensor) or bool(torch.isfinite(loss).all())
        if due and finite:  # at a NaN/inf loss keep the old directions: the training loop sees the divergence
            with torch.enable_grad():
                self._refresh()
        steps = []
        for group in self.param_groups:  # plain SGD first, exactly as torch.optim.SGD updates
            for p in group["params"]:
                d = torch.zeros_like(p) if p.grad is None else p.grad
                if group["momentum"]:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.clone(d).detach()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                    d = state["momentum_buffer"]
                steps.append((-group["lr"] * d).reshape(-1))
                p.add_(d, alpha=-group["lr"])
        basis = nudge_state["basis"]
        if basis is not None and self.gamma != 1.0:  # then the nudge: −(1 − γ) U Uᵀ s on the step s
            correction = _project(basis, torch.cat(steps))
            i = 0
            for p in self._params:
                n = p.numel()
                p.add_(correction[i:i + n].view_as(p), alpha=-(1.0 - self.gamma))
                i += n
        nudge_state["step"] += 1
        return loss

    def __repr__(self) -> str:
        return f"NudgedSGD(lr={self.defaults['lr']}, gamma={self.gamma}, k={self.k}, every={self.every})"


# ----------------------------------------------------------------------------------------------
# variational optimizers: MFVI and friends
# ----------------------------------------------------------------------------------------------
class VariationalOptimizer(Optimizer):
    r"""Mean-field Gaussian posterior ``q(w) = N(μ, diag σ²)`` learned by perturbed gradients.

    Objective (per example, so its scale matches the usual mean loss):

        F(μ, σ) = E_{w ~ q}[ L(w) ] + KL(q ‖ N(0, λ₀⁻¹ I)) / N

    with ``L`` the mean minibatch loss (the negative log-likelihood per example), λ₀ =
    ``prior_precision`` and N = ``dataset_size``; N·F is the negative ELBO. μ is stored in the
    parameters themselves (so the model *is* the posterior mean between steps); σ = exp(s)
    (``std_param="log"``) or softplus(s) (``"softplus"``), with s kept in the optimizer state.
    Each step draws ``mc_samples`` perturbations ``ε_k`` (the subclass decides how), evaluates
    ``g_k = ∇L_B(μ + ε_k)`` and sets

        ∇_μ F ≈ mean_k g_k + λ₀ μ / N
        ∇_σ F ≈ mean_k g_k ⊙ ∂w/∂σ + (λ₀ σ − 1/σ) / N      (∂w/∂σ = ξ for ε = σ ⊙ ξ)

    then the base optimizer (Adam by default) updates μ and s (``∇_s = ∇_σ · dσ/ds``). Subclasses:
    :class:`MFVI`, :class:`MixSAM`, :class:`VariationalSAM`. Noise comes from torch's global RNG
    (seeded by ``fit(seed=…)``) or from ``generator``.

    The base optimizer must not add its own weight decay: the prior *is* the weight decay
    (λ₀/N, coupled L2), so ``weight_decay`` in ``base_kwargs`` is refused and set to 0. All
    parameter groups are given to the constructor (``add_param_group`` later is refused).

    Choosing the base: Adam normalizes each coordinate, so s = log σ moves by about ``lr`` per step
    whatever the size of its gradient — the KL's entropy term (−1/N) then makes σ grow at that rate
    until curvature stops it, which on a network can be far beyond what the mean can fit. With SGD
    the σ-gradient keeps its natural scale O(1/N) and σ moves slowly (chapter 02 uses SGD on the
    MLP, Adam on Bayesian linear regression).
    """

    _passes = "at perturbed points"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, prior_precision: float = 1.0,
                 init_std: float = 1e-2, mc_samples: int = 1, base_optimizer: str | type[Optimizer] = "adam",
                 std_param: str = "log", learn_std: bool = True, model: nn.Module | None = None,
                 generator: torch.Generator | None = None, **base_kwargs: Any):
        lr = _v.positive("lr", lr)
        prior_precision = _v.positive("prior_precision", prior_precision)
        dataset_size = _v.integer("dataset_size", dataset_size, 1)
        init_std = _v.positive("init_std", init_std)
        mc_samples = _v.integer("mc_samples", mc_samples, 1)
        _v.choice("std_param", std_param, STD_PARAMETERIZATIONS)
        learn_std = _v.boolean("learn_std", learn_std)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if base_kwargs.get("weight_decay", 0.0):
            raise ValueError(f"weight_decay={base_kwargs['weight_decay']!r} is not allowed in {type(self).__name__}: "
                             "the Gaussian prior already acts as weight decay λ₀/N — set prior_precision instead")
        base_kwargs.pop("weight_decay", None)
        base_cls = _resolve_base(base_optimizer)
        _check_base_kwargs(base_kwargs)
        defaults = dict(lr=lr, prior_precision=prior_precision, dataset_size=dataset_size, init_std=init_std,
                        mc_samples=mc_samples, learn_std=learn_std, **self._extra_defaults(), **base_kwargs)
        super().__init__(params, defaults)
        self.std_param, self.model, self.generator = std_param, model, generator
        self._base_cls, self._base_keys = base_cls, ["lr", *base_kwargs]
        if "weight_decay" in inspect.signature(base_cls).parameters:
            base_kwargs["weight_decay"] = 0.0
        for group in self.param_groups:
            for key in ("lr", "prior_precision", "init_std"):
                _v.positive(key, group[key])
            _v.integer("dataset_size", group["dataset_size"], 1)
            _v.integer("mc_samples", group["mc_samples"], 1)
            _v.boolean("learn_std", group["learn_std"])
            self._check_group(group)
            for p in group["params"]:
                if not p.is_floating_point():
                    raise TypeError("parameters must be floating-point tensors")
                _check_init_std(group["init_std"], p.dtype, std_param)
                self.state[p]["std_param"] = torch.full_like(p, _inverse_std(group["init_std"], std_param))
        self._mean_bufs: dict[Tensor, Tensor] = {}
        self.base_optimizer = base_cls(self._base_groups(), **base_kwargs)

    # -- subclass hooks -------------------------------------------------------------------------
    def _extra_defaults(self) -> dict:
        return {}

    def _check_group(self, group: dict) -> None:
        """Validate a subclass's per-group hyper-parameters."""

    def _needs_mean_gradient(self) -> bool:
        """Whether the perturbation needs ∇L_B(μ) (one pass at the mean before the perturbed ones)."""
        return False

    def _perturb(self, ps: list[Tensor], sigmas: list[Tensor], mean_grads: list[Tensor] | None,
                 groups: list[dict]) -> tuple[list[Tensor], list[Tensor] | None]:
        """ε per parameter and ∂w/∂σ per parameter (None: the perturbation does not depend on σ)."""
        raise NotImplementedError

    # -- plumbing ---------------------------------------------------------------------------------
    def _base_groups(self) -> list[dict]:
        groups = []
        for group in self.param_groups:
            stds = [self.state[p]["std_param"] for p in group["params"]]
            groups.append({"params": list(group["params"]) + stds, **{k: group[k] for k in self._base_keys}})
        return groups

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "base_optimizer"):
            raise NotImplementedError(f"{type(self).__name__} takes all parameter groups in its constructor")
        super().add_param_group(param_group)

    def _sync(self) -> None:
        for group, base in zip(self.param_groups, self.base_optimizer.param_groups):
            for k in self._base_keys:
                base[k] = group[k]

    def _noise(self, ps: list[Tensor]) -> list[Tensor]:
        """ξ ~ N(0, I) shaped like each parameter (one draw for all when dtypes and devices agree)."""
        first = ps[0]
        if all(p.dtype == first.dtype and p.device == first.device for p in ps):
            flat = torch.randn(sum(p.numel() for p in ps), generator=self.generator, dtype=first.dtype,
                               device=first.device)
            return [t.view_as(p) for t, p in zip(flat.split([p.numel() for p in ps]), ps)]
        return [torch.randn(p.shape, generator=self.generator, dtype=p.dtype, device=p.device) for p in ps]

    def _sigmas(self, ss: list[Tensor]) -> list[Tensor]:
        if self.std_param == "log":
            return list(torch._foreach_exp(ss))
        return [F.softplus(s) for s in ss]

    def _flat_params(self) -> tuple[list[Tensor], list[dict]]:
        ps, groups = [], []
        for group in self.param_groups:
            for p in group["params"]:
                ps.append(p)
                groups.append(group)
        return ps, groups

    @staticmethod
    def _take_grads(ps: list[Tensor]) -> list[Tensor]:
        """The gradients now in ``.grad`` (zeros where None), detached from the parameters."""
        out = []
        for p in ps:
            out.append(p.grad if p.grad is not None else torch.zeros_like(p))
            p.grad = None
        return out

    # -- the step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One step; returns the minibatch loss at μ when a pass at the mean is made (MixSAM with
        m < 1, variational SAM), else the loss averaged over the ``mc_samples`` samples."""
        closure = _check_closure(closure, type(self).__name__, self._passes)
        self._sync()
        ps, groups = self._flat_params()
        ss = [self.state[p]["std_param"] for p in ps]
        sigmas = self._sigmas(ss)
        means = []
        for p in ps:
            buf = self._mean_bufs.get(p)
            if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
                buf = self._mean_bufs[p] = torch.empty_like(p)
            means.append(buf)
        torch._foreach_copy_(means, ps)
        first_loss, mean_grads, passes = None, None, 0
        if self._needs_mean_gradient():
            first_loss = _call(closure, ps, type(self).__name__)
            mean_grads = self._take_grads(ps)
            passes = 1
        n_samples = max(g["mc_samples"] for g in self.param_groups)
        acc_mu: list[Tensor] | None = None
        acc_s: list[Tensor] | None = None
        losses = []
        for k in range(n_samples):
            if k > 0:
                torch._foreach_copy_(ps, means)
            eps, dw = self._perturb(ps, sigmas, mean_grads, groups)
            torch._foreach_add_(ps, eps)
            with frozen_bn_stats(self.model) if (self.model is not None and passes > 0) else nullcontext():
                losses.append(_call(closure, ps, type(self).__name__))
            passes += 1
            gs = self._take_grads(ps)
            gs_dw = None if dw is None else torch._foreach_mul(gs, dw)
            if k == 0:
                acc_mu, acc_s = gs, gs_dw
            else:
                torch._foreach_add_(acc_mu, gs)
                if gs_dw is not None:
                    torch._foreach_add_(acc_s, gs_dw)
        torch._foreach_copy_(ps, means)
        if n_samples > 1:
            torch._foreach_div_(acc_mu, float(n_samples))
            if acc_s is not None:
                torch._foreach_div_(acc_s, float(n_samples))
        # ∇_μ = mean g + (λ₀/N) μ, per tensor exactly as torch's coupled weight decay computes it
        coefs = [g["prior_precision"] / g["dataset_size"] for g in groups]
        if len(set(coefs)) == 1:
            g_mu = torch._foreach_add(acc_mu, means, alpha=coefs[0])
        else:
            g_mu = [a.add(m, alpha=c) for a, m, c in zip(acc_mu, means, coefs)]
        inv_n = [1.0 / g["dataset_size"] for g in groups]
        if self.std_param == "log":  # ∇_s = σ ∇_σ = σ·mean(g ⊙ ∂w/∂σ) + (λ₀σ² − 1)/N
            g_s = torch._foreach_mul(sigmas, sigmas)
            torch._foreach_mul_(g_s, coefs)
            torch._foreach_sub_(g_s, inv_n)
            if acc_s is not None:
                torch._foreach_addcmul_(g_s, acc_s, sigmas)
        else:  # ∇_s = sigmoid(s) ∇_σ
            g_sigma = [(c * sd - i / sd) for sd, c, i in zip(sigmas, coefs, inv_n)]
            if acc_s is not None:
                torch._foreach_add_(g_sigma, acc_s)
            g_s = [gsig * torch.sigmoid(s) for gsig, s in zip(g_sigma, ss)]
        for p, g, s, gs_, group in zip(ps, g_mu, ss, g_s, groups):
            p.grad = g
            s.grad = gs_ if group["learn_std"] else None
        self.base_optimizer.step()
        if first_loss is not None:
            return first_loss
        return losses[0] if len(losses) == 1 else torch.stack([torch.as_tensor(v).detach() for v in losses]).mean()

    # -- the posterior ------------------------------------------------------------------------------
    def posterior(self) -> list[tuple[Tensor, Tensor]]:
        """``[(μ, σ)]`` per parameter, in parameter order (detached copies).

        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> MFVI([w], dataset_size=10, init_std=0.5).posterior()[0][1]
        tensor([0.5000, 0.5000])
        """
        return [(p.detach().clone(), _std(self.state[p]["std_param"], self.std_param).detach().clone())
                for group in self.param_groups for p in group["params"]]

    def kl(self) -> float:
        """``KL(q ‖ p)`` of the current posterior (summed over all parameters, not divided by N)."""
        total = 0.0
        for group in self.param_groups:
            for p in group["params"]:
                sd = _std(self.state[p]["std_param"], self.std_param)
                total += float(gaussian_kl(p.detach(), sd, group["prior_precision"]))
        return total

    @contextmanager
    def sample(self, generator: torch.Generator | None = None) -> Iterator[None]:
        """Put one posterior sample ``w = μ + σ ⊙ ξ`` into the parameters; restore μ on exit.

        >>> w = torch.nn.Parameter(torch.zeros(3))
        >>> opt = MFVI([w], dataset_size=10, init_std=0.1)
        >>> with opt.sample():
        ...     moved = bool(w.abs().sum() > 0)
        >>> moved, w.abs().sum().item()
        (True, 0.0)
        """
        gen = generator if generator is not None else self.generator
        means = []
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    means.append((p, p.detach().clone()))
                    noise = torch.randn(p.shape, generator=gen, dtype=p.dtype, device=p.device)
                    p.add_(_std(self.state[p]["std_param"], self.std_param) * noise)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, m in means:
                    p.copy_(m)

    @torch.no_grad()
    def predict(self, model: nn.Module, x: Tensor, samples: int = 32, link: str = "softmax",
                generator: torch.Generator | None = None) -> Tensor:
        """Bayesian model average ``p(y|x) ≈ (1/S) Σ_s link(f(x; w_s))``, ``w_s ~ q`` (eval mode).

        ``link``: ``"softmax"`` (class probabilities), ``"sigmoid"`` or ``"identity"``.

        >>> model = torch.nn.Linear(2, 3)
        >>> opt = MFVI(model.parameters(), dataset_size=10)
        >>> torch.allclose(opt.predict(model, torch.zeros(4, 2), samples=5).sum(1), torch.ones(4))
        True
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        samples = _v.integer("samples", samples, 1)
        _v.choice("link", link, LINKS)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

        def sampled_forward(inputs: Tensor) -> Tensor:
            with self.sample(generator):
                return model(inputs)

        return _model_average(model, x, samples, link, sampled_forward)

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Groups, σ parameters (per parameter) and the base optimizer's state (key ``"base"``)."""
        sd = super().state_dict()
        sd["base"] = self.base_optimizer.state_dict()
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        if "base" not in state_dict:
            raise ValueError(f"state_dict has no 'base' entry: it was not saved by {type(self).__name__}.state_dict()")
        base = state_dict.pop("base")
        super().load_state_dict(state_dict)
        for group, bgroup in zip(self.param_groups, self.base_optimizer.param_groups):
            bgroup["params"] = list(group["params"]) + [self.state[p]["std_param"] for p in group["params"]]
        self.base_optimizer.load_state_dict(base)

    def __repr__(self) -> str:
        d = self.defaults
        return (f"{type(self).__name__}(lr={d['lr']}, prior_precision={d['prior_precision']}, "
                f"dataset_size={d['dataset_size']}, mc_samples={d['mc_samples']}, base={self._base_cls.__name__})")


class MFVI(VariationalOptimizer):
    r"""Mean-field variational inference with the reparameterization trick (Bayes by backprop).

    Minimizes ``E_{ξ~N(0,I)}[L(μ + σ ⊙ ξ)] + KL(N(μ, σ²) ‖ N(0, λ₀⁻¹))/N`` over μ (the parameters)
    and σ (optimizer state). Algorithm, per step::

        for k in 1..S:  ξ_k ~ N(0, I);  g_k = ∇L_B(μ + σ ⊙ ξ_k)          # S = mc_samples closure calls
        ∇_μ = mean_k g_k + λ₀ μ / N
        ∇_σ = mean_k g_k ⊙ ξ_k + (λ₀ σ − 1/σ) / N
        (μ, s) ← base_optimizer_step((μ, s), (∇_μ, ∇_σ · dσ/ds))

    ``MFVI(params, lr=1e-3, *, dataset_size, prior_precision=1.0, init_std=1e-2, mc_samples=1,
    base_optimizer="adam", std_param="log", learn_std=True, model=None, generator=None,
    **base_kwargs)``. For Bayesian linear regression with a Gaussian likelihood the optimum is
    known in closed form: μ = the exact posterior mean and σ_i² = 1/Λ_ii (Λ = posterior precision),
    checked in ``tests/test_optim.py``.

    Departures from Blundell et al.: the objective is divided by N (so ``lr`` means what it means
    for the mean loss); σ = exp(s) by default (softplus optional); no KL re-weighting over minibatches;
    ``learn_std=False`` keeps σ fixed (Gaussian smoothing of the loss: "random-perturbation SGD").

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    >>> opt = MFVI([w], lr=0.01, dataset_size=100, init_std=0.1)
    >>> def closure():
    ...     opt.zero_grad(); loss = (w ** 2).sum(); loss.backward(); return loss
    >>> _ = opt.step(closure); [round(float(s.mean()), 2) for _, s in opt.posterior()]
    [0.1]
    """

    _passes = "at mc_samples posterior samples μ + σ ⊙ ξ"

    def _perturb(self, ps, sigmas, mean_grads, groups):
        xi = self._noise(ps)
        return list(torch._foreach_mul(sigmas, xi)), xi


class MixSAM(VariationalOptimizer):
    r"""A mixture of SAM's worst-case perturbation and MFVI's random one (learns μ and σ).

    The perturbation, with m = ``mix`` ∈ [0, 1], g = ∇L_B(μ) and ξ ~ N(0, I)::

        ε = (1 − m) · ρ g / ‖g‖  +  m · σ ⊙ ξ            (ρ g/‖g‖ exactly as in SAM)
        ∇_μ = ∇L_B(μ + ε) + λ₀ μ / N
        ∇_σ = m · ∇L_B(μ + ε) ⊙ ξ + (λ₀ σ − 1/σ) / N    (∂ε/∂σ = m ξ; the SAM part is held fixed)

    Endpoints, exactly (bit for bit, tested): ``mix=1`` *is* :class:`MFVI` (same noise, same
    updates; no pass at the mean is made); ``mix=0`` *is* :class:`SAM` with the same base
    optimizer and coupled weight decay λ₀/N (``SAM(…, weight_decay=prior_precision/dataset_size)``,
    for SGD/Adam), its σ then learning from the KL term only. In between, each step costs one pass
    at μ plus ``mc_samples`` perturbed passes.

    This is flatlab's formulation of the interpolation that Ujváry et al. (2022) motivate; the
    paper's own variants may differ in detail.
    """

    _passes = "at μ (for SAM's direction) and at μ + ε"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, rho: float = 0.05, mix: float = 0.5,
                 **kwargs: Any):
        self._rho = _v.non_negative("rho", rho)
        self._mix = _v.number("mix", mix, 0, 1)
        super().__init__(params, lr, dataset_size=dataset_size, **kwargs)

    def _extra_defaults(self) -> dict:
        return {"rho": self._rho, "mix": self._mix}

    def _check_group(self, group: dict) -> None:
        _v.non_negative("rho", group["rho"])
        _v.number("mix", group["mix"], 0, 1)

    def _needs_mean_gradient(self) -> bool:
        return any(g["mix"] < 1.0 for g in self.param_groups)

    def _perturb(self, ps, sigmas, mean_grads, groups):
        mixes = [g["mix"] for g in groups]
        if all(m == 1.0 for m in mixes):  # exactly MFVI
            xi = self._noise(ps)
            return list(torch._foreach_mul(sigmas, xi)), xi
        e_sam = sam_perturbation(mean_grads, [g["rho"] for g in groups])
        if all(m == 0.0 for m in mixes):  # exactly SAM
            return e_sam, None
        xi = self._noise(ps)
        eps = torch._foreach_mul(e_sam, [1.0 - m for m in mixes])
        torch._foreach_add_(eps, torch._foreach_mul(torch._foreach_mul(sigmas, xi), mixes))
        return list(eps), list(torch._foreach_mul(xi, mixes))


class VariationalSAM(VariationalOptimizer):
    r"""SAM as a drop-in for the reparameterization trick: MFVI's μ and σ, SAM's worst-case ε.

    Instead of a random sample ε = σ ⊙ ξ, take the worst case of the linearized loss over the
    σ-scaled ball ``{σ ⊙ δ : ‖δ‖ ≤ ρ}`` (ρ counts standard deviations)::

        g = ∇L_B(μ);   δ = ρ σ ⊙ g / ‖σ ⊙ g‖;   ε = σ ⊙ δ = ρ σ² ⊙ g / ‖σ ⊙ g‖
        ∇_μ = ∇L_B(μ + ε) + λ₀ μ / N
        ∇_σ = ∇L_B(μ + ε) ⊙ δ + (λ₀ σ − 1/σ) / N        (δ held fixed, as SAM holds ε fixed)

    Two passes per step (``mc_samples`` must be 1: the perturbation is deterministic). flatlab's
    reading of the algorithm Ujváry et al. (2022) propose; with σ equal in every coordinate it
    is SAM with radius ρσ plus the prior's weight decay.
    """

    _passes = "at μ (for the worst-case direction) and at μ + ε"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, rho: float = 1.0, **kwargs: Any):
        self._rho = _v.non_negative("rho", rho)
        super().__init__(params, lr, dataset_size=dataset_size, **kwargs)

    def _extra_defaults(self) -> dict:
        return {"rho": self._rho}

    def _check_group(self, group: dict) -> None:
        _v.non_negative("rho", group["rho"])
        if group["mc_samples"] != 1:
            raise ValueError(f"mc_samples={group['mc_samples']!r} must be 1 for VariationalSAM "
                             "(its perturbation is deterministic)")

    def _needs_mean_gradient(self) -> bool:
        return True

    def _perturb(self, ps, sigmas, mean_grads, groups):
        scaled = torch._foreach_mul(sigmas, mean_grads)  # σ ⊙ g
        norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled))))
        deltas = list(torch._foreach_mul(scaled, [g["rho"] / (norm + 1e-12) for g in groups]))
        return list(torch._foreach_mul(sigmas, deltas)), deltas


# ----------------------------------------------------------------------------------------------
# calibration of a predictive distribution
# ----------------------------------------------------------------------------------------------
def calibration(probs: Tensor, y: Tensor, n_bins: int = 10) -> dict:
    """Reliability diagram and expected calibration error of class probabilities.

    Predictions are binned by confidence ``c = max_k p_k`` into ``n_bins`` equal-width bins;
    ``ECE = Σ_b (n_b/n) |accuracy_b − confidence_b|`` (Guo et al. 2017). Returns a dict with
    ``ece``, ``accuracy``, ``nll`` and per-bin arrays ``bin_confidence``, ``bin_accuracy``,
    ``bin_count``, ``bin_edges`` (NaN for empty bins).

    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]]); y = torch.tensor([0, 1])
    >>> round(calibration(p, y, n_bins=2)["ece"], 3)  # one bin: confidence 0.75, accuracy 0.5
    0.25
    """
    if not isinstance(probs, Tensor) or probs.dim() != 2:
        raise ValueError(f"probs must be a 2-D tensor (examples × classes), got "
                         f"{tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__}")
    if not isinstance(y, Tensor) or y.shape != probs.shape[:1]:
        raise ValueError(f"y must be a tensor of {probs.shape[0]} labels, got "
                         f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}")
    n_bins = _v.integer("n_bins", n_bins, 1)
    probs = probs.detach().double()
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    sum_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, conf)
    sum_acc = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = (sum_conf / count).numpy()
        bin_acc = (sum_acc / count).numpy()
    ece = float((torch.abs(sum_acc - sum_conf)).sum() / len(y))
    nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
    return {"ece": ece, "accuracy": float(correct.mean()), "nll": nll, "bin_confidence": bin_conf,
            "bin_accuracy": bin_acc, "bin_count": count.numpy(), "bin_edges": edges.numpy()}


def noise_predictive(model: nn.Module, x: Tensor, std: float, samples: int = 32, link: str = "softmax",
                     seed: int = 0) -> Tensor:
    """Average prediction under isotropic weight noise: ``(1/S) Σ_s link(f(x; w + std·ξ_s))``, ``ξ_s ~ N(0, I)``.

    The control for a posterior predictive: the same number of samples and a noise of matched size,
    but no learned structure — any weight noise softens an overconfident network, so a posterior's
    calibration means something only when it beats this. Runs in eval mode through
    ``torch.func.functional_call``: the parameters are never written. Noise from
    ``torch.Generator().manual_seed(seed)``.

    >>> model = torch.nn.Linear(2, 3)
    >>> p = noise_predictive(model, torch.zeros(4, 2), std=0.1, samples=5)
    >>> torch.allclose(p.sum(1), torch.ones(4))
    True
    """
    from torch.func import functional_call

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    std = _v.non_negative("std", std)
    samples = _v.integer("samples", samples, 1)
    _v.choice("link", link, LINKS)
    gen = torch.Generator().manual_seed(_v.seed("seed", seed))
    named = {n: p.detach() for n, p in model.named_parameters()}

    def sampled_forward(inputs: Tensor) -> Tensor:
        noisy = {n: p + std * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
                 for n, p in named.items()}
        return functional_call(model, noisy, (inputs,))

    with torch.no_grad():
        return _model_average(model, x, samples, link, sampled_forward)
