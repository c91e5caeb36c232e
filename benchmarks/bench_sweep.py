"""Benchmark: a 32-model seed × η sweep of a small MLP, flatlab's vmap backend vs the sequential loop.

Problem: 32 MLPs 40-64-64-10 (ReLU) = 8 seeds × 4 learning rates η ∈ {0.02, 0.05, 0.1, 0.2},
on MNIST-1D (4,000 training examples; random data of that shape when the ``mnist1d`` package is missing), 300 steps of plain SGD at batch size 128, evaluated on the full
train and test sets every 100 steps (4 evaluations per run), with no cache.

Contenders, timed in one run with the same torch threads (``--threads``, 2 by default):
- loop: ``flatlab.sweep(..., backend="loop")``: ``flatlab.fit`` on each model, one after the other;
- vmap: ``flatlab.sweep(..., backend="vmap")``: the 32 models trained together, stacked parameters,
  batched matrix products (``torch.baddbmm``) with one autograd call per step for the ensemble;
- vmap (torch.func): the same backend forced onto ``torch.func.vmap(grad_and_value(functional_call))``.
Every contender's final losses are compared with the loop's (max abs difference printed).

Goal (benchmarks/goals.py): vmap ≥ 12× faster than the loop.

Run: ``python benchmarks/bench_sweep.py [--repeats 1] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import time

import torch
from goals import Goals

import flatlab
from flatlab.sweep import Run, finals, sweep


def _data() -> flatlab.Dataset:
    """MNIST-1D; random data of the same shape when the mnist1d package is missing (same timing)."""
    try:
        return flatlab.data.mnist1d()
    except ImportError:
        print("(mnist1d is not installed: random inputs and labels of MNIST-1D's shape)")
        g = torch.Generator().manual_seed(0)
        return flatlab.Dataset("random 40-d", torch.randn(4000, 40, generator=g), torch.randint(0, 10, (4000,), generator=g),
                               torch.randn(1000, 40, generator=g), torch.randint(0, 10, (1000,), generator=g),
                               "classification", 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timings per contender")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every contender")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ds = _data()

    def make_run(lr: float, seed: int) -> Run:
        return Run(flatlab.MLP(40, [64, 64], 10, seed=seed), ds, steps=args.steps, lr=lr, batch_size=128,
                   eval_every=100)

    grid, seeds = {"lr": [0.02, 0.05, 0.1, 0.2]}, range(8)
    contenders = {"loop": dict(backend="loop"), "vmap": dict(backend="vmap"),
                  "vmap (torch.func)": dict(backend="vmap", vmap_impl="func")}
    times, frames = {}, {}
    sweep(make_run, {"lr": [0.1]}, seeds=[0], backend="vmap", cache=False, progress=False)  # warm up
    for name, kw in contenders.items():
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            frames[name] = sweep(make_run, grid, seeds=seeds, cache=False, progress=False, **kw)
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    ref = finals(frames["loop"])
    print(f"32 MLPs 40-64-64-10, MNIST-1D, {args.steps} SGD steps at B=128, torch threads {args.threads}")
    for name, seconds in times.items():
        diff = (finals(frames[name]).train_loss - ref.train_loss).abs().max()
        print(f"  {name:18s} {seconds:7.2f} s   {times['loop'] / seconds:5.2f}× the loop   "
              f"max |Δ final train loss| vs loop {diff:.1e}")
    ratio = times["loop"] / times["vmap"]
    print(f"vmap sweep speed-up over the sequential loop: {ratio:.2f}×")
    goals = Goals()
    goals.check("32-model sweep: vmap over the loop", ratio)
    return goals.finish()


if __name__ == "__main__":
    raise SystemExit(main())
