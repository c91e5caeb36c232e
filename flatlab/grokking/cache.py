"""The on-disk cache of grokking histories: :func:`cached_grok` (``cache_dir()/grokking``), its entry path
and ``_CACHE_VERSION``, the one version string of the entries."""
from __future__ import annotations

import pandas as pd

from ..train import History
from .recipe import GrokConfig, grok


def _cache_path(config: GrokConfig):
    from ..config import cache_dir_or_none

    path = cache_dir_or_none("grokking")
    return None if path is None else path / f"{_CACHE_VERSION}-{config.key()}.pkl"


_CACHE_VERSION = "v2"   # v2: dropout masks drawn with torch.rand (same law, another stream)


def cached_grok(config: GrokConfig, cache: bool = True, progress: bool | None = False) -> History:
    """The history of ``grok(config)``, read from / written to ``cache_dir()/grokking`` when ``cache``.

    A damaged entry is recomputed; entries are written atomically; an unusable cache directory gives
    one warning and the run goes on uncached. ``progress``: :func:`grok`'s progress bar (off by default: the
    sweeps that call this show one bar over their runs)."""
    from ..config import atomic_write

    if not isinstance(config, GrokConfig):
        raise TypeError(f"config must be a GrokConfig, got {type(config).__name__}")
    if not cache:
        return grok(config, progress=progress).history
    config.validate()
    path = _cache_path(config)
    if path is not None and path.exists():
        try:
            return pd.read_pickle(path)
        except Exception:  # a damaged cache entry: recompute
            pass
    history = grok(config, progress=progress).history
    if path is not None:
        atomic_write(path, history.to_pickle)
    return history
