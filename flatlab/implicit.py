"""Implicit bias: which of the many zero-loss solutions gradient descent picks (chapter 04).

Models (``DiagonalLinearNet``, ``DeepMatrixFactorization``), fast full-batch training loops written
with plain torch tensors (manual gradients, many runs batched together; divergence is reported in
the results, never raised), natural gradient descent (damped Fisher / Gauss–Newton systems solved by
conjugate gradients on Jacobian-vector products from ``torch.func``), the exact reference solutions
GD is compared with (hard-margin SVM, minimum-ℓ2 / ℓ1 interpolants, nuclear-norm completion) and
the effective rank.

References:
* Soudry et al., *The implicit bias of gradient descent on separable data*, arXiv:1710.10345.
* Nacson et al., *Convergence of gradient descent on separable data* (normalized GD), arXiv:1803.01905.
* Woodworth et al., *Kernel and rich regimes in overparametrized models*, arXiv:2002.09277.
* Arora, Cohen, Hu & Luo, *Implicit regularization in deep matrix factorization*, arXiv:1905.13655.
* Gissin, Shalev-Shwartz & Daniely, *The implicit bias of depth*, arXiv:1909.12051.
* Kerekes, Mészáros & Huszár, *Depth without the magic: inductive bias of natural gradient descent*,
  arXiv:2111.11542.
* Martens, *New insights and perspectives on the natural gradient method*, arXiv:1412.1193.
* Pesme, Pillaud-Vivien & Flammarion, *Implicit bias of SGD for diagonal linear networks*, arXiv:2106.09524.
* Mazumder, Hastie & Tibshirani, *Spectral regularization algorithms for learning large incomplete
  matrices* (soft-impute), JMLR 2010.
* Roy & Vetterli, *The effective rank: a measure of effective dimensionality*, EUSIPCO 2007.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import _validate as _v
from .data import Dataset

DTYPE = torch.float64
METHODS = ("gd", "normalized", "ngd")
METRICS = ("all", "observed")


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------
def _matrix(name: str, value, ndim: int = 2) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    value = value.detach().to(DTYPE)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} holds NaN or inf entries")
    return value


def _xy(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _matrix("x", x, 2), _matrix("y", y, 1)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} entries")
    return x, y


class _one_thread:
    """Run tiny-tensor loops on one intra-op thread: with 2+ threads, per-op overhead and contention
    make 100×40 products many times slower on a busy machine."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def _single_threaded(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return fn(*args, **kwargs)
    return wrapper


def _log_steps(steps: int, n_records: int) -> np.ndarray:
    """Roughly log-spaced record steps 0, 1, 2, …, steps (all distinct)."""
    return np.unique(np.concatenate([[0], np.logspace(0, math.log10(max(steps, 1)), n_records).round(), [steps]]).astype(int))


# ----------------------------------------------------------------------------------------------
# spectra
# ----------------------------------------------------------------------------------------------
def effective_rank(matrix_or_singular_values) -> float:
    """Roy & Vetterli's effective rank exp(H(p)), p_i = σ_i / Σ_j σ_j (entropy in nats).

    Accepts a matrix (2-D) or its singular values (1-D, non-negative).

    >>> round(effective_rank(np.eye(3)), 6)
    3.0
    """
    a = matrix_or_singular_values
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    if a.ndim == 2:
        s = np.linalg.svd(a, compute_uv=False)
    elif a.ndim == 1:
        s = a
        if (s < 0).any():
            raise ValueError("singular values must be non-negative")
    else:
        raise ValueError(f"matrix_or_singular_values must be 1-D or 2-D, got {a.ndim} dimensions")
    if not np.isfinite(s).all():
        return float("nan")
    total = s.sum()
    if total <= 0:
        raise ValueError("effective rank of the zero matrix is undefined (all singular values are 0)")
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


# ----------------------------------------------------------------------------------------------
# reference solutions
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# conjugate gradients and natural gradients
# ----------------------------------------------------------------------------------------------
def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 100,
                       tol: float = 1e-10, precond: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, int]:
    """Solve A x = b for symmetric positive definite A given only x ↦ A x (Hestenes–Stiefel conjugate gradients,
    preconditioned by x ↦ M⁻¹x when ``precond`` is given), from x = 0; stops when ‖r‖ ≤ tol·‖b‖.
    Returns (x, iterations used).

    >>> A = torch.tensor([[3., 1.], [1., 2.]], dtype=torch.float64)
    >>> x, _ = conjugate_gradient(lambda v: A @ v, torch.tensor([1., 0.], dtype=torch.float64))
    >>> torch.allclose(A @ x, torch.tensor([1., 0.], dtype=torch.float64))
    True
    """
    if not callable(matvec):
        raise TypeError("matvec must be a callable x -> A x")
    iters = _v.integer("iters", iters, 1)
    _v.non_negative("tol", tol)
    x = torch.zeros_like(b)
    r = b.clone()
    stop = float(tol * b.norm()) ** 2
    if float(r @ r) <= stop:
        return x, 0
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = r @ z
    for i in range(1, iters + 1):
        ap = matvec(p)
        alpha = rz / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        if float(r @ r) <= stop:
            return x, i
        z = precond(r) if precond is not None else r
        rz_new = r @ z
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, iters


