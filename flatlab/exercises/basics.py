"""Exercises of chapters 00 (one GD step on a quadratic basin, the largest stable learning rate, the
number of GD steps to shrink the error) and 01 (power iteration, Hutchinson's trace estimator, filter
normalization).

References: Hutchinson, Commun. Stat. 1990 (trace estimator); Li et al., *Visualizing the loss landscape
of neural nets*, arXiv:1712.09913 (filter normalization).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .base import NOT_IMPLEMENTED, call, not_implemented, report


def max_stable_lr_reference(hessian) -> float:
    """Largest learning rate for which GD converges on ½ wᵀHw: η < 2/λ_max(H)."""
    return 2.0 / float(np.linalg.eigvalsh(np.asarray(hessian, dtype=float))[-1])


def check_max_stable_lr(fn: Callable) -> bool:
    """Check ``fn(hessian) -> float`` returns 2/λ_max of a symmetric positive definite matrix."""
    rng = np.random.default_rng(0)
    cases = [np.diag([20.0, 5.0]), np.diag([0.5, 0.25]), np.array([[2.0, 1.0], [1.0, 2.0]])]
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    cases.append(q @ np.diag([7.0, 1.0, 0.1]) @ q.T)
    failures = []
    for h in cases:
        got, err = call(fn, h.copy())
        if err == NOT_IMPLEMENTED:
            return not_implemented("max_stable_lr")
        expected = max_stable_lr_reference(h)
        eig = np.linalg.eigvalsh(h)
        if err:
            failures.append(f"H={np.round(h, 3).tolist()}: {err}")
        elif not np.isclose(float(got), expected, rtol=1e-6):
            hint = ""
            if np.isclose(float(got), 2 / eig[0], rtol=1e-6):
                hint = " — you used the smallest eigenvalue; the sharpest direction limits η"
            elif np.isclose(float(got), 1 / eig[-1], rtol=1e-6):
                hint = " — GD on a quadratic converges up to η = 2/λ, not 1/λ"
            elif np.isclose(float(got), 2 / np.max(np.diag(h)), rtol=1e-6) and not np.allclose(h, np.diag(np.diag(h))):
                hint = " — the diagonal entries are not the eigenvalues when H is not diagonal"
            failures.append(f"H={np.round(h, 3).tolist()}: expected {expected:.6g}, got {float(got):.6g}{hint}")
    return report("max_stable_lr", failures, len(cases))


def power_iteration_reference(matvec: Callable, dim: int, n_iter: int = 100):
    """Power iteration v ← Hv/‖Hv‖ from a fixed random start; returns (vᵀHv, v)."""
    import torch

    v = torch.randn(dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    for _ in range(n_iter):
        w = matvec(v)
        v = w / w.norm()
    return float(v @ matvec(v)), v


def check_power_iteration(fn: Callable) -> bool:
    """Check ``fn(matvec, dim, n_iter) -> (eigenvalue, unit vector)`` on matrices with known spectra."""
    import torch

    rng = np.random.default_rng(1)
    spectra = [np.array([5.0, 1.0, 0.5, 0.2, 0.1, 0.0]), np.array([3.0, 2.5, 1.0, 0.5, -0.5, -1.0, 0.3, 0.2]),
               np.array([40.0, -3.0, 2.0, 1.0, 0.5])]
    failures = []
    for eig in spectra:
        q = np.linalg.qr(rng.normal(size=(len(eig), len(eig))))[0]
        h = torch.tensor(q @ np.diag(eig) @ q.T)
        calls = {"n": 0}

        def matvec(v, h=h):
            calls["n"] += 1
            return h @ torch.as_tensor(v, dtype=torch.float64)

        got, err = call(fn, matvec, len(eig), 300)
        if err == NOT_IMPLEMENTED:
            return not_implemented("power_iteration")
        case = f"spectrum {eig.tolist()}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            value, vec = got
            value, vec = float(value), torch.as_tensor(vec, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError):
            failures.append(f"{case}: return a pair (eigenvalue, vector), got {type(got).__name__}")
            continue
        expected = float(eig.max())
        if not np.isfinite(value) or not torch.isfinite(vec).all():
            failures.append(f"{case}: got a non-finite result — normalize v after every product (‖Hⁿv‖ grows like λⁿ)")
        elif calls["n"] < 10:
            failures.append(f"{case}: only {calls['n']} Hessian-vector products — iterate n_iter times")
        elif abs(value - expected) > 1e-4 * abs(expected):
            failures.append(f"{case}: expected eigenvalue {expected:.6g}, got {value:.6g}"
                            + (" — return the Rayleigh quotient vᵀHv of a unit vector v" if abs(value - 1) < 1e-6 else ""))
        elif abs(float(vec.norm()) - 1) > 1e-6:
            failures.append(f"{case}: the vector has norm {float(vec.norm()):.4g}; return a unit vector")
        elif float((h @ vec - value * vec).norm()) > 1e-3 * abs(expected):
            failures.append(f"{case}: the vector is not an eigenvector (residual {float((h @ vec - value * vec).norm()):.2g})")
    return report("power_iteration", failures, len(spectra))


# ----------------------------------------------------------------------------------------------
# chapter 00: one GD step on a quadratic basin
# ----------------------------------------------------------------------------------------------
def gd_step_reference(w, centre, hessian, lr: float) -> np.ndarray:
    """One GD step on q(w) = ½ (w−m)ᵀ A (w−m): w − η A (w − m)."""
    w, m, a = (np.asarray(x, dtype=float) for x in (w, centre, hessian))
    return w - lr * a @ (w - m)


def check_gd_step(fn: Callable) -> bool:
    """Check ``fn(w, centre, hessian, lr) -> array`` returns w − η A (w − m) for quadratic basins."""
    rng = np.random.default_rng(2)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    cases = [
        (np.array([-0.9, 0.55]), np.array([-1.0, 0.5]), np.array([[18.69, 4.23], [4.23, 6.31]]), 0.09),
        (np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.diag([2.0, 1.0]), 0.3),
        (np.array([0.3, 0.2, -0.1]), np.array([1.0, -1.0, 2.0]), q @ np.diag([5.0, 1.0, 0.2]) @ q.T, 0.25),
        (np.array([2.0, 2.0]), np.array([0.0, 0.0]), np.array([[0.5, -0.1], [-0.1, 0.25]]), 1.5),
    ]
    failures = []
    for w, m, a, lr in cases:
        w_in, m_in, a_in = w.copy(), m.copy(), a.copy()
        got, err = call(fn, w_in, m_in, a_in, lr)
        if err == NOT_IMPLEMENTED:
            return not_implemented("gd_step")
        case = f"w={w.tolist()}, m={m.tolist()}, η={lr}"
        if err:
            hint = " — use the matrix product A @ (w − m)" if "shape" in err or "align" in err else ""
            failures.append(f"{case}: {err}{hint}")
            continue
        if not (np.array_equal(w_in, w) and np.array_equal(m_in, m) and np.array_equal(a_in, a)):
            failures.append(f"{case}: the inputs were modified in place — return a new array "
                            "(w - η·… rather than w -= η·…)")
            continue
        expected = gd_step_reference(w, m, a, lr)
        try:
            got = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            failures.append(f"{case}: return an array like w, got {type(got).__name__}")
            continue
        if got.shape != w.shape:
            hint = (" — A * (w − m) broadcasts elementwise; use the matrix product A @ (w − m)"
                    if got.shape == a.shape else "")
            failures.append(f"{case}: expected shape {w.shape}, got {got.shape}{hint}")
            continue
        if np.allclose(got, expected, rtol=1e-9, atol=1e-12):
            continue
        g = a @ (w - m)
        candidates = [
            (w + lr * g, "wrong sign: GD steps *down* the gradient, w − η∇q"),
            (w - lr * a @ w, "subtract the centre: the gradient of ½(w−m)ᵀA(w−m) is A(w − m), not Aw"),
            (w - g, "multiply the gradient by the step size η"),
            (w - lr / 2 * g, "the ½ cancels when you differentiate: ∇q = A(w − m), not ½A(w − m)"),
            (-lr * g, "return the new point w − η∇q, not only the step −η∇q"),
            (m - lr * g, "start the step from w, not from the centre m"),
        ]
        hint = next((h for c, h in candidates if np.allclose(got, c, rtol=1e-9, atol=1e-12)), "")
        failures.append(f"{case}: expected {np.round(expected, 6).tolist()}, got {np.round(got, 6).tolist()}"
                        + (f" — {hint}" if hint else ""))
    return report("gd_step", failures, len(cases))


# ----------------------------------------------------------------------------------------------
# chapter 00: how many GD steps to shrink the error by a factor
# ----------------------------------------------------------------------------------------------
def _steps_for(rho: float, factor: float) -> float:
    """Smallest whole t ≥ 0 with ρᵗ ≤ 1/factor (math.inf when ρ ≥ 1)."""
    if factor <= 1:
        return 0
    if rho >= 1:
        return math.inf
    if rho == 0:
        return 1
    return max(0, math.ceil(math.log(factor) / -math.log(rho)))


def steps_to_shrink_reference(hessian, lr: float, factor: float) -> float:
    """GD steps on ½ wᵀHw until every error has shrunk ``factor``-fold: ⌈ln(factor) / −ln ρ⌉, where
    ρ = maxᵢ |1 − ηλᵢ| is the per-step contraction factor; ``math.inf`` when ρ ≥ 1 (no convergence)."""
    eig = np.linalg.eigvalsh(np.asarray(hessian, dtype=float))
    return _steps_for(float(np.max(np.abs(1 - lr * eig))), factor)


def check_steps_to_shrink(fn: Callable) -> bool:
    """Check ``fn(hessian, lr, factor) -> int or math.inf`` counts GD steps from the contraction factor."""
    rng = np.random.default_rng(3)
    c, s = np.cos(0.6), np.sin(0.6)
    rot = np.array([[c, -s], [s, c]])
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    cases = [
        (np.diag([20.0, 5.0]), 0.09, 1e3),
        (np.diag([0.5, 0.25]), 1.0, 100.0),
        (rot @ np.diag([4.0, 1.0]) @ rot.T, 0.45, 10.0),
        (np.diag([20.0, 0.5]), 0.11, 1e3),
        (q @ np.diag([7.0, 1.0, 0.1]) @ q.T, 0.25, 1e4),
    ]
    failures = []
    for h, lr, factor in cases:
        got, err = call(fn, h.copy(), lr, factor)
        if err == NOT_IMPLEMENTED:
            return not_implemented("steps_to_shrink")
        case = f"eigenvalues {np.round(np.linalg.eigvalsh(h), 4).tolist()}, η={lr}, factor={factor:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            got = float(got)
        except (TypeError, ValueError):
            failures.append(f"{case}: return a whole number of steps (or math.inf), got {type(got).__name__}")
            continue
        expected = steps_to_shrink_reference(h, lr, factor)
        if got == expected:
            continue
        eig = np.linalg.eigvalsh(h)
        rho = lambda lams: float(np.max(np.abs(1 - lr * np.asarray(lams))))  # noqa: E731
        if math.isinf(expected):
            hint = (f"|1 − ηλ| = {rho(eig):.3g} ≥ 1 for the largest eigenvalue: the error never shrinks, "
                    "return math.inf")
        elif math.isinf(got):
            hint = f"GD converges here (every |1 − ηλ| < 1, the largest is {rho(eig):.3g}): return a finite count"
        else:
            candidates = [
                (_steps_for(float(np.max(1 - lr * eig)), factor),
                 "take |1 − ηλ|: when ηλ > 1 the factor is negative — the error flips sign and still shrinks "
                 "only by |1 − ηλ|"),
                (_steps_for(rho(eig[-1:]), factor),
                 "the slowest direction sets the pace: ρ is the max of |1 − ηλ| over *all* eigenvalues — here "
                 "the smallest one"),
                (_steps_for(rho(eig[:1]), factor),
                 "ρ is the max of |1 − ηλ| over *all* eigenvalues — here the largest one oscillates slowest"),
                (_steps_for(rho(np.diag(h)), factor),
                 "the diagonal entries are not the eigenvalues when H is not diagonal"),
                (expected - 1, "round up: the answer is the smallest whole t with ρᵗ ≤ 1/factor"),
                (expected + 1, "off by one: the smallest whole t with ρᵗ ≤ 1/factor is ⌈ln(factor)/(−ln ρ)⌉"),
            ]
            hint = next((h_ for v, h_ in candidates if got == v), "")
        failures.append(f"{case}: expected {expected:g} steps, got {got:g}" + (f" — {hint}" if hint else ""))
    return report("steps_to_shrink", failures, len(cases))


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


def check_hutchinson_trace(fn: Callable) -> bool:
    """Check ``fn(matvec, dim, n_samples, seed) -> float`` estimates tr H with n Rademacher probes: exact
    for diagonal H, within five standard deviations of tr H otherwise."""
    import torch

    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    b = rng.normal(size=(10, 10))
    cases = [(np.diag([5.0, 1.0, 0.5, 0.2, 0.1, 0.0]), 20), (np.diag([3.0, -1.0, 2.0, 7.0]), 7),
             (q @ np.diag([4.0, 2.0, 1.0, 0.5, 0.0, -0.5]) @ q.T, 4000), ((b + b.T) / 4, 4000)]
    failures = []
    for h_np, n in cases:
        h = torch.tensor(h_np)
        probes = []

        def matvec(v, h=h):
            v = torch.as_tensor(v, dtype=torch.float64)
            probes.append(v.detach().clone().reshape(-1))
            return h @ v

        got, err = call(fn, matvec, len(h_np), n, 0)
        if err == NOT_IMPLEMENTED:
            return not_implemented("hutchinson_trace")
        diagonal = np.allclose(h_np, np.diag(np.diag(h_np)))
        case = f"{'diagonal' if diagonal else 'dense'} H of size {len(h_np)}, n_samples={n}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            got = float(got)
        except (TypeError, ValueError):
            failures.append(f"{case}: return the estimate as a number, got {type(got).__name__}")
            continue
        trace = float(np.trace(h_np))
        off = h_np - np.diag(np.diag(h_np))
        std = math.sqrt(2 * float((off ** 2).sum()) / n)
        close = lambda x: abs(x - trace) <= 5 * std + 1e-9 * max(1.0, abs(trace))  # noqa: E731
        if close(got) and len(probes) == n:
            continue
        hint = ""
        if len(probes) != n:
            hint = f"{len(probes)} Hessian-vector products for n_samples={n}: use one fresh probe per sample"
        elif close(got * len(h_np)) and not close(got):
            hint = "do not normalize the probes: E[vvᵀ] = I needs entries ±1, a unit vector gives tr(H)/dim"
        elif close(got / n):
            hint = "average vᵀHv over the probes, do not sum them"
        elif any(not torch.all(p.abs() == 1) for p in probes):
            hint = "use Rademacher probes: each entry +1 or −1 with probability ½ (for diagonal H, vᵀHv is then exactly tr H)"
        elif n > 1 and all(torch.equal(p, probes[0]) for p in probes):
            hint = "draw a fresh random probe for every sample, not the same one n times"
        failures.append(f"{case}: expected {trace:.6g}" + (f" ± {5 * std:.2g}" if std else "")
                        + f", got {got:.6g}" + (f" — {hint}" if hint else ""))
    return report("hutchinson_trace", failures, len(cases))


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


def _filter_hint(d, w, got) -> str:
    """The likely mistake when ``got`` (one tensor) is not the filter-normalized ``d``."""
    import torch

    if w.dim() <= 1:
        return "biases and other 1-D parameters get a zero direction (Li et al.: ignore biases)"
    rows = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731
    dr, wr = rows(d), rows(w)
    candidates = [
        (d * w.norm() / d.norm(), "normalize each filter (row) separately, not the whole tensor"),
        (d * w.norm(dim=0, keepdim=True) / d.norm(dim=0, keepdim=True),
         "a filter is a *row* of the weight (one output unit): take norms along dim=1, not dim=0"),
        ((dr / dr.norm(dim=1, keepdim=True)).reshape(d.shape),
         "scale each row to the norm of the weight's row ‖w_i‖, not to 1"),
        ((dr * wr.norm(dim=1, keepdim=True)).reshape(d.shape), "divide by the direction row's norm ‖d_i‖ too"),
        ((dr * dr.norm(dim=1, keepdim=True) / wr.norm(dim=1, keepdim=True)).reshape(d.shape),
         "the ratio is upside down: d_i ‖w_i‖ / ‖d_i‖"),
    ]
    if d.dim() > 2:
        candidates.append((d * w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True),
                           "flatten each filter before taking its norm: reshape(shape[0], -1)"))
    for cand, hint in candidates:
        if cand.shape == got.shape and torch.allclose(got.double(), cand.double(), rtol=1e-5, atol=1e-8):
            return hint
    return ""


def _describe(t) -> str:
    """Row norms of a ≥2-D direction tensor, or the largest entry of a 1-D one, for a failure message."""
    t = t.detach().double()
    if t.dim() <= 1:
        return f"max |d| = {t.abs().max().item():.4g}"
    return f"row norms {np.round(t.reshape(t.shape[0], -1).norm(dim=1).numpy(), 4).tolist()}"


def check_filter_normalize(fn: Callable) -> bool:
    """Check ``fn(direction, weights) -> list of tensors`` filter-normalizes a random direction."""
    import torch

    gen = torch.Generator().manual_seed(5)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    cases = [
        ([rand(3, 4)], [rand(3, 4) * torch.tensor([[0.1], [1.0], [10.0]], dtype=torch.float64)]),
        ([rand(5, 2), rand(5), rand(2, 5), rand(2)], [rand(5, 2), rand(5), 3 * rand(2, 5), rand(2)]),
        ([rand(4, 3, 3, 3), rand(4)], [rand(4, 3, 3, 3), rand(4)]),
    ]
    failures = []
    for direction, weights in cases:
        d_in, w_in = [t.clone() for t in direction], [t.clone() for t in weights]
        got, err = call(fn, d_in, w_in)
        if err == NOT_IMPLEMENTED:
            return not_implemented("filter_normalize")
        case = f"shapes {[tuple(t.shape) for t in weights]}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        if not all(torch.equal(a, b) for a, b in zip(d_in + w_in, direction + weights)):
            failures.append(f"{case}: the inputs were modified in place — return new tensors")
            continue
        if torch.is_tensor(got) or not isinstance(got, (list, tuple)) or len(got) != len(weights):
            failures.append(f"{case}: return a list with one tensor per parameter ({len(weights)}), "
                            f"got {type(got).__name__}")
            continue
        if any(not torch.is_tensor(t) or t.shape != w.shape for t, w in zip(got, weights)):
            failures.append(f"{case}: each direction tensor must have its parameter's shape")
            continue
        expected = filter_normalize_reference(direction, weights)
        bad = [i for i, (g, e) in enumerate(zip(got, expected))
               if not torch.allclose(g.double(), e, rtol=1e-5, atol=1e-8)]
        if bad:
            i = bad[0]
            hint = _filter_hint(direction[i], weights[i], got[i])
            failures.append(f"{case}: tensor {i} of shape {tuple(weights[i].shape)}: expected {_describe(expected[i])}, "
                            f"got {_describe(got[i])}" + (f" — {hint}" if hint else ""))
    return report("filter_normalize", failures, len(cases))


__all__ = ["max_stable_lr_reference", "check_max_stable_lr", "power_iteration_reference", "check_power_iteration",
           "gd_step_reference", "check_gd_step", "steps_to_shrink_reference", "check_steps_to_shrink",
           "hutchinson_trace_reference", "check_hutchinson_trace", "filter_normalize_reference",
           "check_filter_normalize"]
