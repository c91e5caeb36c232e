"""SAM and ASAM (Foret et al. 2021, arXiv:2010.01412; Kwon et al. 2021, arXiv:2102.11600): the perturbation
as a plain function, ASAM's parameter groups, and the optimizer."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from .. import _validate as _v
from ._common import ASAM_ETA, _call, _check_base_kwargs, _check_closure, _resolve_base, _whole_state, frozen_bn_stats


# ----------------------------------------------------------------------------------------------
# plain update functions
# ----------------------------------------------------------------------------------------------
def global_norm(tensors: Sequence[Tensor]) -> float:
    """``‖(t₁, …, t_k)‖₂``, the Euclidean norm over all the tensors together (the norm of each, then of those).

    >>> global_norm([torch.tensor([3.0]), torch.tensor([[4.0]])])
    5.0
    """
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors)))))


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
    if any(ad) and (params is None or len(params) != n):
        raise ValueError("params (the weights w, one per gradient) are needed when adaptive=True")
    return _sam_epsilon_([g.clone() for g in grads], rhos, params, ad, etas, eps)


def _sam_epsilon_(grads: list[Tensor], rhos: list[float], params: Sequence[Tensor] | None, ad: list[bool],
                  etas: list[float], eps: float = 1e-12) -> list[Tensor]:
    """:func:`sam_perturbation` on checked per-tensor lists, *overwriting* ``grads`` with ε (and returning
    them): no tensor is allocated but ASAM's ``T``, which :meth:`SAM.step` relies on to stay cheap."""
    if any(ad):
        sel = [i for i, a in enumerate(ad) if a]                     # the adaptive tensors
        ts = torch._foreach_abs([params[i] for i in sel])             # T = |w| + η, fused over tensors
        sel_etas = [etas[i] for i in sel]
        torch._foreach_add_(ts, sel_etas[0] if len(set(sel_etas)) == 1 else sel_etas)   # one scalar when shared
        torch._foreach_mul_([grads[i] for i in sel], ts)              # T g
    norm = global_norm(grads)
    if any(ad):
        torch._foreach_mul_([grads[i] for i in sel], ts)              # T² g
    factors = [r / (norm + eps) for r in rhos]
    # one scalar when every tensor shares ρ: a list of scalars costs a tensor per scalar on the CPU
    torch._foreach_mul_(grads, factors[0] if len(set(factors)) == 1 else factors)
    return grads


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
        """Move every parameter to ``w + ε`` using the gradients now in ``.grad`` (saving ``w``); with
        ``zero_grad=True`` the gradients are overwritten by ε on the way (no copy of them is made)."""
        self._first_step(zero_grad)

    def _first_step(self, zero_grad: bool) -> None:
        ps, gs, rhos, ads, etas = [], [], [], [], []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            rho = _v.non_negative("rho", group["rho"])
            adaptive = _v.boolean("adaptive", group["adaptive"])
            eta = _v.non_negative("eta", group.get("eta", self.defaults["eta"]))
            ps += params
            gs += [p.grad for p in params]
            rhos += [rho] * len(params)
            ads += [adaptive] * len(params)
            etas += [eta] * len(params)
        if ps:
            eps = _sam_epsilon_(gs if zero_grad else [g.clone() for g in gs], rhos, ps, ads, etas)
            olds = []
            for p in ps:
                state = self.state[p]
                if "old_p" not in state:
                    state["old_p"] = torch.empty_like(p)
                olds.append(state["old_p"])
            torch._foreach_copy_(olds, ps)
            if all(r != 0.0 for r in rhos):
                torch._foreach_add_(ps, eps)
            else:   # ρ = 0 leaves its tensors exactly where they are
                moved = [(p, e) for p, e, r in zip(ps, eps, rhos) if r != 0.0]
                if moved:
                    torch._foreach_add_([p for p, _ in moved], [e for _, e in moved])
            self._olds = olds
        self._moved = ps
        if zero_grad:
            for p in ps:
                p.grad = None

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and take the base optimizer's step with the gradients at ``w + ε``."""
        self._second_step()
        if zero_grad:
            self.zero_grad()

    def _second_step(self) -> None:
        ps = getattr(self, "_moved", None)
        if ps is None:
            raise RuntimeError("second_step() called without first_step(): call first_step() first")
        if ps:
            torch._foreach_copy_(ps, self._olds)
        self._moved = self._olds = None
        self.base_optimizer.step()

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One SAM step: ``closure()`` at ``w``, then at ``w + ε``; returns the loss at ``w``."""
        closure = _check_closure(closure, self._name, "at w and at the perturbed point w + ε")
        params = [p for group in self.param_groups for p in group["params"]]
        loss = _call(closure, params, self._name)
        self._first_step(zero_grad=True)
        with frozen_bn_stats(self.model) if self.model is not None else nullcontext():
            _call(closure, params, self._name)
        self._second_step()
        return loss

    __getstate__ = _whole_state   # a deep copy or a pickle keeps the base optimizer

    def state_dict(self) -> dict:
        """The base optimizer's state dict (its ``param_groups`` also hold ``rho`` and ``adaptive``)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups

    def __repr__(self) -> str:
        return f"{self._name}(rho={self.defaults['rho']}, base={self.base_optimizer!r})"