def natural_gradient(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, grad: torch.Tensor, damping: float,
                     weights: torch.Tensor | None = None, cg_iters: int = 200, tol: float = 1e-10) -> torch.Tensor:
    """Natural-gradient direction d = (Jᵀ diag(weights) J + λ I)⁻¹ g, with J = ∂f/∂θ the Jacobian of the model
    outputs f(θ) (the Fisher / Gauss–Newton matrix of a loss whose output-space curvature is ``weights``;
    ``weights=None`` means 1). Solved by conjugate gradients; each product J ᵀ(w ⊙ J v) costs one
    ``torch.func.jvp`` and one ``torch.func.vjp`` — the matrix is never formed.

    >>> X = torch.randn(5, 3, dtype=torch.float64); g = torch.ones(3, dtype=torch.float64)
    >>> d = natural_gradient(lambda t: X @ t, torch.zeros(3, dtype=torch.float64), g, damping=0.1)
    >>> torch.allclose(d, torch.linalg.solve(X.T @ X + 0.1 * torch.eye(3, dtype=torch.float64), g))
    True
    """
    from torch.func import jvp, vjp

    if not callable(f):
        raise TypeError("f must be a callable theta -> outputs")
    theta, grad = _matrix("theta", theta, 1), _matrix("grad", grad, 1)
    if theta.shape != grad.shape:
        raise ValueError(f"grad has shape {tuple(grad.shape)}, theta {tuple(theta.shape)}")
    damping = _v.non_negative("damping", damping)
    out, pullback = vjp(f, theta)
    if weights is not None:
        weights = _matrix("weights", weights, 1)
        if weights.shape != out.reshape(-1).shape:
            raise ValueError(f"weights has shape {tuple(weights.shape)} but f has {out.numel()} outputs")
        weights = weights.reshape(out.shape)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        jv = jvp(f, (theta,), (v,))[1]
        if weights is not None:
            jv = jv * weights
        return pullback(jv)[0] + damping * v

    d, _ = conjugate_gradient(matvec, grad, iters=cg_iters, tol=tol)
    return d


# ----------------------------------------------------------------------------------------------
# 1 · separable logistic regression
# ----------------------------------------------------------------------------------------------
def log_logistic_loss(margins: torch.Tensor) -> torch.Tensor:
    """log ℓ(m) for the logistic loss ℓ(m) = log(1 + e^{−m}), exact in the log domain even when ℓ underflows.

    >>> float(log_logistic_loss(torch.tensor([1000.0], dtype=torch.float64)))
    -1000.0
    """
    m = margins.to(DTYPE)
    pos = m > 0
    t = torch.exp(-m.clamp(min=0))  # ∈ (0, 1] where m > 0
    ratio = torch.where(t > 0, torch.log1p(t) / torch.where(t > 0, t, torch.ones_like(t)), torch.ones_like(t))
    big = -m + torch.log(ratio)  # log(log1p(t)) = log t + log(log1p(t)/t)
    small = torch.log(torch.nn.functional.softplus(-m.clamp(max=0)))
    return torch.where(pos, big, small)


def logistic_loss(w, x, y) -> float:
    """Mean logistic loss L(w) = (1/N) Σ log(1 + exp(−y_i⟨w, x_i⟩)).

    >>> round(logistic_loss(torch.zeros(2), torch.ones(3, 2), torch.ones(3)), 6)
    0.693147
    """
    x, y = _xy(x, y)
    w = _matrix("w", w, 1)
    return float(torch.nn.functional.softplus(-(x @ w) * y).mean())


@_single_threaded
def train_logistic(x, y, steps: int = 10_000, lr: float = 1.0, method: str = "gd", reference=None,
                   reparam=None, damping: float = 1e-6, n_records: int = 60, cg_iters: int = 50):
    """Full-batch training of a linear classifier w = A θ (A = ``reparam``, default I) on the logistic loss.

    ``method``: ``"gd"`` θ ← θ − η∇L; ``"normalized"`` θ ← θ − η∇L/L (the ratio computed in the log domain,
    so it stays exact after L underflows); ``"ngd"`` θ ← θ − η F_λ⁻¹∇L with the Fisher
    F = (1/N) Σ p_i(1−p_i) ∇m_i ∇m_iᵀ and relative damping λ = ``damping``·tr(F)/dim, solved by CG.
    Records at log-spaced steps: loss (log10), ‖w‖, normalized margin and, with a ``reference`` direction,
    cos(w, reference). Returns a :class:`flatlab.train.History`; ``.info["w"]`` holds the final w.

    >>> X, y = mirrored(torch.tensor([[2., 0.], [1., 3.]]), torch.tensor([1., 1.]))
    >>> h = train_logistic(X, y, steps=100); bool(h.final.margin > 0)
    True
    """
    from .train import History

    x, y = _xy(x, y)
    steps, n_records, cg_iters = _v.integer("steps", steps, 1), _v.integer("n_records", n_records, 2), _v.integer("cg_iters", cg_iters, 1)
    lr = _v.positive("lr", lr)
    damping = _v.non_negative("damping", damping)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; allowed values: {', '.join(METHODS)}")
    d = x.shape[1]
    a = torch.eye(d, dtype=DTYPE) if reparam is None else _matrix("reparam", reparam, 2)
    if a.shape[0] != d:
        raise ValueError(f"reparam must have {d} rows (w = reparam @ theta), got shape {tuple(a.shape)}")
    ref = None
    if reference is not None:
        ref = _matrix("reference", reference, 1)
        ref = ref / ref.norm()
    z = (y[:, None] * x) @ a  # margins m = z θ
    n = len(y)
    theta = torch.zeros(a.shape[1], dtype=DTYPE)
    records = set(_log_steps(steps, n_records).tolist())
    rows, diverged, diverged_step = [], False, None

    def record(step: int, m: torch.Tensor) -> None:
        w = a @ theta
        norm = float(w.norm())
        log_loss = float(torch.logsumexp(log_logistic_loss(m), 0) - math.log(n)) / math.log(10)
        row = {"step": step, "log10_loss": log_loss, "norm": norm,
               "margin": float(m.min()) / norm if norm > 0 else float("nan")}
        if ref is not None:
            row["cos"] = float(w @ ref) / norm if norm > 0 else float("nan")
        rows.append(row)

    zt = z.T.contiguous()
    stopped = False
    for step in range(steps + 1):
        m = torch.mv(z, theta)
        if step in records:
            record(step, m)
            if not torch.isfinite(theta).all():
                diverged, diverged_step = True, step
                break
        if step == steps:
            break
        if method == "gd":  # the hot loop: two BLAS calls and a sigmoid
            theta.addmv_(zt, torch.sigmoid(m.neg_()), alpha=lr / n)
            continue
        if method == "normalized":
            # ∇L/L = −Σ_i σ(−m_i) z_i / Σ_j ℓ(m_j), with the weights formed in the log domain
            logw = torch.nn.functional.logsigmoid(-m) - torch.logsumexp(log_logistic_loss(m), 0)
            g = -(z.T @ torch.exp(logw))
        else:  # natural gradient
            s = torch.sigmoid(-m)
            g = -(z.T @ s) / n
            fw = s * (1 - s) / n
            lam = damping * float((fw[:, None] * z * z).sum()) / z.shape[1]
            if lam == 0 or float(g.norm()) == 0:  # the Fisher underflowed: every margin is beyond ~700
                stopped = True
                record(step, m)
                break
            g = natural_gradient(lambda t: z @ t, theta, g, damping=lam, weights=fw, cg_iters=cg_iters)
        theta = theta - lr * g
    h = History(pd.DataFrame(rows).drop_duplicates("step", keep="last").reset_index(drop=True))
    h.diverged, h.diverged_step, h.stopped_early = diverged, diverged_step, stopped
    h.info = {"w": a @ theta, "method": method, "lr": lr, "steps": steps, "damping": damping}
    return h


