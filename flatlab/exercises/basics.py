"""Exercises of chapters 00 (one GD step on a quadratic basin, the largest stable learning rate, the
number of GD steps to shrink the error) and 01 (power iteration, Hutchinson's trace estimator, filter
normalization).

One file for the two introductory chapters (six checks, each a spec, its cases and hints, and a reference
solution): about 500 lines, kept together because every check follows the same four-part pattern and a
teacher looks for all of a session's checks in one place.

References: Hutchinson, Commun. Stat. 1990 (trace estimator); Li et al., *Visualizing the loss landscape
of neural nets*, arXiv:1712.09913 (filter normalization).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .base import (Answer, Array, Case, Hint, Number, Tensors, _np, _problem_for_special, as_array, as_number, close,
                   raw_shape, run_cases, show, spec)


def _eig(h) -> np.ndarray:
    return np.linalg.eigvalsh(np.asarray(h, dtype=float))


def _operator(h_np: np.ndarray, log: dict) -> Callable:
    """``v ↦ Hv`` as the chapters' ``HessianOperator.matvec``: a flat vector of size dim (numpy or torch) in,
    a tensor of v's floating dtype out (float64 for integer v); every product and probe is logged."""
    import torch

    h = torch.tensor(h_np, dtype=torch.float64)
    dim = len(h_np)
    log.setdefault("calls", 0)
    log.setdefault("probes", [])

    def matvec(v):
        if not isinstance(v, torch.Tensor):
            v = torch.as_tensor(np.asarray(v))
        if v.shape != (dim,):
            raise ValueError(f"v must have shape ({dim},), got {tuple(v.shape)}")
        log["calls"] += 1
        log["probes"].append(v.detach().double().clone())
        out_dtype = v.dtype if v.is_floating_point() else torch.float64
        return (h @ v.detach().double()).to(out_dtype)

    return matvec


# ----------------------------------------------------------------------------------------------
# chapter 00: the largest stable learning rate
# ----------------------------------------------------------------------------------------------
def max_stable_lr_reference(hessian) -> float:
    """Largest learning rate for which GD converges on ½ wᵀHw: η < 2/λ_max(H)."""
    return 2.0 / float(_eig(hessian)[-1])


@spec("max_stable_lr")
def _max_stable_lr_spec() -> dict:
    rng = np.random.default_rng(0)
    hs = [np.diag([20.0, 5.0]), np.diag([0.5, 0.25]), np.array([[2.0, 1.0], [1.0, 2.0]])]
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    hs.append(q @ np.diag([7.0, 1.0, 0.1]) @ q.T)
    return dict(
        cases=[Case((h,), f"H={np.round(h, 3).tolist()}") for h in hs], reference=max_stable_lr_reference,
        answer=Number(), params=("hessian",),
        hints=[
            Hint("η_max is one number: 2 divided by the *largest* eigenvalue, not an array of 2/λᵢ",
                 lambda c, o: raw_shape(o) == (len(c.args[0]),)),
            Hint.like("you used the smallest eigenvalue; the sharpest direction (λ_max) limits η",
                      lambda h: 2 / _eig(h)[0]),
            Hint.like("GD on a quadratic converges up to η = 2/λ_max, not 1/λ_max", lambda h: 1 / _eig(h)[-1]),
            Hint.like("upside down: η_max = 2/λ_max, not λ_max/2", lambda h: _eig(h)[-1] / 2),
            Hint.like("the diagonal entries are not the eigenvalues when H is not diagonal",
                      lambda h: 2 / np.max(np.diag(h))),
            Hint.like("the trace is the sum of *all* eigenvalues; η_max = 2/λ_max uses the largest one",
                      lambda h: 2 / np.trace(h)),
            Hint.like("the Frobenius norm ‖H‖_F = √Σλᵢ² is not λ_max: use the largest eigenvalue",
                      lambda h: 2 / np.linalg.norm(h)),
        ])


def check_max_stable_lr(fn: Callable) -> bool:
    """Check ``fn(hessian) -> float`` returns 2/λ_max of a symmetric positive definite matrix."""
    return run_cases("max_stable_lr", fn, **_max_stable_lr_spec())


