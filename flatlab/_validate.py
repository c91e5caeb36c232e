"""Argument checks shared by every public entry point of flatlab: one policy, one wording.

- the wrong *type* raises ``TypeError``, the wrong *value* ``ValueError``;
- every message names the parameter, shows the value and states what is allowed, e.g.
  ``lr=-0.1 must be a positive number (> 0)`` or ``seed must be a non-negative integer (≥ 0),
  got str '3'``;
- numbers may be Python numbers, NumPy scalars (``np.int64``, ``np.float32``) or 0-d arrays and
  tensors — what widgets, ``np.arange`` and ``torch`` reductions hand to students; ``bool`` is not
  a number here (``True`` for a learning rate is a mistake, not 1.0);
- numbers must be finite (NaN and ±inf are refused, never trained on);
- integers must be integers: ``steps=100.0`` is refused (a float where a count is meant).

The checks return the value converted to a plain ``int``/``float`` so callers compute with it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["integer", "number", "positive", "non_negative", "seed", "choice", "boolean", "function",
           "instance", "pair", "finite_tensor", "SEED_MAX"]

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed accepts 0 .. 2**64 - 1
_NOT_A_NUMBER = object()


def _type_name(value: Any) -> str:
    return type(value).__name__


def _scalar(value: Any, want_int: bool) -> Any:
    """``value`` as a Python ``int``/``float`` if it is a real number, else ``_NOT_A_NUMBER``."""
    if isinstance(value, (bool, np.bool_)):
        return _NOT_A_NUMBER
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.ndim != 0 or value.dtype in (torch.bool, np.bool_) or \
                (isinstance(value, torch.Tensor) and value.is_complex()) or \
                (isinstance(value, np.ndarray) and value.dtype.kind not in "iuf"):
            return _NOT_A_NUMBER
        value = value.item()
    if isinstance(value, numbers.Integral):
        return int(value)
    if want_int:
        return _NOT_A_NUMBER
    if isinstance(value, numbers.Real):
        return float(value)
    return _NOT_A_NUMBER


def _fmt(x: float | int) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def describe(minimum=None, maximum=None, *, low_open: bool = False, high_open: bool = False,
             integer: bool = False) -> str:
    """The allowed values in words: ``a positive number (> 0)``, ``an integer in 1..10`` …"""
    noun = "an integer" if integer else "a number"
    if integer:  # open integer bounds read better closed: > 0 is ≥ 1
        if minimum is not None and low_open:
            minimum, low_open = math.floor(minimum) + 1, False
        if maximum is not None and high_open:
            maximum, high_open = math.ceil(maximum) - 1, False
    if minimum is not None and maximum is not None:
        if integer:
            return f"{noun} in {minimum}..{maximum}"
        return f"{noun} in {'(' if low_open else '['}{_fmt(minimum)}, {_fmt(maximum)}{')' if high_open else ']'}"
    if minimum is not None:
        if integer and minimum in (0, 1):
            return "a non-negative integer (≥ 0)" if minimum == 0 else "a positive integer (≥ 1)"
        if not integer and minimum == 0:
            return "a positive number (> 0)" if low_open else "a non-negative number (≥ 0)"
        return f"{noun} {'>' if low_open else '≥'} {_fmt(minimum)}"
    if maximum is not None:
        return f"{noun} {'<' if high_open else '≤'} {_fmt(maximum)}"
    return "an integer" if integer else "a finite number"


def _check(name: str, value: Any, want_int: bool, minimum, maximum, low_open: bool, high_open: bool,
           allow_none: bool, hint: str) -> Any:
    if value is None and allow_none:
        return None
    rule = describe(minimum, maximum, low_open=low_open, high_open=high_open, integer=want_int)
    tail = (" or None" if allow_none else "") + (f" ({hint})" if hint else "")
    x = _scalar(value, want_int)
    if x is _NOT_A_NUMBER:
        extra = ""
        if isinstance(value, str):
            extra = f"; convert the text first, e.g. {'int' if want_int else 'float'}({value!r})"
        elif want_int and isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            extra = f"; write {int(value)}, not {value!r}"
        raise TypeError(f"{name} must be {rule}{tail}, got {_type_name(value)} {value!r}{extra}")
    if not want_int and not math.isfinite(x):
        raise ValueError(f"{name}={x!r} is not finite: it must be {rule}{tail}")
    bad = ((minimum is not None and (x <= minimum if low_open else x < minimum))
           or (maximum is not None and (x >= maximum if high_open else x > maximum)))
    if bad:
        raise ValueError(f"{name}={x!r} must be {rule}{tail}")
    return x


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
            allow_none: bool = False, hint: str = "") -> int | None:
    """``value`` as an ``int`` in ``minimum..maximum`` (inclusive; None: unbounded)."""
    return _check(name, value, True, minimum, maximum, False, False, allow_none, hint)


def number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None, *,
           low_open: bool = False, high_open: bool = False, allow_none: bool = False, hint: str = "") -> float | None:
    """``value`` as a finite ``float`` between ``minimum`` and ``maximum`` (open ends when asked)."""
    return _check(name, value, False, minimum, maximum, low_open, high_open, allow_none, hint)


def positive(name: str, value: Any, *, allow_none: bool = False, hint: str = "") -> float | None:
    """A finite number > 0."""
    return number(name, value, 0, low_open=True, allow_none=allow_none, hint=hint)


def non_negative(name: str, value: Any, *, allow_none: bool = False, hint: str = "") -> float | None:
    """A finite number ≥ 0."""
    return number(name, value, 0, allow_none=allow_none, hint=hint)


def seed(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """A random seed: an integer in 0..2**64 − 1 (what ``torch.Generator.manual_seed`` takes)."""
    if value is not None and _scalar(value, True) is not _NOT_A_NUMBER and _scalar(value, True) > SEED_MAX:
        raise ValueError(f"{name}={_scalar(value, True)} must be an integer in 0..2**64 - 1")
    return integer(name, value, 0, allow_none=allow_none)


def choice(name: str, value: Any, allowed: Iterable, *, hint: str = "") -> Any:
    """``value`` if it is one of ``allowed``; strings are compared as given."""
    allowed = list(allowed)
    text = ", ".join(str(a) for a in allowed)
    if all(isinstance(a, str) for a in allowed) and not isinstance(value, str):
        raise TypeError(f"{name} must be one of: {text}{f' ({hint})' if hint else ''}; got "
                        f"{_type_name(value)} {value!r}")
    try:
        ok = value in allowed
    except Exception:  # an object whose == does not give a bool (an array)
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} is unknown; allowed values: {text}{f' ({hint})' if hint else ''}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy booleans too); anything else is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_type_name(value)} {value!r}")
    return bool(value)


def function(name: str, value: Any, usage: str, *, allow_none: bool = False) -> Callable | None:
    """A callable; ``usage`` says how it is called, e.g. ``"schedule(step) -> multiplier"``."""
    if value is None and allow_none:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable as {usage}{' (or None)' if allow_none else ''}, "
                        f"got {_type_name(value)}")
    return value


def instance(name: str, value: Any, types: type | tuple[type, ...], what: str, *, allow_none: bool = False) -> Any:
    """``value`` if it is an instance of ``types`` (``what`` names them for the message)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}{' or None' if allow_none else ''}, got {_type_name(value)}")
    return value


