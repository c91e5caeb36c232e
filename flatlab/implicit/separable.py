"""Separable classification with deep diagonal networks: gradient descent's depth-dependent bias against natural
gradient descent, which no longer sees the depth (Kerekes, Mészáros & Huszár).

The model is w = u^D − v^D (coordinate-wise powers, u = v = α·1 at the start, so w = 0); depth D = 1 is a linear
classifier. On separable data under the logistic loss, gradient flow converges in direction to the ℓ2 max-margin
separator at D = 1 (Soudry et al.) and, for D ≥ 2, towards a stationary point of min ‖w‖_{2/D} subject to every
margin ≥ 1 (Gunasekar et al. 2018) — the ℓ1 max margin at D = 2, sparser still beyond. Natural gradient flow with a
metric defined on the function w moves w the same way whatever the parameterization, so it inherits depth 1's bias.

- :func:`sparse_classification`: a seeded, generated data set whose labels come from a k-sparse direction;
- :func:`l1_max_margin`: the ℓ1 max-margin direction (a linear program);
- :func:`natural_gradient_diagonal`: the damped natural-gradient direction of the diagonal network, in closed form;
- :func:`train_separable`: GD or NGD on the logistic loss until a target training loss, landing on it exactly;
- :func:`separable_comparison`: every (depth, method) pair on one data set, against both max-margin references.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import _validate as _v
from ..data import Dataset
from ._common import DTYPE, _log_steps, _matrix, _single_threaded, _xy
from .logistic import log_logistic_loss
from .references import mirrored, svm_direction

SEPARABLE_METHODS = ("gd", "ngd")


def sparse_classification(n_train: int = 40, n_test: int = 2000, dim: int = 100, k: int = 2, seed: int = 0) -> Dataset:
    """Labels y = sign⟨w*, x⟩ of Gaussian inputs x ~ N(0, I) for a k-sparse unit w* (non-zero entries ±1/√k): separable
    through the origin by construction. With ``n_train`` < ``dim`` many directions separate the training points.

    >>> ds = sparse_classification(n_train=10, n_test=5, dim=30, k=3)
    >>> int((ds.meta["w_star"] != 0).sum()), bool(((ds.x_train @ ds.meta["w_star"]) * ds.y_train > 0).all())
    (3, True)
    """
    n_train, n_test = _v.integer("n_train", n_train, 2), _v.integer("n_test", n_test, 1)
    dim, k = _v.integer("dim", dim, 1), _v.integer("k", k, 1)
    if k > dim:
        raise ValueError(f"k={k} must be ≤ dim={dim}")
    g = torch.Generator().manual_seed(_v.seed("seed", seed))
    w_star = torch.zeros(dim, dtype=DTYPE)
    support = torch.randperm(dim, generator=g)[:k]
    w_star[support] = torch.where(torch.rand(k, generator=g, dtype=DTYPE) < 0.5, -1.0, 1.0).to(DTYPE) / math.sqrt(k)
    x = torch.randn(n_train + n_test, dim, generator=g, dtype=DTYPE)
    y = torch.where(x @ w_star >= 0, 1.0, -1.0).to(DTYPE)
    return Dataset("sparse classification", x[:n_train], y[:n_train], x[n_train:], y[n_train:], "binary", 2,
                   meta={"w_star": w_star, "support": support})


def l1_max_margin(x, y) -> torch.Tensor:
    """The ℓ1 max-margin direction argmax_{‖w‖₁ ≤ 1} min_i y_i⟨w, x_i⟩ of separable data, as min ‖w‖₁ subject to
    y_i⟨w, x_i⟩ ≥ 1 (``scipy.optimize.linprog``, HiGHS, with w = w⁺ − w⁻), returned with unit ℓ2 norm.

    >>> w = l1_max_margin(torch.tensor([[2., 0.], [1., 3.]]), torch.tensor([1., 1.]))
    >>> [round(v, 6) for v in (w / w.abs().sum()).tolist()]   # (1/2, 1/6) up to scale
    [0.75, 0.25]
    """
    from scipy.optimize import linprog

    x, y = _xy(x, y)
    z = (y[:, None] * x).numpy()
    d = z.shape[1]
    res = linprog(np.ones(2 * d), A_ub=-np.hstack([z, -z]), b_ub=-np.ones(len(z)), bounds=(0, None), method="highs")
    if res.status != 0:
        raise ValueError(f"the data are not linearly separable through the origin (linprog: {res.message})")
    w = torch.tensor(res.x[:d] - res.x[d:], dtype=DTYPE)
    return w / w.norm()


def diagonal_weight(u: torch.Tensor, v: torch.Tensor, depth: int) -> torch.Tensor:
    """w = u^D − v^D, coordinate by coordinate.

    >>> diagonal_weight(torch.tensor([2.0]), torch.tensor([1.0]), 3).tolist()
    [7.0]
    """
    return u ** depth - v ** depth


def natural_gradient_diagonal(u: torch.Tensor, v: torch.Tensor, grad_w: torch.Tensor, depth: int,
                              damping: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """The damped natural-gradient direction (GᵀG + λI)⁻¹ ∇_θL of θ = (u, v), with G = ∂w/∂θ and ∇_θL = Gᵀ∇_wL.

    GᵀG is the function-space metric: for inputs x ~ N(0, I), E_x⟨δw, x⟩² = ‖δw‖² = δθᵀGᵀGδθ. Row i of G is
    g_i = (D u_i^{D−1}, −D v_i^{D−1}) on (u_i, v_i) only, so GᵀG is block-diagonal with 2×2 blocks g_i g_iᵀ and
    (g g ᵀ + λI)⁻¹ g = g / (‖g‖² + λ): the direction is GD's with coordinate i's step divided by ‖g_i‖² + λ, and the
    step it makes in w is ‖g_i‖²/(‖g_i‖² + λ) ∂L/∂w_i ≈ ∂L/∂w_i — depth-1 GD's, whatever D. λ = ``damping``·max_i ‖g_i‖²
    (relative, so it means the same at every scale of θ). Returns (direction for u, direction for v).

    >>> du, dv = natural_gradient_diagonal(torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([4.0]), 2, 0.0)
    >>> du.tolist(), dv.tolist()          # g = (2, −2): the step in w is 2·1 − 2·(−1) = 4 = ∂L/∂w
    ([1.0], [-1.0])
    """
    depth = _v.integer("depth", depth, 1)
    damping = _v.non_negative("damping", damping)
    a, b = depth * u ** (depth - 1), depth * v ** (depth - 1)
    sq = a * a + b * b
    scale = grad_w / (sq + damping * float(sq.max()))
    return a * scale, -b * scale


def _log10_loss(m: torch.Tensor) -> float:
    return float(torch.logsumexp(log_logistic_loss(m), 0) - math.log(len(m))) / math.log(10)


@_single_threaded
def train_separable(x, y, depth: int = 2, method: str = "gd", alpha: float = 0.01, target_log10_loss: float = -30.0,
                    kappa: float = 0.05, max_steps: int = 20_000, damping: float = 1e-6, references: dict | None = None,
                    n_records: int = 40):
    """GD or natural GD of the diagonal network w = u^D − v^D (u = v = α·1) on the mean logistic loss, until the
    training loss reaches 10^``target_log10_loss``; the last step is shortened (bisection) to land on it, so runs
    can be compared at equal training loss.

    ``method="gd"``: the direction ∇_θL; ``"ngd"``: :func:`natural_gradient_diagonal` (relative damping ``damping``).
    Both directions are divided by L (computed in the log domain, exact after L underflows) and every step is
    scaled so that the fastest-moving coordinate pair (u_i, v_i) changes by the fraction ``kappa`` of its norm. A
    positive step size per step only re-times a flow, so as κ → 0 the iterates follow the paths of gradient flow
    and natural gradient flow; at κ = 0.05 they do not stop at the flows' time, only on their paths (the departure
    from exact flow: finite κ, and the damping). Records at log-spaced steps: log10 loss, normalized margin and
    cos(w, reference) for each named unit ``references`` vector. Returns a :class:`flatlab.train.History` with
    ``.info["w"]`` the final w; ``stopped_early`` is True when the target loss was reached.

    >>> ds = sparse_classification(n_train=10, dim=20, seed=0)
    >>> h = train_separable(ds.x_train, ds.y_train, depth=2, target_log10_loss=-5)
    >>> round(float(h.final.log10_loss), 6), bool(h.stopped_early)
    (-5.0, True)
    """
    from ..train import Recorder

    x, y = _xy(x, y)
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels ±1")
    depth, max_steps, n_records = _v.integer("depth", depth, 1), _v.integer("max_steps", max_steps, 1), \
        _v.integer("n_records", n_records, 2)
    method = _v.choice("method", method, SEPARABLE_METHODS)
    alpha, damping = _v.positive("alpha", alpha), _v.non_negative("damping", damping)
    kappa = _v.number("kappa", kappa, 0, 1, low_open=True, high_open=True)
    target = _v.number("target_log10_loss", target_log10_loss, maximum=-1.0, hint="the start is log10(log 2) ≈ −0.16")
    refs = {}
    for name, ref in (references or {}).items():
        ref = _matrix(f"references[{name!r}]", ref, 1)
        if ref.shape != (x.shape[1],) or float(ref.norm()) == 0:
            raise ValueError(f"references[{name!r}] must be a non-zero vector of length {x.shape[1]}")
        refs[name] = ref / ref.norm()
    z = y[:, None] * x                                   # margins m = z w
    n, d = z.shape
    u, v = torch.full((d,), alpha, dtype=DTYPE), torch.full((d,), alpha, dtype=DTYPE)
    records = set(_log_steps(max_steps, n_records).tolist())
    rec = Recorder(divergence_factor=None)

    def record(step: int, w: torch.Tensor, m: torch.Tensor, log10_loss: float) -> None:
        norm = float(w.norm())
        row = rec.add(step, {"log10_loss": log10_loss, "norm": norm,
                             "margin": float(m.min()) / norm if norm > 0 else float("nan")})
        for name, ref in refs.items():
            row[f"cos_{name}"] = float(w @ ref) / norm if norm > 0 else float("nan")

    def state(uu: torch.Tensor, vv: torch.Tensor):
        w = diagonal_weight(uu, vv, depth)
        m = z @ w
        return w, m, _log10_loss(m)

    w, m, log10_loss = state(u, v)
    reached = False
    for step in range(max_steps + 1):
        if step in records:
            record(step, w, m, log10_loss)
        if log10_loss <= target or step == max_steps or not math.isfinite(log10_loss):
            reached = log10_loss <= target
            break
        # ∇_w L / L = −Σ_i σ(−m_i) z_i / Σ_j ℓ(m_j), the weights formed in the log domain
        logw = torch.nn.functional.logsigmoid(-m) - torch.logsumexp(log_logistic_loss(m), 0)
        grad_w = -(z.T @ torch.exp(logw))
        if method == "gd":
            du, dv = depth * u ** (depth - 1) * grad_w, -depth * v ** (depth - 1) * grad_w
        else:
            du, dv = natural_gradient_diagonal(u, v, grad_w, depth, damping)
        speed = float((torch.sqrt(du * du + dv * dv) / torch.sqrt(u * u + v * v)).max())
        if not speed > 0:
            break
        eta = kappa / speed
        nu, nv = u - eta * du, v - eta * dv
        nw, nm, nl = state(nu, nv)
        if nl < target:                                 # land on the target: bisect the step's length
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = (lo + hi) / 2
                if state(u - mid * eta * du, v - mid * eta * dv)[2] < target:
                    hi = mid
                else:
                    lo = mid
            nu, nv = u - hi * eta * du, v - hi * eta * dv
            nw, nm, nl = state(nu, nv)
        u, v, w, m, log10_loss = nu, nv, nw, nm, nl
    if not rec.rows or rec.last["step"] != step:
        record(step, w, m, log10_loss)
    if not math.isfinite(log10_loss):
        rec.diverged_step = step
    if reached:
        rec.stop()
    return rec.history(w=w.clone(), depth=depth, method=method, alpha=alpha, kappa=kappa, steps=step,
                       damping=damping, target_log10_loss=target)


def classification_error(w, x, y) -> float:
    """Fraction of points misclassified by sign⟨w, x⟩.

    >>> classification_error(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 5.0], [-2.0, 1.0]]), torch.tensor([1.0, 1.0]))
    0.5
    """
    x, y = _xy(x, y)
    w = _matrix("w", w, 1)
    return float(((x @ w) * y <= 0).to(DTYPE).mean())


@dataclass
class SeparableComparison:
    """Every run of :func:`separable_comparison`: ``table`` (one row per (depth, method): test error, cosines to the
    ℓ2 / ℓ1 max-margin directions and to w*, ℓ1/ℓ2 norm ratio, final log10 loss, steps), ``histories`` keyed by
    (depth, method), ``directions`` (unit w per run) and the references ``w_l2``, ``w_l1``, ``w_star``."""
    table: pd.DataFrame
    histories: dict = field(default_factory=dict)
    directions: dict = field(default_factory=dict)
    w_l2: torch.Tensor | None = None
    w_l1: torch.Tensor | None = None
    w_star: torch.Tensor | None = None
    reference_errors: dict = field(default_factory=dict)

    def run(self, depth: int, method: str) -> pd.Series:
        """The table's row for one (depth, method)."""
        rows = self.table[(self.table.depth == depth) & (self.table.method == method)]
        if rows.empty:
            raise KeyError(f"no run with depth={depth}, method={method!r}; runs: "
                           f"{list(zip(self.table.depth, self.table.method))}")
        return rows.iloc[0]


