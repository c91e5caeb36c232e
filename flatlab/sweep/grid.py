"""A sweep's grid and seeds: ``_points`` turns ``{name: values}`` (the Cartesian product) or a list of dicts into
grid points, ``_seeds`` checks the seeds; ``_RESERVED`` are the frame's own column names."""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as _v



_RESERVED = ("seed", "run", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr_t", "diverged",
             "stopped_early")


def _points(grid: Any) -> list[dict]:
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid must not be empty: give {name: [values, ...]} or a list of dicts")
        keys = list(grid)
        values = []
        for k in keys:
            v = grid[k]
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
                v = [v]
            v = list(v)
            if not v:
                raise ValueError(f"grid[{k!r}] is empty: give at least one value")
            values.append(v)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        points = [dict(p) if isinstance(p, Mapping) else None for p in grid]
        if not points:
            raise ValueError("grid must not be empty: give {name: [values, ...]} or a list of dicts")
        if any(p is None for p in points):
            raise ValueError("grid given as a list must hold dicts {name: value}")
        if any(set(p) != set(points[0]) for p in points):
            raise ValueError("grid given as a list of dicts needs the same names in every dict")
    else:
        raise ValueError(f"grid must be a dict {{name: [values, ...]}} or a list of dicts, "
                         f"got {type(grid).__name__}")
    for name in points[0]:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid names must be identifiers (make_run's keyword arguments), got {name!r}")
        if name in _RESERVED:
            raise ValueError(f"grid name {name!r} is reserved (a column of the sweep frame); "
                             f"reserved: {', '.join(_RESERVED)}" + ("; seeds go in seeds=..." if name == "seed" else ""))
    return points


def _seeds(seeds: Any) -> list[int]:
    example = "e.g. seeds=range(4) or seeds=[0]"
    if isinstance(seeds, (bool, int, np.integer, str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a non-empty sequence of non-negative integers, {example}; "
                        f"got {type(seeds).__name__} {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError(f"seeds=[] must be a non-empty sequence of non-negative integers, {example}")
    seeds = [_v.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} holds duplicates")
    return seeds
