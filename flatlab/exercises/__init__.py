"""Check functions for the chapters' exercises: they run a student's function on several cases
and say *what* is wrong (the case, the expected and the obtained value), not only that it is.

Each ``check_*`` returns True when every case passes and prints a short report either way; a
function that still raises ``NotImplementedError`` gets a friendly note instead of a traceback, and
each has a ``*_reference`` solution the chapter falls back to. All checks share one case runner,
:func:`flatlab.exercises.base.run_cases` (copies of the inputs, in-place edits detected, one answer
converter, exceptions shown with the student's line, a hint only when one mistake explains every failing
case). One module per topic:
``basics`` (chapters 00–01), ``sam`` (02), ``lr`` (03), ``implicit`` (04), ``grokking`` (05),
``adaptive`` (06).
"""
from . import adaptive, basics, grokking, implicit, lr, sam
from .adaptive import *  # noqa: F401,F403
from .basics import *  # noqa: F401,F403
from .grokking import *  # noqa: F401,F403
from .implicit import *  # noqa: F401,F403
from .lr import *  # noqa: F401,F403
from .sam import *  # noqa: F401,F403

__all__ = [name for module in (basics, sam, lr, implicit, grokking, adaptive) for name in module.__all__]


def checks() -> list[str]:
    """Names of every ``check_*`` function, chapter by chapter."""
    return [name for name in __all__ if name.startswith("check_")]
