"""Hessian-vector products without forming the Hessian: :func:`hvp` for a function of tensors and
:class:`HessianOperator` for a model's loss (Pearlmutter 1994, double backward)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse.linalg as spla
import torch
from torch import Tensor, nn

from ._common import Data, LossFn, _as_vectors, _check_data, _check_loss_fn, _flat, _forward_loss, _split, _trainable



def hvp(loss_fn: Callable[[list[Tensor]], Tensor], params: Tensor | Sequence[Tensor],
        v: Tensor | Sequence[Tensor]) -> Tensor | list[Tensor]:
    """Hessian-vector product of a scalar function of a list of tensors: ``H v = ∇(∇f(θ)·v)``.

    ``loss_fn`` takes the list ``params`` (or the single tensor when ``params`` is a tensor).
    ``v`` is a list shaped like ``params`` (returns a list), or one flat vector of their total size
    (returns a flat vector). Double backward (Pearlmutter's trick); the inputs are not modified.

    >>> hvp(lambda ps: (ps[0] ** 3).sum(), [torch.tensor([1.0, 2.0])], [torch.ones(2)])
    [tensor([ 6., 12.])]
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    single = isinstance(params, Tensor)
    plist = [params] if single else list(params)
    if not plist or not all(isinstance(p, Tensor) and p.is_floating_point() for p in plist):
        raise TypeError("params must be a floating-point tensor or a non-empty list of them")
    dim = sum(p.numel() for p in plist)
    flat_v = isinstance(v, Tensor) and not single and v.dim() == 1 and v.numel() == dim
    if single and isinstance(v, Tensor):
        if v.shape != plist[0].shape:
            raise ValueError(f"v has shape {tuple(v.shape)}, expected {tuple(plist[0].shape)}")
        vs = [v.to(plist[0].dtype)]
    elif flat_v:
        vs = [t.to(p.dtype) for t, p in zip(_split(v, plist), plist)]
    else:
        vs = _as_vectors("v", v, plist)
    leaves = [p.detach().requires_grad_(True) for p in plist]
    with torch.enable_grad():
        loss = loss_fn(leaves[0] if single else leaves)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        grads = torch.autograd.grad(loss.reshape(()), leaves, create_graph=True, allow_unused=True)
        hv = _grad_of_grads(grads, leaves, vs, retain_graph=False)
    if single:
        return hv[0]
    return _flat(hv) if flat_v else hv


def _grad_of_grads(grads: Sequence[Tensor | None], params: Sequence[Tensor], vs: Sequence[Tensor],
                   retain_graph: bool) -> list[Tensor]:
    """``∇(g · v)`` for ``grads`` built with ``create_graph=True``; zero where g is constant."""
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    hv: Sequence[Tensor | None] = [None] * len(params)
    if live:
        hv = torch.autograd.grad([grads[i] for i in live], params,
                                 grad_outputs=[vs[i] for i in live],
                                 retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hv, params)]


class HessianOperator:
    """The Hessian of ``L(θ) = loss_fn(model(x), y)`` at the current parameters, as an operator.

    ``H v = ∇_θ (∇_θ L · v)``: the loss and its gradient graph (``create_graph=True``) are built
    once in the constructor and reused by every :meth:`matvec`, so a product costs one backward
    pass through the gradient graph. Only parameters with ``requires_grad`` count; flat vectors
    follow ``model.parameters()`` order. The model's parameters and ``.grad`` are not touched.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> op = HessianOperator(model, torch.nn.functional.cross_entropy, data)
    >>> op.dim, op.matvec(torch.ones(op.dim)).shape
    (8, torch.Size([8]))
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data):
        self.names, self.params = _trainable(model)
        _check_loss_fn(loss_fn)
        data = _check_data(data)
        self.dtype = self.params[0].dtype
        self.shapes = [p.shape for p in self.params]
        self.dim = int(sum(p.numel() for p in self.params))
        self.n_products = 0
        with torch.enable_grad():
            loss = _forward_loss(model, loss_fn, data)
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.loss = float(loss.detach())
        self._grads = grads
        self.grad = _flat([torch.zeros_like(p) if g is None else g.detach()
                           for g, p in zip(grads, self.params)])

    def matvec(self, v: Tensor) -> Tensor:
        """``H v`` for a flat vector ``v`` of size :attr:`dim`; returns ``v``'s dtype."""
        if not isinstance(v, Tensor):
            v = torch.as_tensor(np.asarray(v))
        if v.shape != (self.dim,):
            raise ValueError(f"v must have shape ({self.dim},), got {tuple(v.shape)}")
        out_dtype = v.dtype if v.is_floating_point() else self.dtype
        vs = _split(v.detach().to(self.dtype), self.params)
        hv = _grad_of_grads(self._grads, self.params, vs, retain_graph=True)
        self.n_products += 1
        return _flat(hv).to(out_dtype)

    __matmul__ = matvec

    def as_linear_operator(self) -> spla.LinearOperator:
        """A float64 ``scipy.sparse.linalg.LinearOperator`` (for ``eigsh``, ``cg``, …)."""

        def mv(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))
            return self.matvec(t).numpy()

        return spla.LinearOperator((self.dim, self.dim), matvec=mv, rmatvec=mv, dtype=np.float64)

    def __repr__(self) -> str:
        return f"HessianOperator(dim={self.dim}, n_products={self.n_products})"
