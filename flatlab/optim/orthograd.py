"""⊥Grad (Prieto et al. 2025, "Grokking at the edge of numerical stability", arXiv:2501.04697): the gradient of
every parameter with its component along the parameter removed, and the optimizer wrapper that steps a base
optimizer on it."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ._common import _optional_closure


def orthogonal_gradient(grad: torch.Tensor, weight: torch.Tensor, rescale: bool = True) -> torch.Tensor:
    """⊥Grad of one parameter: g⊥ = g − (⟨g, w⟩/⟨w, w⟩) w, rescaled to ‖g‖ when ``rescale``.

    Removing the component along w stops the step from merely scaling the weights up (the "naive
    loss minimization" direction that inflates the logits). w = 0 or g⊥ = 0 leaves g unchanged.

    >>> orthogonal_gradient(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    tensor([0.0000, 1.4142])
    """
    if not (isinstance(grad, torch.Tensor) and isinstance(weight, torch.Tensor)):
        raise TypeError("grad and weight must be torch tensors")
    if grad.shape != weight.shape:
        raise ValueError(f"grad has shape {tuple(grad.shape)} but weight has {tuple(weight.shape)}")
    g, w = grad.reshape(-1), weight.detach().reshape(-1)
    ww = torch.dot(w, w)
    if ww == 0:
        return grad.clone()
    g_perp = g - (torch.dot(g, w) / ww) * w
    if rescale:
        n_perp = g_perp.norm()
        if n_perp == 0:
            return grad.clone()
        g_perp = g_perp * (g.norm() / n_perp)
    return g_perp.reshape(grad.shape)


def orthogonalize_gradients_(params: Iterable[torch.Tensor], rescale: bool = True) -> None:
    """Replace each ``p.grad`` in place by its ⊥Grad (per parameter tensor, see :func:`orthogonal_gradient`)."""
    for p in params:
        if p.grad is not None:
            p.grad.copy_(orthogonal_gradient(p.grad, p, rescale))


class OrthoGrad(torch.optim.Optimizer):
    """⊥Grad wrapper: project every parameter's gradient orthogonal to the parameter, then step a base optimizer.

    g ← (g − (⟨g,w⟩/⟨w,w⟩) w) · ‖g‖/‖g⊥‖, then ``base_optimizer.step()``. Works with or without a
    closure (a closure is called once, under autograd), so ``flatlab.train.fit`` can drive it.

    >>> m = torch.nn.Linear(3, 2)
    >>> opt = OrthoGrad(m.parameters(), torch.optim.AdamW, lr=1e-2, weight_decay=0.0)
    """

    def __init__(self, params, base_optimizer=torch.optim.AdamW, rescale: bool = True, **kwargs):
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise TypeError("base_optimizer must be a torch.optim.Optimizer class, e.g. torch.optim.AdamW")
        self.base_optimizer = base_optimizer(params, **kwargs)
        self.rescale = bool(rescale)
        # share the base optimizer's groups and state so lr schedules and state_dict see one optimizer
        super().__init__(self.base_optimizer.param_groups, self.base_optimizer.defaults)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    @torch.no_grad()
    def step(self, closure=None):
        loss = _optional_closure(closure, [p for g in self.param_groups for p in g["params"]], "OrthoGrad")
        for group in self.param_groups:
            orthogonalize_gradients_(group["params"], self.rescale)
        self.base_optimizer.step()
        return loss

    def state_dict(self):
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict)
        # torch's load_state_dict builds new param_groups and state objects: share them again, or a scheduler (and
        # this wrapper's own param_groups) would keep reading the groups from before the load
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