# ----------------------------------------------------------------------------------------------
# 2 · diagonal linear networks
# ----------------------------------------------------------------------------------------------
class DiagonalLinearNet(nn.Module):
    """Diagonal linear network f(x) = ⟨w, x⟩ with w = u⊙u − v⊙v, initialized u = v = α·1 (so w = 0): the
    model of Woodworth et al. The init scale α moves GD between the kernel (large α) and rich (small α)
    regimes. The init is deterministic; ``seed`` only adds an optional jitter (``jitter`` > 0).

    >>> net = DiagonalLinearNet(3, alpha=0.1)
    >>> net.weight.tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, dim: int, alpha: float = 1.0, jitter: float = 0.0, seed: int = 0):
        super().__init__()
        dim = _v.integer("dim", dim, 1)
        alpha = _v.positive("alpha", alpha)
        jitter = _v.non_negative("jitter", jitter)
        g = torch.Generator().manual_seed(_v.seed("seed", seed))
        self.u = nn.Parameter(alpha * (1 + jitter * torch.randn(dim, generator=g, dtype=DTYPE)))
        self.v = nn.Parameter(alpha * (1 + jitter * torch.randn(dim, generator=g, dtype=DTYPE)))
        self.alpha = alpha

    @property
    def weight(self) -> torch.Tensor:
        """w = u⊙u − v⊙v."""
        return self.u * self.u - self.v * self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(DTYPE) @ self.weight


def diagonal_lr(x, y, alpha: float) -> float:
    """A stable GD step for a diagonal net on ½·mean (⟨w,x⟩ − y)²: η = 1/(λ·max(8α², max|y|/2)), λ = λ_max(XᵀX/n).
    At init the (u, v)-Hessian's top eigenvalue is 8α²λ; later it is ≈ 4λ·max|w_i|.

    >>> diagonal_lr(torch.eye(2), torch.tensor([1., 1.]), 1.0) == 1 / (0.5 * 8)
    True
    """
    x, y = _xy(x, y)
    alpha = _v.positive("alpha", alpha)
    lam = float(torch.linalg.eigvalsh(x.T @ x / len(y))[-1])
    return 1.0 / (lam * max(8 * alpha**2, float(y.abs().max()) / 2))


@dataclass
class Runs:
    """A batch of runs: ``summary`` (one row per run), ``history`` (one row per run and record) and
    ``solutions`` (run index → final solution as a numpy array)."""
    summary: pd.DataFrame
    history: pd.DataFrame
    solutions: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return bool(self.summary["diverged"].any())


@_single_threaded
def train_diagonal(x, y, alphas: Sequence[float], steps: int = 100_000, lr: float | Sequence[float] | None = None,
                   tol: float = 1e-8, batch_size: int | None = None, seed: int = 0, record_every: int | None = None,
                   lr_scale: float = 1.0) -> Runs:
    """GD (or SGD with ``batch_size``) on ½·mean(⟨u⊙u − v⊙v, x_i⟩ − y_i)² for every α at once (batched).

    Each α uses ``lr`` (default :func:`diagonal_lr` × ``lr_scale``) and stops when its relative training loss
    ‖Xw − y‖²/‖y‖² < ``tol`` (then it is frozen). A run whose loss becomes NaN/inf or grows 1e6× is
    marked ``diverged``. ``solutions[i]`` is w for ``alphas[i]``.

    >>> X, y = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    >>> runs = train_diagonal(X, y, [0.01, 1.0], steps=2000); runs.summary.columns[:3].tolist()
    ['alpha', 'lr', 'steps']
    """
    x, y = _xy(x, y)
    if isinstance(alphas, (int, float)):
        alphas = [alphas]
    alphas = [_v.positive("alphas", a) for a in alphas]
    if not alphas:
        raise ValueError("alphas must hold at least one init scale")
    steps = _v.integer("steps", steps, 1)
    tol = _v.non_negative("tol", tol)
    lr_scale = _v.positive("lr_scale", lr_scale)
    n, d = x.shape
    if batch_size is not None:
        batch_size = _v.integer("batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the {n} training examples")
    if lr is None:
        lrs = [lr_scale * diagonal_lr(x, y, a) for a in alphas]
    elif isinstance(lr, (int, float)):
        lrs = [_v.positive("lr", lr)] * len(alphas)
    else:
        lrs = [_v.positive("lr", v) for v in lr]
        if len(lrs) != len(alphas):
            raise ValueError(f"lr has {len(lrs)} entries for {len(alphas)} alphas")
    record_every = _v.integer("record_every", record_every, 1) if record_every is not None else max(1, steps // 100)
    g = torch.Generator().manual_seed(_v.seed("seed", seed))
    a = torch.tensor(alphas, dtype=DTYPE)[:, None]
    eta = torch.tensor(lrs, dtype=DTYPE)[:, None]
    usq, vsq = (a * a).repeat(1, d), (a * a).repeat(1, d)  # u⊙u and v⊙v: the update needs only these
    yy = float(y @ y)
    active = torch.ones(len(alphas), dtype=torch.bool)
    diverged = torch.zeros(len(alphas), dtype=torch.bool)
    stop_step = torch.full((len(alphas),), steps)
    hist = []
    rel0 = None
    check_every = 25  # convergence / divergence checks (and records) cost a sync: not every step
    xt = x.T.contiguous()
    step_size = eta.clone()
    step = 0
    while True:
        r = torch.addmm(-y, usq - vsq, xt)  # (A, n) residuals of w = u⊙u − v⊙v
        if step % check_every == 0 or step % record_every == 0 or step == steps:
            rel = (r * r).sum(1) / yy
            if rel0 is None:
                rel0 = rel.clone()
            bad = active & (~torch.isfinite(rel) | (rel > 1e6 * rel0.clamp(min=1e-300)))
            if bad.any():
                diverged |= bad
                stop_step[bad] = step
                active &= ~bad
            done = active & (rel < tol)
            if done.any():
                stop_step[done] = step
                active &= ~done
            step_size = torch.where(active[:, None], eta, torch.zeros_like(eta))
            if step % record_every == 0 or step == steps or not active.any():
                hist.extend({"run": i, "alpha": alphas[i], "step": step, "train_loss": float(rel[i])}
                            for i in range(len(alphas)))
            if step == steps or not active.any():
                break
        if batch_size is None:
            grad = r @ x
            grad *= step_size * (2.0 / n)
        else:
            idx = torch.randperm(n, generator=g)[:batch_size]
            grad = r[:, idx] @ x[idx]
            grad *= step_size * (2.0 / batch_size)
        # u ← u(1 − 2η∇_w L), v ← v(1 + 2η∇_w L), written for the squares
        usq = usq * (1 - grad).square_()
        vsq = vsq * (1 + grad).square_()
        step += 1
    w = usq - vsq
    final_rel = ((w @ x.T - y) ** 2).sum(1) / yy
    summary = pd.DataFrame({"alpha": alphas, "lr": lrs, "steps": stop_step.tolist(),
                            "train_loss": final_rel.tolist(), "converged": (final_rel < max(tol, 1e-300) * 10).tolist(),
                            "diverged": diverged.tolist()})
    return Runs(summary=summary, history=pd.DataFrame(hist), solutions={i: w[i].numpy().copy() for i in range(len(alphas))})


def relative_error(w, reference) -> float:
    """‖w − w_ref‖ / ‖w_ref‖.

    >>> relative_error(np.array([1.0, 0.1]), np.array([1.0, 0.0]))
    0.1
    """
    w = np.asarray(w.detach() if isinstance(w, torch.Tensor) else w, dtype=float)
    ref = np.asarray(reference.detach() if isinstance(reference, torch.Tensor) else reference, dtype=float)
    if w.shape != ref.shape:
        raise ValueError(f"w has shape {w.shape}, reference {ref.shape}")
    norm = np.linalg.norm(ref)
    if norm == 0:
        raise ValueError("reference must be non-zero")
    return float(np.linalg.norm(w - ref) / norm)


# ----------------------------------------------------------------------------------------------
# 3 · deep matrix factorization
# ----------------------------------------------------------------------------------------------
def _completion_data(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(dataset, Dataset) or "matrix" not in dataset.meta or "mask" not in dataset.meta:
        raise TypeError("dataset must be a matrix-completion Dataset from flatlab.data.low_rank_matrix")
    return dataset.meta["matrix"].to(DTYPE), dataset.meta["mask"].bool()


class DeepMatrixFactorization(nn.Module):
    """End-to-end matrix W = W_L ⋯ W_1 of ``depth`` L square factors with i.i.d. N(0, init_scale²) entries
    (Arora et al.'s initialization). ``forward(idx)`` returns the entries W[idx[:, 0], idx[:, 1]].

    >>> model = DeepMatrixFactorization(4, depth=3, init_scale=0.5, seed=0)
    >>> model.matrix().shape
    torch.Size([4, 4])
    """

    def __init__(self, n: int, depth: int = 3, init_scale: float = 1e-3, seed: int = 0):
        super().__init__()
        n, depth = _v.integer("n", n, 1), _v.integer("depth", depth, 1)
        init_scale = _v.positive("init_scale", init_scale)
        g = torch.Generator().manual_seed(_v.seed("seed", seed))
        self.factors = nn.ParameterList([nn.Parameter(init_scale * torch.randn(n, n, generator=g, dtype=DTYPE))
                                         for _ in range(depth)])
        self.n, self.depth, self.init_scale = n, depth, init_scale

    def matrix(self) -> torch.Tensor:
        """W = W_L ⋯ W_1."""
        out = self.factors[0]
        for f in self.factors[1:]:
            out = f @ out
        return out

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        w = self.matrix()
        return w[idx[:, 0], idx[:, 1]]


def _product(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    out = factors[0]
    for f in factors[1:]:
        out = f @ out
    return out


def factorization_lr(dataset: Dataset, depth: int, scale: float = 0.5) -> float:
    """GD step for W_L⋯W_1 on ½‖P_Ω(W − M)‖²_F: η = scale / (L · s^{2 − 2/L}), s = σ_max(P_Ω(M))/p, the
    end-to-end step being ≈ L s^{2−2/L} times the depth-1 gradient (Arora et al. 2018).

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1)  # doctest: +SKIP
    """
    m, mask = _completion_data(dataset)
    depth = _v.integer("depth", depth, 1)
    scale = _v.positive("scale", scale)
    p = float(mask.double().mean())
    s = float(torch.linalg.matrix_norm(torch.where(mask, m, torch.zeros_like(m)), ord=2)) / p
    return scale / (depth * s ** (2 - 2 / depth))


def completion_errors(w, dataset: Dataset) -> dict[str, float]:
    """Relative train error ‖P_Ω(W−M)‖/‖P_Ω M‖, held-out error ‖P_Ω⊥(W−M)‖/‖P_Ω⊥ M‖ and effective rank.

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1)  # doctest: +SKIP
    >>> completion_errors(ds.meta["matrix"], ds)["test_error"]  # doctest: +SKIP
    0.0
    """
    m, mask = _completion_data(dataset)
    w = _matrix("w", w, 2)
    if w.shape != m.shape:
        raise ValueError(f"w has shape {tuple(w.shape)}, the matrix {tuple(m.shape)}")
    diff = w - m
    out = {"train_error": float(diff[mask].norm() / m[mask].norm()),
           "test_error": float(diff[~mask].norm() / m[~mask].norm()) if (~mask).any() else float("nan")}
    out["effective_rank"] = effective_rank(w) if torch.isfinite(w).all() and float(w.abs().max()) > 0 else float("nan")
    return out


@_single_threaded
def train_factorization(dataset: Dataset, depth: int = 3, init_scales: float | Sequence[float] = 1e-3,
                        steps: int = 20_000, lr: float | None = None, lr_scale: float = 1.0, tol: float = 1e-8,
                        seed: int = 0, record_every: int | None = None, n_singular: int = 5) -> Runs:
    """GD on ½‖P_Ω(W_L⋯W_1 − M)‖²_F for one depth and several init scales at once (batched matmuls,
    hand-written gradients ∂/∂W_i = (W_L⋯W_{i+1})ᵀ R (W_{i−1}⋯W_1)ᵀ, R = P_Ω(W − M)).

    Run i starts from ``DeepMatrixFactorization(n, depth, init_scales[i], seed)``; it stops (is frozen) when
    ‖R‖²/‖P_Ω M‖² < ``tol``; NaN/inf marks it ``diverged``. ``history`` records every ``record_every`` steps
    the relative train loss, held-out error, effective rank and the top ``n_singular`` singular values
    (``sv1`` …); ``solutions[i]`` is the final W.

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1, observed_fraction=0.5)  # doctest: +SKIP
    >>> runs = train_factorization(ds, depth=2, init_scales=[1e-2], steps=500)    # doctest: +SKIP
    """
    m, mask = _completion_data(dataset)
    depth, steps, n_singular = _v.integer("depth", depth, 1), _v.integer("steps", steps, 1), _v.integer("n_singular", n_singular, 1)
    if isinstance(init_scales, (int, float)):
        init_scales = [init_scales]
    init_scales = [_v.positive("init_scales", s) for s in init_scales]
    if not init_scales:
        raise ValueError("init_scales must hold at least one value")
    tol = _v.non_negative("tol", tol)
    lr = factorization_lr(dataset, depth, lr_scale) if lr is None else _v.positive("lr", lr)
    record_every = _v.integer("record_every", record_every, 1) if record_every is not None else max(1, steps // 200)
    n = m.shape[0]
    n_singular = min(n_singular, n)
    b = len(init_scales)
    models = [DeepMatrixFactorization(n, depth, s, seed) for s in init_scales]
    ws = [torch.stack([mod.factors[i].detach() for mod in models]) for i in range(depth)]  # each (B, n, n)
    pmask = mask.to(DTYPE)
    target = m * pmask
    norm_obs, norm_test = float(target.norm()) ** 2, float((m * (1 - pmask)).norm()) ** 2
    converged = torch.zeros(b, dtype=torch.bool)
    diverged = torch.zeros(b, dtype=torch.bool)
    stop_step = torch.full((b,), steps)
    check_every = 25
    hist = []
    neg_target = -target
    step = 0
    while True:
        prefix = [ws[0]]  # prefix[i] = W_{i+1} ⋯ W_1 (factors 0-based)
        for f in ws[1:]:
            prefix.append(torch.bmm(f, prefix[-1]))
        w = prefix[-1]
        r = torch.addcmul(neg_target, w, pmask)  # R = P_Ω(W − M)
        record = step % record_every == 0 or step == steps
        if record or step % check_every == 0:
            rel = (r * r).sum((1, 2)) / norm_obs
            bad = ~diverged & ~torch.isfinite(rel)
            diverged |= bad
            stop_step[bad] = step
            done = ~converged & ~diverged & (rel < tol)
            converged |= done
            stop_step[done] = step
            finished = bool((converged | diverged).all())
            if record or finished:
                test = (((w - m) * (1 - pmask)) ** 2).sum((1, 2)) / norm_test
                for i in range(b):
                    row = {"run": i, "depth": depth, "init_scale": init_scales[i], "step": step,
                           "train_loss": float(rel[i]), "test_error": float(test[i]) ** 0.5}
                    if torch.isfinite(w[i]).all():
                        sv = torch.linalg.svdvals(w[i])
                        row["effective_rank"] = effective_rank(sv.numpy()) if float(sv.sum()) > 0 else float("nan")
                        row.update({f"sv{k + 1}": float(sv[k]) for k in range(n_singular)})
                    hist.append(row)
            if step == steps or finished:
                break
        # ∂L/∂W_i = (W_L⋯W_{i+1})ᵀ R (W_{i−1}⋯W_1)ᵀ; converged runs keep going (their gradient is ≈ 0)
        suffix = None  # W_L ⋯ W_{i+1} with the factors of this step
        new = [None] * depth
        for i in range(depth - 1, -1, -1):
            left = r if suffix is None else torch.bmm(suffix.transpose(1, 2), r)
            if i > 0:
                new[i] = torch.baddbmm(ws[i], left, prefix[i - 1].transpose(1, 2), alpha=-lr)
                suffix = ws[i] if suffix is None else torch.bmm(suffix, ws[i])
            else:
                new[i] = torch.add(ws[i], left, alpha=-lr)
        ws = new
        step += 1
    rows = []
    for i in range(b):
        errs = completion_errors(w[i], dataset) if torch.isfinite(w[i]).all() else \
            {"train_error": float("nan"), "test_error": float("nan"), "effective_rank": float("nan")}
        rows.append({"depth": depth, "init_scale": init_scales[i], "lr": lr, "steps": int(stop_step[i]),
                     **errs, "converged": bool(converged[i]), "diverged": bool(diverged[i])})
    return Runs(summary=pd.DataFrame(rows), history=pd.DataFrame(hist),
                solutions={i: w[i].numpy().copy() for i in range(b)})


def half_times(history: pd.DataFrame, k: int = 3, column: str = "sv", targets: Sequence[float] | None = None) -> list[float]:
    """For each of the top ``k`` singular values, the first recorded step at which it reaches half of its target
    (``targets``, default its final value) — incremental learning shows as well-separated times (NaN if never).

    >>> h = pd.DataFrame({"step": [0, 1, 2], "sv1": [0, 2, 2], "sv2": [0, 0, 1]})
    >>> half_times(h, 2)
    [1.0, 2.0]
    """
    k = _v.integer("k", k, 1)
    if targets is not None and len(targets) < k:
        raise ValueError(f"targets has {len(targets)} values, need k={k}")
    out = []
    for j in range(1, k + 1):
        col = f"{column}{j}"
        if col not in history:
            raise ValueError(f"history has no column {col!r}; record more singular values (n_singular ≥ {k})")
        final = float(history[col].iloc[-1]) if targets is None else float(targets[j - 1])
        hit = history.loc[history[col] >= final / 2, "step"]
        out.append(float(hit.iloc[0]) if len(hit) else float("nan"))
    return out


# ----------------------------------------------------------------------------------------------
# 4 · natural gradient descent on deep matrix factorization
# ----------------------------------------------------------------------------------------------
def _block_preconditioner(theta: torch.Tensor, depth: int, n: int, damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Block-Jacobi preconditioner for JᵀJ + λI of W = W_L⋯W_1: the block of factor i is
    (J_iᵀJ_i + λI) V = A_i V B_i + λV with A_i = SᵀS (S = W_L⋯W_{i+1}) and B_i = PPᵀ (P = W_{i−1}⋯W_1),
    inverted exactly through the eigendecompositions of A_i and B_i (a Kronecker-factored solve)."""
    f = theta.reshape(depth, n, n)
    eye = torch.eye(n, dtype=theta.dtype)
    pre = [eye]
    for i in range(depth - 1):
        pre.append(f[i] @ pre[-1])
    suf = [eye]
    for i in range(depth - 1, 0, -1):
        suf.append(suf[-1] @ f[i])
    suf = suf[::-1]  # suf[i] = W_L ⋯ W_{i+2} (0-based factor i)
    parts = []
    for i in range(depth):
        ea, qa = torch.linalg.eigh(suf[i].T @ suf[i])
        eb, qb = torch.linalg.eigh(pre[i] @ pre[i].T)
        denom = ea.clamp(min=0)[:, None] * eb.clamp(min=0)[None, :]
        denom = denom + max(damping, 1e-12 * float(denom.max()), 1e-300)
        parts.append((qa, qb, denom))

    def apply(g: torch.Tensor) -> torch.Tensor:
        out = []
        for (qa, qb, denom), gi in zip(parts, g.reshape(depth, n, n)):
            out.append(qa @ ((qa.T @ gi @ qb) / denom) @ qb.T)
        return torch.stack(out).reshape(-1)

    return apply


