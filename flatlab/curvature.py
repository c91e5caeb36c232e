"""Curvature of a loss landscape: Hessian-vector products, eigenvalues, trace, spectra, sharpness.

Everything here works on a model, a loss function ``loss_fn(model(x), y) -> scalar`` and a batch
``data = (x, y)``; nothing forms the Hessian. Flat vectors follow the order of
``model.parameters()`` restricted to the parameters with ``requires_grad``.

References
----------
- Pearlmutter 1994, "Fast exact multiplication by the Hessian" (double backward HVP).
- Lanczos 1950; Lehoucq, Sorensen & Yang 1998 (ARPACK, via ``scipy.sparse.linalg.eigsh``).
- Hutchinson 1989, "A stochastic estimator of the trace"; Meyer, Musco, Musco & Woodruff 2021,
  "Hutch++: optimal stochastic trace estimation" (arXiv:2010.09649).
- Ubaru, Chen & Saad 2017, "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature";
  Ghorbani, Krishnan & Xiao 2019, "An investigation into neural net optimization via Hessian
  eigenvalue density" (arXiv:1901.10159); Yao et al. 2020, PyHessian (arXiv:1912.07145).
- Keskar et al. 2017 (arXiv:1609.04836); Foret et al. 2021, SAM (arXiv:2010.01412);
  Kwon et al. 2021, ASAM (arXiv:2102.11600); Andriushchenko et al. 2023, "A modern look at the
  relationship between sharpness and generalization" (arXiv:2302.07011).
- Li et al. 2018, "Visualizing the loss landscape of neural nets" (arXiv:1712.09913);
  Goodfellow, Vinyals & Saxe 2015, linear interpolation (arXiv:1412.6544).
- Dinh et al. 2017, "Sharp minima can generalize for deep nets" (arXiv:1703.04933).
- Cohen et al. 2021, "Gradient descent on neural networks typically occurs at the edge of
  stability" (arXiv:2103.00065) — the thresholds of :func:`stability_threshold`.

Conventions
-----------
- Models are evaluated in their current mode (``train()``/``eval()``); call ``model.eval()``
  first if it has dropout. Forward passes run on copies of the buffers, so BatchNorm running
  statistics are never updated: measuring curvature does not change the model (nor ``.grad``).
- Every function that perturbs the parameters evaluates the model through
  ``torch.func.functional_call`` and never writes to the parameters: they are unchanged, bit
  for bit, afterwards.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits
import torch
from torch import Tensor, nn
from torch.func import functional_call

from . import _validate as _v

__all__ = [
    "hvp",
    "HessianOperator",
    "top_eigenvalues",
    "hessian_trace",
    "slq_nodes",
    "spectral_density",
    "worst_case_sharpness",
    "average_sharpness",
    "adaptive_sharpness",
    "random_direction",
    "loss_line",
    "loss_surface",
    "interpolate",
    "stability_threshold",
    "CurvatureProbe",
    "SharpestDirections",
    "NonFiniteLossError",
    "TRACE_METHODS",
    "OPTIMIZERS",
]

Data = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]

TRACE_METHODS = ("hutchinson", "hutch++")
OPTIMIZERS = ("gd", "heavy_ball", "nesterov")


# ----------------------------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------------------------
class NonFiniteLossError(ValueError):
    """The loss is NaN/inf at the parameters where curvature was asked for."""


def _trainable(model: Any, name: str = "model") -> tuple[list[str], list[Tensor]]:
    """Names and tensors of the parameters with ``requires_grad``, in ``model.parameters()`` order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    names, params = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            names.append(n)
            params.append(p)
    if not params:
        raise ValueError(f"{name} has no trainable parameters (none with requires_grad=True)")
    return names, params


def _check_data(data: Any) -> Data:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data must be a tuple (x, y) of two tensors, got {type(data).__name__}"
                         + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"data must be a tuple (x, y) of torch tensors, got "
                        f"({type(x).__name__}, {type(y).__name__})")
    if x.dim() == 0 or y.dim() == 0:
        raise ValueError(f"data tensors need a batch dimension; got x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"data: x has {x.shape[0]} examples but y has {y.shape[0]} "
                         f"(x {tuple(x.shape)}, y {tuple(y.shape)})")
    return x, y


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model(x), y), got {type(loss_fn).__name__}")


def _forward_loss(model: nn.Module, loss_fn: LossFn, data: Data,
                  named: dict[str, Tensor] | None = None, check_finite: bool = True) -> Tensor:
    """``loss_fn(model(x), y)`` with ``named`` tensors substituted; errors name the argument.

    The forward pass runs through ``functional_call`` on *copies* of the buffers, so a BatchNorm
    layer in train mode does not update the model's running statistics.
    """
    x, y = data
    subs = {n: b.clone() for n, b in model.named_buffers()}
    subs.update(named or {})
    try:
        out = functional_call(model, subs, (x,)) if subs else model(x)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"data does not fit the model: forward failed on x of shape "
                         f"{tuple(x.shape)} (y {tuple(y.shape)}): {err}") from err
    try:
        loss = loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"data does not fit the loss: loss_fn failed on model output "
                         f"{tuple(out.shape)} and y {tuple(y.shape)}: {err}") from err
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got "
                         f"{tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__}")
    loss = loss.reshape(())
    if check_finite and not bool(torch.isfinite(loss)):
        raise NonFiniteLossError(f"loss is {loss.item()} (NaN/inf) at these parameters; "
                                 f"curvature is undefined there")
    return loss


