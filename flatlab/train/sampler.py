"""The one minibatch sampler of flatlab's training loops."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch



class EpochSampler:
    """Minibatch indices without replacement, reshuffled when an epoch cannot fill another batch (its last,
    incomplete batch is dropped) — the one sampler of ``fit``, PAPA's population and the vmapped sweeps.

    One *stream* per entry of ``generators``, each with its own order; a generator may appear several times
    (PAPA draws its members' orders from one generator in turn). ``next(streams)`` returns the next batch of
    each listed stream as a ``(len(streams), batch_size)`` index tensor; all streams share the position in the
    epoch, and a reshuffle draws new orders for the listed streams only (a sweep's stopped runs draw no more).

    >>> s = EpochSampler(5, 2, [torch.Generator().manual_seed(0)])
    >>> [s.next()[0].tolist() for _ in range(3)]   # two batches of the first epoch, then a new epoch
    [[4, 0], [1, 3], [3, 4]]
    """

    def __init__(self, n: int, batch_size: int, generators: Sequence[torch.Generator]):
        self.n, self.batch_size, self.generators = n, batch_size, list(generators)
        self._orders = {i: torch.randperm(n, generator=g) for i, g in enumerate(self.generators)}
        self._pos = 0

    def next(self, streams: Iterable[int] | None = None) -> torch.Tensor:
        streams = range(len(self.generators)) if streams is None else list(streams)
        if self._pos + self.batch_size > self.n:
            for i in streams:
                self._orders[i] = torch.randperm(self.n, generator=self.generators[i])
            self._pos = 0
        idx = torch.stack([self._orders[i][self._pos:self._pos + self.batch_size] for i in streams])
        self._pos += self.batch_size
        return idx