@_single_threaded
def train_ngd_factorization(dataset: Dataset, depth: int = 3, init_scale: float = 1e-3, steps: int = 200,
                            lr: float = 0.5, damping: float = 1e-4, metric: str = "all", max_step: float = 0.1,
                            tol: float = 1e-8, seed: int = 0, cg_iters: int = 100, cg_tol: float = 1e-4,
                            record_every: int = 1, n_singular: int = 5):
    """Natural gradient descent on ½‖P_Ω(W_L⋯W_1 − M)‖²_F: θ ← θ − η (JᵀJ + λI)⁻¹ ∇L, each step's length capped
    at ``max_step``·‖θ‖ (the linearization W(θ + δ) ≈ W(θ) + Jδ only holds for small δ).

    ``metric="all"``: J = ∂ vec(W)/∂θ over **all** n² entries — the function-space (Fisher) metric, which
    makes the step in W ≈ −η P_Ω(W − M) whatever the depth (reparameterization invariance).
    ``metric="observed"``: J over the observed entries only (the Gauss–Newton / Fisher matrix of the
    training data), which is *not* invariant. Conjugate gradients on ``torch.func`` jvp/vjp products.
    Returns a :class:`flatlab.train.History` (step, train_loss, test_error, effective_rank, sv1…, cg) with
    ``.info["w"]`` the final W (numpy).

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1, observed_fraction=0.5)  # doctest: +SKIP
    >>> h = train_ngd_factorization(ds, depth=2, steps=20)                       # doctest: +SKIP
    """
    from torch.func import jvp, vjp

    from .train import History

    m, mask = _completion_data(dataset)
    depth, steps, n_singular = _v.integer("depth", depth, 1), _v.integer("steps", steps, 1), _v.integer("n_singular", n_singular, 1)
    lr, max_step = _v.positive("lr", lr), _v.positive("max_step", max_step)
    damping, tol = _v.non_negative("damping", damping), _v.non_negative("tol", tol)
    record_every, cg_iters = _v.integer("record_every", record_every, 1), _v.integer("cg_iters", cg_iters, 1)
    cg_tol = _v.positive("cg_tol", cg_tol)
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not known; allowed values: {', '.join(METRICS)}")
    n = m.shape[0]
    n_singular = min(n_singular, n)
    model = DeepMatrixFactorization(n, depth, init_scale, seed)
    theta = torch.cat([f.detach().reshape(-1) for f in model.factors])
    pmask = mask.to(DTYPE)
    target = m * pmask
    norm_obs, norm_test = float(target.norm()) ** 2, float((m * (1 - pmask)).norm()) ** 2
    obs_idx = mask.reshape(-1).nonzero().squeeze(1)

    def matrix_of(t: torch.Tensor) -> torch.Tensor:
        return _product(list(t.reshape(depth, n, n)))

    def outputs(t: torch.Tensor) -> torch.Tensor:
        flat = matrix_of(t).reshape(-1)
        return flat if metric == "all" else flat[obs_idx]

    rows, diverged, diverged_step, cg_used = [], False, None, 0
    for step in range(steps + 1):
        w = matrix_of(theta)
        r = pmask * w - target
        rel = float((r * r).sum()) / norm_obs
        if not math.isfinite(rel):
            diverged, diverged_step = True, step
            break
        last = step == steps or rel < tol
        if step % record_every == 0 or last:
            s = torch.linalg.svdvals(w)
            rows.append({"step": step, "train_loss": rel,
                         "test_error": (float((((w - m) * (1 - pmask)) ** 2).sum()) / norm_test) ** 0.5,
                         "effective_rank": effective_rank(s.numpy()) if float(s.sum()) > 0 else float("nan"),
                         **{f"sv{k + 1}": float(s[k]) for k in range(n_singular)}, "cg": cg_used})
        if last:
            break
        out, pullback = vjp(outputs, theta)
        grad = pullback(r.reshape(-1) if metric == "all" else r.reshape(-1)[obs_idx])[0]  # ∇L = Jᵀ R

        def matvec(v: torch.Tensor) -> torch.Tensor:
            return pullback(jvp(outputs, (theta,), (v,))[1])[0] + damping * v

        direction, cg_used = conjugate_gradient(matvec, grad, iters=cg_iters, tol=cg_tol,
                                                precond=_block_preconditioner(theta, depth, n, damping))
        delta = lr * direction
        cap = max_step * float(theta.norm())
        size = float(delta.norm())
        if size > cap:
            delta = delta * (cap / size)
        theta = theta - delta
    h = History(pd.DataFrame(rows))
    h.diverged, h.diverged_step, h.stopped_early = diverged, diverged_step, bool(rows and rows[-1]["train_loss"] < tol)
    h.info = {"w": matrix_of(theta).numpy().copy(), "depth": depth, "init_scale": init_scale, "metric": metric,
              "damping": damping, "lr": lr}
    return h


