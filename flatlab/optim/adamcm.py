"""Adam with critical momenta (Adam+CM; Malviya et al., TMLR 2024, arXiv:2307.09638), with its departures from
the authors' code listed on the class."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from .. import _validate as _v
from ._common import _optional_closure


class AdamCM(torch.optim.Optimizer):
    r"""Adam whose first moment is augmented by a buffer of *critical momenta* (Adam+CM).

    For each parameter group, with gradient g_t (plus ``weight_decay``·θ, as in ``torch.optim.Adam``)::

        m_t = β₁ m_{t−1} + (1−β₁) g_t          v_t = β₂ v_{t−1} + (1−β₂) g_t²      (Adam's moments)
        m̃_t = m_t + κ · mean{ m_k : k ∈ B_{t−1} }                                 (critical momenta)
        θ_t = θ_{t−1} − η · (m̃_t / (1−β₁ᵗ)) / (√(v_t/(1−β₂ᵗ)) + ε)

    The buffer B holds at most ``buffer_size`` past momenta m_k with priorities p_k. Each step every
    priority decays, p_k ← λ·p_k (``decay`` = λ), then m_t enters with priority ‖g_t‖ (the norm over
    the whole group) if the buffer is not full, or replaces the lowest-priority entry if ‖g_t‖ is
    larger. Momenta taken where the gradient was large (steep walls of a basin) therefore keep
    pushing after the gradient has become small, and the optimizer overshoots basins that are
    narrower than that push. With ``buffer_size=0`` (or ``kappa=0``) it is ``torch.optim.Adam``,
    bit for bit.

    Choices and departures (Malviya et al. 2023, arXiv:2307.09638): aggregation is the "sum" rule
    m_t + κ·mean(B) and the defaults (C = 5, λ = 0.7, κ = 1) are those of the authors' released code.
    Against that code, this implementation departs in five places, each chosen so that
    ``buffer_size=0`` is exactly ``torch.optim.Adam`` and P = diag(√v̂ + ε) stays Adam's preconditioner:

    1. v_t accumulates the *gradients* g_t²; the authors' code accumulates the aggregated m̃_t².
    2. A momentum's priority is the norm of the whole group's gradient (one global norm); the
       authors' code uses a sum of per-tensor norms.
    3. Priorities decay *before* this step's momentum is inserted; the authors' code decays after.
    4. The first step is Adam's (the buffer is aggregated before m_1 enters it); the authors' code
       takes a zero first step that only buffers g_1.
    5. ``weight_decay`` is Adam's coupled L2 term; the authors' code decays the weights directly
       (decoupled, as AdamW does).

    Chapter 06's figures are for this variant. State per parameter: Adam's ``step``, ``exp_avg``,
    ``exp_avg_sq``, plus ``cm_buffer`` (C × shape), ``cm_sum`` (their running sum) and
    ``cm_priority`` (the group's priorities, shared).

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = AdamCM([w], lr=0.1, buffer_size=2)
    >>> for _ in range(3):
    ...     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
    >>> len(opt.state[w]["cm_priority"])
    2
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, buffer_size: int = 5, decay: float = 0.7,
                 kappa: float = 1.0):
        defaults = dict(lr=_v.positive("lr", lr), betas=_v.pair("betas", betas, 0, 1, high_open=True),
                        eps=_v.non_negative("eps", eps), weight_decay=_v.non_negative("weight_decay", weight_decay),
                        buffer_size=_v.integer("buffer_size", buffer_size, 0), decay=_v.number("decay", decay, 0, 1),
                        kappa=_v.non_negative("kappa", kappa))
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One Adam+CM step; ``closure`` (optional) re-evaluates the loss with gradients."""
        loss = _optional_closure(closure, [p for g in self.param_groups for p in g["params"]], "AdamCM")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            size, decay, kappa = group["buffer_size"], group["decay"], group["kappa"]
            use_buffer = size > 0 and kappa > 0
            grads = []
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError("AdamCM does not support sparse gradients")
                grads.append(p.grad if wd == 0 else p.grad.add(p, alpha=wd))
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if use_buffer and "cm_buffer" not in state:
                    state["cm_buffer"] = torch.zeros((size, *p.shape), dtype=p.dtype, device=p.device)
                    state["cm_sum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["cm_priority"] = torch.zeros(0, dtype=torch.float64)
            if use_buffer:
                # one decision per group: the priority of this step's momentum is the group's ‖g‖
                priority = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
                old = self.state[params[0]]["cm_priority"]
                n = len(old)
                prio = old * decay
                slot = None
                if n < size:
                    slot, prio = n, torch.cat([prio, prio.new_tensor([priority])])
                else:
                    low = int(torch.argmin(prio))
                    if priority > float(prio[low]):
                        slot = low
                        prio[low] = priority
            for p, grad in zip(params, grads):
                state = self.state[p]
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t += 1
                # Adam's moments — the same operations, in the same order, as torch.optim.Adam
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
                direction = exp_avg
                if use_buffer:
                    buf, total = state["cm_buffer"], state["cm_sum"]
                    if n:  # m̃ = m + κ · mean of the buffer *before* this step's momentum enters it
                        direction = torch.add(exp_avg, total, alpha=kappa / n)
                    if slot is not None:
                        if slot < n:
                            total.sub_(buf[slot])
                        buf[slot].copy_(exp_avg)
                        total.add_(exp_avg)
                    state["cm_priority"] = prio
                p.addcdiv_(direction, denom, value=-step_size)
        return loss
