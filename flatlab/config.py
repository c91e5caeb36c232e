"""Budgets, seeding, device and cache directory.

A chapter runs at one of two budgets: ``"small"`` (continuous integration, a few seconds per
experiment) or ``"full"`` (the real lesson). The budget comes from the ``FLATLAB_BUDGET``
environment variable and defaults to ``"full"``.
"""
from __future__ import annotations

import os
import platform
import random
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, IO

import numpy as np
import torch

from . import _validate as _v

BUDGETS = ("small", "full")
ENV_VAR = "FLATLAB_BUDGET"


def budget(value: str | None = None) -> str:
    """Return the active budget, ``"small"`` or ``"full"``.

    Reads ``FLATLAB_BUDGET`` when ``value`` is None; default ``"full"``.

    >>> budget("small")
    'small'
    """
    source = "budget" if value is not None else ENV_VAR
    if value is None:
        value = os.environ.get(ENV_VAR, "full")
    if not isinstance(value, str):
        raise TypeError(f"{source} must be one of: {', '.join(BUDGETS)}; got {type(value).__name__} {value!r}")
    if value.strip().lower() not in BUDGETS:
        raise ValueError(f"{source}={value!r} is not a budget; allowed values: {', '.join(BUDGETS)}")
    return value.strip().lower()


def by_budget(small, full, value: str | None = None):
    """Pick ``small`` or ``full`` according to the active budget.

    >>> by_budget(200, 2000, "small")
    200
    """
    return small if budget(value) == "small" else full


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a fresh ``torch.Generator`` seeded with ``seed``.

    >>> g = seed_everything(0)
    """
    seed = _v.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def device() -> torch.device:
    """The device flatlab computes on: always the CPU, so results are the same on every laptop."""
    return torch.device("cpu")


CACHE_VAR = "FLATLAB_CACHE"


@contextmanager
def threads(n: int | None, flush_denormal: bool = False):
    """Temporarily run torch with ``n`` intra-op threads (``None``: unchanged) and, if asked, subnormals flushed
    to 0 (flushing is switched off again on exit: torch offers no way to read its previous state).

    The one thread context of flatlab's tiny-tensor loops (chapter 03's noise runs, chapter 04's solvers, the
    grokking recipe): their matrix products are so small that a second thread only adds overhead, and on a
    2-core machine shared with another job every product waits at an OpenMP barrier for it.

    >>> with threads(1):
    ...     torch.get_num_threads()
    1
    """
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    flushed = bool(flush_denormal) and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(old)
        if flushed:
            torch.set_flush_denormal(False)


_BLAS_CONTROLLER = None


def one_blas_thread():
    """A context in which numpy's and scipy's BLAS run single-threaded (ARPACK's vector updates between Hessian
    products: extra BLAS threads only fight torch's for the cores) — threadpoolctl's ``threadpool_limits(1,
    "blas")``, with the loaded libraries scanned once per process instead of at every call (1.3 ms a call).

    >>> with one_blas_thread():
    ...     pass
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        import scipy.linalg  # noqa: F401  (scipy's own BLAS is loaded before the scan sees the libraries)
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def cores() -> int:
    """The CPU cores this process may use: ``FLATLAB_THREADS`` when it is set (the harness and ``make test`` set 1
    while they run chapters side by side), else every core (``os.cpu_count()``).

    >>> import os; old = os.environ.pop("FLATLAB_THREADS", None); os.environ["FLATLAB_THREADS"] = "1"
    >>> cores()
    1
    >>> _ = os.environ.pop("FLATLAB_THREADS") if old is None else os.environ.update(FLATLAB_THREADS=old)
    """
    threads = os.environ.get("FLATLAB_THREADS")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"FLATLAB_THREADS={threads!r} must be a positive integer (or unset)")
        return int(threads)
    return os.cpu_count() or 1


def cache_path() -> Path:
    """Where the cache lives, without creating it: ``FLATLAB_CACHE`` (``~`` expanded; empty or unset:
    ``~/.cache/flatlab``)."""
    raw = os.environ.get(CACHE_VAR, "").strip()
    return Path(os.path.expanduser(raw)) if raw else Path.home() / ".cache" / "flatlab"


def cache_dir() -> Path:
    """Directory for cached data sets and sweeps (``FLATLAB_CACHE`` or ``~/.cache/flatlab``), created if needed.

    ``~`` in ``FLATLAB_CACHE`` is expanded and an empty value means the default.
    """
    path = cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


_WARNED: set[str] = set()


def cache_warning(path: Path, err: BaseException) -> None:
    """Warn (once per directory and process) that the cache at ``path`` is unusable; work goes on uncached."""
    key = str(path)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(f"the flatlab cache {path} is not usable ({type(err).__name__}: {err}); continuing without "
                  f"caching (set {CACHE_VAR} to a writable directory)", RuntimeWarning, stacklevel=3)


