"""A catalogue of answers to every exercise check: the mistakes students make (each with a distinctive
piece of the feedback that must name it), correct variants (loops, vectorized, float32, numpy or torch
where the chapter allows) and the notebook's stub.

``CATALOGUE[name]`` is an :class:`Entry` for ``flatlab.exercises.check_<name>``; tests/test_check_catalogue.py
runs all of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch


@dataclass
class Entry:
    stub: Callable
    correct: dict[str, Callable] = field(default_factory=dict)
    wrong: list[tuple[str, Callable, str]] = field(default_factory=list)   # (label, function, must appear)


def _stub(*args, **kwargs):
    raise NotImplementedError("not yet")


CATALOGUE: dict[str, Entry] = {}

NONE = "did you forget `return`"
IN_PLACE = "modified in place"


# ================================================================================== chapter 00
def _eig(h):
    return np.linalg.eigvalsh(h)


def _msl_power(h):
    v = np.ones(len(h)) / math.sqrt(len(h))
    for _ in range(2000):
        w = h @ v
        v = w / np.linalg.norm(w)
    return 2 / float(v @ h @ v)


def _msl_forgot_return(h):
    2 / np.linalg.eigvalsh(h)[-1]


def _msl_max_of_eig(h):
    return 2 / max(np.linalg.eig(h))           # eig returns (values, vectors): max() of two arrays raises


CATALOGUE["max_stable_lr"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda h: 2.0 / np.linalg.eigvalsh(np.asarray(h, dtype=float)).max(),
        "eigvals, real part": lambda h: 2 / np.linalg.eigvals(h).real.max(),
        "torch, 0-d tensor": lambda h: 2 / torch.linalg.eigvalsh(torch.as_tensor(h))[-1],
        "float32": lambda h: 2 / np.linalg.eigvalsh(h.astype(np.float32))[-1],
        "power iteration loop": _msl_power,
    },
    wrong=[
        ("λ_min for λ_max", lambda h: 2 / _eig(h)[0], "smallest eigenvalue"),
        ("1/λ", lambda h: 1 / _eig(h)[-1], "not 1/λ_max"),
        ("upside down", lambda h: _eig(h)[-1] / 2, "not λ_max/2"),
        ("diagonal entries", lambda h: 2 / np.max(np.diag(h)), "diagonal entries are not the eigenvalues"),
        ("trace", lambda h: 2 / np.trace(h), "trace is the sum"),
        ("Frobenius norm", lambda h: 2 / np.linalg.norm(h), "Frobenius norm"),
        ("array of 2/λᵢ", lambda h: 2 / _eig(h), "not an array of 2/λᵢ"),
        ("forgot return", _msl_forgot_return, NONE),
        ("string", lambda h: f"{2 / _eig(h)[-1]:.3f}", "not the string"),
        ("raises inside", _msl_max_of_eig, "raised ValueError"),
    ])


def _gd_loop(w, m, a, lr):
    out = np.empty(len(w))
    for i in range(len(w)):
        out[i] = w[i] - lr * sum(a[i, j] * (w[j] - m[j]) for j in range(len(w)))
    return out


def _gd_autograd(w, m, a, lr):
    wt = torch.tensor(w, requires_grad=True)
    d = wt - torch.as_tensor(m)
    (0.5 * d @ torch.as_tensor(a) @ d).backward()
    return (wt - lr * wt.grad).detach()


def _gd_in_place(w, m, a, lr):
    w -= lr * a @ (w - m)
    return w


def _gd_forgot_return(w, m, a, lr):
    w - lr * a @ (w - m)


def _gd_name_error(w, m, a, lr):
    return w - lr * a @ (w - centre)  # noqa: F821 - the parameter is called m here


CATALOGUE["gd_step"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda w, centre, hessian, lr: w - lr * np.asarray(hessian) @ (w - centre),
        "np.dot": lambda w, m, a, lr: w - lr * np.dot(a, w - m),
        "loop over coordinates": _gd_loop,
        "float32": lambda w, m, a, lr: (w.astype(np.float32) - np.float32(lr) * a.astype(np.float32)
                                        @ (w.astype(np.float32) - m.astype(np.float32))),
        "torch autograd": _gd_autograd,
        "list": lambda w, m, a, lr: [float(x) for x in w - lr * a @ (w - m)],
    },
    wrong=[
        ("wrong sign", lambda w, m, a, lr: w + lr * a @ (w - m), "wrong sign"),
        ("forgot the centre", lambda w, m, a, lr: w - lr * a @ w, "subtract the centre"),
        ("forgot η", lambda w, m, a, lr: w - a @ (w - m), "multiply the gradient by the step size"),
        ("extra ½", lambda w, m, a, lr: w - lr / 2 * a @ (w - m), "not ½A(w − m)"),
        ("extra 2", lambda w, m, a, lr: w - 2 * lr * a @ (w - m), "not 2A(w − m)"),
        ("step only", lambda w, m, a, lr: -lr * a @ (w - m), "not only the step"),
        ("gradient only", lambda w, m, a, lr: a @ (w - m), "not the gradient"),
        ("from the centre", lambda w, m, a, lr: m - lr * a @ (w - m), "start the step from w"),
        ("elementwise product", lambda w, m, a, lr: w - lr * a * (w - m), "multiplies elementwise"),
        ("in place", _gd_in_place, IN_PLACE),
        ("forgot return", _gd_forgot_return, NONE),
        ("scalar (the loss)", lambda w, m, a, lr: 0.5 * (w - m) @ a @ (w - m), "got a single number"),
        ("raises inside (NameError)", _gd_name_error, "raised NameError"),
    ])


def _steps(rho, factor):
    return math.inf if rho >= 1 else math.ceil(math.log(factor) / -math.log(rho))


def _rho(h, lr):
    return float(np.max(np.abs(1 - lr * _eig(h))))


def _steps_loop(h, lr, factor):
    rho = _rho(h, lr)
    if rho >= 1:
        return math.inf
    t, err = 0, 1.0
    while err > 1 / factor:
        err *= rho
        t += 1
    return t


def _steps_no_inf_branch(h, lr, factor):
    return math.ceil(math.log(factor) / -math.log(_rho(h, lr)))


def _steps_forgot_return(h, lr, factor):
    rho = _rho(h, lr)
    if rho >= 1:
        return math.inf
    math.ceil(math.log(factor) / -math.log(rho))


def _steps_diverges_past_one(h, lr, factor):
    if np.any(lr * _eig(h) > 1):
        return math.inf
    return _steps(_rho(h, lr), factor)


CATALOGUE["steps_to_shrink"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda h, lr, f: (lambda rho: np.inf if rho >= 1 else int(np.ceil(np.log(f) / -np.log(rho))))(
            np.abs(1 - lr * np.linalg.eigvalsh(np.asarray(h, dtype=float))).max()),
        "math, float count": lambda h, lr, f: float(_steps(_rho(h, lr), f)),
        "loop until small enough": _steps_loop,
        "spectral radius of I − ηH": lambda h, lr, f: _steps(float(np.max(np.abs(np.linalg.eigvals(np.eye(len(h)) - lr * h)))), f),
    },
    wrong=[
        ("no absolute value", lambda h, lr, f: _steps(np.max(1 - lr * _eig(h)), f), "take |1 − ηλ|"),
        ("min instead of max", lambda h, lr, f: _steps(float(np.min(np.abs(1 - lr * _eig(h)))), f), "not the min"),
        ("largest eigenvalue only", lambda h, lr, f: _steps(abs(1 - lr * _eig(h)[-1]), f), "not only the largest eigenvalue"),
        ("smallest eigenvalue only", lambda h, lr, f: _steps(abs(1 - lr * _eig(h)[0]), f), "not only the smallest"),
        ("diagonal entries", lambda h, lr, f: _steps(float(np.max(np.abs(1 - lr * np.diag(h)))), f), "diagonal entries"),
        ("floor", lambda h, lr, f: (lambda r: math.inf if r >= 1 else math.floor(math.log(f) / -math.log(r)))(_rho(h, lr)),
         "round up (math.ceil)"),
        ("round", lambda h, lr, f: (lambda r: math.inf if r >= 1 else round(math.log(f) / -math.log(r)))(_rho(h, lr)),
         "round up (math.ceil)"),
        ("unrounded", lambda h, lr, f: (lambda r: math.inf if r >= 1 else math.log(f) / -math.log(r))(_rho(h, lr)),
         "round up to a whole number"),
        ("ceil + 1", lambda h, lr, f: _steps(_rho(h, lr), f) + 1, "off by one"),
        ("returns ρ", lambda h, lr, f: _rho(h, lr), "not the contraction factor"),
        ("log10 over ln", lambda h, lr, f: (lambda r: math.inf if r >= 1 else math.ceil(math.log10(f) / -math.log(r)))(
            _rho(h, lr)), "use one logarithm"),
        ("no inf branch (raises at ρ = 1)", _steps_no_inf_branch, "test for it first and return math.inf"),
        ("diverges once ηλ > 1", _steps_diverges_past_one, "return a finite count"),
        ("forgot return", _steps_forgot_return, NONE),
        ("string", lambda h, lr, f: str(_steps(_rho(h, lr), f)), "not the string"),
    ])


# ================================================================================== chapter 01
def _rademacher(dim, n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1 for _ in range(n)]


def _hutch_numpy(matvec, dim, n_samples=100, seed=0):
    rng = np.random.default_rng(seed)
    return float(np.mean([v @ np.asarray(matvec(v)) for v in rng.choice([-1.0, 1.0], size=(n_samples, dim))]))


def _hutch_batch(matvec, dim, n_samples=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    probes = torch.randint(0, 2, (n_samples, dim), generator=g).double() * 2 - 1
    return torch.stack([v @ matvec(v) for v in probes]).mean()


def _hutch_float32(matvec, dim, n_samples=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros((), dtype=torch.float32)
    for _ in range(n_samples):
        v = torch.randint(0, 2, (dim,), generator=g).float() * 2 - 1
        total += v @ matvec(v)
    return total / n_samples


def _hutch_with(probes_of):
    def fn(matvec, dim, n_samples=100, seed=0):
        probes = probes_of(dim, n_samples, seed)
        return sum(float(v @ matvec(v)) for v in probes) / n_samples
    return fn


def _hutch_unseeded(matvec, dim, n_samples=100, seed=0):
    total = 0.0
    for _ in range(n_samples):
        v = torch.randint(0, 2, (dim,)).double() * 2 - 1
        total += float(v @ matvec(v))
    return total / n_samples


def _hutch_exact(matvec, dim, n_samples=100, seed=0):
    return sum(float(matvec(torch.eye(dim, dtype=torch.float64)[i])[i]) for i in range(dim))


def _hutch_matrix(matvec, dim, n_samples=100, seed=0):
    v = torch.stack(_rademacher(dim, n_samples, seed), dim=1)
    return float((v * matvec(v)).sum(0).mean())


def _hutch_sum(matvec, dim, n_samples=100, seed=0):
    return sum(float(v @ matvec(v)) for v in _rademacher(dim, n_samples, seed))


def _hutch_vv(matvec, dim, n_samples=100, seed=0):
    return sum(float(v @ v) for v in _rademacher(dim, n_samples, seed) if matvec(v) is not None) / n_samples


def _hutch_forgot_return(matvec, dim, n_samples=100, seed=0):
    sum(float(v @ matvec(v)) for v in _rademacher(dim, n_samples, seed)) / n_samples


CATALOGUE["hutchinson_trace"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda matvec, dim, n_samples=100, seed=0: _hutch_with(_rademacher)(matvec, dim, n_samples, seed),
        "numpy probes": _hutch_numpy,
        "probes drawn at once, tensor result": _hutch_batch,
        "float32": _hutch_float32,
        "bernoulli probes": _hutch_with(lambda d, n, s: [torch.bernoulli(torch.full((d,), 0.5), generator=g) * 2 - 1
                                                          for g in [torch.Generator().manual_seed(s)] for _ in range(n)]),
    },
    wrong=[
        ("Gaussian probes", _hutch_with(lambda d, n, s: [torch.randn(d, generator=g, dtype=torch.float64)
                                                         for g in [torch.Generator().manual_seed(s)] for _ in range(n)]),
         "use Rademacher probes"),
        ("unit probes", _hutch_with(lambda d, n, s: [v / v.norm() for v in _rademacher(d, n, s)]),
         "do not normalize the probes"),
        ("{0, 1} probes", _hutch_with(lambda d, n, s: [(v + 1) / 2 for v in _rademacher(d, n, s)]), "map random bits"),
        ("sum, not mean", _hutch_sum, "do not sum them"),
        ("one probe reused", _hutch_with(lambda d, n, s: _rademacher(d, 1, s) * n), "fresh random probe"),
        ("n − 1 probes", lambda matvec, dim, n, seed=0: _hutch_with(_rademacher)(matvec, dim, n - 1, seed) * (n - 1) / n,
         "use n_samples probes"),
        ("exact trace from basis vectors", _hutch_exact, "use n_samples probes"),
        ("vᵀv", _hutch_vv, "not vᵀv"),
        ("seed ignored", _hutch_unseeded, "torch.Generator().manual_seed(seed)"),
        ("all probes as one matrix (matvec takes a vector)", _hutch_matrix, "v must have shape"),
        ("forgot return", _hutch_forgot_return, NONE),
    ])


def _fn_solution(direction, weights):
    out = []
    for d, w in zip(direction, weights):
        if w.dim() <= 1:
            out.append(torch.zeros_like(d))
            continue
        rows_d, rows_w = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)
        out.append((rows_d * rows_w.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True)).reshape(d.shape))
    return out


def _fn_loop(direction, weights):
    out = []
    for d, w in zip(direction, weights):
        new = torch.zeros_like(d)
        if w.dim() > 1:
            for i in range(d.shape[0]):
                new[i] = d[i] * w[i].norm() / d[i].norm()
        out.append(new)
    return out


def _fn_per_row(f, biases=lambda d, w: torch.zeros_like(d)):
    def fn(direction, weights):
        return [biases(d, w) if d.dim() <= 1 else f(d, w) for d, w in zip(direction, weights)]
    return fn


def _rows(t):
    return t.reshape(t.shape[0], -1)


def _rn(t):
    return _rows(t).norm(dim=1).reshape(-1, *[1] * (t.dim() - 1))


def _fn_in_place(direction, weights):
    for d, w in zip(direction, weights):
        if d.dim() <= 1:
            d.zero_()
        else:
            d.mul_(_rn(w) / _rn(d))
    return direction


CATALOGUE["filter_normalize"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _fn_solution,
        "loop over rows": _fn_loop,
        "flatten(1)": _fn_per_row(lambda d, w: (d.flatten(1) * w.flatten(1).norm(dim=1, keepdim=True)
                                                / d.flatten(1).norm(dim=1, keepdim=True)).reshape(d.shape)),
        "float32": lambda d, w: [t.float() for t in _fn_solution(d, w)],
        "numpy inside, tensors out": _fn_per_row(lambda d, w: torch.from_numpy(
            _rows(d).numpy() * np.linalg.norm(_rows(w).numpy(), axis=1, keepdims=True)
            / np.linalg.norm(_rows(d).numpy(), axis=1, keepdims=True)).reshape(d.shape)),
    },
    wrong=[
        ("biases kept", _fn_per_row(lambda d, w: d * _rn(w) / _rn(d), lambda d, w: d.clone()), "zero direction"),
        ("biases normalized", _fn_per_row(lambda d, w: d * _rn(w) / _rn(d), lambda d, w: d * w.norm() / d.norm()),
         "zero direction"),
        ("whole-tensor norm", _fn_per_row(lambda d, w: d * w.norm() / d.norm()), "each filter (row) separately"),
        ("dim=0", _fn_per_row(lambda d, w: d * w.norm(dim=0, keepdim=True) / d.norm(dim=0, keepdim=True)), "not dim=0"),
        ("unflattened conv filters", _fn_per_row(lambda d, w: d * w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True)),
         "flatten each filter"),
        ("unit rows", _fn_per_row(lambda d, w: d / _rn(d)), "not to 1"),
        ("no division by ‖d_i‖", _fn_per_row(lambda d, w: d * _rn(w)), "divide by the direction row's norm"),
        ("ratio upside down", _fn_per_row(lambda d, w: d * _rn(d) / _rn(w)), "upside down"),
        ("L1 row norms", _fn_per_row(lambda d, w: d * _rows(w).abs().sum(1).reshape(_rn(w).shape)
                                     / _rows(d).abs().sum(1).reshape(_rn(d).shape)), "Euclidean norm"),
        ("arguments swapped", lambda d, w: _fn_solution(w, d), "arguments are (direction, weights)"),
        ("in place", _fn_in_place, IN_PLACE),
        ("numpy arrays out", lambda d, w: [t.numpy() for t in _fn_solution(d, w)], "return torch tensors"),
        ("biases dropped", lambda d, w: [t for t, p in zip(_fn_solution(d, w), w) if p.dim() > 1], "one per parameter"),
        ("one concatenated tensor", lambda d, w: torch.cat([t.reshape(-1) for t in _fn_solution(d, w)]), "a single tensor"),
        ("forgot return", lambda d, w: None, NONE),
    ])


def _pi_solution(matvec, dim, n_iter=100):
    v = torch.randn(dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    for _ in range(n_iter):
        w = matvec(v)
        v = w / w.norm()
    return float(v @ matvec(v)), v


def _pi_numpy(matvec, dim, n_iter=100):
    v = np.random.default_rng(1).normal(size=dim)
    v /= np.linalg.norm(v)
    for _ in range(n_iter):
        w = np.asarray(matvec(v))
        v = w / np.linalg.norm(w)
    return v @ np.asarray(matvec(v)), v


def _pi_tolerance(matvec, dim, n_iter=100):
    v = torch.ones(dim, dtype=torch.float64) / dim ** 0.5
    lam = 0.0
    for _ in range(n_iter):
        w = matvec(v)
        new = float(v @ w)
        v = w / w.norm()
        if abs(new - lam) < 1e-13 * abs(new):
            break
        lam = new
    return torch.tensor(float(v @ matvec(v))), v


def _pi_float32(matvec, dim, n_iter=100):
    v = torch.randn(dim, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    for _ in range(n_iter):
        w = matvec(v)
        v = w / w.norm()
    return float(v.double() @ matvec(v.double())), v


def _pi_variant(value_of, vector_of=lambda v, w: v, normalize=True, iters=None):
    def fn(matvec, dim, n_iter=100):
        v = torch.randn(dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        v /= v.norm()
        w = v
        for _ in range(iters or n_iter):
            w = matvec(v)
            v = w / w.norm() if normalize else w
        return value_of(v, w, matvec), vector_of(v, w)
    return fn


def _pi_forgot_return(matvec, dim, n_iter=100):
    _pi_solution(matvec, dim, n_iter)


CATALOGUE["power_iteration"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _pi_solution,
        "numpy vectors": _pi_numpy,
        "stops when converged, tensor eigenvalue": _pi_tolerance,
        "float32 vector": _pi_float32,
        "list pair": lambda matvec, dim, n_iter=100: list(_pi_solution(matvec, dim, n_iter)),
    },
    wrong=[
        ("no normalization", _pi_variant(lambda v, w, mv: float(v @ mv(v)), normalize=False), "normalize v after every product"),
        ("‖Hv‖ as the eigenvalue", _pi_variant(lambda v, w, mv: float(w.norm())), "loses the sign"),
        ("‖v‖ as the eigenvalue", _pi_variant(lambda v, w, mv: float(v.norm())), "not its norm"),
        ("three iterations", _pi_variant(lambda v, w, mv: float(v @ mv(v)), iters=3), "iterate n_iter times"),
        ("returns Hv, not v", _pi_variant(lambda v, w, mv: float(v @ mv(v)), lambda v, w: w), "not the product Hv"),
        ("pair swapped", lambda matvec, dim, n_iter=100: _pi_solution(matvec, dim, n_iter)[::-1], "the pair is swapped"),
        ("eigenvalue only", lambda matvec, dim, n_iter=100: _pi_solution(matvec, dim, n_iter)[0], "got only a number"),
        ("forgot return", _pi_forgot_return, NONE),
    ])


# ================================================================================== chapter 02
def _sam_norm(g):
    return torch.sqrt(sum((t ** 2).sum() for t in g))


def _sam_flat(g, rho):
    flat = torch.cat([t.reshape(-1) for t in g])
    flat = rho * flat / flat.norm().clamp_min(1e-12)
    return [x.reshape(t.shape) for x, t in zip(torch.split(flat, [t.numel() for t in g]), g)]


def _sam_in_place(g, rho):
    n = _sam_norm(g) + 1e-12
    for t in g:
        t.mul_(rho / n)
    return g


CATALOGUE["sam_perturbation"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda g, rho: [rho * t / (_sam_norm(g) + 1e-12) for t in g],
        "flatten and split": _sam_flat,
        "float64": lambda g, rho: [rho * t.double() / (_sam_norm([x.double() for x in g]) + 1e-12) for t in g],
        "torch.linalg.vector_norm loop": lambda g, rho: [
            t * (rho / max(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in g]))), 1e-12))
            for t in g],
    },
    wrong=[
        ("no division", lambda g, rho: [rho * t for t in g], "divide by ‖g‖"),
        ("wrong sign", lambda g, rho: [-rho * t / (_sam_norm(g) + 1e-12) for t in g], "wrong sign"),
        ("‖g‖²", lambda g, rho: [rho * t / (_sam_norm(g) ** 2 + 1e-12) for t in g], "not ‖g‖²"),
        ("forgot ρ", lambda g, rho: [t / (_sam_norm(g) + 1e-12) for t in g], "multiply by ρ"),
        ("per-tensor norm", lambda g, rho: [rho * t / (t.norm() + 1e-12) for t in g], "not each tensor's own norm"),
        ("first tensor's norm", lambda g, rho: [rho * t / (g[0].norm() + 1e-12) for t in g], "not only the first tensor"),
        ("L1 norm", lambda g, rho: [rho * t / (sum(x.abs().sum() for x in g) + 1e-12) for t in g], "Euclidean norm"),
        ("NaN at ‖g‖ = 0", lambda g, rho: [rho * t / _sam_norm(g) for t in g], "guard against ‖g‖ = 0"),
        ("in place", _sam_in_place, IN_PLACE),
        ("numpy arrays", lambda g, rho: [(rho * t / (_sam_norm(g) + 1e-12)).numpy() for t in g], "calls .numpy()"),
        ("one flat tensor", lambda g, rho: torch.cat([t.flatten() for t in g]) * rho, "a single tensor"),
        ("forgot return", lambda g, rho: None, NONE),
    ])


def _rs_in_place(m, s, xi):
    xi.mul_(torch.exp(s))
    return m + xi


CATALOGUE["reparameterized_sample"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda m, s, xi: m + torch.exp(s) * xi,
        "torch.addcmul": lambda m, s, xi: torch.addcmul(m, s.exp(), xi),
        "float64": lambda m, s, xi: m.double() + torch.exp(s.double()) * xi.double(),
    },
    wrong=[
        ("forgot exp", lambda m, s, xi: m + s * xi, "exponentiate"),
        ("σ² for σ", lambda m, s, xi: m + torch.exp(2 * s) * xi, "not σ²"),
        ("log σ² reading", lambda m, s, xi: m + torch.exp(s / 2) * xi, "not log σ²"),
        ("forgot the noise", lambda m, s, xi: m + torch.exp(s), "multiply σ by the noise"),
        ("forgot the mean", lambda m, s, xi: torch.exp(s) * xi, "add the mean"),
        ("minus", lambda m, s, xi: m - torch.exp(s) * xi, "do not subtract it"),
        ("own noise", lambda m, s, xi: m + torch.exp(s) * torch.randn_like(m), "use the noise you are given"),
        ("detached", lambda m, s, xi: (m + torch.exp(s) * xi).detach(), "carries no gradient"),
        ("σ detached", lambda m, s, xi: m + torch.exp(s).detach() * xi, "no gradient reaches log σ"),
        ("in place on the noise", _rs_in_place, IN_PLACE),
        ("numpy", lambda m, s, xi: (m + torch.exp(s) * xi).detach().numpy(), "backpropagates through it"),
        ("forgot return", lambda m, s, xi: None, NONE),
    ])


def _kl_terms(m, s, lam):
    return 0.5 * (lam * (s ** 2 + m ** 2) - 1 - torch.log(lam * s ** 2))


def _kl_loop(m, s, lam):
    total = 0.0
    for mi, si in zip(m.reshape(-1).tolist(), s.reshape(-1).tolist()):
        total += 0.5 * (lam * (si ** 2 + mi ** 2) - 1 - math.log(lam * si ** 2))
    return total


def _kl_math_log(m, s, lam):
    return 0.5 * (lam * (s ** 2 + m ** 2) - 1 - math.log(lam * s ** 2)).sum()


CATALOGUE["gaussian_kl"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda m, s, lam: 0.5 * (lam * (s ** 2 + m ** 2) - 1 - torch.log(lam * s ** 2)).sum(),
        "loop over elements": _kl_loop,
        "torch.distributions": lambda m, s, lam: torch.distributions.kl_divergence(
            torch.distributions.Normal(m.double(), s.double()),
            torch.distributions.Normal(torch.zeros_like(m.double()), torch.full_like(s.double(), lam ** -0.5))).sum(),
        "log σ split": lambda m, s, lam: float((0.5 * lam * (s ** 2 + m ** 2) - 0.5 - 0.5 * math.log(lam) - torch.log(s)).sum()),
        "numpy": lambda m, s, lam: np.sum(0.5 * (lam * (s.numpy() ** 2 + m.numpy() ** 2) - 1 - np.log(lam * s.numpy() ** 2))),
    },
    wrong=[
        ("missing ½", lambda m, s, lam: (2 * _kl_terms(m, s, lam)).sum(), "factor ½"),
        ("σ for σ²", lambda m, s, lam: 0.5 * (lam * (s + m ** 2) - 1 - torch.log(lam * s)).sum(), "not σ"),
        ("σ inside the log", lambda m, s, lam: 0.5 * (lam * (s ** 2 + m ** 2) - 1 - torch.log(lam * s)).sum(),
         "square σ inside the log"),
        ("forgot −1", lambda m, s, lam: 0.5 * (lam * (s ** 2 + m ** 2) - torch.log(lam * s ** 2)).sum(), "subtract 1"),
        ("forgot the mean", lambda m, s, lam: 0.5 * (lam * s ** 2 - 1 - torch.log(lam * s ** 2)).sum(), "λ₀μ²"),
        ("precision read as variance", lambda m, s, lam: 0.5 * ((s ** 2 + m ** 2) / lam - 1 + torch.log(lam / s ** 2)).sum(),
         "*precision*"),
        ("reverse KL", lambda m, s, lam: 0.5 * ((1 / lam + m ** 2) / s ** 2 - 1 + torch.log(lam * s ** 2)).sum(), "KL(p ‖ q)"),
        ("mean, not sum", lambda m, s, lam: _kl_terms(m, s, lam).mean(), "do not average"),
        ("log sign", lambda m, s, lam: 0.5 * (lam * (s ** 2 + m ** 2) - 1 + torch.log(lam * s ** 2)).sum(),
         "enters with a minus sign"),
        ("per-element tensor", _kl_terms, "sum the per-element terms"),
        ("math.log on a tensor", _kl_math_log, "raised ValueError: only one element tensors"),
        ("forgot return", lambda m, s, lam: None, NONE),
    ])


# ================================================================================== chapter 03
def _gi_loop(h, w, lr, t):
    for _ in range(t):
        w = w - lr * h @ w
    return w


def _gi_in_place(h, w, lr, t):
    for _ in range(t):
        w -= lr * h @ w
    return w


def _gi_loop32(h, w, lr, t):
    h32, w32 = h.astype(np.float32), w.astype(np.float32)
    for _ in range(t):
        w32 = w32 - np.float32(lr) * h32 @ w32
    return w32


def _gi_solution(hessian, w0, lr, steps):
    lam, q = np.linalg.eigh(hessian)
    return q @ ((1 - lr * lam) ** steps * (q.T @ w0))


CATALOGUE["gd_iterate"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _gi_solution,
        "loop": _gi_loop,
        "matrix_power": lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, t) @ w,
        "float32 loop": _gi_loop32,
    },
    wrong=[
        ("elementwise **", lambda h, w, lr, t: (np.eye(len(w)) - lr * h) ** t @ w, "elementwise"),
        ("I + ηH", lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) + lr * h, t) @ w, "not I + ηH"),
        ("t − 1 steps", lambda h, w, lr, t: _gi_loop(h, w, lr, max(t - 1, 0)), "not t − 1"),
        ("t + 1 steps", lambda h, w, lr, t: _gi_loop(h, w, lr, t + 1), "not t + 1"),
        ("no rotation back", lambda h, w, lr, t: (1 - lr * np.linalg.eigh(h)[0]) ** t * (np.linalg.eigh(h)[1].T @ w),
         "rotate back"),
        ("no projection", lambda h, w, lr, t: np.linalg.eigh(h)[1] @ ((1 - lr * np.linalg.eigh(h)[0]) ** t * w), "project w₀"),
        ("Q and Qᵀ swapped", lambda h, w, lr, t: np.linalg.eigh(h)[1].T @ ((1 - lr * np.linalg.eigh(h)[0]) ** t
                                                                        * (np.linalg.eigh(h)[1] @ w)), "other way round"),
        ("top eigenvalue only", lambda h, w, lr, t: (1 - lr * np.linalg.eigvalsh(h).max()) ** t * w, "its own factor"),
        ("t copies of one step", lambda h, w, lr, t: w - t * lr * h @ w, "do not add t copies"),
        ("the matrix, not the iterate", lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, t),
         "not the matrix"),
        ("in-place loop", _gi_in_place, IN_PLACE),
        ("torch tensor", lambda h, w, lr, t: torch.as_tensor(_gi_solution(h, w, lr, t)), ".round(4)"),
        ("forgot return", lambda h, w, lr, t: None, NONE),
    ])


def _hb_bisection(lr, beta):
    def stable(lam):
        return max(abs(np.roots([1.0, -(1 + beta - lr * lam), beta]))) < 1

    lo, hi = 0.0, 1.0
    while stable(hi):
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


def _hb_name_error(lr, momentum):
    return (2 + 2 * momentum) / lr if momentum else 2 / learning_rate  # noqa: F821


CATALOGUE["heavy_ball_threshold"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda lr, momentum: (2 + 2 * momentum) / lr,
        "factored": lambda lr, b: 2 * (1 + b) / lr,
        "bisection on the spectral radius": _hb_bisection,
        "float32": lambda lr, b: np.float32(2 + 2 * b) / np.float32(lr),
    },
    wrong=[
        ("ignored momentum", lambda lr, b: 2 / lr, "ignored the momentum"),
        ("effective step size", lambda lr, b: 2 * (1 - b) / lr, "effective step size"),
        ("Nesterov's", lambda lr, b: (2 + 2 * b) / (lr * (1 + 2 * b)), "Nesterov"),
        ("missing 2", lambda lr, b: (1 + b) / lr, "missing a factor 2"),
        ("2 + β", lambda lr, b: (2 + b) / lr, "not 2 + β"),
        ("Adam's", lambda lr, b: (2 + 2 * b) / ((1 - b) * lr), "Adam's threshold"),
        ("upside down", lambda lr, b: lr / (2 + 2 * b), "upside down"),
        ("string", lambda lr, b: f"{(2 + 2 * b) / lr}", "not the string"),
        ("forgot return", lambda lr, b: None, NONE),
        ("raises at β = 0", _hb_name_error, "raised NameError"),
    ])


def _wu_solution(step, lr, warmup):
    if warmup == 0:
        return lr
    return lr * min(1.0, step / warmup)


def _wu_branches(step, lr, warmup):
    if warmup and step < warmup:
        return lr * step / warmup
    return lr


def _wu_forgot_return(step, lr, warmup):
    if warmup == 0:
        lr
    return lr * min(1.0, step / warmup) if warmup else None


CATALOGUE["warmup_lr"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _wu_solution,
        "branches": _wu_branches,
        "max(warmup, 1)": lambda t, lr, w: lr * min(1.0, t / max(w, 1)),
        "numpy": lambda t, lr, w: np.float64(lr) * np.clip(t / w, 0, 1) if w else np.float64(lr),
    },
    wrong=[
        ("divides by zero", lambda t, lr, w: lr * min(1.0, t / w), "warmup=0 means no warmup"),
        ("no cap", lambda t, lr, w: lr * t / w if w else lr, "cap the factor"),
        ("max, not min", lambda t, lr, w: lr * max(1.0, t / w) if w else lr, "not max"),
        ("step − 1", lambda t, lr, w: lr * min(1.0, (t - 1) / w) if w else lr, "off by one: the first step"),
        ("step + 1", lambda t, lr, w: lr * min(1.0, (t + 1) / w) if w else lr, "off by one: steps count from 1"),
        ("upside down", lambda t, lr, w: lr * min(1.0, w / t) if w else lr, "upside down"),
        ("forgot η", lambda t, lr, w: min(1.0, t / w) if w else lr, "multiply by η"),
        ("floor division", lambda t, lr, w: lr * min(1, t // w) if w else lr, "not floor division"),
        ("forgot return (warmup = 0)", _wu_forgot_return, NONE),
        ("string", lambda t, lr, w: str(_wu_solution(t, lr, w)), "not the string"),
    ])


# ================================================================================== chapter 04
def _nm_loop(w, x, y):
    norm = math.sqrt(sum(v * v for v in w))
    return min(yi * sum(a * b for a, b in zip(w, xi)) for xi, yi in zip(x, y)) / norm


def _nm_in_place(w, x, y):
    x *= y[:, None]
    return float((x @ w).min() / np.linalg.norm(w))


CATALOGUE["normalized_margin"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda w, x, y: float(np.min(y * (x @ w)) / np.linalg.norm(w)),
        "loop": _nm_loop,
        "numpy scalar": lambda w, x, y: np.min(y * (x @ w)) / np.linalg.norm(w),
        "torch": lambda w, x, y: (torch.as_tensor(y) * (torch.as_tensor(x) @ torch.as_tensor(w))).min() / torch.as_tensor(w).norm(),
        "float32": lambda w, x, y: np.float32((y * (x @ w)).min()) / np.linalg.norm(w.astype(np.float32)),
    },
    wrong=[
        ("not divided by ‖w‖", lambda w, x, y: (y * (x @ w)).min(), "divide by ‖w‖"),
        ("‖w‖²", lambda w, x, y: (y * (x @ w)).min() / (w @ w), "not ‖w‖²"),
        ("‖w‖₁", lambda w, x, y: (y * (x @ w)).min() / np.abs(w).sum(), "not the sum of absolute values"),
        ("no labels", lambda w, x, y: (x @ w).min() / np.linalg.norm(w), "multiply by the labels"),
        ("absolute value", lambda w, x, y: np.abs(x @ w).min() / np.linalg.norm(w), "keep the sign"),
        ("mean", lambda w, x, y: (y * (x @ w)).mean() / np.linalg.norm(w), "not their mean"),
        ("max", lambda w, x, y: (y * (x @ w)).max() / np.linalg.norm(w), "not the largest"),
        ("argmin", lambda w, x, y: np.argmin(y * (x @ w)), "np.argmin gives the index"),
        ("cosine", lambda w, x, y: (y * (x @ w) / np.linalg.norm(x, axis=1)).min() / np.linalg.norm(w), "gives a cosine"),
        ("per-point margins", lambda w, x, y: y * (x @ w) / np.linalg.norm(w), "take the minimum over the points"),
        ("in place", _nm_in_place, IN_PLACE),
        ("forgot return", lambda w, x, y: None, NONE),
    ])


def _er_p(s):
    return s[s > 0] / s.sum()


def _er_loop(s):
    total = sum(s)
    h = 0.0
    for v in s:
        if v > 0:
            h -= v / total * math.log(v / total)
    return math.exp(h)


def _er_in_place(s):
    s /= s.sum()
    p = s[s > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _er_nan(s):
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


CATALOGUE["effective_rank"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda s: float(np.exp(-(_er_p(np.asarray(s, dtype=float)) * np.log(_er_p(np.asarray(s, dtype=float)))).sum())),
        "loop": _er_loop,
        "bits with 2**H": lambda s: 2.0 ** float(-(_er_p(s) * np.log2(_er_p(s))).sum()),
        "np.float64": lambda s: np.exp(-np.sum(_er_p(s) * np.log(_er_p(s)))),
        "float32": lambda s: np.float32(np.exp(-np.sum(_er_p(s.astype(np.float32)) * np.log(_er_p(s.astype(np.float32)))))),
    },
    wrong=[
        ("squared normalization", lambda s: float(np.exp(-(lambda q: (q * np.log(q)).sum())(s[s > 0] ** 2 / (s[s > 0] ** 2).sum()))),
         "not of their squares"),
        ("normalized by max", lambda s: float(np.exp(-(lambda q: (q * np.log(q)).sum())(s[s > 0] / s.max()))), "not by the largest σ"),
        ("entropy only", lambda s: float(-(_er_p(s) * np.log(_er_p(s))).sum()), "returned the entropy"),
        ("log2 with exp", lambda s: float(np.exp(-(_er_p(s) * np.log2(_er_p(s))).sum())), "do not mix log2 with exp"),
        ("ln with 2**", lambda s: float(2 ** -(_er_p(s) * np.log(_er_p(s))).sum()), "not 2**H with np.log"),
        ("participation ratio", lambda s: float(1 / (_er_p(s) ** 2).sum()), "participation ratio"),
        ("rank", lambda s: float((s > 0).sum()), "(the rank)"),
        ("NaN from zeros", _er_nan, "0·log 0"),
        ("in place", _er_in_place, IN_PLACE),
        ("tensor", lambda s: torch.exp(torch.special.entr(torch.as_tensor(_er_p(s))).sum()), "round(…, 4)"),
        ("forgot return", lambda s: None, NONE),
    ])


def _ng_in_place(x, g, lam):
    x /= math.sqrt(len(x))
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), g)


CATALOGUE["natural_gradient_linear"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda x, grad, damping: np.linalg.solve(x.T @ x / len(x) + damping * np.eye(x.shape[1]), grad),
        "inverse": lambda x, g, lam: np.linalg.inv(x.T @ x / len(x) + lam * np.eye(x.shape[1])) @ g,
        "torch": lambda x, g, lam: torch.linalg.solve(torch.as_tensor(x).T @ torch.as_tensor(x) / len(x)
                                                      + lam * torch.eye(x.shape[1], dtype=torch.float64), torch.as_tensor(g)),
        "lstsq": lambda x, g, lam: np.linalg.lstsq(x.T @ x / len(x) + lam * np.eye(x.shape[1]), g, rcond=None)[0],
    },
    wrong=[
        ("forgot n", lambda x, g, lam: np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), g), "divide XᵀX by n"),
        ("forgot damping", lambda x, g, lam: np.linalg.solve(x.T @ x / len(x), g), "add the damping"),
        ("scalar damping", lambda x, g, lam: np.linalg.solve(x.T @ x / len(x) + lam, g), "diagonal only"),
        ("multiplied", lambda x, g, lam: (x.T @ x / len(x) + lam * np.eye(x.shape[1])) @ g, "do not multiply by it"),
        ("damping divided by n", lambda x, g, lam: np.linalg.solve((x.T @ x + lam * np.eye(x.shape[1])) / len(x), g),
         "added after dividing"),
        ("plain gradient", lambda x, g, lam: g, "plain gradient"),
        ("XXᵀ", lambda x, g, lam: np.linalg.solve(x @ x.T / len(x) + lam * np.eye(len(x)), x @ g), "not XXᵀ"),
        ("in place", _ng_in_place, IN_PLACE),
        ("forgot return", lambda x, g, lam: None, NONE),
    ])


# ================================================================================== chapter 05
def _sm_solution(x):
    s = torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))
    return s / s.sum(dim=-1, keepdim=True)


def _sm_loop(x):
    rows = x.reshape(-1, x.shape[-1]).tolist()
    out = []
    for row in rows:
        s = [v + 1 if v >= 0 else 1 / (1 - v) for v in row]
        out.append([v / sum(s) for v in s])
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def _sm_numpy(x):
    a = x.numpy().astype(float)
    s = np.where(a > 0, a + 1, 1 / (1 - np.minimum(a, 0)))
    return s / s.sum(-1, keepdims=True)


def _sm_in_place(x):
    neg = x < 0
    x[neg] = 1 / (1 - x[neg])
    x[~neg] = x[~neg] + 1
    return x / x.sum(-1, keepdim=True)


CATALOGUE["stablemax"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _sm_solution,
        "x > 0 / x ≤ 0 (equal at 0)": lambda x: (lambda s: s / s.sum(-1, keepdim=True))(torch.where(x > 0, x + 1, 1 / (1 - x))),
        "loop": _sm_loop,
        "numpy": _sm_numpy,
        "float32 from float64": lambda x: _sm_solution(x.double()).float(),
    },
    wrong=[
        ("softmax", lambda x: torch.softmax(x, -1), "that is softmax (exp)"),
        ("softmax with exp", lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True), "overflows to NaN"),
        ("x + 1 everywhere", lambda x: (x + 1) / (x + 1).sum(-1, keepdim=True), "not x + 1"),
        ("1/(1 + x)", lambda x: (lambda s: s / s.sum(-1, keepdim=True))(torch.where(x >= 0, x + 1, 1 / (1 + x))), "sign slip"),
        ("not normalized", lambda x: torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0))), "divide s(x_i)"),
        ("axis 0", lambda x: (lambda s: s / s.sum(0, keepdim=True))(torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))),
         "not over the batch"),
        ("all entries", lambda x: (lambda s: s / s.sum())(torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))),
         "not the sum of all entries"),
        ("log-probabilities", lambda x: torch.log(_sm_solution(x)), "not their logarithm"),
        ("in place", _sm_in_place, IN_PLACE),
        ("a scalar", lambda x: x.sum(), "expected a tensor of shape"),
        ("forgot return", lambda x: None, NONE),
    ])


def _og_solution(grad, weight):
    g, w = grad.reshape(-1), weight.reshape(-1)
    g_perp = g - (g @ w) / (w @ w) * w
    return (g_perp * g.norm() / g_perp.norm()).reshape(grad.shape)


def _og_proj(g, w):
    return (g * w).sum() / (w * w).sum() * w


def _og_in_place(g, w):
    n = g.norm()
    g.sub_(_og_proj(g, w))
    return g * n / g.norm()


def _og_numpy(g, w):
    a, b = g.numpy().reshape(-1), w.numpy().reshape(-1)
    p = a - (a @ b) / (b @ b) * b
    return (p * np.linalg.norm(a) / np.linalg.norm(p)).reshape(g.shape)


CATALOGUE["orthogonal_gradient"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _og_solution,
        "unflattened sums": lambda g, w: (lambda p: p * g.norm() / p.norm())(g - _og_proj(g, w)),
        "numpy": _og_numpy,
        "float32": lambda g, w: _og_solution(g.float(), w.float()),
    },
    wrong=[
        ("no rescale", lambda g, w: g - _og_proj(g, w), "rescale g⊥ to the norm of the original"),
        ("rescaled to ‖w‖", lambda g, w: (lambda p: p * w.norm() / p.norm())(g - _og_proj(g, w)), "not of the weight"),
        ("the parallel part", lambda g, w: _og_proj(g, w), "component *along* w"),
        ("added projection", lambda g, w: (lambda p: p * g.norm() / p.norm())(g + _og_proj(g, w)), "subtract the projection"),
        ("‖w‖ for ‖w‖²", lambda g, w: (lambda p: p * g.norm() / p.norm())(g - (g * w).sum() / w.norm() * w), "not by ‖w‖"),
        ("row by row", lambda g, w: (lambda p: p * g.norm() / p.norm())(
            g - (g * w).sum(-1, keepdim=True) / (w * w).sum(-1, keepdim=True) * w), "not row by row"),
        ("gradient unchanged", lambda g, w: g.clone(), "not orthogonal to w"),
        ("flat result", lambda g, w: _og_solution(g, w).reshape(-1), "reshape the flat result back"),
        ("in place", _og_in_place, IN_PLACE),
        ("forgot return", lambda g, w: None, NONE),
    ])


def _ipr_loop(p):
    rows = p.reshape(-1, p.shape[-1])
    out = torch.tensor([float((r ** 2).sum() / r.sum() ** 2) for r in rows], dtype=torch.float64)
    return out.reshape(p.shape[:-1])


def _ipr_in_place(p):
    p /= p.sum(-1, keepdim=True)
    return (p ** 2).sum(-1)


CATALOGUE["ipr"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda power: (power ** 2).sum(-1) / power.sum(-1) ** 2,
        "normalized first": lambda p: ((p / p.sum(-1, keepdim=True)) ** 2).sum(-1),
        "loop over rows": _ipr_loop,
        "float32": lambda p: (p.float() ** 2).sum(-1) / p.float().sum(-1) ** 2,
    },
    wrong=[
        ("participation ratio", lambda p: p.sum(-1) ** 2 / (p ** 2).sum(-1), "participation ratio"),
        ("not normalized", lambda p: (p ** 2).sum(-1), "normalize"),
        ("squared again", lambda p: (p ** 4).sum(-1) / ((p ** 2).sum(-1)) ** 2, "already a power"),
        ("divided by ‖P‖", lambda p: (p ** 2).sum(-1) / (p ** 2).sum(-1).sqrt(), "not by ‖P‖"),
        ("divided by Σ P", lambda p: (p ** 2).sum(-1) / p.sum(-1), "not by Σ P"),
        ("over all entries", lambda p: (p ** 2).sum() / p.sum() ** 2, "over the last axis"),
        ("over axis 0", lambda p: (p ** 2).sum(0) / p.sum(0) ** 2, "over the last axis"),
        ("in place", _ipr_in_place, IN_PLACE),
        ("numpy", lambda p: ((p ** 2).sum(-1) / p.sum(-1) ** 2).numpy(), "calls .numpy()"),
        ("forgot return", lambda p: None, NONE),
    ])


# ================================================================================== chapter 06
def _at_bisection(lr, b):
    def stable(lam):
        return max(abs(np.roots([1.0, -(1 + b - (1 - b) * lr * lam), b]))) < 1

    lo, hi = 0.0, 1.0
    while stable(hi):
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


CATALOGUE["adam_threshold"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": lambda lr, beta1: (2 + 2 * beta1) / ((1 - beta1) * lr),
        "factored": lambda lr, b: 2 * (1 + b) / (1 - b) / lr,
        "bisection on the spectral radius": _at_bisection,
        "float32": lambda lr, b: np.float32((2 + 2 * b) / ((1 - b) * lr)),
    },
    wrong=[
        ("plain GD", lambda lr, b: 2 / lr, "plain GD's threshold"),
        ("heavy ball", lambda lr, b: (2 + 2 * b) / lr, "heavy ball's threshold"),
        ("numerator 2", lambda lr, b: 2 / ((1 - b) * lr), "numerator is 2 + 2β₁"),
        ("missing 2", lambda lr, b: (1 + b) / ((1 - b) * lr), "missing a factor 2"),
        ("multiplied by 1 − β", lambda lr, b: (2 + 2 * b) * (1 - b) / lr, "do not multiply"),
        ("hard-coded 38", lambda lr, b: 38 / lr, "only for β₁ = 0.9"),
        ("upside down", lambda lr, b: (1 - b) * lr / (2 + 2 * b), "upside down"),
        ("string", lambda lr, b: "38.0", "not the string '38.0'"),
        ("forgot return", lambda lr, b: None, NONE),
    ])


def _pl_solution(hessian, v_hat, eps=1e-8):
    s = 1.0 / np.sqrt(np.sqrt(v_hat) + eps)
    return float(np.linalg.eigvalsh(s[:, None] * hessian * s[None, :])[-1])


def _sym(h, p, which=-1):
    s = 1 / np.sqrt(p)
    return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[which])


def _pl_in_place(h, v, eps=1e-8):
    v[:] = np.sqrt(v) + eps
    return _sym(h, v)


CATALOGUE["preconditioned_lambda_max"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _pl_solution,
        "eigvals of P⁻¹H": lambda h, v, eps: float(np.max(np.linalg.eigvals(h / (np.sqrt(v) + eps)[:, None]).real)),
        "eigvals of HP⁻¹": lambda h, v, eps: float(np.max(np.linalg.eigvals(h / (np.sqrt(v) + eps)[None, :]).real)),
        "torch": lambda h, v, eps: torch.linalg.eigvalsh(
            (lambda s: s[:, None] * torch.as_tensor(h) * s[None, :])(1 / torch.sqrt(torch.sqrt(torch.as_tensor(v)) + eps)))[-1],
        "diag matrices": lambda h, v, eps: float(np.linalg.eigvalsh(
            np.diag((np.sqrt(v) + eps) ** -0.5) @ h @ np.diag((np.sqrt(v) + eps) ** -0.5)).max()),
    },
    wrong=[
        ("λ_max(H)", lambda h, v, eps: float(np.linalg.eigvalsh(h)[-1]), "that is λ_max(H)"),
        ("λ_min for λ_max", lambda h, v, eps: _sym(h, np.sqrt(v) + eps, 0), "[0] the smallest"),
        ("v̂ + ε", lambda h, v, eps: _sym(h, v + eps), "not v̂ + ε"),
        ("no ε", lambda h, v, eps: _sym(h, np.sqrt(v)), "left out ε"),
        ("√(v̂ + ε)", lambda h, v, eps: _sym(h, np.sqrt(v + eps)), "not √(v̂ + ε)"),
        ("multiplied by P", lambda h, v, eps: _sym(h, 1 / (np.sqrt(v) + eps)), "you multiplied by P"),
        ("eigvalsh of P⁻¹H", lambda h, v, eps: float(np.linalg.eigvalsh(h / (np.sqrt(v) + eps)[:, None])[-1]), "not symmetric"),
        ("all eigenvalues", lambda h, v, eps: np.linalg.eigvalsh((lambda s: s[:, None] * h * s[None, :])(
            1 / np.sqrt(np.sqrt(v) + eps))), "not all of them"),
        ("in place", _pl_in_place, IN_PLACE),
        ("forgot return", lambda h, v, eps: None, NONE),
    ])


def _as_solution(grads, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m = v = 0.0
    for g in grads:
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
    t = len(grads)
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return -lr * m_hat / (np.sqrt(v_hat) + eps)


def _as_vectorized(g, lr, b1=0.9, b2=0.999, eps=1e-8):
    t = len(g)
    w1 = (1 - b1) * b1 ** np.arange(t - 1, -1, -1)
    w2 = (1 - b2) * b2 ** np.arange(t - 1, -1, -1)
    m, v = w1 @ g, w2 @ g ** 2
    return -lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def _as_torch_adam(g, lr, b1=0.9, b2=0.999, eps=1e-8):
    theta = torch.nn.Parameter(torch.zeros(g.shape[1], dtype=torch.float64))
    opt = torch.optim.Adam([theta], lr=lr, betas=(b1, b2), eps=eps)
    for gt in g:
        before = theta.detach().clone()
        theta.grad = torch.tensor(gt)
        opt.step()
    return (theta.detach() - before).numpy()


def _as_variant(correct_m=True, correct_v=True, exponent=0, eps_inside=False, swap=False, root=True,
                square=np.square):
    def fn(g, lr, b1=0.9, b2=0.999, eps=1e-8):
        m = v = 0.0
        for gt in g:
            m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * square(gt)
        t = len(g) + exponent
        c1, c2 = (1 - b2 ** t, 1 - b1 ** t) if swap else (1 - b1 ** t, 1 - b2 ** t)
        mh = m / c1 if correct_m else m
        vh = v / c2 if correct_v else v
        if not root:
            return -lr * mh / (vh + eps)
        return -lr * mh / (np.sqrt(vh + eps) if eps_inside else np.sqrt(vh) + eps)
    return fn


def _as_enumerate(g, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0.0
    for t, gt in enumerate(g):  # noqa: B007 — t counts from 0: one less than the number of gradients
        m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * gt ** 2
    return -lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def _as_in_place(g, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0.0
    for gt in g:
        m = b1 * m + (1 - b1) * gt
        gt **= 2                                  # squares the row of grads itself
        v = b2 * v + (1 - b2) * gt
    t = len(g)
    return -lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def _as_all_steps(g, lr, b1=0.9, b2=0.999, eps=1e-8):
    return np.array([_as_solution(g[:k], lr, b1, b2, eps) for k in range(1, len(g) + 1)])


CATALOGUE["adam_step"] = Entry(
    stub=_stub,
    correct={
        "notebook solution": _as_solution,
        "vectorized EMA weights": _as_vectorized,
        "torch.optim.Adam": _as_torch_adam,
        "float32": lambda g, lr, b1=0.9, b2=0.999, eps=1e-8: _as_solution(g.astype(np.float32), np.float32(lr),
                                                                          np.float32(b1), np.float32(b2), np.float32(eps)),
    },
    wrong=[
        ("no bias correction", _as_variant(False, False), "3.2 times too large"),
        ("m corrected only", _as_variant(True, False), "correct v as well"),
        ("v corrected only", _as_variant(False, True), "correct m as well"),
        ("corrections swapped", _as_variant(swap=True), "swapped"),
        ("exponent t − 1 (enumerate)", _as_enumerate, "not 1 − βᵗ⁻¹"),
        ("exponent t + 1", _as_variant(exponent=1), "not 1 − βᵗ⁺¹"),
        ("ε inside the root", _as_variant(eps_inside=True), "√v̂ + ε, not √(v̂ + ε)"),
        ("wrong sign", lambda g, lr, b1, b2, eps: -_as_solution(g, lr, b1, b2, eps), "wrong sign"),
        ("forgot η", lambda g, lr, b1, b2, eps: _as_solution(g, lr, b1, b2, eps) / lr, "multiply by the learning rate"),
        ("divided by v̂", _as_variant(root=False), "not by v̂"),
        ("|g| for g²", _as_variant(square=np.abs), "*squared* gradients"),
        ("sum of all steps", lambda g, lr, b1, b2, eps: _as_all_steps(g, lr, b1, b2, eps).sum(0), "not the sum of all t steps"),
        ("last gradient alone", lambda g, lr, b1, b2, eps: -lr * g[-1] / (np.abs(g[-1]) + eps), "last gradient alone"),
        ("every step", _as_all_steps, "not one row per step"),
        ("in place", _as_in_place, IN_PLACE),
        ("torch tensor", lambda g, lr, b1, b2, eps: torch.as_tensor(_as_solution(g, lr, b1, b2, eps)), ".round(4)"),
        ("forgot return", lambda g, lr, b1, b2, eps: None, NONE),
    ])
