"""Fingerprints of a sweep's content (the cache keys, and the grouping of runs for the vmap backend): tensors,
data sets, modules, callables and runs, with a per-call memo of data-set fingerprints (``_fingerprint_memo``)."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import joblib
import numpy as np
from torch import Tensor, nn

from ..data import Dataset
from .run import Run



def _structure(model: nn.Module) -> tuple:
    return (type(model).__qualname__, repr(model),
            tuple((n, tuple(p.shape), str(p.dtype), p.requires_grad) for n, p in model.named_parameters()),
            tuple((n, tuple(b.shape), str(b.dtype)) for n, b in model.named_buffers()))


def _same_data(a: Dataset, b: Dataset) -> bool:
    return _dataset_fingerprint(a) == _dataset_fingerprint(b)


_FP_MEMO: dict | None = None  # within one sweep call only: {(id(ds), tensor ids and versions): ...}


@contextmanager
def _fingerprint_memo():
    """Within the block a data set's fingerprint is computed once per (object, tensors, tensor versions);
    outside it, on every call. Nothing is remembered across calls, so an edit between two sweeps
    (in place, which bumps ``tensor._version``, through ``.data`` or NumPy, which does not, or by
    assigning a new tensor) is always seen."""
    global _FP_MEMO
    outer = _FP_MEMO
    if outer is None:
        _FP_MEMO = {}
    try:
        yield
    finally:
        _FP_MEMO = outer


def _tensor_fp(t: Tensor) -> str:
    return joblib.hash((str(t.dtype), tuple(t.shape), t.detach().cpu().contiguous().numpy()))


def _dataset_fingerprint(ds: Dataset) -> str:
    tensors = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    memo_key = (id(ds), ds.name, ds.task, ds.n_classes, tuple((id(t), t._version) for t in tensors))
    if _FP_MEMO is not None:
        hit = _FP_MEMO.get(memo_key)
        if hit is not None and hit[0] is ds and all(a is b for a, b in zip(hit[1], tensors)):
            return hit[2]
    fp = joblib.hash((ds.name, ds.task, ds.n_classes, [_tensor_fp(t) for t in tensors]))
    if _FP_MEMO is not None:
        _FP_MEMO[memo_key] = (ds, tensors, fp)  # holding the objects keeps their ids from being reused
    return fp


def _value_fp(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        return _tensor_fp(value)
    if isinstance(value, np.ndarray):
        return joblib.hash(value)
    if isinstance(value, Dataset):
        return _dataset_fingerprint(value)
    if isinstance(value, (list, tuple)):
        return [_value_fp(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _value_fp(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, nn.Module):
        return (_structure(value), [_tensor_fp(t) for t in value.state_dict().values()])
    if inspect.isfunction(value) or inspect.ismethod(value):
        return _callable_fp(value, depth + 1)
    if callable(value) and not hasattr(value, "__dict__"):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    if hasattr(value, "__dict__"):
        return (type(value).__module__, type(value).__qualname__,
                {k: _value_fp(v, depth + 1) for k, v in sorted(vars(value).items())})
    return repr(value)


def _code_fp(code) -> tuple:
    consts = tuple(_code_fp(c) if inspect.iscode(c) else repr(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names)


def _callable_fp(fn: Callable, depth: int = 0) -> Any:
    if inspect.ismethod(fn):
        return ("method", _value_fp(fn.__self__, depth), fn.__func__.__qualname__)
    code = getattr(fn, "__code__", None)
    if code is None:
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    closure = [_value_fp(c.cell_contents, depth + 1) for c in (fn.__closure__ or ())]
    return (fn.__module__, fn.__qualname__, _code_fp(code), closure, _value_fp(fn.__defaults__, depth + 1))


def _run_fingerprint(run: Run, seed: int) -> Any:
    spec = {f.name: getattr(run, f.name) for f in fields(run) if f.name not in ("model", "dataset")}
    spec["seed"] = seed if run.seed is None else run.seed
    return (_value_fp(run.model), _dataset_fingerprint(run.dataset), _value_fp(spec))
