"""flatlab: an interactive workbook on why some minima generalize.

>>> import flatlab
>>> ds = flatlab.data.gaussian_clouds(n_train=60)
>>> model = flatlab.MLP(2, [16], 3, seed=0)
>>> history = flatlab.fit(model, ds, "sgd", steps=100, lr=0.1, progress=False)
"""
__version__ = "0.1.0"

from . import config, curvature, data, exercises, landscapes, models, plots  # noqa: E402
from . import adaptive, grokking, implicit, optim, sweep  # noqa: E402  (flatlab.sweep(...) runs a sweep)
from .claims import ClaimFailed, claim  # noqa: E402
from .config import budget, by_budget, progress, seed_everything, setup_notebook  # noqa: E402
from .data import Dataset  # noqa: E402
from .models import MLP, ModularMLP, n_params  # noqa: E402
from .curvature import CurvatureProbe, hessian_trace, top_eigenvalues  # noqa: E402
from .train import History, evaluate, fit, make_loss, trajectory  # noqa: E402
from .optim import MFVI, SAM  # noqa: E402

__all__ = [
    "__version__", "adaptive", "grokking", "implicit", "optim", "sweep", "config", "curvature", "CurvatureProbe", "hessian_trace", "top_eigenvalues", "data", "exercises", "landscapes", "models", "plots", "claim", "ClaimFailed", "budget", "by_budget", "progress",
    "seed_everything", "setup_notebook", "Dataset", "MLP", "ModularMLP", "n_params", "History", "evaluate",
    "fit", "make_loss", "trajectory", "SAM", "MFVI",
]
