"""Shared machinery of the check functions: run a student's function safely on several cases, say what
is wrong, and name the mistake only when one mistake explains every failing case.

Every ``check_*`` goes through :func:`run_cases`. For each :class:`Case` it

1. calls the student's function on *copies* of the case's arguments (numpy warnings silenced), so a
   function that raises never stops the notebook: the failure names the exception and the line of the
   student's code where it was raised; a stub that raises ``NotImplementedError`` itself gets the
   friendly note instead (and the check returns False, so the chapter falls back to the reference);
2. compares the copies with the originals afterwards: a function that modified an argument in place
   fails that case, whatever it returned;
3. converts the answer through one :class:`Answer` (a number, an array of the expected shape, a list of
   tensors …), which turns ``None`` ("did you forget ``return``?"), strings, wrong types, scalars where
   a vector is expected and wrong shapes into a failure message of their own;
4. compares the converted answer with the expected one, with a tolerance suited to float32 (relative
   1e-5 of each entry plus 1e-5 of the array's largest entry) unless the check says otherwise.

A :class:`Hint` names a mistake; :func:`run_cases` shows the first hint whose test holds for *every*
failing case, and none when no single hint explains them all — different mistakes can give the same
number on one case, never on all of them.

About 580 lines, kept as one file: the case runner, the answer conversion and the reporting are one
pipeline that every check shares, and splitting it would scatter the one code path a grader relies on.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

RTOL = 1e-5
NOT_IMPLEMENTED = "not implemented yet"
_MISSING = object()
CHECKS_ENV = "FLATLAB_CHECKS_FILE"  # when set, every check appends its verdict there (``flatlab grade``)


def _record(name: str, status: str, n_cases: int, failures: Sequence[str] = (), hint: str = "") -> None:
    """Append one check's verdict as a JSON line to ``$FLATLAB_CHECKS_FILE`` (nothing when it is unset).

    ``status`` is ``"passed"``, ``"failed"`` or ``"not implemented"``. A file that cannot be written never
    stops the notebook (the printed report is the student's feedback either way)."""
    path = os.environ.get(CHECKS_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"check": name, "status": status, "n_cases": n_cases,
                                 "failures": list(failures), "hint": hint}) + "\n")
    except OSError:
        pass


# ----------------------------------------------------------------------------------------------
# printing
# ----------------------------------------------------------------------------------------------
def report(name: str, failures: list[str], n_cases: int, hint: str = "") -> bool:
    """Print ✓ or ✗ with (at most three of) the failing cases and the hint; return whether all passed."""
    _record(name, "failed" if failures else "passed", n_cases, failures, hint)
    if failures:
        print(f"✗ {name}: {len(failures)} of {n_cases} cases wrong")
        for f in failures[:3]:
            print("   ", f)
        if len(failures) > 3:
            print(f"    … and {len(failures) - 3} more")
        if hint:
            print(f"    → {hint}")
        return False
    print(f"✓ {name}: all {n_cases} cases correct")
    return True


def not_implemented(name: str) -> bool:
    """The friendly note for a stub that still raises NotImplementedError; returns False."""
    _record(name, "not implemented", 0)
    print(f"… {name} is not implemented yet — the chapter continues with flatlab's reference.")
    return False


def show(x, digits: int = 6) -> str:
    """A short rendering of a number, an array or a list of arrays for a failure message."""
    if x is None:
        return "None"
    if isinstance(x, (list, tuple)) and x and all(_is_arraylike(t) and np.ndim(_np(t)) > 0 for t in x):
        return "[" + ", ".join(f"array of shape {np.shape(_np(t))}" for t in x) + "]"
    try:
        a = _np(x)
    except (TypeError, ValueError):
        return repr(x)[:80]
    if a.ndim == 0:
        return f"{float(a):.{digits}g}"
    flat = a.reshape(-1)
    body = ", ".join(f"{v:.{digits}g}" for v in flat[:6]) + (", …" if flat.size > 6 else "")
    return f"[{body}]" if a.ndim == 1 else f"[{body}] (shape {a.shape})"


def show_pair(expected, got) -> str:
    """``expected …, got …`` with enough digits that the two differ when they are not equal."""
    for digits in (6, 10, 15):
        e, g = show(expected, digits), show(got, digits)
        if e != g:
            return f"expected {e}, got {g}"
    return f"expected {e}, got {g}"


# ----------------------------------------------------------------------------------------------
# values: conversion and comparison
# ----------------------------------------------------------------------------------------------
def _torch():
    return sys.modules.get("torch")