def _split(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    out, i = [], 0
    for p in like:
        n = p.numel()
        out.append(flat[i:i + n].view_as(p))
        i += n
    return out


def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _as_vectors(name: str, d: Any, params: Sequence[Tensor]) -> list[Tensor]:
    """A direction given as a list like ``params`` or as a flat vector → list like ``params``."""
    dim = sum(p.numel() for p in params)
    if isinstance(d, Tensor) and d.dim() == 1 and d.numel() == dim and not (
            len(params) == 1 and params[0].dim() == 1):
        return [t.to(p.dtype) for t, p in zip(_split(d, params), params)]
    if isinstance(d, Tensor) and len(params) == 1 and d.shape == params[0].shape:
        return [d.to(params[0].dtype)]
    if not isinstance(d, (list, tuple)) or len(d) != len(params):
        raise ValueError(f"{name} must be a list of {len(params)} tensors shaped like the trainable "
                         f"parameters, or a flat tensor of size {dim}")
    out = []
    for i, (t, p) in enumerate(zip(d, params)):
        if not isinstance(t, Tensor) or t.shape != p.shape:
            raise ValueError(f"{name}[{i}] has shape "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}, "
                             f"expected {tuple(p.shape)}")
        out.append(t.detach().to(p.dtype))
    return out


def _alphas(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values if not isinstance(values, Tensor) else values.detach().cpu().numpy(),
                     dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got shape "
                         f"{arr.shape}")
    return arr


def _rademacher(dim: int, n: int, seed: int) -> list[Tensor]:
    """``n`` Rademacher (±1) vectors in float64 — the same sequence for every estimator."""
    g = torch.Generator().manual_seed(int(seed))
    return [torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1 for _ in range(n)]


