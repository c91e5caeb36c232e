"""Nudged-SGD (Jastrzębski et al., ICLR 2019, arXiv:1807.05031): SGD whose step along the top-k Hessian
eigenvectors is scaled by γ."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

from .. import _validate as _v
from ._common import _optional_closure


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
        loss = _optional_closure(closure, [p for g in self.param_groups for p in g["params"]], "NudgedSGD")
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
