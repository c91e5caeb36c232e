"""Seconds per optimizer step on an MNIST-1D MLP, as ratios to SGD measured in the same run.

Goals (benchmarks/goals.py): SAM and ASAM ≤ 2.05× SGD (two forward/backward passes are the floor); MFVI with
one sample ≤ 1.5× SGD (the noise draw alone is about 0.3×); variational SAM ≤ 2.3×; MixSAM ≤ 2.6× (two passes
and a noise draw). Every optimizer uses the same base update (SGD with momentum 0.9) so the ratios measure the
perturbation machinery, not Adam versus SGD; MFVI with its default Adam base is reported against Adam too.
Optimizers are timed round-robin, ROUNDS rounds of STEPS_PER_ROUND steps each, so a busy machine slows all of
them alike; each ratio is the median over rounds of that round's time over the reference's time in the same round
(a slow spell of a shared machine cancels within a round), printed beside the fastest round of each.

Run: python benchmarks/bench_optim.py   (about 20 s; 2 threads)
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from flatlab.data import mnist1d
from flatlab.models import MLP
from flatlab.optim import MFVI, SAM, MixSAM, VariationalSAM
from goals import Goals

WIDTH, BATCH, STEPS_PER_ROUND, ROUNDS = 256, 128, 5, 60
N = 4000


def make(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    ps = model.parameters()
    sgd = dict(lr=0.1, momentum=0.9)
    return {
        "SGD": lambda: torch.optim.SGD(ps, **sgd),
        "SAM": lambda: SAM(ps, "sgd", rho=0.1, **sgd),
        "ASAM": lambda: SAM(ps, "sgd", rho=0.5, adaptive=True, **sgd),
        "MFVI (1 sample)": lambda: MFVI(ps, dataset_size=N, base_optimizer="sgd", **sgd),
        "MixSAM (m=0.5)": lambda: MixSAM(ps, dataset_size=N, mix=0.5, rho=0.1, base_optimizer="sgd", **sgd),
        "VariationalSAM": lambda: VariationalSAM(ps, dataset_size=N, base_optimizer="sgd", **sgd),
        "Adam": lambda: torch.optim.Adam(ps, lr=1e-3),
        "MFVI, Adam base": lambda: MFVI(ps, lr=1e-3, dataset_size=N),
    }[name]()


def main() -> None:
    torch.set_num_threads(2)
    ds = mnist1d()
    x_all, y_all = ds.train
    names = ["SGD", "SAM", "ASAM", "MFVI (1 sample)", "MixSAM (m=0.5)", "VariationalSAM", "Adam", "MFVI, Adam base"]
    runs = {}
    for name in names:
        model = MLP(40, [WIDTH, WIDTH], 10, seed=0)
        opt = make(name, model)
        runs[name] = (model, opt)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(x_all), (BATCH,), generator=gen) for _ in range(STEPS_PER_ROUND)]

    def run_round(model, opt) -> float:
        t0 = time.perf_counter()
        for idx in batches:
            xb, yb = x_all[idx], y_all[idx]

            def closure():
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                return loss

            opt.step(closure)
        return (time.perf_counter() - t0) / len(batches)

    for model, opt in runs.values():  # warm-up
        run_round(model, opt)
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(ROUNDS):
        for name, (model, opt) in runs.items():
            times[name].append(run_round(model, opt))
    best = {n: min(t) for n, t in times.items()}
    refs = {n: "Adam" if n == "MFVI, Adam base" else "SGD" for n in names}
    ratio = {n: statistics.median(a / r for a, r in zip(times[n], times[refs[n]])) for n in names}
    print(f"MNIST-1D MLP 40-{WIDTH}-{WIDTH}-10, batch {BATCH}, {torch.get_num_threads()} threads, "
          f"{ROUNDS} rounds × {STEPS_PER_ROUND} steps: median of the per-round ratios (fastest round's ms/step)")
    goals = Goals()
    for name in names:
        print(f"  {name:<18} {ratio[name]:5.2f}× {refs[name]:<5} ({1e3 * best[name]:.2f} ms/step)")
    for name, goal in (("SAM", "SAM / SGD step"), ("ASAM", "ASAM / SGD step"),
                       ("MFVI (1 sample)", "MFVI (1 sample) / SGD step"),
                       ("VariationalSAM", "VariationalSAM / SGD step"), ("MixSAM (m=0.5)", "MixSAM / SGD step")):
        goals.check(goal, ratio[name])
    return goals.finish()


if __name__ == "__main__":
    raise SystemExit(main())
