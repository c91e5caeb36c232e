"""The backends that train a sweep's runs: ``BACKENDS`` and ``_execute`` (loop, vmap by groups of compatible runs,
joblib worker processes, Ray tasks), with ``_init_ray``."""
from __future__ import annotations

import os

import joblib
import pandas as pd

from .fingerprints import _dataset_fingerprint, _structure
from .loop import _run_in_worker, _run_loop
from .run import Run



BACKENDS = ("vmap", "loop", "joblib", "ray")


def _init_ray(n_jobs: int):
    """Ray, initialized: connected to ``RAY_ADDRESS`` when set, else a local instance of n_jobs CPUs."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("backend='ray' needs Ray: pip install 'flatlab[cluster]' (or pip install ray)") from err
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)  # connects to the cluster named by RAY_ADDRESS
        else:
            ray.init(num_cpus=max(1, n_jobs), include_dashboard=False, log_to_driver=False)
    return ray


def _execute(backend: str, runs: list[Run], seeds: list[int], n_jobs: int, impl: str,
             progress: bool) -> list[pd.DataFrame]:
    """Train every run with ``backend``; one frame per run, in order (what the cache stores)."""
    from ..config import progress_bar
    from . import train_batched  # through the package, at call time: flatlab.sweep.train_batched

    bar = progress_bar(total=sum(r.steps for r in runs), unit="step", desc=f"sweep ({backend}, {len(runs)} runs)",
               disable=not progress, leave=False)
    try:
        if backend == "loop":
            out = []
            for r, s in zip(runs, seeds):
                out.append(_run_loop(r, s))
                bar.update(r.steps)
            return out
        if backend == "vmap":
            out: list[pd.DataFrame | None] = [None] * len(runs)
            groups: dict[tuple, list[int]] = {}
            for i, r in enumerate(runs):
                k = (_dataset_fingerprint(r.dataset), _structure(r.model), r.batch_size, r.loss, r.optimizer)
                groups.setdefault(k, []).append(i)
            for idx in groups.values():
                if runs[idx[0]].optimizer != "sgd":  # nothing to batch: the loop trains it
                    for i in idx:
                        out[i] = _run_loop(runs[i], seeds[i])
                        bar.update(runs[i].steps)
                    continue
                frames = train_batched([runs[i] for i in idx], [seeds[i] for i in idx], impl=impl,
                                       progress=bar.update)
                for i, f in zip(idx, frames):
                    out[i] = f
            return out  # type: ignore[return-value]
        if backend == "joblib":
            jobs = (joblib.delayed(_run_in_worker)(r, s) for r, s in zip(runs, seeds))
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
            out = []
            for r, f in zip(runs, parallel(jobs)):
                out.append(f)
                bar.update(r.steps)
            return out
        ray = _init_ray(n_jobs)
        task = ray.remote(num_cpus=1)(_run_in_worker)
        refs = [task.remote(r, s) for r, s in zip(runs, seeds)]
        steps = {ref: r.steps for ref, r in zip(refs, runs)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            bar.update(sum(steps[ref] for ref in ready))
        return ray.get(refs)
    finally:
        bar.close()
