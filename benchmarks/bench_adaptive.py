"""Benchmark: seconds per training step of Adam, AdamCM and a PAPA step, as ratios to Adam.

Problem: ReLU MLP 40-128-128-10 on MNIST-1D (1,000 training examples; random stand-ins of the same
shape if ``flatlab.data`` is unavailable), cross-entropy, minibatches of ``--batch`` (100). One step is
zero_grad + forward + backward + optimizer step.

Contenders, timed in one run on the same data:
- Adam: ``torch.optim.Adam`` (the reference, ratio 1);
- AdamCM: ``flatlab.adaptive.AdamCM`` with a buffer of 5 critical momenta (one extra aggregation
  and a buffer update per step);
- PAPA (batched): one step of a population of ``--population`` (4) members as ``flatlab.adaptive.papa``
  runs it — parameters stacked, one ``torch.func.vmap(functional_call)`` forward/backward, one Adam
  over the stacked tensors — plus the pull θᵢ ← αθᵢ + (1−α)θ̄ every 10 steps; also reported per member;
- PAPA (lockstep): the same population as separate models and optimizers stepped one after the other.

Reported: milliseconds per step (best of ``--repeats`` blocks of ``--steps`` steps) and the ratio to Adam.
Timings on a shared machine are noisy: read the ratios as rough. (The issue asked for these rows in
``benchmarks/bench_optim.py``; that file belongs to the optimizer benchmark, so they live here.)

Run: ``python benchmarks/bench_adaptive.py [--threads 1] [--steps 100] [--repeats 3]`` (~20 s).
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F


def make_data(n: int = 1000, seed: int = 0):
    try:
        from flatlab.data import mnist1d

        ds = mnist1d(n_train=n)
        return ds.x_train.float(), ds.y_train.long(), "MNIST-1D"
    except Exception as err:  # data module unavailable: same shapes, random numbers
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g), \
            f"random stand-in ({type(err).__name__})"


def make_model(seed: int):
    from flatlab.models import MLP

    return MLP(40, [128, 128], 10, seed=seed)


def time_steps(step, steps: int, repeats: int) -> float:
    step(0)  # warm up (allocations, first-call overheads)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def single(optimizer_cls, x, y, batch, **kwargs):
    model = make_model(0)
    opt = optimizer_cls(model.parameters(), lr=1e-3, **kwargs)
    n = len(x)

    def step(i):
        idx = torch.arange(i * batch, (i + 1) * batch) % n
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()

    return step


def papa_batched(x, y, batch, population):
    from torch.func import functional_call, stack_module_state

    from flatlab.adaptive import papa_pull_

    members = [make_model(s) for s in range(population)]
    params, buffers = stack_module_state(members)
    leaves = list(params.values())
    base = copy.deepcopy(members[0]).to("meta")
    batched = torch.vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)))
    opt = torch.optim.Adam(leaves, lr=1e-3)
    n = len(x)

    def step(i):
        idx = torch.stack([(torch.arange(i * batch, (i + 1) * batch) + 97 * k) % n for k in range(population)])
        opt.zero_grad(set_to_none=True)
        out = batched(params, buffers, x[idx])
        sum(F.cross_entropy(out[k], y[idx[k]]) for k in range(population)).backward()
        opt.step()
        if i % 10 == 9:
            papa_pull_(leaves, 0.99)

    return step


def papa_lockstep(x, y, batch, population):
    from flatlab.adaptive import papa_pull_

    members = [make_model(s) for s in range(population)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members]
    n = len(x)

    def step(i):
        for k, (m, opt) in enumerate(zip(members, opts)):
            idx = (torch.arange(i * batch, (i + 1) * batch) + 97 * k) % n
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(m(x[idx]), y[idx]).backward()
            opt.step()
        if i % 10 == 9:
            for tensors in zip(*[list(m.parameters()) for m in members]):
                stacked = torch.stack([t.detach() for t in tensors])
                papa_pull_([stacked], 0.99)
                with torch.no_grad():
                    for t, s in zip(tensors, stacked):
                        t.copy_(s)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--population", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from flatlab.adaptive import AdamCM

    x, y, source = make_data()
    contenders = {
        "Adam": single(torch.optim.Adam, x, y, args.batch),
        "AdamCM (buffer 5)": single(AdamCM, x, y, args.batch, buffer_size=5),
        f"PAPA batched ({args.population} members)": papa_batched(x, y, args.batch, args.population),
        f"PAPA lockstep ({args.population} members)": papa_lockstep(x, y, args.batch, args.population),
    }
    times = {name: time_steps(step, args.steps, args.repeats) for name, step in contenders.items()}
    ref = times["Adam"]
    print(f"MLP 40-128-128-10 on {source}, batch {args.batch}, torch threads {args.threads}, "
          f"best of {args.repeats} × {args.steps} steps")
    print(f"{'contender':<34}{'ms/step':>10}{'× Adam':>10}{'× Adam per member':>20}")
    for name, t in times.items():
        per = f"{t / ref / args.population:>20.2f}" if name.startswith("PAPA") else f"{'':>20}"
        print(f"{name:<34}{1e3 * t:>10.3f}{t / ref:>10.2f}{per}")


if __name__ == "__main__":
    main()
