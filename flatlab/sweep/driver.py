"""The sweep itself: :func:`sweep` builds the runs from grid × seeds, looks them up in the cache or trains them, and
stacks one tidy DataFrame; :func:`finals` takes each run's last row; ``_CallableModule`` makes ``flatlab.sweep(...)``
callable."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from .. import _validate as _v
from ..config import cache_path
from .backends import BACKENDS, _execute, _init_ray
from .batched import VMAP_IMPLS
from .cache import _CACHE_VERSION, _load_cached, _store_cached
from .fingerprints import _fingerprint_memo, _run_fingerprint
from .grid import _points, _seeds
from .run import Run



def sweep(make_run: Callable[..., Run], grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]],
          seeds: Iterable[int] = (0,), backend: str = "vmap", *, cache: bool | str | Path = True,
          n_jobs: int = 2, progress: bool = True, vmap_impl: str = "auto") -> pd.DataFrame:
    """Train ``make_run(**point, seed=s)`` for every grid point and seed; one tidy DataFrame.

    ``grid``: ``{name: values}`` (the Cartesian product) or a list of ``{name: value}`` points.
    The frame has a row per run × evaluation: the grid names, ``seed``, ``run`` (0, 1, … in the order
    points × seeds), then ``fit``'s History columns (step, train/test loss and accuracy, lr, probe
    columns, final-probe columns on each run's last row), ``diverged`` and ``stopped_early``; History's
    ``lr`` column is renamed ``lr_t`` (the rate of the step just taken) so a grid may be named ``lr``.
    ``backend``: ``"vmap"`` (many models at once), ``"loop"``, ``"joblib"`` or ``"ray"`` (``n_jobs``
    workers). ``cache``: True (under ``cache_dir()/sweeps``), a directory, or False. ``frame.attrs``
    holds ``backend``, ``from_cache`` and ``seconds``.

    >>> import flatlab
    >>> ds = flatlab.data.gaussian_clouds(n_train=64)
    >>> make = lambda lr, seed: Run(flatlab.MLP(2, [8], 3, seed=seed), ds, steps=20, lr=lr, batch_size=16)
    >>> df = sweep(make, {"lr": [0.05, 0.1]}, seeds=[0, 1], cache=False, progress=False)
    >>> df.groupby(["lr", "seed"]).size().tolist()
    [21, 21, 21, 21]
    """
    _v.choice("backend", backend, BACKENDS)
    _v.choice("vmap_impl", vmap_impl, VMAP_IMPLS)
    _v.function("make_run", make_run, "make_run(**point, seed=seed) -> Run")
    n_jobs = _v.integer("n_jobs", n_jobs, 1)
    progress = _v.boolean("progress", progress)
    if cache is not None and not isinstance(cache, (bool, str, os.PathLike)):
        raise TypeError(f"cache must be True, False, None or a directory (str or Path), got {type(cache).__name__}")
    if isinstance(cache, str) and not cache.strip():
        raise ValueError("cache='' names no directory: give a directory, True (the default location) or False")
    points, seed_list = _points(grid), _seeds(seeds)
    if backend == "ray":
        _init_ray(n_jobs)  # fail early (ImportError) before building the runs
    runs, run_seeds, ids = [], [], []
    for point in points:
        for s in seed_list:
            run = make_run(**point, seed=s)
            if not isinstance(run, Run):
                raise TypeError(f"make_run(**{point}, seed={s}) returned {type(run).__name__}; "
                                f"it must return a flatlab.sweep.Run")
            runs.append(run)
            run_seeds.append(s)
            ids.append({**point, "seed": s})
    t0 = time.perf_counter()
    from_cache = False
    with _fingerprint_memo():
        if cache is False or cache is None:
            frames = _execute(backend, runs, run_seeds, n_jobs, vmap_impl, progress)
        else:
            location = cache_path() / "sweeps" if cache is True else Path(os.path.expanduser(str(cache)))
            key = joblib.hash((_CACHE_VERSION, backend, vmap_impl if backend == "vmap" else "",
                               [_run_fingerprint(r, s) for r, s in zip(runs, run_seeds)]))
            path = location / key / "output.pkl"
            frames = _load_cached(path, key, len(runs))
            from_cache = frames is not None
            if frames is None:
                frames = _execute(backend, runs, run_seeds, n_jobs, vmap_impl, progress)
                _store_cached(path, key, frames)
    parts = []
    for k, (ident, f) in enumerate(zip(ids, frames)):
        f = f.rename(columns={"lr": "lr_t"})
        for j, (name, value) in enumerate(ident.items()):
            f.insert(j, name, [value] * len(f))
        f.insert(len(ident), "run", k)
        parts.append(f)
    df = pd.concat(parts, ignore_index=True)
    df.attrs.update(backend=backend, from_cache=from_cache, seconds=time.perf_counter() - t0,
                    grid=list(points[0]))
    return df


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run of a sweep frame (where final probes are recorded).

    >>> finals(pd.DataFrame({"run": [0, 0, 1], "step": [0, 5, 0]})).step.tolist()
    [5, 0]
    """
    if "run" not in df.columns:
        raise ValueError("df must be a sweep frame with a 'run' column")
    return df.groupby("run", sort=True).tail(1).reset_index(drop=True)


class _CallableModule(type(os)):
    """``flatlab.sweep(...)`` calls :func:`sweep`, while ``flatlab.sweep.Run`` … stay reachable."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)
