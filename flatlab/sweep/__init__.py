"""Sweeps over hyper-parameters and seeds: one tidy DataFrame, many small models trained at once.

``sweep(make_run, grid, seeds, backend)`` calls ``make_run(**point, seed=seed)`` for every grid point
and seed; each call returns a :class:`Run` (a model, a data set and the SGD settings ``fit`` takes).
The runs are trained by one of four backends and their histories stacked into one DataFrame with a
row per run × evaluation (the grid values, ``seed`` and ``run`` identify the run):

- ``"loop"``: ``flatlab.train.fit`` on each run, one after the other (the reference);
- ``"vmap"``: runs that share a data set, an architecture, a batch size and a loss are trained
  *together*: their parameters are stacked along a leading model axis and one step updates all of
  them. Stacks of Linear layers and element-wise activations (``flatlab.MLP``) run as batched
  matrix products (``torch.baddbmm``, one autograd call per step for the whole ensemble); other
  modules through ``torch.func`` (``vmap(grad_and_value(functional_call))``). Same seeds → same
  initial parameters, the same minibatch order as ``fit`` and the same SGD update (PyTorch's
  momentum and weight decay), so the numbers equal the loop's to float32 rounding;
- ``"joblib"``: the loop, run by ``joblib.Parallel`` in worker processes (one torch thread each);
- ``"ray"``: the loop as Ray tasks (``ray.remote``, one CPU each): a local instance
  (``ray.init(num_cpus=2, include_dashboard=False)``) unless Ray is already initialized or
  ``RAY_ADDRESS`` names a cluster (``pip install 'flatlab[cluster]'``).

Results are cached on disk (one pickle per sweep under ``flatlab.config.cache_dir()/sweeps``), keyed by
the *content* of the runs — initial parameters, data, hyper-parameters, probes — and the backend, so
re-running a sweep (or a widget reopening it) returns the stored frame at once. The content is hashed
on every call (a data set edited in place or given a new tensor is a new key); entries are written
atomically, a damaged entry is recomputed, and an unusable cache directory gives one warning and the
sweep runs uncached.

References: Jastrzębski et al. 2017, "Three factors influencing minima in SGD" (arXiv:1711.04623);
Cohen et al. 2021, "Gradient descent on neural networks typically occurs at the edge of stability"
(arXiv:2103.00065); Goyal et al. 2017, "Accurate, large minibatch SGD" (linear warmup,
arXiv:1706.02677); torch.func (functorch) model ensembling tutorial; Moritz et al. 2018, "Ray: a
distributed framework for emerging AI applications" (arXiv:1712.05889).

Layout: one concept per file, all re-exported here (``flatlab.sweep.X`` as before, and ``flatlab.sweep(...)``
still runs a sweep). ``run``: :class:`Run`; ``loop``: the loop backend; ``ensemble``: the stacked-parameter
ensemble; ``batched``: :func:`train_batched` (the vmap backend); ``fingerprints``: cache keys and grouping;
``cache``: the on-disk cache; ``grid``: grid points and seeds; ``backends``: the four backends; ``driver``:
:func:`sweep`, :func:`finals`.
"""
from __future__ import annotations

from .backends import BACKENDS
from .batched import VMAP_IMPLS, train_batched
from .driver import _CallableModule, finals, sweep
from .run import RUN_OPTIMIZERS as RUN_OPTIMIZERS, Run

__all__ = ["Run", "sweep", "finals", "train_batched", "BACKENDS", "VMAP_IMPLS"]


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
