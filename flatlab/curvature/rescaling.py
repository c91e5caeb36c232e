"""The rescaling paradox (Dinh et al. 2017, arXiv:1703.04933) measured: λ_max, worst-case and adaptive sharpness
of a ReLU network whose layers are rescaled by α and 1/α (the same function), for chapter 01."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _validate as _v
from ..models import rescale_layers
from .eigen import top_eigenvalues
from .sharpness import adaptive_sharpness, worst_case_sharpness


def rescaling_table(model, loss_fn, data, alphas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), rho: float = 0.05,
                    layer: int = 0):
    """For each α: λ_max, worst-case and adaptive sharpness of ``rescale_layers(model, α, layer)``, and how
    far its outputs are from the original's. Returns a pandas DataFrame (one row per α).

    Two adaptive sharpnesses: ``adaptive`` with Kwon et al.'s operator ``T = |w| + 0.01`` on weights and
    ``T = 1`` on biases (the paper's), and ``adaptive_exact`` with ``T = |w|`` on every parameter — the
    one the rescaling leaves exactly unchanged."""
    _v.items("alphas", alphas, "the rescaling factors α, e.g. (0.1, 1.0, 10.0)")

    x = data[0]
    with np.errstate(all="ignore"):
        reference = model(x).detach()
    rows = []
    for alpha in alphas:
        r = rescale_layers(model, float(alpha), layer)
        rows.append({
            "alpha": float(alpha),
            "lambda_max": float(top_eigenvalues(r, loss_fn, data, k=1, tol=1e-4)[0]),
            "worst_case": worst_case_sharpness(r, loss_fn, data, rho=rho),
            "adaptive": adaptive_sharpness(r, loss_fn, data, rho=rho),
            "adaptive_exact": adaptive_sharpness(r, loss_fn, data, rho=rho, eta=0.0, weights_only=False),
            "max_output_change": float((r(x).detach() - reference).abs().max()),
        })
    return pd.DataFrame(rows)
