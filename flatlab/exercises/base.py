"""Shared machinery of the check functions: run a student's function safely, report what is wrong."""
from __future__ import annotations

from typing import Callable


def report(name: str, failures: list[str], n_cases: int) -> bool:
    """Print ✓ or ✗ with (at most three of) the failing cases; return whether all passed."""
    if failures:
        print(f"✗ {name}: {len(failures)} of {n_cases} cases wrong")
        for f in failures[:3]:
            print("   ", f)
        return False
    print(f"✓ {name}: all {n_cases} cases correct")
    return True


NOT_IMPLEMENTED = "not implemented yet"


def not_implemented(name: str) -> bool:
    """The friendly note for a stub that still raises NotImplementedError; returns False."""
    print(f"… {name} is not implemented yet — the chapter continues with flatlab's reference.")
    return False


def as_number(got) -> tuple[float | None, str | None]:
    """``(float(got), None)``, or ``(None, "return a number, got <type>")`` when it is not one."""
    try:
        return float(got), None
    except (TypeError, ValueError):
        return None, f"return a number, got {type(got).__name__}"


def call(fn: Callable, *args):
    """Run a student's ``fn(*args)``: (result, None), or (None, "not implemented yet" / what it raised)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, NOT_IMPLEMENTED
    except Exception as err:  # the student's code raised: show it, keep the notebook running
        return None, f"raised {type(err).__name__}: {err}"
