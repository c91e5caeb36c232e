"""What flatlab's optimizers share: the base optimizers by name, argument and closure checks, the model
average behind a posterior predictive, and BatchNorm statistics frozen for the extra passes."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from .. import _validate as _v


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


def _whole_state(optimizer: Optimizer) -> dict:
    """``__getstate__`` for an optimizer built over a base optimizer: everything but the hooks (torch's
    ``Optimizer.__getstate__`` keeps only defaults, state and param_groups, so a deep copy or a pickle would lose the
    base optimizer and the step would fail)."""
    return {k: v for k, v in optimizer.__dict__.items() if not k.startswith("_optimizer_")}


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


def _optional_closure(closure: Any, params: Sequence[Tensor], name: str) -> Tensor | None:
    """torch's convention for one-pass optimizers: no closure, no loss (the gradients in ``.grad`` are used);
    otherwise the closure is checked and called as by :func:`_call`."""
    return None if closure is None else _call(_check_closure(closure, name, ""), params, name)


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
