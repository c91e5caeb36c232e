"""The on-disk cache of sweep results: ``_CACHE_VERSION``, and one pickle per sweep read back (``_load_cached``,
damaged entries recomputed) or written atomically (``_store_cached``)."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pandas as pd

from ..config import atomic_write, cache_dir_or_none, cache_warning



_CACHE_VERSION = 2


def _load_cached(path: Path, key: str, n_runs: int) -> list[pd.DataFrame] | None:
    """The frames stored under ``path``, or None: missing, or damaged (then recomputed, with a warning)."""
    try:
        with open(path, "rb") as fh:
            stored = pickle.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:  # unreadable: the cache is not usable, the sweep runs
        cache_warning(path.parent, err)
        return None
    except Exception as err:  # truncated, unreadable, or written by an incompatible version
        warnings.warn(f"the cached sweep {path} is damaged ({type(err).__name__}: {err}); recomputing it",
                      RuntimeWarning, stacklevel=3)
        return None
    frames = stored.get("frames") if isinstance(stored, dict) else None
    if (stored.get("key") if isinstance(stored, dict) else None) != key or not isinstance(frames, list) \
            or len(frames) != n_runs or not all(isinstance(f, pd.DataFrame) for f in frames):
        warnings.warn(f"the cached sweep {path} does not hold this sweep's results; recomputing it",
                      RuntimeWarning, stacklevel=3)
        return None
    return frames


def _store_cached(path: Path, key: str, frames: list[pd.DataFrame]) -> None:
    """Write the frames atomically; an unusable directory warns once and the sweep goes on uncached."""
    if cache_dir_or_none(root=path.parent) is None:
        return
    atomic_write(path, lambda fh: pickle.dump({"version": _CACHE_VERSION, "key": key, "frames": frames}, fh,
                                              protocol=pickle.HIGHEST_PROTOCOL))
