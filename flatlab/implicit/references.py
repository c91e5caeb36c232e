"""The exact solutions GD is compared with: the hard-margin SVM on mirrored data and the normalized margin,
the minimum-ℓ2 and minimum-ℓ1 interpolants, and nuclear-norm matrix completion (soft-impute)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import _validate as _v
from ..data import Dataset
from ._common import DTYPE, _completion_data, _matrix, _single_threaded, _xy


def mirrored(x, y=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Append the mirror image (−x, −y) to a ±1-labelled data set (float64), so that the hard-margin SVM
    passes through the origin (its intercept is 0 by symmetry). Accepts a binary ``Dataset`` (train split).

    >>> X, y = mirrored(torch.ones(2, 3), torch.tensor([1., -1.]))
    >>> X.shape, y.tolist()
    (torch.Size([4, 3]), [1.0, -1.0, -1.0, 1.0])
    """
    if isinstance(x, Dataset):
        if x.task != "binary":
            raise ValueError(f"mirrored needs a binary data set (labels ±1), got task={x.task!r}")
        x, y = x.x_train, x.y_train
    x, y = _xy(x, y)
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels ±1")
    return torch.cat([x, -x]), torch.cat([y, -y])


@dataclass
class SVMSolution:
    """Hard-margin SVM: unit normal ``w``, geometric ``margin`` = min_i y_i⟨w, x_i⟩, ``intercept`` (of the
    unnormalized fit; ≈ 0 on mirrored data) and the number of support vectors."""
    w: torch.Tensor
    margin: float
    intercept: float
    n_support: int


def svm_direction(x, y, C: float = 1e8, tol: float = 1e-10) -> SVMSolution:
    """Hard-margin SVM direction argmax_{‖w‖=1} min_i y_i⟨w, x_i⟩ via ``sklearn.svm.SVC(kernel="linear")``
    with a large ``C`` (soft margin → hard margin). Use :func:`mirrored` data for a separator through 0.

    >>> X, y = mirrored(torch.tensor([[2., 0.], [1., 3.]]), torch.tensor([1., 1.]))
    >>> sol = svm_direction(X, y); round(sol.margin, 4)  # √3.6: the hull point nearest 0 is (1.8, 0.6)
    1.8974
    """
    from sklearn.svm import SVC

    x, y = _xy(x, y)
    _v.positive("C", C)
    if len(torch.unique(y)) != 2:
        raise ValueError("y must hold both labels +1 and -1")
    svc = SVC(kernel="linear", C=C, tol=tol).fit(x.numpy(), y.numpy())
    w = torch.tensor(svc.coef_.ravel().copy(), dtype=DTYPE)
    norm = w.norm()
    w = w / norm
    return SVMSolution(w=w, margin=float(((x @ w) * y).min()), intercept=float(svc.intercept_[0]) / float(norm),
                       n_support=int(svc.n_support_.sum()))


def normalized_margin(w, x, y) -> float:
    """Geometric margin of a linear separator through the origin: min_i y_i⟨w, x_i⟩ / ‖w‖.

    >>> normalized_margin(torch.tensor([3., 0.]), torch.tensor([[2., 5.]]), torch.tensor([1.]))
    2.0
    """
    x, y = _xy(x, y)
    w = _matrix("w", w, 1)
    if float(w.norm()) == 0:
        raise ValueError("w must be non-zero")
    return float(((x @ w) * y).min() / w.norm())


def min_l2_interpolant(x, y) -> torch.Tensor:
    """Minimum-ℓ2-norm solution of Xw = y: w = X⁺y (pseudo-inverse).

    >>> [round(v, 6) for v in min_l2_interpolant(torch.tensor([[1., 1.]]), torch.tensor([2.])).tolist()]
    [1.0, 1.0]
    """
    x, y = _xy(x, y)
    return torch.linalg.pinv(x) @ y


def min_l1_interpolant(x, y) -> torch.Tensor:
    """Minimum-ℓ1-norm solution of Xw = y (basis pursuit) by ``scipy.optimize.linprog`` (HiGHS):
    w = w⁺ − w⁻, minimize Σ(w⁺ + w⁻) subject to X(w⁺ − w⁻) = y, w± ≥ 0.

    >>> min_l1_interpolant(torch.tensor([[1., 2.]]), torch.tensor([2.])).tolist()
    [0.0, 1.0]
    """
    from scipy.optimize import linprog

    x, y = _xy(x, y)
    X, Y = x.numpy(), y.numpy()
    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=Y, bounds=(0, None), method="highs")
    if res.status != 0:
        raise ValueError(f"Xw = y has no solution (linprog: {res.message})")
    return torch.tensor(res.x[:d] - res.x[d:], dtype=DTYPE)


@_single_threaded
def nuclear_norm_completion(dataset: Dataset, shrink_to: float = 1e-4, iters: int = 3000, tol: float = 1e-9) -> torch.Tensor:
    """Approximate minimum-nuclear-norm completion argmin ‖W‖_* s.t. W_ij = M_ij on the observed entries, by
    soft-impute (W ← SVT_μ(P_Ω(M) + P_Ω⊥(W))) with μ decreased geometrically to ``shrink_to``·σ_max(P_Ω M).

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1, observed_fraction=0.8)  # doctest: +SKIP
    >>> W = nuclear_norm_completion(ds)                                       # doctest: +SKIP
    """
    m, mask = _completion_data(dataset)
    _v.positive("shrink_to", shrink_to)
    iters = _v.integer("iters", iters, 1)
    observed = torch.where(mask, m, torch.zeros_like(m))
    mu0 = float(torch.linalg.matrix_norm(observed, ord=2))
    mus = mu0 * np.geomspace(0.5, shrink_to, max(2, iters // 50))
    w = torch.zeros_like(m)
    per_level = max(1, iters // len(mus))
    for mu in mus:
        for _ in range(per_level):
            u, s, vt = torch.linalg.svd(torch.where(mask, m, w), full_matrices=False)
            new = (u * (s - mu).clamp(min=0)) @ vt
            change = float((new - w).norm()) / max(float(new.norm()), 1e-30)
            w = new
            if change < tol:
                break
    return w
