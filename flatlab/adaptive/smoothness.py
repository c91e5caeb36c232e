"""The local smoothness along a gradient-descent path, with and without gradient clipping (chapter 06, section 3).

Zhang, He, Sra & Jadbabaie (2020, "Why gradient clipping accelerates training", arXiv:1905.11881) replace the
constant L of L-smoothness by a bound that grows with the gradient, ‖∇²f(x)‖ ≤ L₀ + L₁‖∇f(x)‖ — (L₀, L₁)-smoothness
— because along the training paths they measured the local smoothness rose with the gradient norm. Under that bound
a fixed step must be chosen for the largest gradient on the way, while a clipped step
h = η·min(1, c/‖g‖) shrinks exactly where the curvature is large.

:func:`smoothness_path` runs full-batch gradient descent, clipped or not, and estimates the local smoothness of every
step the way the authors' code does: the gradient change from the iterate to the midpoint of the step, divided by the
distance, L̂_t = ‖∇L(w_t − ½h_t g_t) − ∇L(w_t)‖ / (½h_t‖g_t‖). It also records what an unclipped step of ``lr`` from
the same point would have done to the loss, and — every ``curvature_every`` steps — the top Hessian eigenvalue λ_max
at the iterate, a measure of the curvature that does not depend on the step. Departures from the paper: the whole
training set is the batch (they measured minibatch gradients along SGD training of an LSTM and a ResNet), and the
estimate uses the midpoint only (their code's default, one point on the segment).
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .. import _validate as _v
from ..data import Dataset
from ..train import make_loss
from ..train.core import _check_model_fits, check_dataset

COLUMNS = ("step", "train_loss", "grad_norm", "step_size", "smoothness", "plain_change", "lambda_max")


def smoothness_path(model: nn.Module, dataset: Dataset, lr: float, steps: int, *, clip: float | None = None,
                    loss: str = "auto", curvature_every: int | None = None, curvature_tol: float = 1e-3) -> pd.DataFrame:
    """Train ``model`` in place by full-batch gradient descent for ``steps`` steps, clipping the gradient norm at
    ``clip`` (none when None), and return one row per step.

    Columns: ``step`` t; ``train_loss`` and ``grad_norm`` ‖g_t‖ at the iterate w_t; ``step_size``
    h_t = lr·min(1, clip/‖g_t‖) (lr without clipping); ``smoothness`` L̂_t, the gradient change over the first half of
    the step divided by its length (module docstring); ``plain_change`` — the change of the training loss that an
    unclipped step w_t − lr·g_t would have made (without clipping: the step taken). The run stops at the first
    non-finite loss, gradient or smoothness; ``df.attrs["diverged_step"]`` is that step (None when it ran to the end).
    Each step costs two gradients and one loss.

    With ``curvature_every`` = k, every k-th iterate (steps 0, k, 2k, …) also gets ``lambda_max``, the top Hessian
    eigenvalue of the training loss there (Lanczos with ``curvature_tol``, warm-started from the previous measurement by
    ``flatlab.curvature.SharpestDirections``; NaN at the other steps). It measures the curvature at the iterate whatever the step: the midpoint estimate of a
    clipped step of fixed length ηc reads ‖∇L(w_mid) − g‖ over that fixed distance, which grows with ‖g‖ by itself
    wherever the step overshoots, and λ_max is the check on it.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> df = smoothness_path(MLP(2, [16], 3, seed=0), gaussian_clouds(), lr=4.0, steps=20, clip=0.5)
    >>> list(df.columns) == list(COLUMNS), len(df), bool((df.step_size <= 4.0).all())
    (True, 20, True)
    """
    _v.instance("model", model, nn.Module, "a torch.nn.Module")
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    check_dataset(dataset)
    lr = _v.positive("lr", lr)
    steps = _v.integer("steps", steps, 1)
    clip = _v.positive("clip", clip, allow_none=True)
    curvature_every = _v.integer("curvature_every", curvature_every, 1, allow_none=True)
    curvature_tol = _v.positive("curvature_tol", curvature_tol)
    loss_fn = make_loss(dataset, loss)
    _check_model_fits(model, dataset, loss_fn)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True) to step")
    x, y = dataset.train
    if curvature_every is not None:  # warm-started from the last iterate's eigenvector: the iterates are close
        from ..curvature import SharpestDirections

        directions = SharpestDirections(model, loss_fn, (x, y), tol=curvature_tol)

    def loss_and_grad(w: torch.Tensor) -> tuple[float, torch.Tensor]:
        vector_to_parameters(w, params)
        value = loss_fn(model(x), y)
        return float(value.detach()), parameters_to_vector(torch.autograd.grad(value, params)).detach()

    rows, diverged_step = [], None
    with torch.no_grad():
        w = parameters_to_vector(params).detach().clone()
    for t in range(steps):
        value, g = loss_and_grad(w)
        norm = float(g.norm())
        if not (math.isfinite(value) and math.isfinite(norm)):
            diverged_step = t
            break
        h = lr if clip is None or norm <= clip else lr * clip / norm
        _, g_mid = loss_and_grad(w - 0.5 * h * g)
        smooth = float((g_mid - g).norm()) / (0.5 * h * norm) if norm > 0 else 0.0
        if not math.isfinite(smooth):  # the gradient overflowed within the step
            diverged_step = t
            break
        if clip is None:
            plain = math.nan  # filled in from the next row: the step taken is the plain step
        else:
            with torch.no_grad():
                vector_to_parameters(w - lr * g, params)
                plain = float(loss_fn(model(x), y)) - value
        lam = math.nan
        if curvature_every is not None and t % curvature_every == 0:
            with torch.no_grad():
                vector_to_parameters(w, params)
            lam = float(directions(1)[0][0])
        rows.append(dict(step=t, train_loss=value, grad_norm=norm, step_size=h, smoothness=smooth, plain_change=plain,
                         lambda_max=lam))
        w = w - h * g
    with torch.no_grad():
        vector_to_parameters(w, params)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if clip is None and len(df):
        with torch.no_grad():
            last = float(loss_fn(model(x), y)) if diverged_step is None else math.inf
        df["plain_change"] = pd.concat([df.train_loss.iloc[1:], pd.Series([last])], ignore_index=True).to_numpy() \
            - df.train_loss.to_numpy()
    df.attrs.update(diverged_step=diverged_step, lr=lr, clip=clip)
    return df


def _rank_correlation(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation; NaN (and no warning) when either series is constant."""
    from scipy.stats import spearmanr

    if a.nunique() < 2 or b.nunique() < 2:
        return math.nan
    return float(spearmanr(a, b).statistic)