def separable_comparison(dataset: Dataset, runs: Sequence[tuple[int, str]] = ((1, "gd"), (2, "gd"), (3, "gd"),
                                                                             (2, "ngd"), (3, "ngd")),
                         alpha: float = 0.01, target_log10_loss: float = -30.0, kappa: float = 0.05,
                         damping: float = 1e-6, max_steps: int = 20_000) -> SeparableComparison:
    """Train every (depth, method) in ``runs`` on a binary data set to the same training loss and compare what each
    found with the ℓ2 max-margin direction (:func:`svm_direction` on :func:`mirrored` data), the ℓ1 max-margin
    direction (:func:`l1_max_margin`) and, when the data set has one, the generating direction ``meta["w_star"]``.

    >>> ds = sparse_classification(n_train=20, n_test=100, dim=30, seed=0)   # doctest: +SKIP
    >>> separable_comparison(ds, runs=[(1, "gd"), (2, "ngd")]).table          # doctest: +SKIP
    """
    _v.instance("dataset", dataset, Dataset, "a binary flatlab.data.Dataset")
    if dataset.task != "binary":
        raise ValueError(f"dataset must be binary (labels ±1), got task={dataset.task!r}")
    if isinstance(runs, (str, bytes)) or not len(runs):
        raise TypeError("runs must be a non-empty sequence of (depth, method) pairs")
    x, y = _xy(dataset.x_train, dataset.y_train)
    xt, yt = _xy(dataset.x_test, dataset.y_test)
    w_l2 = svm_direction(*mirrored(x, y)).w
    w_l1 = l1_max_margin(x, y)
    w_star = dataset.meta.get("w_star")
    refs = {"l2": w_l2, "l1": w_l1}
    if w_star is not None:
        refs["truth"] = w_star.to(DTYPE)
    out = SeparableComparison(table=pd.DataFrame(), w_l2=w_l2, w_l1=w_l1, w_star=refs.get("truth"),
                              reference_errors={"l2 max margin": classification_error(w_l2, xt, yt),
                                                "l1 max margin": classification_error(w_l1, xt, yt)})
    rows = []
    for depth, method in runs:
        h = train_separable(x, y, depth=depth, method=method, alpha=alpha, target_log10_loss=target_log10_loss,
                            kappa=kappa, damping=damping, max_steps=max_steps, references=refs)
        w = h.info["w"] / h.info["w"].norm()
        out.histories[(depth, method)], out.directions[(depth, method)] = h, w
        rows.append({"depth": depth, "method": method, "test_error": classification_error(w, xt, yt),
                     **{f"cos_{k}": float(w @ r) / float(r.norm()) for k, r in refs.items()},
                     "l1_over_l2": float(w.abs().sum()), "log10_loss": h.final.log10_loss,
                     "steps": h.info["steps"], "reached": h.stopped_early})
    out.table = pd.DataFrame(rows)
    return out
