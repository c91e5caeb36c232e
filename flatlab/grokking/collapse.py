"""Softmax collapse: :func:`softmax_collapse` (the fraction of losses exactly 0, the largest |logit|) and
:class:`CollapseProbe`, the same as a ``flatlab.train.fit`` probe."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as _v
from ..data import Dataset
from .forward import logits
from .losses import _check_logits


def softmax_collapse(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Softmax collapse: the fraction of examples whose cross-entropy is *exactly* 0 in the logits' dtype,
    and the largest |logit|.

    A loss of exactly 0 means softmax(x)_y rounded to 1, so the correct class's gradient
    softmax_y − 1 underflows to 0 (the other classes' tiny probabilities usually do not).

    >>> softmax_collapse(torch.tensor([[100.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 0]))
    {'collapsed': 0.5, 'max_logit': 100.0}
    """
    _check_logits(logits)
    if logits.dim() != 2 or not isinstance(y, torch.Tensor) or y.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (batch, classes) and y (batch,), got {tuple(logits.shape)} and "
                         f"{tuple(getattr(y, 'shape', ()))}")
    with torch.no_grad():
        losses = F.cross_entropy(logits, y.long(), reduction="none")
        return {"collapsed": float((losses == 0).float().mean()) if len(y) else float("nan"),
                "max_logit": float(logits.abs().max()) if logits.numel() else float("nan")}


class CollapseProbe:
    """A ``flatlab.train.fit`` probe: ``collapsed`` (fraction of training examples with loss exactly 0) and
    ``max_logit`` every ``every`` steps.

    >>> probe = CollapseProbe(every=10)
    """

    def __init__(self, every: int = 10):
        self.every = _v.integer("every", every, 1)

    def __call__(self, model: nn.Module, dataset: Dataset, step: int) -> dict[str, float]:
        with torch.no_grad():
            return softmax_collapse(logits(model, dataset.x_train), dataset.y_train)
