"""Deep matrix factorization W = W_L⋯W_1 for matrix completion (Arora et al.): the model, its GD step size,
batched GD over init scales (:func:`train_factorization`), completion errors, the half-times of incremental
learning and a completion problem with a new target spectrum (:func:`with_spectrum`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import _validate as _v
from ..data import Dataset
from ._common import DTYPE, Runs, _completion_data, _matrix, _single_threaded
from .spectra import effective_rank


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