def path_summary(path: pd.DataFrame) -> dict[str, float]:
    """The figures chapter 06 reads off a :func:`smoothness_path`: ``spread`` (largest L̂ / smallest),
    ``rank_correlation`` (Spearman's, of L̂ with ‖g‖), ``median_hL`` and ``max_hL`` (the step times the local smoothness,
    h·L̂ — 2 is the stability limit of a quadratic with that curvature), ``share_raised`` (the fraction of steps whose
    ``plain_change`` is positive: an unclipped step would have raised the loss) and ``median_plain_change``; with a
    ``lambda_max`` column measured at two or more steps also ``lambda_spread``, ``lambda_rank_correlation`` (of λ_max
    with ‖g‖ at those steps; NaN when λ_max is constant), ``median_h_lambda`` (h·λ_max there) and ``lambda_points``.

    >>> df = pd.DataFrame(dict(grad_norm=[1.0, 2.0, 4.0], smoothness=[0.5, 1.0, 3.0], step_size=[2.0, 1.0, 0.5],
    ...                        plain_change=[-0.1, 0.2, 0.3]))
    >>> {k: round(v, 3) for k, v in path_summary(df).items()}
    {'spread': 6.0, 'rank_correlation': 1.0, 'median_hL': 1.0, 'max_hL': 1.5, 'share_raised': 0.667, 'median_plain_change': 0.2}
    """
    _v.rows("path", path, ("grad_norm", "smoothness", "step_size", "plain_change"),
            "the rows of flatlab.adaptive.smoothness_path")
    if len(path) < 2:
        raise ValueError(f"path has {len(path)} row(s): a summary needs at least 2 steps")
    h_l = path.step_size * path.smoothness
    out = dict(spread=float(path.smoothness.max() / path.smoothness.min()),
               rank_correlation=_rank_correlation(path.grad_norm, path.smoothness),
               median_hL=float(h_l.median()), max_hL=float(h_l.max()),
               share_raised=float((path.plain_change > 0).mean()),
               median_plain_change=float(path.plain_change.median()))
    measured = path.dropna(subset=["lambda_max"]) if "lambda_max" in path else path.iloc[:0]
    if len(measured) >= 2:
        out.update(lambda_spread=float(measured.lambda_max.max() / measured.lambda_max.min()),
                   lambda_rank_correlation=_rank_correlation(measured.grad_norm, measured.lambda_max),
                   median_h_lambda=float((measured.step_size * measured.lambda_max).median()),
                   lambda_points=len(measured))
    return out