def cache_dir_or_none(*parts: str, root: Path | None = None) -> Path | None:
    """``cache_dir() / parts`` (or ``root / parts``), created if needed; None, after one warning, when it
    cannot be created (a read-only disk, a file in the way)."""
    path = (cache_path() if root is None else Path(root)).joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        cache_warning(path, err)
        return None
    return path


def _open_temp(directory: Path, suffix: str):
    """A new temporary file in ``directory``: (file descriptor, path)."""
    return tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> bool:
    """Write ``path`` atomically: ``write(file)`` into a temporary file in the same directory, then
    ``os.replace`` — a reader never sees half a file. On an OSError (read-only, disk full) warn once and
    return False (the caller goes on without the cache)."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _open_temp(path.parent, path.suffix)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError as err:
        cache_warning(path.parent, err)
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


PROGRESS_MIN_STEPS = 1000  # training loops (fit, grok) show a bar over their steps by default from this many steps


def progress_bar(**kwargs):
    """A tqdm progress bar: a widget in a live kernel, plain text in a book build.

    A built book has no kernel, so a widget bar would leave a dead widget (and its saved state) in the
    page; ``flatlab book`` sets ``FLATLAB_OFFLINE_FIGURES=1`` and gets a text bar on stderr instead.
    """
    if os.environ.get("FLATLAB_OFFLINE_FIGURES") == "1":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(**kwargs)


def progress(iterable, desc: str, *, total: int | None = None, show: bool = True):
    """``iterable`` as it is, with a progress bar over its items while it is consumed (:func:`progress_bar`, gone
    when done). ``show=False``, or fewer than two items, gives ``iterable`` itself and draws nothing.

    For a cell's loop over a handful of slow runs, so that no cell sits silent::

        for seed in flatlab.progress(range(3), "runs"):
            ...

    >>> list(progress([1, 2, 3], "items", show=False))
    [1, 2, 3]
    """
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a str (the bar's label), got {type(desc).__name__}")
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            pass
    else:
        total = _v.integer("total", total, 0)
    if not _v.boolean("show", show) or (total is not None and total < 2):
        return iterable
    return progress_bar(iterable=iterable, total=total, desc=desc, leave=False)


def environment_line(strict: bool = True) -> str:
    """One line describing the environment (versions, threads, budget).

    With ``strict=False`` an invalid ``FLATLAB_BUDGET`` shows as ``budget ?`` instead of raising.
    """
    import plotly

    from . import __version__

    try:
        active = budget()
    except (TypeError, ValueError):
        if strict:
            raise
        active = "?"
    return (
        f"flatlab {__version__} | python {platform.python_version()} | torch {torch.__version__} "
        f"| numpy {np.__version__} | plotly {plotly.__version__} | threads {torch.get_num_threads()} "
        f"| budget {active}"
    )


def deterministic_algorithms() -> None:
    """torch's deterministic algorithms, warnings only — ``torch.use_deterministic_algorithms(True, warn_only=True)``
    without loading the compiler. torch's function imports ``torch._inductor.config`` (and with it torch._dynamo:
    ~1.2 s of every chapter's start) only to set Inductor's own flag; flatlab compiles nothing, so that flag is set
    only when Inductor is loaded already."""
    import sys

    torch._C._set_deterministic_algorithms(True, warn_only=True)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True


def setup_notebook(seed: int = 0, chapter: str = "", renderer: str | None = None) -> str:
    """Prepare a chapter: seed everything, set the plotly template and renderer, print versions.

    ``chapter`` names the chapter in the claims it records (``FLATLAB_CHAPTER``).

    The renderer defaults to ``notebook_connected+plotly_mimetype`` in a kernel so figures show
    both in JupyterLab and in exported HTML; ``FLATLAB_RENDERER`` overrides it.
    """
    import plotly.io as pio

    from .plots import register_template

    seed_everything(seed)
    _v.instance("chapter", chapter, str, "a string (the chapter's name)")
    if os.environ.get("FLATLAB_THREADS"):  # e.g. 1 when the test suite runs two chapters side by side
        torch.set_num_threads(cores())
    if chapter:
        os.environ["FLATLAB_CHAPTER"] = chapter
    os.environ["FLATLAB_SEED"] = str(seed)
    deterministic_algorithms()
    register_template()
    # plotly_mimetype shows figures in JupyterLab; "notebook" also embeds plotly.js (offline) so
    # figures render in exported HTML without a CDN.
    pio.renderers.default = renderer or os.environ.get("FLATLAB_RENDERER", "plotly_mimetype+notebook")
    line = environment_line() + f" | seed {seed}"
    print(line)
    return line
