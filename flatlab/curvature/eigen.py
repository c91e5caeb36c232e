"""The top Hessian eigenvalues by implicitly restarted Lanczos (ARPACK through ``scipy.sparse.linalg.eigsh``):
:func:`top_eigenvalues` and its helpers ``_check_k`` and ``_top_eigs``."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch
from torch import Tensor, nn

from .. import _validate as _v
from ..config import one_blas_thread
from ._common import Data, LossFn
from .hessian import HessianOperator



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
    with one_blas_thread():
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
