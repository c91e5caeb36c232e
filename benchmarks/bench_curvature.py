"""Benchmark: top-5 Hessian eigenvalues of an MNIST-1D MLP, flatlab vs PyHessian vs a naive loop.

Problem: MLP 40-200-200-10 (ReLU, 50,410 parameters), cross-entropy on 1,000 MNIST-1D training
examples (random inputs and labels with a fixed seed when ``flatlab.data`` is unavailable),
after 100 full-batch steps of SGD with momentum (lr 0.1, β 0.9) so the spectrum has the outliers of a trained network.

Contenders, all timed from scratch (gradient graph included) on the same float32 model:
- flatlab: ``flatlab.curvature.top_eigenvalues(k=5)`` at its defaults (Lanczos via scipy's
  ``eigsh`` on a cached gradient graph, tol=1e-4);
- PyHessian (``pip install pyhessian``): ``hessian(model, criterion, data).eigenvalues(top_n=5)``,
  deflated power iteration with its defaults (tol=1e-3, maxIter=100) on a cached gradient graph.
  If pyhessian cannot be imported, the same algorithm is run by a re-implementation here, and
  the output says so;
- naive: the same deflated power iteration, recomputing the loss and gradient graph with
  ``torch.autograd.grad`` for every Hessian-vector product.

Reference: float64 copy of the model, ``eigsh(k=5, tol=1e-10)``. Reported: seconds (best of
``--repeats``), Hessian-vector products, max relative error of the 5 eigenvalues, and speed-ups.
Goal (benchmarks/goals.py): flatlab ≥ 15× faster than PyHessian at equal accuracy (rel. err < 1e-3).

Threads: torch uses ``--threads`` (2) and numpy/scipy's BLAS ``--blas-threads`` (1, through
threadpoolctl when installed), the same for every contender. ARPACK calls BLAS between products;
with 2 BLAS threads and 2 torch threads on 2 cores the two spinning pools slowed flatlab 2-3x here.
PyHessian's rule stops when the eigenvalue changes by < tol relative, which can stop short of
the target: the benchmark then tightens (tol, maxIter) until PyHessian reaches it and compares at
that setting (its defaults are timed and reported too).

Run: ``python benchmarks/bench_curvature.py [--repeats 3]`` (35-65 s on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import copy
import importlib
import time
import warnings

import numpy as np
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F
from torch import nn

from flatlab import curvature as cv
from goals import Goals

TOP_N = 5
TARGET_ERR = 1e-3


def make_problem(n: int = 1000, seed: int = 0):
    try:
        from flatlab.data import mnist1d

        ds = mnist1d(n_train=n)
        x, y, source = ds.x_train.float(), ds.y_train.long(), "MNIST-1D"
    except Exception as err:  # data module missing or not ready: same shapes, random numbers
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)
        source = f"random stand-in ({type(err).__name__})"
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(40, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                          nn.Linear(200, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    with torch.no_grad():
        loss = float(F.cross_entropy(model(x), y))
    return model, (x, y), source, loss


def reference(model: nn.Module, data) -> np.ndarray:
    m64 = copy.deepcopy(model).double()
    op = cv.HessianOperator(m64, F.cross_entropy, (data[0].double(), data[1]))
    vals = spla.eigsh(op.as_linear_operator(), k=TOP_N, which="LA", tol=1e-10,
                      v0=np.random.default_rng(1).standard_normal(op.dim))[0]
    return np.sort(vals)[::-1]


# ---------------------------------------------------------------- deflated power iteration ----
def power_iteration(hvp, dim: int, top_n: int = TOP_N, max_iter: int = 100, tol: float = 1e-3):
    """PyHessian's algorithm on flat vectors: for each eigenvalue, start from a Gaussian vector;
    each iteration orthogonalizes against the eigenvectors found so far and normalizes (norm+1e-6),
    takes λ = vᵀHv and v ← Hv/(‖Hv‖+1e-6); it stops when |Δλ|/(|λ|+1e-6) < tol and keeps the
    previous estimate."""
    vals, vecs = [], []
    for _ in range(top_n):
        v = torch.randn(dim)
        v = v / (v.norm() + 1e-6)
        lam = None
        for _ in range(max_iter):
            for u in vecs:
                v = v - (v @ u) * u
            v = v / (v.norm() + 1e-6)
            hv = hvp(v)
            new = float(hv @ v)
            v = hv / (hv.norm() + 1e-6)
            if lam is not None and abs(lam - new) / (abs(lam) + 1e-6) < tol:
                break
            lam = new
        vals.append(lam)
        vecs.append(v)
    return vals


def _flat_params(model):
    return [p for p in model.parameters() if p.requires_grad]


def cached_hvp(model, data):
    params = _flat_params(model)
    loss = F.cross_entropy(model(data[0]), data[1])
    grads = torch.autograd.grad(loss, params, create_graph=True)
    count = [0]

    def hvp(v):
        count[0] += 1
        vs, i = [], 0
        for p in params:
            vs.append(v[i:i + p.numel()].view_as(p))
            i += p.numel()
        hv = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv])

    return hvp, count


def naive_hvp(model, data):
    params = _flat_params(model)
    count = [0]

    def hvp(v):
        count[0] += 1
        loss = F.cross_entropy(model(data[0]), data[1])  # a new graph for every product
        grads = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * vi.view_as(g)).sum() for g, vi in
                  zip(grads, torch.split(v, [p.numel() for p in params])))
        hv = torch.autograd.grad(dot, params)
        return torch.cat([h.reshape(-1) for h in hv])

    return hvp, count


# ------------------------------------------------------------------------------ contenders ----
def run_flatlab(model, data):
    counter = [0]
    original = cv.HessianOperator.matvec

    def counting(self, v):
        counter[0] += 1
        return original(self, v)

    cv.HessianOperator.matvec = counting
    try:
        t = time.perf_counter()
        vals = cv.top_eigenvalues(model, F.cross_entropy, data, k=TOP_N)
        elapsed = time.perf_counter() - t
    finally:
        cv.HessianOperator.matvec = original
    return elapsed, counter[0], vals.double().numpy()


def pyhessian_available():
    try:
        importlib.import_module("pyhessian.hessian")

        return True, "pyhessian " + _version("pyhessian")
    except Exception as err:  # e.g. removed torch APIs
        return False, f"pyhessian unavailable ({type(err).__name__}: {err}); its algorithm re-implemented here"


def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


def run_pyhessian(model, data, tol: float = 1e-3, max_iter: int = 100, real: bool = True):
    torch.manual_seed(0)
    for p in model.parameters():
        p.grad = None
    if not real:
        t = time.perf_counter()
        hvp, count = cached_hvp(model, data)
        vals = power_iteration(hvp, sum(p.numel() for p in _flat_params(model)), max_iter=max_iter, tol=tol)
        return time.perf_counter() - t, count[0], np.sort(vals)[::-1]
    ph = importlib.import_module("pyhessian.hessian")  # the module (the package re-exports the class)
    original, count = ph.hessian_vector_product, [0]

    def counting(gradsH, params, v):
        count[0] += 1
        return original(gradsH, params, v)

    ph.hessian_vector_product = counting
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            h = ph.hessian(model, F.cross_entropy, data=data, cuda=False)
            vals, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=TOP_N)
            elapsed = time.perf_counter() - t
    finally:
        ph.hessian_vector_product = original
        for p in model.parameters():  # PyHessian leaves graph-carrying .grad behind
            p.grad = None
    return elapsed, count[0], np.sort(vals)[::-1]


def run_naive(model, data, tol: float = 1e-3, max_iter: int = 100):
    torch.manual_seed(0)
    t = time.perf_counter()
    hvp, count = naive_hvp(model, data)
    vals = power_iteration(hvp, sum(p.numel() for p in _flat_params(model)), max_iter=max_iter, tol=tol)
    return time.perf_counter() - t, count[0], np.sort(vals)[::-1]


# power-iteration settings tried, in order, until the top-5 reach rel. err < 1e-3
ESCALATION = [(1e-3, 100), (1e-4, 1000), (1e-5, 1000), (1e-6, 1000)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per method (best is kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--max-seconds", type=float, default=90.0,
                    help="stop repeating once this much time has passed (at least one round runs)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="numpy/scipy BLAS threads (0: leave as is); ARPACK's small BLAS calls "
                         "between Hessian-vector products fight torch's OpenMP pool when both spin")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    blas = "BLAS threads as preset"
    if args.blas_threads > 0:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.blas_threads, user_api="blas")
            blas = f"{args.blas_threads} BLAS thread(s)"
        except ImportError:
            blas = "BLAS threads as preset (threadpoolctl missing)"
    t_all = time.perf_counter()
    model, data, source, loss = make_problem()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"top-{TOP_N} Hessian eigenvalues | MLP 40-200-200-10 ({n_params:,} params), "
          f"{data[0].shape[0]} examples of {source}, train loss {loss:.3f} | torch "
          f"{torch.__version__}, {torch.get_num_threads()} torch threads, {blas}")
    ref = reference(model, data)
    print("reference (float64, eigsh tol=1e-10): " + ", ".join(f"{v:.5f}" for v in ref))
    real, peer = pyhessian_available()
    print(f"peer: {peer}")
    err = lambda vals: float(np.max(np.abs(np.asarray(vals) - ref) / np.abs(ref)))

    # PyHessian's defaults first; if they miss the target, tighten (tol, maxIter) until it is met.
    label = "PyHessian" if real else "PyHessian (re-implemented)"
    ph_name = lambda tol, max_iter: f"{label} power iter. (tol={tol:g}, maxIter={max_iter})"
    runs: dict[str, list] = {"flatlab top_eigenvalues (Lanczos, tol=1e-4)": []}
    contenders = {next(iter(runs)): lambda: run_flatlab(model, data)}
    for i, (tol, max_iter) in enumerate(ESCALATION):  # each run here is also a timed round
        result = run_pyhessian(model, data, tol, max_iter, real)
        e = err(result[2])
        print(f"  {label} tol={tol:g} maxIter={max_iter}: max rel err {e:.2e}")
        if i == 0 or e < TARGET_ERR:
            runs[ph_name(tol, max_iter)] = [result]
            contenders[ph_name(tol, max_iter)] = (
                lambda tol=tol, max_iter=max_iter: run_pyhessian(model, data, tol, max_iter, real))
        if e < TARGET_ERR:
            break
    name = f"naive autograd.grad power iter. (tol={tol:g}, maxIter={max_iter})"
    runs[name] = []
    contenders[name] = lambda: run_naive(model, data, tol, max_iter)
    caps = {name: max(1, min(args.repeats, 2))}  # the slowest one: at most 2 runs
    for r in range(args.repeats):  # interleaved, so a busy moment hits every method alike
        if r > 0 and time.perf_counter() - t_all > args.max_seconds:
            break
        for name, fn in contenders.items():
            if len(runs[name]) <= r and len(runs[name]) < caps.get(name, args.repeats):
                runs[name].append(fn())
    n_rounds = max(len(r) for r in runs.values())
    rows = {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}

    flat_name = next(iter(rows))
    t_flat, n_flat = rows[flat_name][0], rows[flat_name][1]
    print(f"\nbest of up to {n_rounds} interleaved round(s) (naive: at most 2)")
    print(f"{'method':52s} {'seconds':>8s} {'HVPs':>6s} {'max rel err':>12s} {'flatlab speed-up':>17s}")
    for name, (sec, hvps, vals) in rows.items():
        e = err(vals)
        flag = "" if e < TARGET_ERR else "  <- misses rel. err < 1e-3"
        print(f"{name:52s} {sec:8.3f} {hvps:6d} {e:12.2e} {sec / t_flat:16.1f}x{flag}")

    goals = Goals()
    flat_ok = err(rows[flat_name][2]) < TARGET_ERR
    accurate = {k: v for k, v in rows.items() if k.startswith("PyHessian") and err(v[2]) < TARGET_ERR}
    if accurate:
        name, (sec, hvps, _) = min(accurate.items(), key=lambda kv: kv[1][0])
        ratio = sec / t_flat
        print(f"\nspeed-up vs PyHessian at equal accuracy (rel. err < 1e-3; {name}): {ratio:.1f}x in "
              f"time, {hvps / n_flat:.1f}x in HVPs")
        goals.check("top-5 eigenvalues: speed-up over PyHessian", ratio)
    else:
        print("\nPyHessian did not reach rel. err < 1e-3 with the settings tried")
    default = rows[next(k for k in rows if k.startswith("PyHessian"))]
    print(f"speed-up vs PyHessian at its defaults (less accurate, {err(default[2]):.1e}): "
          f"{default[0] / t_flat:.1f}x in time, {default[1] / n_flat:.1f}x in HVPs")
    print(f"total benchmark time {time.perf_counter() - t_all:.1f} s")
    return max(goals.finish(), 0 if flat_ok else 1)


if __name__ == "__main__":
    raise SystemExit(main())
