"""The effective rank of a matrix or of its singular values (Roy & Vetterli 2007)."""
from __future__ import annotations

import numpy as np
import torch


def effective_rank(matrix_or_singular_values) -> float:
    """Roy & Vetterli's effective rank exp(H(p)), p_i = σ_i / Σ_j σ_j (entropy in nats).

    Accepts a matrix (2-D) or its singular values (1-D, non-negative).

    >>> round(effective_rank(np.eye(3)), 6)
    3.0
    """
    a = matrix_or_singular_values
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    if a.ndim == 2:
        s = np.linalg.svd(a, compute_uv=False)
    elif a.ndim == 1:
        s = a
        if (s < 0).any():
            raise ValueError("singular values must be non-negative")
    else:
        raise ValueError(f"matrix_or_singular_values must be 1-D or 2-D, got {a.ndim} dimensions")
    if not np.isfinite(s).all():
        return float("nan")
    total = s.sum()
    if total <= 0:
        raise ValueError("effective rank of the zero matrix is undefined (all singular values are 0)")
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))