def pair(name: str, value: Any, minimum: float | None = None, maximum: float | None = None, *,
         low_open: bool = False, high_open: bool = False, labels: tuple[str, str] | None = None) -> tuple[float, float]:
    """Two finite numbers, each in the given range (e.g. Adam's ``betas`` in [0, 1))."""
    rule = describe(minimum, maximum, low_open=low_open, high_open=high_open)
    first, second = labels or (f"{name}[0]", f"{name}[1]")
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray, torch.Tensor)) \
            or (getattr(value, "ndim", 1) != 1):
        raise TypeError(f"{name} must be a pair ({first}, {second}), each {rule}; got {_type_name(value)} {value!r}")
    if len(value) != 2:
        raise ValueError(f"{name}={tuple(value)!r} must be a pair ({first}, {second}) of two numbers, each {rule}; "
                         f"got {len(value)} values")
    return (number(first, value[0], minimum, maximum, low_open=low_open, high_open=high_open),
            number(second, value[1], minimum, maximum, low_open=low_open, high_open=high_open))


def finite_tensor(name: str, value: torch.Tensor) -> torch.Tensor:
    """A tensor without NaN or ±inf entries (integer tensors always pass)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {_type_name(value)}")
    if (value.is_floating_point() or value.is_complex()) and value.numel():
        bad = int((~torch.isfinite(value.detach())).sum())
        if bad:
            raise ValueError(f"{name} holds {bad} NaN or inf value(s) of {value.numel()}: "
                             f"the data must be finite")
    return value


def items(name: str, value: Any, what: str):
    """``value`` when it holds at least one item; else ``ValueError("<name> is empty: expected <what>")``."""
    try:
        n = len(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}, got {type(value).__name__}") from None
    if n == 0:
        raise ValueError(f"{name} is empty: expected {what}")
    return value


def rows(name: str, table, columns: Sequence[str] = (), about: str = ""):
    """``table`` when it is a DataFrame with ``columns`` and at least one row; else a ValueError naming the
    parameter ``name`` and what it expects (``about``: where such a frame comes from)."""
    import pandas as pd

    what = "a DataFrame" + (f" with columns {', '.join(map(str, columns))}" if columns else "") + (
        f" ({about})" if about else "")
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name} must be {what}, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} must be {what}; it has no column {', '.join(map(repr, missing))} "
                         f"(columns: {', '.join(map(str, table.columns)) or 'none'})")
    if len(table) == 0:
        raise ValueError(f"{name} is empty: expected {what}, with at least one row")
    return table