def _is_tensor(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _is_arraylike(x) -> bool:
    return isinstance(x, np.ndarray) or _is_tensor(x)


def _np(x) -> np.ndarray:
    """``x`` as a float64 numpy array (tensors detached; lists converted)."""
    if _is_tensor(x):
        x = x.detach().cpu()
        if x.is_complex():
            return x.numpy().astype(complex)
        return x.double().numpy()
    a = np.asarray(x)
    if np.iscomplexobj(a):
        return a.astype(complex)
    return np.asarray(a, dtype=float)


def close(got, want, rtol: float = RTOL, equal_nan: bool = False) -> bool:
    """Whether ``got`` matches ``want`` (numbers, arrays, tensors or lists of them): same shape, and each
    finite entry within ``rtol·(|want| + max|want|)`` (+1e-12), each non-finite one equal (NaN equal to
    NaN only with ``equal_nan``)."""
    if isinstance(got, list) and isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(close(g, w, rtol, equal_nan) for g, w in zip(got, want))
    try:
        g, w = _np(got), _np(want)
    except (TypeError, ValueError, RuntimeError):
        return False
    if g.shape != w.shape or np.iscomplexobj(g) or np.iscomplexobj(w):
        return False
    with np.errstate(all="ignore"):
        finite = np.isfinite(w)
        scale = float(np.abs(w[finite]).max()) if finite.any() else 0.0
        ok = np.where(finite, np.abs(g - w) <= rtol * (np.abs(w) + scale) + 1e-12, g == w)
        if equal_nan:
            ok = ok | (np.isnan(g) & np.isnan(w))
    return bool(np.all(ok))


def _problem_for_special(raw, what: str) -> str | None:
    """The message for answers that are not values at all: None, strings, booleans, dicts…"""
    if raw is None:
        return "returned None — did you forget `return`?"
    if isinstance(raw, (str, bytes)):
        return f"return {what}, not the string {raw!r}"
    if isinstance(raw, (bool, np.bool_)):
        return f"return {what}, not the boolean {raw}"
    if isinstance(raw, dict):
        return f"return {what}, not a dict"
    if callable(raw) and not _is_arraylike(raw):
        return f"return {what}, not a function — call it and return its result"
    return None


def as_number(raw, plain: bool = False, why: str = "") -> tuple[float | None, str | None]:
    """``(float, None)`` for a single number (Python, numpy or a 0-d array/tensor), else ``(None, why not)``.

    ``plain=True`` accepts only Python and numpy scalars (the chapter passes the result to ``round``)."""
    special = _problem_for_special(raw, "a number")
    if special:
        return None, special
    if plain and (_is_tensor(raw) or isinstance(raw, np.ndarray)):
        kind = "a tensor" if _is_tensor(raw) else "a numpy array"
        return None, f"return a plain number (float(…)), not {kind}" + (f" — {why}" if why else "")
    if isinstance(raw, (list, tuple)):
        return None, f"return one number, not a {type(raw).__name__} of {len(raw)} item{'s' * (len(raw) != 1)}"
    try:
        a = _np(raw)
    except (TypeError, ValueError, RuntimeError):
        return None, f"return a number, got {type(raw).__name__}"
    if a.dtype == object:
        return None, f"return a number, got {type(raw).__name__}"
    if a.ndim > 0:
        if a.size == 1:
            return None, (f"return one number, not an array of shape {a.shape} — take float(…) of it"
                          + (f" ({why})" if why else ""))
        return None, f"return one number, got an array of shape {a.shape}"
    if np.iscomplexobj(a):
        value = complex(a)
        if abs(value.imag) > 1e-9 * max(1.0, abs(value.real)):
            return None, f"return a real number, got the complex number {value:.4g}"
        return float(value.real), None
    return float(a), None


_KIND_NAMES = {"numpy": "a numpy array", "torch": "a torch tensor", "list": "a list"}


def _kind(raw) -> str:
    if _is_tensor(raw):
        return "torch"
    if isinstance(raw, np.ndarray):
        return "numpy"
    if isinstance(raw, (list, tuple)):
        return "list"
    return "other"


def as_array(raw, shape: tuple, kinds: Sequence[str] = ("numpy", "torch", "list"), why: str = "",
             noun: str = "an array") -> tuple[np.ndarray | None, str | None]:
    """``(float64 array, None)`` when ``raw`` is an array (of one of ``kinds``) of ``shape``, else
    ``(None, what is wrong)``: None, a string, a single number where a vector is expected, a wrong type
    or a wrong shape."""
    want = f"{noun} of shape {tuple(shape)}"
    special = _problem_for_special(raw, want)
    if special:
        return None, special
    kind = _kind(raw)
    try:
        a = _np(raw)
    except (TypeError, ValueError, RuntimeError):
        return None, f"expected {want}, got {type(raw).__name__}" + (
            " whose items are not numbers of equal lengths" if kind == "list" else "")
    if a.dtype == object:
        return None, f"expected {want}, got {type(raw).__name__}"
    if a.ndim == 0 and len(shape) > 0:
        return None, f"expected {want} (one entry per coordinate), got a single number"
    scalar_ok = kind == "other" and a.ndim == 0 and "numpy" in kinds and isinstance(raw, (np.generic, float, int))
    if (kind == "other" and not scalar_ok) or (kind != "other" and kind not in kinds):
        allowed = " or ".join(_KIND_NAMES[k] for k in kinds)
        return None, f"return {allowed}, got {_KIND_NAMES.get(kind, type(raw).__name__)}" + (f" — {why}" if why else "")
    if a.shape != tuple(shape):
        return None, f"expected {want}, got shape {a.shape}"
    if np.iscomplexobj(a):
        if np.abs(a.imag).max() > 1e-9 * max(1.0, float(np.abs(a.real).max())):
            return None, "return real numbers, got complex ones"
        a = a.real.astype(float)
    return a, None


class Answer:
    """How a check reads the student's answer: ``convert(raw, case) -> (value, problem)``."""

    def convert(self, raw, case: "Case"):  # pragma: no cover - interface
        raise NotImplementedError


class Number(Answer):
    """One number (``plain``: a Python/numpy scalar only, with ``why`` the chapter needs it so)."""

    def __init__(self, plain: bool = False, why: str = ""):
        self.plain, self.why = plain, why

    def convert(self, raw, case):
        return as_number(raw, plain=self.plain, why=self.why)


class Array(Answer):
    """An array shaped like the expected one, of one of ``kinds`` ("numpy", "torch", "list")."""

    def __init__(self, kinds: Sequence[str] = ("numpy", "torch", "list"), why: str = "", noun: str = ""):
        self.kinds, self.why = tuple(kinds), why
        self.noun = noun or ("a tensor" if self.kinds == ("torch",) or self.kinds[0] == "torch" else "an array")

    def convert(self, raw, case):
        return as_array(raw, np.shape(_np(case.expected)), self.kinds, self.why, self.noun)


class Tensors(Answer):
    """A list with one torch tensor per expected tensor, each of the expected shape (values as numpy)."""

    def __init__(self, what: str = "tensor", why: str = ""):
        self.what, self.why = what, why

    def convert(self, raw, case):
        n = len(case.expected)
        want = f"a list of {n} tensor{'s' * (n != 1)}, one per {self.what}"
        special = _problem_for_special(raw, want)
        if special:
            return None, special
        if not isinstance(raw, (list, tuple)):
            got = (f"a single tensor of shape {tuple(raw.shape)}" if _is_tensor(raw)
                   else f"a numpy array of shape {raw.shape}" if isinstance(raw, np.ndarray) else type(raw).__name__)
            return None, f"return {want}, got {got}"
        if len(raw) != n:
            return None, f"return {want}, got a {type(raw).__name__} of {len(raw)}"
        values = []
        for i, (t, e) in enumerate(zip(raw, case.expected)):
            shape = tuple(np.shape(_np(e)))
            if not _is_tensor(t):
                kind = "a numpy array" if isinstance(t, np.ndarray) else type(t).__name__
                return None, (f"item {i} is {kind}: return torch tensors (torch.as_tensor(…))"
                              + (f" — {self.why}" if self.why else ""))
            if tuple(t.shape) != shape:
                return None, f"item {i} has shape {tuple(t.shape)}, expected {shape} (its input's shape)"
            values.append(_np(t))
        return values, None


# ----------------------------------------------------------------------------------------------
# cases, outcomes, hints
# ----------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One call of the student's function: its arguments, a label for messages, the expected answer
    (computed by the check's reference when not given) and whatever else the check needs (``data``)."""
    args: tuple
    label: str
    expected: Any = _MISSING
    data: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened in one case: the raw answer, its converted value (None when there is none), the
    exception raised, the arguments as passed, why the case failed (None when it passed)."""
    raw: Any = None
    value: Any = None
    error: BaseException | None = None
    problem: str | None = None
    args: tuple = ()
    varies: bool = False
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.problem is None


@dataclass
class Hint:
    """A named mistake: ``test(case, outcome) -> bool`` says whether it explains a failing case;
    ``candidate(*args)``, when given, is the answer that mistake produces (see :meth:`like`)."""
    text: str
    test: Callable[[Case, Outcome], bool]
    candidate: Callable | None = None
    rtol: float = RTOL

    @classmethod
    def like(cls, text: str, candidate: Callable, rtol: float = RTOL) -> "Hint":
        """The mistake whose answer is ``candidate(*case.args)`` (NaN matching NaN)."""
        def test(case, out):
            if out.value is None:
                return False
            want = evaluate(candidate, case)
            return want is not None and close(out.value, want, rtol=rtol, equal_nan=True)
        return cls(text, test, candidate, rtol)

    @classmethod
    def raised(cls, text: str, *types: type, contains: str = "") -> "Hint":
        """The mistake that makes the student's code raise one of ``types`` (message containing ``contains``)."""
        def test(case, out):
            return (out.error is not None and isinstance(out.error, types or (Exception,))
                    and contains.lower() in str(out.error).lower())
        return cls(text, test)


def raw_shape(out: Outcome) -> tuple | None:
    """The shape of the raw answer of a case (None when there is no answer, or it has no shape)."""
    if out.raw is None or out.error is not None:
        return None
    try:
        return tuple(np.shape(_np(out.raw)))
    except (TypeError, ValueError, RuntimeError):
        return None


def evaluate(candidate: Callable, case: Case):
    """``candidate(*copies of case.args)`` with numpy warnings silenced; None if it raises."""
    try:
        with np.errstate(all="ignore"):
            return candidate(*[_copy(a) for a in case.args])
    except Exception:  # a candidate that does not apply to this case explains nothing
        return None


# ----------------------------------------------------------------------------------------------
# calling the student's function
# ----------------------------------------------------------------------------------------------
def _copy(x):
    if _is_tensor(x):
        c = x.detach().clone()
        return c.requires_grad_(x.requires_grad) if x.is_leaf and x.requires_grad else c
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list):
        return [_copy(t) for t in x]
    if isinstance(x, tuple):
        return tuple(_copy(t) for t in x)
    return x


def _same(a, b) -> bool:
    """Whether the argument ``b`` (after the call) still equals the original ``a`` (bit for bit)."""
    if _is_tensor(a):
        return _is_tensor(b) and a.shape == b.shape and a.dtype == b.dtype and bool(
            torch_equal_nan(a.detach(), b.detach()))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return True


def torch_equal_nan(a, b) -> bool:
    torch = _torch()
    both_nan = torch.isnan(a) & torch.isnan(b) if a.is_floating_point() else torch.zeros_like(a, dtype=torch.bool)
    return bool(((a == b) | both_nan).all())


@functools.lru_cache(maxsize=None)
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get("stdlib"), paths.get("platstdlib"), paths.get("purelib"), paths.get("platlib"),
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),   # flatlab itself
            os.path.dirname(os.path.abspath(np.__file__))}
    torch = _torch()
    if torch is not None:
        dirs.add(os.path.dirname(os.path.abspath(torch.__file__)))
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen") or filename.startswith("<__array_function__"):
        return True
    if filename.startswith("<"):
        return False
    return os.path.realpath(filename).startswith(_library_dirs())