# ----------------------------------------------------------------------------------------------
# Hessian-vector products
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# eigenvalues, trace, spectral density
# ----------------------------------------------------------------------------------------------
def _check_k(k: Any, dim: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1 or k >= dim:
        raise ValueError(f"k={k} must satisfy 1 <= k < dim={dim} (Lanczos needs k < dim)")
    return int(k)


def _top_eigs(op: HessianOperator, k: int, tol: float, v0: Any = None,
              ncv: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    if v0 is None:
        start = np.random.default_rng(0).standard_normal(op.dim)
    else:
        start = np.asarray(v0.detach().cpu().numpy() if isinstance(v0, Tensor) else v0,
                           dtype=np.float64).reshape(-1)
        if start.shape != (op.dim,) or not np.all(np.isfinite(start)) or not np.any(start):
            raise ValueError(f"v0 must be a finite non-zero vector of size dim={op.dim}, got shape "
                             f"{np.shape(v0)}")
    if ncv is not None:
        ncv = _v.integer("ncv", ncv, 1)
        if not k < ncv <= op.dim:
            raise ValueError(f"ncv={ncv} must satisfy k={k} < ncv <= dim={op.dim}")
    # ARPACK's vector updates are tiny BLAS calls: extra BLAS threads only fight torch's for the cores
    # (measured 2-3x slower with 2 BLAS threads on 2 cores), so they run single-threaded here.
    with threadpool_limits(limits=1, user_api="blas"):
        vals, vecs = spla.eigsh(op.as_linear_operator(), k=k, which="LA", tol=tol, v0=start, ncv=ncv)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def top_eigenvalues(model: nn.Module, loss_fn: LossFn, data: Data, k: int = 1, tol: float = 1e-4,
                    return_vectors: bool = False, v0: Tensor | np.ndarray | None = None,
                    ncv: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """The ``k`` largest (algebraic) Hessian eigenvalues, descending: ``H u_i = λ_i u_i``.

    Implicitly restarted Lanczos (ARPACK, ``scipy.sparse.linalg.eigsh(which="LA")``) on
    :class:`HessianOperator`; ``tol`` is ARPACK's relative residual tolerance
    ``‖H u − λ u‖ ≤ tol·|λ|`` (eigenvalue errors are usually far smaller). ``v0`` warm-starts
    Lanczos (e.g. the sum of the previous top eigenvectors); by default a fixed-seed Gaussian
    vector, so the result is deterministic. ``ncv`` is the Lanczos basis size (scipy's default
    ``min(dim, max(2k+1, 20))``; ARPACK spends ``ncv`` products before its first convergence
    test, so a small ``ncv`` pays off with a good ``v0``). With ``return_vectors`` also returns
    unit eigenvectors ``[dim, k]``.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> data = (torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> top_eigenvalues(model, torch.nn.functional.cross_entropy, data, k=2).shape
    torch.Size([2])
    """
    tol = _v.positive("tol", tol)
    op = HessianOperator(model, loss_fn, data)
    k = _check_k(k, op.dim)
    vals, vecs = _top_eigs(op, k, tol, v0, ncv)
    values = torch.as_tensor(vals.copy(), dtype=op.dtype)
    if return_vectors:
        return values, torch.as_tensor(vecs.copy(), dtype=op.dtype)
    return values


def _check_method(method: Any) -> str:
    return _v.choice("method", method, TRACE_METHODS)


def _trace(op: HessianOperator, n_samples: int, method: str, seed: int) -> float:
    dim = op.dim
    if method == "hutchinson":
        zs = _rademacher(dim, n_samples, seed)
        return float(np.mean([float(z @ op.matvec(z)) for z in zs]))
    # Hutch++ (Meyer et al. 2021, Algorithm 1) with exactly n_samples products:
    # m1 = n//3 for the sketch H S, m1 for H Q, the rest for Hutchinson on the deflated part.
    m1 = n_samples // 3
    m2 = n_samples - 2 * m1
    zs = _rademacher(dim, n_samples, seed)
    S = torch.stack(zs[:m1], dim=1)
    G = torch.stack(zs[m1:m1 + m2], dim=1)
    HS = torch.stack([op.matvec(S[:, j]) for j in range(m1)], dim=1)
    Q, _ = torch.linalg.qr(HS)
    HQ = torch.stack([op.matvec(Q[:, j]) for j in range(Q.shape[1])], dim=1)
    t_low = float(torch.sum(Q * HQ))
    Gp = G - Q @ (Q.T @ G)
    t_rest = float(np.mean([float(Gp[:, j] @ op.matvec(Gp[:, j])) for j in range(m2)]))
    return t_low + t_rest


def hessian_trace(model: nn.Module, loss_fn: LossFn, data: Data, n_samples: int = 100,
                  method: str = "hutchinson", seed: int = 0) -> float:
    """Stochastic estimate of ``tr H = E[zᵀ H z]`` with Rademacher probes ``z``.

    ``"hutchinson"``: the mean of ``zᵀHz`` over ``n_samples`` probes (error ~ 1/√n).
    ``"hutch++"``: exact trace of a low-rank sketch ``QᵀHQ`` (Q from ``H S``) plus Hutchinson on
    ``(I−QQᵀ)H(I−QQᵀ)`` — the same ``n_samples`` Hessian-vector products, error ~ 1/n when the
    spectrum decays (Meyer et al. 2021). Probe ``i`` is the same for every method and for
    :func:`slq_nodes` with the same ``seed``.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> t = hessian_trace(model, torch.nn.functional.cross_entropy, data, n_samples=30)
    """
    n_samples = _v.integer("n_samples", n_samples, 1)
    seed = _v.seed("seed", seed)
    method = _check_method(method)
    if method == "hutch++" and n_samples < 3:
        raise ValueError(f"n_samples={n_samples} must be >= 3 for method='hutch++'")
    op = HessianOperator(model, loss_fn, data)
    return _trace(op, n_samples, method, seed)


def _lanczos(op: HessianOperator, v: Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from ``v`` (float64, full reorthogonalization) → (α, β)."""
    v = v / torch.linalg.vector_norm(v)
    V = [v]
    alphas: list[float] = []
    betas: list[float] = []
    thresh = 100 * torch.finfo(op.dtype).eps
    w = op.matvec(v)
    for j in range(steps):
        a = float(V[-1] @ w)
        alphas.append(a)
        if j == steps - 1:
            break
        w = w - a * V[-1] - (betas[-1] * V[-2] if betas else 0.0)
        Vm = torch.stack(V)
        for _ in range(2):  # full reorthogonalization, twice is enough
            w = w - Vm.T @ (Vm @ w)
        b = float(torch.linalg.vector_norm(w))
        scale = max(max(abs(x) for x in alphas), max(betas, default=0.0), 1e-300)
        if b <= thresh * scale:  # invariant subspace found: the quadrature is exact already
            break
        betas.append(b)
        V.append(w / b)
        w = op.matvec(V[-1])
    return np.asarray(alphas), np.asarray(betas)


def _slq(op: HessianOperator, n_probes: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    steps = min(steps, op.dim)
    nodes = np.zeros((n_probes, steps))
    weights = np.zeros((n_probes, steps))
    for i, z in enumerate(_rademacher(op.dim, n_probes, seed)):
        a, b = _lanczos(op, z, steps)
        if len(a) == 1:
            theta, U = a.copy(), np.ones((1, 1))
        else:
            theta, U = sla.eigh_tridiagonal(a, b[:len(a) - 1])
        m = len(theta)
        nodes[i, :m] = theta
        nodes[i, m:] = theta[-1]  # padding (weight 0) when Lanczos stopped early
        weights[i, :m] = U[0, :] ** 2
    return nodes, weights


def slq_nodes(model: nn.Module, loss_fn: LossFn, data: Data, n_probes: int = 8,
              lanczos_steps: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature nodes and weights: ``zᵀf(H)z/‖z‖² ≈ Σ_j w_j f(θ_j)``.

    For each Rademacher probe ``z`` (the same probes as :func:`hessian_trace` with this ``seed``)
    run ``m = min(lanczos_steps, dim)`` Lanczos steps; the Ritz values ``θ_j`` of the tridiagonal
    ``T`` are the nodes and the squared first components of its eigenvectors the weights (each
    row sums to 1). Exact for polynomials of degree < 2m, so ``mean_i Σ_j w_ij θ_ij`` equals
    Hutchinson's ``tr H / dim`` with the same probes. Returns arrays ``[n_probes, m]``; rows of
    probes whose Krylov space closed early are padded with weight 0.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> nodes, weights = slq_nodes(model, torch.nn.functional.cross_entropy, data, lanczos_steps=4)
    >>> nodes.shape
    (8, 4)
    """
    n_probes = _v.integer("n_probes", n_probes, 1)
    lanczos_steps = _v.integer("lanczos_steps", lanczos_steps, 1)
    seed = _v.seed("seed", seed)
    op = HessianOperator(model, loss_fn, data)
    return _slq(op, n_probes, lanczos_steps, seed)


def _density(nodes: np.ndarray, weights: np.ndarray, grid: Any, sigma: float | None
             ) -> tuple[np.ndarray, np.ndarray]:
    live = weights > 0
    lo, hi = float(nodes[live].min()), float(nodes[live].max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else 1e-3 * max(1.0, abs(hi))
    if grid is None:
        n = int(min(200_001, max(1001, math.ceil((hi - lo + 12 * sigma) / (sigma / 5)) + 1)))
        grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, n)
    else:
        grid = _alphas("grid", grid)
        if grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError("grid must be strictly increasing with at least 2 points")
    w = weights[live] / nodes.shape[0]
    t = nodes[live]
    dens = np.zeros_like(grid)
    for chunk in range(0, t.size, 256):
        tt, ww = t[chunk:chunk + 256], w[chunk:chunk + 256]
        dens += (ww[None, :] * np.exp(-0.5 * ((grid[:, None] - tt[None, :]) / sigma) ** 2)).sum(1)
    dens /= sigma * math.sqrt(2 * math.pi)
    return grid, dens


def spectral_density(model: nn.Module, loss_fn: LossFn, data: Data, n_probes: int = 8,
                     lanczos_steps: int = 60, grid: np.ndarray | Sequence[float] | None = None,
                     sigma: float | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hessian eigenvalue density by stochastic Lanczos quadrature with Gaussian broadening.

    ``φ(t) = (1/n_probes) Σ_i Σ_j w_ij N(t; θ_ij, σ²)`` with the nodes and weights of
    :func:`slq_nodes`; it integrates to 1 over ℝ. Default ``σ = 1 %`` of the Ritz-value range and a
    grid reaching 6σ beyond the extreme Ritz values with spacing ≤ σ/5, so the density also
    integrates to 1 on the grid (trapezoid rule). Use a log scale to see the bulk and the outliers.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> grid, dens = spectral_density(model, torch.nn.functional.cross_entropy, data, lanczos_steps=4)
    >>> round(float(np.trapezoid(dens, grid)), 6)
    1.0
    """
    if sigma is not None:
        sigma = _v.positive("sigma", sigma)
    nodes, weights = slq_nodes(model, loss_fn, data, n_probes=n_probes,
                               lanczos_steps=lanczos_steps, seed=seed)
    return _density(nodes, weights, grid, sigma)


# ----------------------------------------------------------------------------------------------
# sharpness
# ----------------------------------------------------------------------------------------------
class _Loss:
    """Evaluate ``L(w + ε)`` through ``functional_call`` (parameters are never written)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data):
        self.model = model
        self.names, params = _trainable(model)
        _check_loss_fn(loss_fn)
        self.loss_fn = loss_fn
        self.data = _check_data(data)
        self.w = [p.detach() for p in params]

    def __call__(self, ws: Sequence[Tensor], check_finite: bool = True) -> Tensor:
        return _forward_loss(self.model, self.loss_fn, self.data, dict(zip(self.names, ws)),
                             check_finite=check_finite)

    def value(self, eps: Sequence[Tensor] | None = None, check_finite: bool = True) -> float:
        with torch.no_grad():
            ws = self.w if eps is None else [w + e for w, e in zip(self.w, eps)]
            return float(self(ws, check_finite))

    def value_and_grad(self, eps: Sequence[Tensor] | None = None,
                       check_finite: bool = True) -> tuple[float, list[Tensor]]:
        ws = [(w if eps is None else w + e).detach().requires_grad_(True)
              for w, e in zip(self.w, eps or [None] * len(self.w))]
        with torch.enable_grad():
            loss = self(ws, check_finite)
            gs = torch.autograd.grad(loss, ws, allow_unused=True)
        return float(loss.detach()), [torch.zeros_like(w) if g is None else g for g, w in zip(gs, ws)]


def _norm(ts: Sequence[Tensor]) -> float:
    return math.sqrt(sum(float(torch.sum(t.double() ** 2)) for t in ts))


ASAM_ETA = 0.01  # Kwon et al.'s offset η in T = |w| + η (their code's default)


def _adaptive_scales(L: "_Loss", adaptive: Any, eta: Any, weights_only: Any) -> list[Tensor]:
    """The diagonal operator ``T`` of the sharpness ball ``‖T⁻¹ε‖ ≤ ρ``, one tensor per parameter.

    Plain: ``T = 1``. Adaptive (Kwon et al. 2021, their eq. and released code): ``T = |w| + η`` on
    the parameters whose name contains ``"weight"``, ``T = 1`` on the others (biases); with
    ``weights_only=False`` every parameter is scaled.
    """
    adaptive = _v.boolean("adaptive", adaptive)
    eta = _v.non_negative("eta", eta)
    weights_only = _v.boolean("weights_only", weights_only)
    if not adaptive:
        return [torch.ones_like(w) for w in L.w]
    scaled = [not weights_only or "weight" in n for n in L.names]
    if not any(scaled):
        raise ValueError("weights_only=True but no parameter's name contains 'weight' (names: "
                         f"{', '.join(L.names[:5])}{' …' if len(L.names) > 5 else ''}); pass "
                         "weights_only=False to scale every parameter")
    return [w.abs() + eta if s else torch.ones_like(w) for w, s in zip(L.w, scaled)]


def worst_case_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, rho: float = 0.05,
                         steps: int = 1, adaptive: bool = False, eta: float = ASAM_ETA,
                         weights_only: bool = True) -> float:
    """Worst-case sharpness ``max_{‖T⁻¹ε‖≤ρ} L(w+ε) − L(w)`` (``T = 1``, or ASAM's ``T`` if adaptive).

    ``steps=1`` is SAM's first-order maximizer ``ε = ρ T²g/‖T g‖`` with ``g = ∇L(w)`` (plain:
    ``ε = ρ g/‖g‖``). ``steps > 1`` continues with normalized projected gradient ascent in the
    ball, ``δ ← Π_ρ(δ + (2ρ/steps) T∇L/‖T∇L‖)``, ``ε = Tδ``, and returns the largest loss increase
    seen (never below the first-order value). Parameters are left unchanged, bit for bit.

    ``adaptive=True`` is Kwon et al.'s (2021) adaptive sharpness with their operator
    ``T = |w| + η`` (``eta``, default 0.01) on the parameters whose name contains ``"weight"`` and
    ``T = 1`` on the others. Only ``eta=0, weights_only=False`` (``T = |w|`` on every parameter)
    makes the value *exactly* invariant to a rescaling such as ``(αW₁, αb₁, W₂/α)`` of a ReLU
    network: the rescaling maps the ball onto the ball. The paper's operator is invariant only
    approximately — where ``α|w| ≫ η`` and the biases' share of the ball is small.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = worst_case_sharpness(model, torch.nn.functional.mse_loss, data, rho=0.05)
    >>> s >= 0
    True
    """
    rho = _v.positive("rho", rho)
    steps = _v.integer("steps", steps, 1)
    L = _Loss(model, loss_fn, data)
    T = _adaptive_scales(L, adaptive, eta, weights_only)
    l0, g = L.value_and_grad()
    u = [t * gi for t, gi in zip(T, g)]
    nu = _norm(u)
    if nu == 0.0:
        return 0.0
    delta = [rho * ui / nu for ui in u]
    eps = [t * d for t, d in zip(T, delta)]
    best = -math.inf
    lr = 2 * rho / steps
    for _ in range(steps - 1):
        lt, gt = L.value_and_grad(eps, check_finite=False)
        if not math.isfinite(lt):  # the ball reaches a diverging point: report it as is
            return lt - l0
        best = max(best, lt)
        u = [t * gi for t, gi in zip(T, gt)]
        nu = _norm(u)
        if nu == 0.0:
            break
        delta = [d + lr * ui / nu for d, ui in zip(delta, u)]
        nd = _norm(delta)
        if nd > rho:
            delta = [d * (rho / nd) for d in delta]
        eps = [t * d for t, d in zip(T, delta)]
    last = L.value(eps, check_finite=False)
    return (last if not math.isfinite(last) else max(best, last)) - l0


def adaptive_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, rho: float = 0.05,
                       steps: int = 1, eta: float = ASAM_ETA, weights_only: bool = True) -> float:
    """Adaptive (ASAM) worst-case sharpness ``max_{‖T⁻¹ε‖≤ρ} L(w+ε) − L(w)``.

    ``T = |w| + η`` on weights, ``1`` on biases (Kwon et al. 2021; ``eta=0.01`` as in their code).
    ``eta=0, weights_only=False`` gives ``T = |w|`` everywhere, which is exactly invariant to the
    ReLU rescalings of :func:`flatlab.models.rescale_layers`; the paper's operator only nearly is.
    Same as ``worst_case_sharpness(..., adaptive=True)``.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = adaptive_sharpness(model, torch.nn.functional.mse_loss, data, rho=0.1)
    """
    return worst_case_sharpness(model, loss_fn, data, rho=rho, steps=steps, adaptive=True, eta=eta,
                                weights_only=weights_only)


def average_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, sigma: float = 0.01,
                      n_samples: int = 20, adaptive: bool = False, seed: int = 0, eta: float = ASAM_ETA,
                      weights_only: bool = True) -> float:
    """Average sharpness ``E_ε[L(w+ε)] − L(w)``, ``ε ~ N(0, σ²T²)`` (``T = 1``; adaptive: ASAM's ``T``).

    Monte Carlo over ``n_samples`` draws, each used antithetically (``±ε``: unbiased, and the
    first-order term ``gᵀε`` cancels exactly), so it costs ``2·n_samples + 1`` forward passes. For
    a quadratic ``½wᵀAw`` each draw gives exactly ``½εᵀAε``, whose mean is ``½σ² tr(TAT)``. The
    adaptive operator ``T`` is the one of :func:`worst_case_sharpness` (``eta``, ``weights_only``).
    Noise is drawn from ``torch.Generator().manual_seed(seed)``; parameters are left unchanged.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = average_sharpness(model, torch.nn.functional.mse_loss, data, sigma=0.1)
    """
    sigma = _v.positive("sigma", sigma)
    n_samples = _v.integer("n_samples", n_samples, 1)
    L = _Loss(model, loss_fn, data)
    T = _adaptive_scales(L, adaptive, eta, weights_only)
    gen = torch.Generator().manual_seed(_v.seed("seed", seed))
    l0 = L.value()
    total = 0.0
    for _ in range(n_samples):
        eps = [sigma * t * torch.randn(w.shape, generator=gen, dtype=torch.float64).to(w.dtype)
               for w, t in zip(L.w, T)]
        total += 0.5 * (L.value(eps, check_finite=False)
                        + L.value([-e for e in eps], check_finite=False))
    return total / n_samples - l0


# ----------------------------------------------------------------------------------------------
# directions, lines, surfaces
# ----------------------------------------------------------------------------------------------
def random_direction(model: nn.Module, filter_normalize: bool = True, seed: int = 0) -> list[Tensor]:
    """A Gaussian direction ``d`` shaped like the trainable parameters; filter-normalized by default.

    Filter normalization (Li et al. 2018): for every weight with ≥ 2 dimensions, each filter /
    output unit ``i`` (a row of a Linear weight, an output channel of a conv kernel) is rescaled,
    ``d_i ← d_i ‖w_i‖ / ‖d_i‖``, so a slice ``w + α d`` moves every unit by the same *relative*
    amount and is blind to the scale symmetries of ReLU networks. Biases and other 1-D parameters
    (BatchNorm) get ``d = 0`` — the paper's choice (its code's ``ignore='biasbn'``). With
    ``filter_normalize=False`` the direction is plain ``N(0, I)`` (biases included).

    >>> model = torch.nn.Linear(3, 2)
    >>> d = random_direction(model)
    >>> torch.allclose(d[0].norm(dim=1), model.weight.detach().norm(dim=1)), bool(d[1].any())
    (True, False)
    """
    _, params = _trainable(model)
    g = torch.Generator().manual_seed(_v.seed("seed", seed))
    out = []
    for p in params:
        d = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if filter_normalize:
            if p.dim() <= 1:
                d = torch.zeros_like(d)
            else:
                w = p.detach().double().reshape(p.shape[0], -1)
                dr = d.reshape(p.shape[0], -1)
                dn = dr.norm(dim=1, keepdim=True)
                dr = dr * (w.norm(dim=1, keepdim=True) / torch.where(dn > 0, dn, torch.ones_like(dn)))
                d = dr.reshape(p.shape)
        out.append(d.to(p.dtype))
    return out


def loss_line(model: nn.Module, loss_fn: LossFn, data: Data, direction: Sequence[Tensor] | Tensor,
              alphas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses along a line, ``ℓ(α) = L(w + α d)`` for each α in ``alphas``.

    ``direction`` is a list shaped like the trainable parameters (see :func:`random_direction`)
    or a flat vector. Non-finite losses are returned as they are (NaN/inf), not raised.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> loss_line(model, torch.nn.functional.mse_loss, data, random_direction(model), [-1, 0, 1]).shape
    (3,)
    """
    L = _Loss(model, loss_fn, data)
    d = _as_vectors("direction", direction, L.w)
    alphas = _alphas("alphas", alphas)
    return np.array([L.value([a * di for di in d], check_finite=False) for a in alphas.tolist()])


def loss_surface(model: nn.Module, loss_fn: LossFn, data: Data, d1: Sequence[Tensor] | Tensor,
                 d2: Sequence[Tensor] | Tensor, alphas: Sequence[float] | np.ndarray | Tensor,
                 betas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses on a plane, ``S[i, j] = L(w + α_i d1 + β_j d2)``, shape ``(len(alphas), len(betas))``.

    Rows index ``alphas`` (for a plotly contour with α on the x-axis pass ``z=S.T``).

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> d1, d2 = random_direction(model, seed=1), random_direction(model, seed=2)
    >>> loss_surface(model, torch.nn.functional.mse_loss, data, d1, d2, [-1, 0, 1], [0, 1]).shape
    (3, 2)
    """
    L = _Loss(model, loss_fn, data)
    u = _as_vectors("d1", d1, L.w)
    v = _as_vectors("d2", d2, L.w)
    alphas = _alphas("alphas", alphas)
    betas = _alphas("betas", betas)
    out = np.empty((alphas.size, betas.size))
    for i, a in enumerate(alphas.tolist()):
        for j, b in enumerate(betas.tolist()):
            out[i, j] = L.value([a * ui + b * vi for ui, vi in zip(u, v)], check_finite=False)
    return out


def interpolate(model_a: nn.Module, model_b: nn.Module, loss_fn: LossFn, data: Data,
                alphas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses on the segment between two models, ``ℓ(α) = L((1−α) w_a + α w_b)``.

    Both models must have the same parameter names and shapes; the network of ``model_a`` is
    evaluated. Floating-point buffers (e.g. BatchNorm statistics) are interpolated too; α outside
    [0, 1] extrapolates. Neither model is modified.

    >>> a, b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> interpolate(a, b, torch.nn.functional.mse_loss, data, [0.0, 0.5, 1.0]).shape
    (3,)
    """
    _trainable(model_a, "model_a")
    _trainable(model_b, "model_b")
    _check_loss_fn(loss_fn)
    data = _check_data(data)
    alphas = _alphas("alphas", alphas)
    sa = {k: v.detach() for k, v in list(model_a.named_parameters()) + list(model_a.named_buffers())}
    sb = {k: v.detach() for k, v in list(model_b.named_parameters()) + list(model_b.named_buffers())}
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        bad = sorted(set(sa) ^ set(sb)) or [k for k in sa if sa[k].shape != sb[k].shape]
        raise ValueError(f"model_b does not match model_a (parameters/buffers differ: {bad[:5]})")
    keys = [k for k in sa if sa[k].is_floating_point()]
    out = []
    with torch.no_grad():
        for a in alphas.tolist():
            named = {k: (1 - a) * sa[k] + a * sb[k].to(sa[k].dtype) for k in keys}
            out.append(float(_forward_loss(model_a, loss_fn, data, named, check_finite=False)))
    return np.asarray(out)


# ----------------------------------------------------------------------------------------------
# linear stability
# ----------------------------------------------------------------------------------------------
def stability_threshold(lr: float, optimizer: str = "gd", momentum: float = 0.0) -> float:
    """Largest curvature λ at which the optimizer is stable on ``½λw²``: GD ``2/η``; heavy ball
    ``(2+2β)/η``; Nesterov ``(2+2β)/(η(1+2β))``.

    Derivation (one eigen-direction of a quadratic, ``g = λw``):
    - GD: ``w⁺ = (1−ηλ)w`` is stable iff ``|1−ηλ| < 1`` ⇔ ``λ < 2/η``.
    - Heavy ball (PyTorch SGD momentum, ``w⁺ = w − ηλw + β(w − w⁻)``): characteristic polynomial
      ``z² − (1+β−ηλ)z + β``. Complex roots have ``|z|² = β < 1``; a real root leaves the unit
      disc through ``z = −1`` when ``1 + (1+β−ηλ) + β = 0`` ⇔ ``λ = (2+2β)/η``.
    - Nesterov (PyTorch ``nesterov=True``, i.e. ``y = w + β(w − w⁻)``, ``w⁺ = y − ηλy``):
      ``z² − (1−ηλ)(1+β)z + (1−ηλ)β``; complex roots have ``|z|² = β(1−ηλ) < 1``, and ``z = −1``
      is a root when ``(1−ηλ)(1+2β) = −1`` ⇔ ``λ = (2+2β)/(η(1+2β))``.
    With β = 0 all three are ``2/η``.

    >>> stability_threshold(0.1), stability_threshold(0.5, "heavy_ball", momentum=0.5)
    (20.0, 6.0)
    >>> stability_threshold(0.5, "nesterov", momentum=0.5)
    3.0
    """
    lr = _v.positive("lr", lr)
    _v.choice("optimizer", optimizer, OPTIMIZERS)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    lr, b = float(lr), float(momentum)
    if optimizer == "gd":
        if b != 0.0:
            raise ValueError(f"momentum={momentum} must be 0 for optimizer='gd'; use 'heavy_ball' "
                             f"or 'nesterov'")
        return 2.0 / lr
    if optimizer == "heavy_ball":
        return (2.0 + 2.0 * b) / lr
    return (2.0 + 2.0 * b) / (lr * (1.0 + 2.0 * b))


# ----------------------------------------------------------------------------------------------
# training-loop probe
# ----------------------------------------------------------------------------------------------
def _warm_top_eigs(op: HessianOperator, k: int, tol: float,
                   last: Tensor | None) -> tuple[np.ndarray, Tensor]:
    """Top-k eigenpairs warm-started from the previous call's eigenvectors ``last`` (their sum as
    ``v0``, when the dimension and k have not changed) with a small Lanczos basis ``max(2k+2, 8)``."""
    k = _check_k(k, op.dim)
    warm = last is not None and last.shape == (op.dim, k)
    v0 = last.sum(1) if warm else None
    vals, vecs = _top_eigs(op, k, tol, v0, min(op.dim, max(2 * k + 2, 8)))
    return vals, torch.as_tensor(vecs.copy())


class SharpestDirections:
    """The top-k Hessian eigenpairs of ``loss_fn(model(x), y)`` on ``data``, at the model's *current*
    parameters, each time it is called: ``directions(k) -> (values [k], vectors [dim, k])``.

    Made for :class:`flatlab.optim.NudgedSGD` (its ``eigenvectors`` argument), which calls it every
    few steps while the parameters move: every call builds a :class:`HessianOperator` on ``data``
    (a fixed batch, e.g. a subset of the training set) and runs Lanczos warm-started from the
    previous call's eigenvectors, as :class:`CurvatureProbe` does. ``params`` are the trainable
    parameters the vectors are over (``model.parameters()`` order); ``n_products`` counts the
    Hessian-vector products spent. The model, its ``.grad`` and buffers are left untouched.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> data = (torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> values, vectors = SharpestDirections(model, torch.nn.functional.cross_entropy, data)(2)
    >>> values.shape, vectors.shape
    (torch.Size([2]), torch.Size([67, 2]))
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, tol: float = 1e-3):
        _, self.params = _trainable(model)
        _check_loss_fn(loss_fn)
        self.model, self.loss_fn, self.data = model, loss_fn, _check_data(data)
        self.tol = _v.positive("tol", tol)
        self.last_vectors: Tensor | None = None
        self.n_products = 0

    def __call__(self, k: int) -> tuple[Tensor, Tensor]:
        op = HessianOperator(self.model, self.loss_fn, self.data)
        vals, self.last_vectors = _warm_top_eigs(op, k, self.tol, self.last_vectors)
        self.n_products += op.n_products
        return torch.as_tensor(vals.copy(), dtype=op.dtype), self.last_vectors.to(op.dtype)

    def __repr__(self) -> str:
        return f"SharpestDirections(dim={sum(p.numel() for p in self.params)}, tol={self.tol})"


class CurvatureProbe:
    """Record the top Hessian eigenvalues (and optionally the trace) during training.

    The training loop calls ``probe(model, dataset, step)`` every ``probe.every`` steps; the
    probe measures the training loss ``loss_fn(model(x), y)`` on the first ``max_examples``
    training examples (all when None) and returns ``{"lambda_max": λ₁, "lambda_2": λ₂, …,
    "trace": tr H}``. Lanczos is warm-started from the previous call's eigenvectors (``v0`` = their
    sum, when the parameter count has not changed) with a small basis ``ncv = max(2k+2, 8)``:
    ARPACK spends ``ncv`` products before it tests convergence, so a good ``v0`` with a small basis
    cuts the cost (measured on a 50k-parameter MLP: 9 instead of 21 products for λ_max).
    The model, its ``.grad`` and buffers are left untouched. At a NaN/inf loss (a diverged run)
    every value is NaN instead of an error.

    >>> probe = CurvatureProbe(torch.nn.functional.cross_entropy, every=10, k=2)
    >>> probe.name, probe.every
    ('curvature', 10)
    """

    name = "curvature"

    def __init__(self, loss_fn: LossFn, every: int = 50, k: int = 1, trace: bool = False,
                 n_trace_samples: int = 20, max_examples: int | None = None, tol: float = 1e-3,
                 seed: int = 0):
        _check_loss_fn(loss_fn)
        self.loss_fn = loss_fn
        self.every = _v.integer("every", every, 1)
        self.k = _v.integer("k", k, 1)
        self.trace = bool(trace)
        self.n_trace_samples = _v.integer("n_trace_samples", n_trace_samples, 1)
        self.max_examples = None if max_examples is None else _v.integer("max_examples", max_examples, 1)
        self.tol = _v.positive("tol", tol)
        self.seed = _v.seed("seed", seed)
        self.last_vectors: Tensor | None = None
        self.n_products = 0

    def __call__(self, model: nn.Module, dataset: Any, step: int) -> dict[str, float]:
        """Measure at the current parameters: ``{"lambda_max": …, ["lambda_2": …], ["trace": …]}``."""
        if not (hasattr(dataset, "x_train") and hasattr(dataset, "y_train")):
            raise TypeError("dataset must have attributes x_train and y_train (e.g. flatlab.data.Dataset)")
        x, y = dataset.x_train, dataset.y_train
        if self.max_examples is not None:
            x, y = x[:self.max_examples], y[:self.max_examples]
        try:
            op = HessianOperator(model, self.loss_fn, (x, y))
        except NonFiniteLossError:  # a diverged run: record NaN, let the training loop decide
            keys = ["lambda_max"] + [f"lambda_{i + 1}" for i in range(1, self.k)]
            return {key: math.nan for key in keys + (["trace"] if self.trace else [])}
        vals, self.last_vectors = _warm_top_eigs(op, self.k, self.tol, self.last_vectors)
        out = {"lambda_max": float(vals[0])}
        for i in range(1, self.k):
            out[f"lambda_{i + 1}"] = float(vals[i])
        if self.trace:
            out["trace"] = _trace(op, self.n_trace_samples, "hutchinson", self.seed)
        self.n_products += op.n_products
        return out

    def __repr__(self) -> str:
        return (f"CurvatureProbe(every={self.every}, k={self.k}, trace={self.trace}, "
                f"max_examples={self.max_examples}, tol={self.tol})")
