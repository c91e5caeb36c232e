"""Curvature of a loss landscape: Hessian-vector products, eigenvalues, trace, spectra, sharpness.

Everything here works on a model, a loss function ``loss_fn(model(x), y) -> scalar`` and a batch
``data = (x, y)``; nothing forms the Hessian. Flat vectors follow the order of
``model.parameters()`` restricted to the parameters with ``requires_grad``.

References
----------
- Pearlmutter 1994, "Fast exact multiplication by the Hessian" (double backward HVP).
- Lanczos 1950; Lehoucq, Sorensen & Yang 1998 (ARPACK, via ``scipy.sparse.linalg.eigsh``).
- Hutchinson 1989, "A stochastic estimator of the trace"; Meyer, Musco, Musco & Woodruff 2021,
  "Hutch++: optimal stochastic trace estimation" (arXiv:2010.09649).
- Ubaru, Chen & Saad 2017, "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature";
  Ghorbani, Krishnan & Xiao 2019, "An investigation into neural net optimization via Hessian
  eigenvalue density" (arXiv:1901.10159); Yao et al. 2020, PyHessian (arXiv:1912.07145).
- Keskar et al. 2017 (arXiv:1609.04836); Foret et al. 2021, SAM (arXiv:2010.01412);
  Kwon et al. 2021, ASAM (arXiv:2102.11600); Andriushchenko et al. 2023, "A modern look at the
  relationship between sharpness and generalization" (arXiv:2302.07011).
- Li et al. 2018, "Visualizing the loss landscape of neural nets" (arXiv:1712.09913);
  Goodfellow, Vinyals & Saxe 2015, linear interpolation (arXiv:1412.6544).
- Dinh et al. 2017, "Sharp minima can generalize for deep nets" (arXiv:1703.04933).
- Cohen et al. 2021, "Gradient descent on neural networks typically occurs at the edge of
  stability" (arXiv:2103.00065) — the thresholds of :func:`stability_threshold`.

Conventions
-----------
- Models are evaluated in their current mode (``train()``/``eval()``); call ``model.eval()``
  first if it has dropout. Forward passes run on copies of the buffers, so BatchNorm running
  statistics are never updated: measuring curvature does not change the model (nor ``.grad``).
- Every function that perturbs the parameters evaluates the model through
  ``torch.func.functional_call`` and never writes to the parameters: they are unchanged, bit
  for bit, afterwards.

Layout
------
One concept per file; this ``__init__`` re-exports them all (``flatlab.curvature.X`` as before).

- ``_common``: the ``Data``/``LossFn`` types, :class:`NonFiniteLossError`, argument checks, the forward
  loss, flat ↔ per-parameter vectors, Rademacher probes, ``_Loss`` (the loss at perturbed weights).
- ``hessian``: :func:`hvp` and :class:`HessianOperator`.
- ``eigen``: :func:`top_eigenvalues` (Lanczos / ARPACK).
- ``trace``: :func:`hessian_trace` (Hutchinson, Hutch++) and ``TRACE_METHODS``.
- ``density``: :func:`slq_nodes` and :func:`spectral_density` (stochastic Lanczos quadrature).
- ``sharpness``: :func:`worst_case_sharpness`, :func:`adaptive_sharpness`, :func:`average_sharpness`.
- ``directions``: :func:`random_direction`, :func:`loss_line`, :func:`loss_surface`, :func:`interpolate`,
  :func:`slice_surfaces`.
- ``stability``: :func:`stability_threshold`, :func:`quadratic_rate` and ``STABILITY_METHODS``.
- ``rescaling``: :func:`rescaling_table` (the rescaling paradox, measured).
- ``probes``: :class:`CurvatureProbe` and :class:`SharpestDirections`.
"""
from __future__ import annotations

from ._common import Data as Data, LossFn as LossFn, NonFiniteLossError
from ._common import _rademacher as _rademacher, _split as _split
from .density import slq_nodes, spectral_density
from .directions import interpolate, loss_line, loss_surface, random_direction, slice_surfaces
from .eigen import _top_eigs as _top_eigs, top_eigenvalues
from .hessian import HessianOperator, hvp
from .probes import CurvatureProbe, SharpestDirections
from .sharpness import ASAM_ETA as ASAM_ETA, adaptive_sharpness, average_sharpness, worst_case_sharpness
from .rescaling import rescaling_table
from .stability import OPTIMIZERS as OPTIMIZERS, STABILITY_METHODS, quadratic_rate, stability_threshold
from .trace import TRACE_METHODS, _trace as _trace, hessian_trace

__all__ = [
    "hvp",
    "HessianOperator",
    "top_eigenvalues",
    "hessian_trace",
    "slq_nodes",
    "spectral_density",
    "worst_case_sharpness",
    "average_sharpness",
    "adaptive_sharpness",
    "random_direction",
    "loss_line",
    "loss_surface",
    "interpolate",
    "slice_surfaces",
    "rescaling_table",
    "quadratic_rate",
    "stability_threshold",
    "CurvatureProbe",
    "SharpestDirections",
    "NonFiniteLossError",
    "TRACE_METHODS",
    "STABILITY_METHODS",
]