def _student_frames(err: BaseException) -> list[traceback.FrameSummary]:
    """The frames of the traceback below run_cases' own call that are not library code."""
    frames = traceback.extract_tb(err.__traceback__)[1:]   # [0] is _attempt's own frame
    return [f for f in frames if not _is_library(f.filename)]


def describe_exception(err: BaseException) -> str:
    """``raised Type: message (in fn, line N: `source`)`` — the line is the student's, from the traceback."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    message = message if len(message) <= 200 else message[:197] + "…"
    text = f"raised {type(err).__name__}" + (f": {message}" if message else "")
    frames = _student_frames(err)
    if frames:
        f = frames[-1]
        where = "your function" if f.name == "<lambda>" else f"`{f.name}`"
        text += f" (in {where}, line {f.lineno}" + (f": `{f.line.strip()}`" if f.line else "") + ")"
    return text


def _is_stub(err: BaseException) -> bool:
    """A NotImplementedError raised by the student's own code (not by a library it called)."""
    frames = traceback.extract_tb(err.__traceback__)[1:]
    if not isinstance(err, NotImplementedError) or not frames or _is_library(frames[-1].filename):
        return False
    line = (frames[-1].line or "raise").strip()
    return line.startswith("raise")     # not a library call made from that line that raised it


def _attempt(fn: Callable, args: tuple, out: Outcome) -> None:
    out.args = tuple(_copy(a) for a in args)
    try:
        with np.errstate(all="ignore"):
            out.raw = fn(*out.args)
    except Exception as err:  # the student's code raised: report it, keep the notebook running
        out.error = err