# ----------------------------------------------------------------------------------------------
# chapter 01: power iteration
# ----------------------------------------------------------------------------------------------
def power_iteration_reference(matvec: Callable, dim: int, n_iter: int = 100):
    """Power iteration v ← Hv/‖Hv‖ from a fixed random start; returns (vᵀHv, v)."""
    import torch

    v = torch.randn(dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    for _ in range(n_iter):
        w = matvec(v)
        v = w / w.norm()
    return float(v @ matvec(v)), v


class _EigenPair(Answer):
    """``(eigenvalue, vector)``: a number and a vector of length dim."""

    def convert(self, raw, case):
        dim = case.args[1]
        want = "the pair (eigenvalue, vector)"
        special = _problem_for_special(raw, want)
        if special:
            return None, special
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            if as_number(raw)[1] is None:
                return None, f"return {want}, got only a number"
            return None, f"return {want}, got {type(raw).__name__}" + (
                f" of length {len(raw)}" if isinstance(raw, (tuple, list)) else f" of shape {np.shape(_np(raw))}"
                if hasattr(raw, "shape") else "")
        value, problem = as_number(raw[0])
        if problem:
            if as_number(raw[1])[1] is None:
                return None, f"the pair is swapped: return {want}, eigenvalue first"
            return None, f"the eigenvalue (first item): {problem}"
        vec, problem = as_array(raw[1], (dim,))
        if problem:
            return None, f"the vector (second item): {problem}"
        return (value, vec), None


def _power_compare(case, out) -> str | None:
    value, vec = out.value
    lam, h = case.expected, case.data["h"]
    out.info["calls"] = case.data["log"]["calls"]
    if not np.isfinite(value) or not np.all(np.isfinite(vec)):
        return f"expected eigenvalue {lam:.6g}, got {value:.6g} and a vector with non-finite entries"
    if abs(value - lam) > 1e-5 * abs(lam):
        return f"expected eigenvalue {lam:.6g} (the largest in magnitude), got {value:.6g}"
    norm = float(np.linalg.norm(vec))
    if abs(norm - 1) > 1e-5:
        return f"the eigenvalue is right, but the vector has norm {norm:.4g}: return a unit vector"
    residual = float(np.linalg.norm(h @ vec - value * vec))
    if residual > 1e-3 * abs(lam):
        return f"the vector is not an eigenvector for λ = {lam:.4g} (‖Hv − λv‖ = {residual:.2g})"
    return None


@spec("power_iteration")
def _power_iteration_spec() -> dict:
    rng = np.random.default_rng(1)
    spectra = [[5.0, 1.0, 0.5, 0.2, 0.1, 0.0], [3.0, 2.5, 1.0, 0.5, -0.5, -1.0, 0.3, 0.2],
               [40.0, -3.0, 2.0, 1.0, 0.5], [-6.0, 2.0, 1.0, 0.5, -0.3]]
    cases = []
    for eig in map(np.array, spectra):
        q = np.linalg.qr(rng.normal(size=(len(eig), len(eig))))[0]
        h = q @ np.diag(eig) @ q.T
        log: dict = {}
        cases.append(Case((_operator(h, log), len(eig), 300), f"spectrum {eig.tolist()}, n_iter=300",
                          expected=float(eig[np.argmax(np.abs(eig))]), data=dict(h=h, log=log)))

    def vec_norm(o):
        return float(np.linalg.norm(o.value[1]))

    return dict(
        cases=cases, answer=_EigenPair(), compare=_power_compare, params=("matvec", "dim", "n_iter"),
        hints=[
            Hint("normalize v after every product: ‖Hⁿv‖ grows like |λ|ⁿ and overflows",
                 lambda c, o: o.value is not None and (not np.isfinite(o.value[0]) or not np.isfinite(vec_norm(o))
                                                       or vec_norm(o) > 1e6)),
            Hint("iterate n_iter times: your function stopped after fewer than n_iter/2 Hessian-vector products, "
                 "before v converged", lambda c, o: o.value is not None and o.info["calls"] < c.args[2] / 2),
            Hint("‖Hv‖ is |λ|: it loses the sign of a negative eigenvalue — return the Rayleigh quotient vᵀHv",
                 lambda c, o: o.value is not None and c.expected < 0
                 and abs(o.value[0] + c.expected) <= 1e-5 * abs(c.expected)),
            Hint("return the Rayleigh quotient vᵀHv of the unit vector v, not its norm (which is 1)",
                 lambda c, o: o.value is not None and abs(o.value[0] - 1) < 1e-6),
            Hint("return the normalized v = Hv/‖Hv‖, not the product Hv itself",
                 lambda c, o: o.value is not None and abs(vec_norm(o) - abs(c.expected)) < 1e-4 * abs(c.expected)),
        ])


def check_power_iteration(fn: Callable) -> bool:
    """Check ``fn(matvec, dim, n_iter) -> (eigenvalue, unit vector)`` on matrices with known spectra: the
    eigenvalue of largest magnitude (its sign included) and a unit eigenvector."""
    return run_cases("power_iteration", fn, **_power_iteration_spec())


# ----------------------------------------------------------------------------------------------
# chapter 00: one GD step on a quadratic basin
# ----------------------------------------------------------------------------------------------
def gd_step_reference(w, centre, hessian, lr: float) -> np.ndarray:
    """One GD step on q(w) = ½ (w−m)ᵀ A (w−m): w − η A (w − m)."""
    w, m, a = (np.asarray(x, dtype=float) for x in (w, centre, hessian))
    return w - lr * a @ (w - m)


@spec("gd_step")
def _gd_step_spec() -> dict:
    rng = np.random.default_rng(2)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    cases = [
        (np.array([-0.9, 0.55]), np.array([-1.0, 0.5]), np.array([[18.69, 4.23], [4.23, 6.31]]), 0.09),
        (np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.diag([2.0, 1.0]), 0.3),
        (np.array([0.3, 0.2, -0.1]), np.array([1.0, -1.0, 2.0]), q @ np.diag([5.0, 1.0, 0.2]) @ q.T, 0.25),
        (np.array([2.0, 2.0]), np.array([0.0, 0.0]), np.array([[0.5, -0.1], [-0.1, 0.25]]), 1.5),
    ]
    g = lambda w, m, a: a @ (w - m)  # noqa: E731
    return dict(
        cases=[Case(c, f"w={c[0].tolist()}, m={c[1].tolist()}, η={c[3]}") for c in cases],
        reference=gd_step_reference, answer=Array(), params=("w", "centre", "hessian", "lr"),
        in_place="return a new array (w - η·∇q rather than w -= η·∇q)",
        hints=[
            Hint("A * (w − m) multiplies elementwise (and broadcasts to a matrix); use the matrix product A @ (w − m)",
                 lambda c, o: raw_shape(o) == c.args[2].shape),
            Hint.like("wrong sign: GD steps *down* the gradient, w − η∇q", lambda w, m, a, lr: w + lr * g(w, m, a)),
            Hint.like("subtract the centre: the gradient of ½(w−m)ᵀA(w−m) is A(w − m), not Aw",
                      lambda w, m, a, lr: w - lr * a @ w),
            Hint.like("multiply the gradient by the step size η", lambda w, m, a, lr: w - g(w, m, a)),
            Hint.like("the ½ cancels when you differentiate: ∇q = A(w − m), not ½A(w − m)",
                      lambda w, m, a, lr: w - lr / 2 * g(w, m, a)),
            Hint.like("the ½ in q cancels the 2 of the derivative: ∇q = A(w − m), not 2A(w − m)",
                      lambda w, m, a, lr: w - 2 * lr * g(w, m, a)),
            Hint.like("return the new point w − η∇q, not only the step −η∇q", lambda w, m, a, lr: -lr * g(w, m, a)),
            Hint.like("return the new point w − η∇q, not the gradient ∇q", lambda w, m, a, lr: g(w, m, a)),
            Hint.like("start the step from w, not from the centre m", lambda w, m, a, lr: m - lr * g(w, m, a)),
        ])


def check_gd_step(fn: Callable) -> bool:
    """Check ``fn(w, centre, hessian, lr) -> array`` returns w − η A (w − m) for quadratic basins."""
    return run_cases("gd_step", fn, **_gd_step_spec())


# ----------------------------------------------------------------------------------------------
# chapter 00: how many GD steps to shrink the error by a factor
# ----------------------------------------------------------------------------------------------
def _steps_for(rho: float, factor: float) -> float:
    """Smallest whole t ≥ 0 with ρᵗ ≤ 1/factor (math.inf when ρ ≥ 1, NaN for a meaningless ρ < 0)."""
    if factor <= 1:
        return 0
    if rho < 0:
        return math.nan
    if rho >= 1:
        return math.inf
    if rho == 0:
        return 1
    return max(0, math.ceil(math.log(factor) / -math.log(rho)))


def _rho(h, lr, lams=None) -> float:
    lams = _eig(h) if lams is None else np.asarray(lams)
    return float(np.max(np.abs(1 - lr * lams)))


def steps_to_shrink_reference(hessian, lr: float, factor: float) -> float:
    """GD steps on ½ wᵀHw until every error has shrunk ``factor``-fold: ⌈ln(factor) / −ln ρ⌉, where
    ρ = maxᵢ |1 − ηλᵢ| is the per-step contraction factor; ``math.inf`` when ρ ≥ 1 (no convergence)."""
    return _steps_for(_rho(hessian, lr), factor)


def _steps_compare(case, out) -> str | None:
    expected, got = case.expected, out.value
    if got == expected:
        return None
    rho = _rho(case.args[0], case.args[1])
    if math.isinf(expected):
        return (f"expected math.inf — ρ = max|1 − ηλ| = {rho:.3g} ≥ 1, the error never shrinks: return math.inf — "
                f"got {show(got)}")
    return f"expected {expected:g} steps (ρ = max|1 − ηλ| = {rho:.3g}), got {show(got)}"


def _no_abs(c, o) -> bool:
    """Explains a case when the answer is the count for ρ = max(1 − ηλ) — or, where that ρ is negative
    (every ηλ > 1), when taking its logarithm failed (an exception or NaN)."""
    h, lr, factor = c.args
    rho = float(np.max(1 - lr * _eig(h)))
    if rho < 0:
        return o.error is not None or (o.value is not None and math.isnan(o.value))
    return o.value is not None and o.value == _steps_for(rho, factor)


@spec("steps_to_shrink")
def _steps_to_shrink_spec() -> dict:
    rng = np.random.default_rng(3)
    c, s = np.cos(0.6), np.sin(0.6)
    rot = np.array([[c, -s], [s, c]])
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    cases = [
        (np.diag([20.0, 5.0]), 0.09, 1e3),
        (np.diag([0.5, 0.25]), 1.0, 100.0),
        (rot @ np.diag([4.0, 1.0]) @ rot.T, 0.45, 10.0),
        (np.diag([20.0, 0.5]), 0.11, 1e3),                 # |1 − ηλ_max| = 1.2: diverges
        (q @ np.diag([7.0, 1.0, 0.1]) @ q.T, 0.25, 1e4),
        (np.diag([4.0, 1.0]), 0.5, 10.0),                  # ρ = |1 − 2| = 1 exactly: never shrinks
        (np.diag([3.0, 2.0]), 0.6, 1e3),                   # every ηλ > 1: every factor 1 − ηλ is negative
    ]
    like = lambda text, rho_of: Hint.like(text, lambda h, lr, f: _steps_for(rho_of(h, lr), f))  # noqa: E731
    return dict(
        cases=[Case(cs, f"eigenvalues {np.round(_eig(cs[0]), 4).tolist()}, η={cs[1]}, factor={cs[2]:g}")
               for cs in cases],
        reference=steps_to_shrink_reference, answer=Number(), compare=_steps_compare,
        params=("hessian", "lr", "factor"),
        hints=[
            Hint("GD converges here (every |1 − ηλ| < 1; it diverges only past ηλ = 2): return a finite count",
                 lambda c, o: o.value is not None and math.isinf(o.value) and not math.isinf(c.expected)),
            Hint("when ρ = max|1 − ηλ| ≥ 1 the error never shrinks (ln ρ ≥ 0): test for it first and return math.inf",
                 lambda c, o: math.isinf(c.expected) and (o.error is not None or (
                     o.value is not None and not math.isinf(o.value)))),
            Hint("take |1 − ηλ|: when ηλ > 1 the factor is negative — the error flips sign and shrinks only by "
                 "|1 − ηλ|", _no_abs),
            like("the slowest direction sets the pace: ρ is the max of |1 − ηλ| over *all* eigenvalues, not only "
                 "the largest eigenvalue's", lambda h, lr: _rho(h, lr, _eig(h)[-1:])),
            like("ρ is the max of |1 − ηλ| over *all* eigenvalues, not only the smallest eigenvalue's",
                 lambda h, lr: _rho(h, lr, _eig(h)[:1])),
            like("the slowest direction sets the pace: take the max of |1 − ηλ| over the eigenvalues, not the min",
                 lambda h, lr: float(np.min(np.abs(1 - lr * _eig(h))))),
            like("the diagonal entries are not the eigenvalues when H is not diagonal",
                 lambda h, lr: _rho(h, lr, np.diag(h))),
            Hint.like("return the number of steps t, not the contraction factor ρ", lambda h, lr, f: _rho(h, lr)),
            Hint.like("round up to a whole number of steps: the smallest whole t with ρᵗ ≤ 1/factor",
                      lambda h, lr, f: (lambda r: math.log(f) / -math.log(r) if r < 1 else math.inf)(_rho(h, lr))),
            Hint.like("round up (math.ceil): the smallest whole t with ρᵗ ≤ 1/factor — round, floor and int give "
                      "one step too few", lambda h, lr, f: steps_to_shrink_reference(h, lr, f) - 1),
            Hint.like("off by one: ⌈ln(factor)/(−ln ρ)⌉ steps already shrink the error enough",
                      lambda h, lr, f: steps_to_shrink_reference(h, lr, f) + 1),
            Hint.like("use one logarithm for both: ln(factor)/(−ln ρ), not log₁₀(factor)/(−ln ρ)",
                      lambda h, lr, f: (lambda r: math.ceil(math.log10(f) / -math.log(r)) if r < 1 else math.inf)(
                          _rho(h, lr))),
        ])


def check_steps_to_shrink(fn: Callable) -> bool:
    """Check ``fn(hessian, lr, factor) -> int or math.inf`` counts GD steps from the contraction factor."""
    return run_cases("steps_to_shrink", fn, **_steps_to_shrink_spec())


# ----------------------------------------------------------------------------------------------
# chapter 01: Hutchinson's trace estimator
# ----------------------------------------------------------------------------------------------
def hutchinson_trace_reference(matvec: Callable, dim: int, n_samples: int = 100, seed: int = 0) -> float:
    """Hutchinson's estimator tr H ≈ (1/n) Σₖ vₖᵀ H vₖ with Rademacher probes vₖ ∈ {±1}^dim."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    total = 0.0
    for _ in range(n_samples):
        v = torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1
        total += float(v @ matvec(v))
    return total / n_samples


def _hutchinson_close(case, x: float) -> bool:
    return abs(x - case.expected) <= 5 * case.data["std"] + 1e-5 * max(1.0, abs(case.expected))


def _hutchinson_compare(case, out) -> str | None:
    probes = list(case.data["log"]["probes"])
    out.info["probes"] = probes
    n, got, std = case.args[2], out.value, case.data["std"]
    value = (f"expected {case.expected:.6g}" + (f" ± {5 * std:.2g}" if std else "") + f", got {got:.6g}")
    if len(probes) != n:
        return f"{len(probes)} Hessian-vector products for n_samples={n} ({value})"
    return None if _hutchinson_close(case, got) else value


def _probes(o) -> list:
    return o.info.get("probes", [])


@spec("hutchinson_trace")
def _hutchinson_trace_spec() -> dict:
    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    b = rng.normal(size=(10, 10))
    cases = []
    for h, n in [(np.diag([5.0, 1.0, 0.5, 0.2, 0.1, 0.0]), 20), (np.diag([3.0, -1.0, 2.0, 7.0]), 7),
                 (q @ np.diag([4.0, 2.0, 1.0, 0.5, 0.0, -0.5]) @ q.T, 4000), ((b + b.T) / 4, 4000)]:
        log: dict = {}
        off = h - np.diag(np.diag(h))
        diagonal = not off.any()
        cases.append(Case((_operator(h, log), len(h), n, 0),
                          f"{'diagonal' if diagonal else 'dense'} H of size {len(h)}, n_samples={n}",
                          expected=float(np.trace(h)),
                          data=dict(log=log, std=math.sqrt(2 * float((off ** 2).sum()) / n))))

    def entries(o):
        return np.concatenate([p.numpy() for p in _probes(o)]) if _probes(o) else np.zeros(0)

    return dict(
        cases=cases, answer=Number(), compare=_hutchinson_compare, params=("matvec", "dim", "n_samples", "seed"),
        repeat="draw the probes from a generator seeded with `seed`, torch.Generator().manual_seed(seed)",
        hints=[
            Hint("use n_samples probes, one Hessian-vector product vᵀ(Hv) for each",
                 lambda c, o: o.value is not None and len(_probes(o)) != c.args[2]),
            Hint("do not normalize the probes: E[vvᵀ] = I needs entries ±1; unit vectors give tr(H)/dim",
                 lambda c, o: _hutchinson_close(c, o.value * c.args[1])),
            Hint("average vᵀHv over the probes, do not sum them", lambda c, o: _hutchinson_close(c, o.value / c.args[2])),
            Hint("average vᵀ(Hv), not vᵀv (which is dim for every ±1 probe)",
                 lambda c, o: abs(o.value - c.args[1]) < 1e-5 * c.args[1]),
            Hint("Rademacher entries are ±1: map random bits b ∈ {0, 1} to 2b − 1",
                 lambda c, o: o.value is not None and entries(o).size and np.isin(entries(o), (0.0, 1.0)).all()),
            Hint("use Rademacher probes: each entry +1 or −1 with probability ½ (for a diagonal H, vᵀHv is then "
                 "exactly tr H)", lambda c, o: o.value is not None and entries(o).size and not np.isin(entries(o), (-1.0, 1.0)).all()),
            Hint("draw a fresh random probe for every sample, not the same one n times",
                 lambda c, o: o.value is not None and len(_probes(o)) > 1 and all(np.array_equal(p, _probes(o)[0]) for p in _probes(o))),
        ])


def check_hutchinson_trace(fn: Callable) -> bool:
    """Check ``fn(matvec, dim, n_samples, seed) -> float`` estimates tr H with n Rademacher probes: exact
    for diagonal H, within five standard deviations of tr H otherwise, the same for the same seed."""
    return run_cases("hutchinson_trace", fn, **_hutchinson_trace_spec())


# ----------------------------------------------------------------------------------------------
# chapter 01: filter normalization of a random direction (Li et al. 2018)
# ----------------------------------------------------------------------------------------------
def filter_normalize_reference(direction, weights):
    """Filter-normalize ``direction`` against ``weights`` (lists of tensors of equal shapes): each filter
    (row i of a ≥2-D weight, flattened) d_i ← d_i ‖w_i‖/‖d_i‖; 1-D parameters (biases) get d = 0."""
    import torch

    out = []
    for d, w in zip(direction, weights):
        d, w = torch.as_tensor(d), torch.as_tensor(w)
        if w.dim() <= 1:
            out.append(torch.zeros_like(d))
            continue
        dr, wr = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1).to(d.dtype)
        dn = dr.norm(dim=1, keepdim=True)
        out.append((dr * wr.norm(dim=1, keepdim=True) / torch.where(dn > 0, dn, torch.ones_like(dn))).reshape(d.shape))
    return out


def _filter_variant(per_weight: Callable) -> Callable:
    """The whole answer when ≥2-D parameters get ``per_weight(d, w)`` (one mistake) and biases zeros."""
    import torch

    def candidate(direction, weights):
        return [torch.zeros_like(d) if w.dim() <= 1 else per_weight(d, w) for d, w in zip(direction, weights)]
    return candidate


def _rows(t):
    return t.reshape(t.shape[0], -1)


def _describe(t) -> str:
    """Row norms of a ≥2-D direction, or the largest entry of a 1-D one, for a failure message."""
    t = np.asarray(t, dtype=float)
    if t.ndim <= 1:
        return f"max |d| = {np.abs(t).max():.4g}"
    return f"row norms {show(np.linalg.norm(t.reshape(t.shape[0], -1), axis=1), 4)}"


def _filter_compare(case, out) -> str | None:
    bad = [i for i, (g, e) in enumerate(zip(out.value, case.expected)) if not close(g, e)]
    out.info["bad"] = bad
    if not bad:
        return None
    i = bad[0]
    e, g = _np(case.expected[i]), out.value[i]
    want, got = _describe(e), _describe(g)
    if want == got:
        want, got = f"{want}, entries {show(e)}", f"the same row norms but entries {show(g)}"
    return f"tensor {i} of shape {e.shape}: expected {want}, got {got}"


@spec("filter_normalize")
def _filter_normalize_spec() -> dict:
    import torch

    gen = torch.Generator().manual_seed(5)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    cases = [
        ([rand(3, 4)], [rand(3, 4) * torch.tensor([[0.1], [1.0], [10.0]], dtype=torch.float64)]),
        ([rand(5, 2), rand(5), rand(2, 5), rand(2)], [rand(5, 2), rand(5), 3 * rand(2, 5), rand(2)]),
        ([rand(4, 3, 3, 3), rand(4)], [rand(4, 3, 3, 3), rand(4)]),
    ]
    per_row = lambda f: _filter_variant(lambda d, w: f(_rows(d), _rows(w)).reshape(d.shape))  # noqa: E731
    return dict(
        cases=[Case(c, f"shapes {[tuple(t.shape) for t in c[1]]}") for c in cases],
        reference=filter_normalize_reference, params=("direction", "weights"),
        answer=Tensors(what="parameter", why="the chapter adds them to the model's parameters"),
        compare=_filter_compare, in_place="return new tensors",
        hints=[
            Hint("biases and other 1-D parameters get a zero direction (Li et al.: ignore biases)",
                 lambda c, o: o.value is not None and all(c.args[1][i].dim() <= 1 for i in o.info["bad"])),
            Hint.like("normalize each filter (row) separately, not the whole tensor",
                      _filter_variant(lambda d, w: d * w.norm() / d.norm())),
            Hint.like("a filter is a *row* of the weight (one output unit): take norms along dim=1, not dim=0",
                      _filter_variant(lambda d, w: d * w.norm(dim=0, keepdim=True) / d.norm(dim=0, keepdim=True))),
            Hint.like("flatten each filter before taking its norm: reshape(shape[0], -1)",
                      _filter_variant(lambda d, w: d * w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True))),
            Hint.like("scale each row to the norm of the weight's row ‖w_i‖, not to 1",
                      per_row(lambda d, w: d / d.norm(dim=1, keepdim=True))),
            Hint.like("divide by the direction row's norm ‖d_i‖ too", per_row(lambda d, w: d * w.norm(dim=1, keepdim=True))),
            Hint.like("the ratio is upside down: d_i ‖w_i‖ / ‖d_i‖",
                      per_row(lambda d, w: d * d.norm(dim=1, keepdim=True) / w.norm(dim=1, keepdim=True))),
            Hint.like("use the Euclidean norm of each row (‖·‖₂), not the sum of absolute values",
                      per_row(lambda d, w: d * w.abs().sum(1, keepdim=True) / d.abs().sum(1, keepdim=True))),
            Hint.like("the arguments are (direction, weights): you rescaled the weights to the direction's norms",
                      lambda d, w: filter_normalize_reference(w, d)),
        ])


def check_filter_normalize(fn: Callable) -> bool:
    """Check ``fn(direction, weights) -> list of tensors`` filter-normalizes a random direction."""
    return run_cases("filter_normalize", fn, **_filter_normalize_spec())


__all__ = ["max_stable_lr_reference", "check_max_stable_lr", "power_iteration_reference", "check_power_iteration",
           "gd_step_reference", "check_gd_step", "steps_to_shrink_reference", "check_steps_to_shrink",
           "hutchinson_trace_reference", "check_hutchinson_trace", "filter_normalize_reference",
           "check_filter_normalize"]