def with_spectrum(dataset: Dataset, singular_values: Sequence[float]) -> Dataset:
    """The same completion problem (same observed entries, same singular vectors) with the target's
    singular values replaced by ``singular_values`` (length = its rank) — e.g. distinct values to watch
    incremental learning, which equal values blur.

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=2)                      # doctest: +SKIP
    >>> with_spectrum(ds, [8.0, 2.0]).meta["matrix"].norm()                  # doctest: +SKIP
    """
    m, mask = _completion_data(dataset)
    rank = int(dataset.meta.get("rank", torch.linalg.matrix_rank(m)))
    s_new = torch.as_tensor(np.asarray(singular_values, dtype=float), dtype=DTYPE)
    if s_new.ndim != 1 or len(s_new) != rank or (s_new <= 0).any():
        raise ValueError(f"singular_values must hold {rank} positive numbers (the rank), got {list(singular_values)!r}")
    u, _, vt = torch.linalg.svd(m)
    order = torch.argsort(s_new, descending=True)
    new = (u[:, :rank] * s_new[order]) @ vt[:rank]
    dtype = dataset.y_train.dtype
    meta = dict(dataset.meta, matrix=new.to(dataset.meta["matrix"].dtype))
    xtr, xte = dataset.x_train, dataset.x_test  # same entries, same order
    return Dataset(dataset.name + " (new spectrum)", xtr, new[xtr[:, 0], xtr[:, 1]].to(dtype), xte,
                   new[xte[:, 0], xte[:, 1]].to(dtype), dataset.task,
                   dataset.n_classes, meta=meta)