def call(fn: Callable, *args):
    """Run ``fn(*args)``: (result, None), or (None, "not implemented yet" / what it raised and where)."""
    out = Outcome()
    _attempt(fn, args, out)
    if out.error is None:
        return out.raw, None
    if _is_stub(out.error):
        return None, NOT_IMPLEMENTED
    return None, describe_exception(out.error)


def default_compare(case: Case, out: Outcome, rtol: float = RTOL) -> str | None:
    """None when the value matches ``case.expected`` within ``rtol``; else ``expected …, got …``."""
    if close(out.value, case.expected, rtol=rtol):
        return None
    return show_pair(case.expected, out.value)


def run_cases(name: str, fn: Callable, cases: Sequence[Case], *, answer: Answer, reference: Callable | None = None,
              compare: Callable[[Case, Outcome], str | None] | None = None, hints: Sequence[Hint] = (),
              params: Sequence[str] = (), in_place: str = "work on a copy and return a new result",
              repeat: str | None = None, rtol: float = RTOL) -> bool:
    """Run ``fn`` on every case, print ✓ or ✗ with the failing cases and the one hint explaining all of
    them (if any), and return whether every case passed.

    ``reference(*args)`` gives each case's expected answer unless the case has one; ``answer`` converts
    the raw answer; ``compare(case, outcome)`` returns why a converted answer is wrong (default: not
    within ``rtol`` of the expected one); ``params`` names the arguments for the in-place message
    (``in_place`` says what to do instead); with ``repeat`` (a message), each case is run twice and a
    function whose answer changes between the two calls fails with that message."""
    if not callable(fn):
        message = (f"pass your function itself, check_{name}({name}), not {type(fn).__name__} "
                   f"{show(fn) if _is_arraylike(fn) or isinstance(fn, (int, float)) else ''}").rstrip()
        _record(name, "failed", len(cases), [message])
        print(f"✗ {name}: {message}")
        return False
    compare = compare or (lambda case, out: default_compare(case, out, rtol))
    outcomes = []
    for case in cases:
        if case.expected is _MISSING:
            case.expected = reference(*[_copy(a) for a in case.args])
        out = Outcome()
        _attempt(fn, case.args, out)
        outcomes.append(out)
        if out.error is not None:
            if _is_stub(out.error):
                return not_implemented(name)
            out.problem = describe_exception(out.error)
            continue
        changed = [i for i, (a, b) in enumerate(zip(case.args, out.args)) if not _same(a, b)]
        if changed:
            names = ", ".join(f"`{params[i]}`" if i < len(params) else f"argument {i + 1}" for i in changed)
            out.problem = f"{names} {'was' if len(changed) == 1 else 'were'} modified in place — {in_place}"
            continue
        out.value, out.problem = answer.convert(out.raw, case)
        if out.problem:
            out.value = None
            continue
        try:
            out.problem = compare(case, out)
        except Exception as err:  # never crash on a strange answer
            out.problem = f"could not compare the answer with the expected one ({type(err).__name__}: {err})"
        if repeat:
            again = Outcome()
            _attempt(fn, case.args, again)
            value, problem = (None, "raised") if again.error is not None else answer.convert(again.raw, case)
            out.varies = problem is not None or not close(value, out.value, rtol=1e-12, equal_nan=True)
            if out.varies and out.problem is None:
                out.problem = f"a second call with the same inputs returned {show(value)}, the first {show(out.value)} — {repeat}"
    failing = [(c, o) for c, o in zip(cases, outcomes) if not o.passed]
    hint = ""
    for h in hints if failing else ():
        if all(_holds(h, c, o) for c, o in failing):
            hint = h.text
            break
    return report(name, [f"{c.label}: {o.problem}" for c, o in failing], len(cases), hint)


def _holds(h: Hint, case: Case, out: Outcome) -> bool:
    try:
        with np.errstate(all="ignore"):
            return bool(h.test(case, out))
    except Exception:  # a hint that cannot be evaluated here explains nothing
        return False


# every check's cases and hints, for tests that verify that the cases tell the mistakes apart
SPECS: dict[str, Callable[[], dict]] = {}


def spec(name: str):
    """Register ``fn() -> dict(cases=…, hints=…, …)`` as the spec of the check ``name``."""
    def register(fn):
        SPECS[name] = fn
        return fn
    return register


def check(name: str, fn: Callable, **overrides) -> bool:
    """Run the registered spec of ``name`` on ``fn``."""
    return run_cases(name, fn, **{**SPECS[name](), **overrides})