# ----------------------------------------------------------------------------------------------
# precomputed sweeps for the chapter's widgets (the sliders only select among these)
# ----------------------------------------------------------------------------------------------
@dataclass
class DiagonalSweep:
    """Diagonal-net solutions for a grid of init scales with their references: ``weights[i]`` is w for
    ``alphas[i]``; ``table`` has one row per α with the errors to the truth, the min-ℓ1 and the min-ℓ2 interpolant."""
    alphas: list
    weights: np.ndarray
    w_star: np.ndarray
    w_l1: np.ndarray
    w_l2: np.ndarray
    table: pd.DataFrame

    def index(self, alpha: float) -> int:
        """Index of the grid value nearest to ``alpha`` (in log scale)."""
        return int(np.argmin(np.abs(np.log(np.asarray(self.alphas)) - math.log(_v.positive("alpha", alpha)))))


def diagonal_sweep(dataset: Dataset, alphas: Sequence[float], steps: int = 100_000, tol: float = 1e-8,
                   batch_size: int | None = None, seed: int = 0) -> DiagonalSweep:
    """Train diagonal nets for every α on a sparse-regression data set (train split) and compare each solution
    with the sparse truth ``meta["w_star"]``, the min-ℓ1 and the min-ℓ2 interpolant (relative errors).

    >>> sweep = diagonal_sweep(flatlab.data.sparse_regression(n_train=20, dim=40, k=2), [0.01, 1.0])  # doctest: +SKIP
    """
    if not isinstance(dataset, Dataset) or "w_star" not in dataset.meta or dataset.task != "regression":
        raise TypeError("dataset must be a sparse-regression Dataset from flatlab.data.sparse_regression")
    x, y = dataset.x_train.to(DTYPE), dataset.y_train.to(DTYPE)
    w_star = dataset.meta["w_star"].to(DTYPE).numpy()
    w_l1, w_l2 = min_l1_interpolant(x, y).numpy(), min_l2_interpolant(x, y).numpy()
    runs = train_diagonal(x, y, alphas, steps=steps, tol=tol, batch_size=batch_size, seed=seed)
    weights = np.stack([runs.solutions[i] for i in range(len(runs.summary))])
    table = runs.summary.copy()
    table["error_truth"] = [relative_error(w, w_star) if np.isfinite(w).all() else np.nan for w in weights]
    table["error_l1"] = [relative_error(w, w_l1) if np.isfinite(w).all() else np.nan for w in weights]
    table["error_l2"] = [relative_error(w, w_l2) if np.isfinite(w).all() else np.nan for w in weights]
    table["l1_norm"] = np.abs(weights).sum(1)
    return DiagonalSweep(alphas=[float(a) for a in runs.summary.alpha], weights=weights, w_star=w_star, w_l1=w_l1,
                         w_l2=w_l2, table=table)


@dataclass
class FactorizationSweep:
    """Deep-factorization runs over a grid of depths × init scales: ``summary`` (one row per run), ``history``
    (singular values, errors and effective rank over the steps) and ``matrices[(depth, init_scale)]``."""
    summary: pd.DataFrame
    history: pd.DataFrame
    matrices: dict
    target_singular_values: np.ndarray

    def run(self, depth: int, init_scale: float) -> tuple[pd.Series, pd.DataFrame]:
        """The summary row and the history of the run nearest to (depth, init_scale)."""
        rows = self.summary[self.summary.depth == depth]
        if rows.empty:
            raise ValueError(f"depth={depth!r} was not computed; available: {sorted(self.summary.depth.unique())}")
        i = (np.log(rows.init_scale) - math.log(_v.positive("init_scale", init_scale))).abs().idxmin()
        row = self.summary.loc[i]
        hist = self.history[(self.history.depth == row.depth) & (self.history.init_scale == row.init_scale)]
        return row, hist.reset_index(drop=True)


def factorization_sweep(dataset: Dataset, depths: Sequence[int] = (1, 2, 3), init_scales: Sequence[float] = (1e-1, 1e-2, 1e-3),
                        steps: int = 20_000, tol: float = 1e-6, lr_scale: float = 1.0, seed: int = 0,
                        record_every: int | None = None) -> FactorizationSweep:
    """:func:`train_factorization` for every depth (all init scales of one depth in one batched run).

    >>> sweep = factorization_sweep(flatlab.data.low_rank_matrix(n=10, rank=1), (1, 2), (1e-2,), 500)  # doctest: +SKIP
    """
    m, _ = _completion_data(dataset)
    if not depths:
        raise ValueError("depths must hold at least one depth")
    summaries, histories, matrices = [], [], {}
    for depth in depths:
        runs = train_factorization(dataset, depth=_v.integer("depths", depth, 1), init_scales=list(init_scales), steps=steps,
                                   tol=tol, lr_scale=lr_scale, seed=seed, record_every=record_every)
        summaries.append(runs.summary)
        histories.append(runs.history)
        for i, s in enumerate(runs.summary.init_scale):
            matrices[(int(depth), float(s))] = runs.solutions[i]
    rank = int(dataset.meta.get("rank", 0)) or None
    target = torch.linalg.svdvals(m).numpy()[:rank]
    return FactorizationSweep(summary=pd.concat(summaries, ignore_index=True),
                              history=pd.concat(histories, ignore_index=True), matrices=matrices,
                              target_singular_values=target)
