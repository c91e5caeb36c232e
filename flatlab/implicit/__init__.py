"""Implicit bias: which of the many zero-loss solutions gradient descent picks (chapter 04).

Models (``DiagonalLinearNet``, ``DeepMatrixFactorization``), fast full-batch training loops written
with plain torch tensors (manual gradients, many runs batched together; divergence is reported in
the results, never raised), natural gradient descent (damped Fisher / Gauss–Newton systems solved by
conjugate gradients on Jacobian-vector products from ``torch.func``), the exact reference solutions
GD is compared with (hard-margin SVM, minimum-ℓ2 / ℓ1 interpolants, nuclear-norm completion) and
the effective rank.

The package, one concept per module (everything is re-exported here, so ``flatlab.implicit.X`` works as before):

- ``_common``: ``DTYPE``, the tensor checks, the one-thread wrapper, log-spaced record steps, :class:`Runs`;
- ``spectra``: :func:`effective_rank`;
- ``references``: :func:`mirrored`, :class:`SVMSolution`, :func:`svm_direction`, :func:`normalized_margin`,
  :func:`min_l2_interpolant`, :func:`min_l1_interpolant`, :func:`nuclear_norm_completion`;
- ``solvers``: :func:`conjugate_gradient`, :func:`natural_gradient`;
- ``logistic``: ``METHODS``, :func:`log_logistic_loss`, :func:`logistic_loss`, :func:`train_logistic`;
- ``diagonal``: :class:`DiagonalLinearNet`, :func:`diagonal_lr`, :func:`diagonal_hessian`, :func:`train_diagonal`, :func:`relative_error`;
- ``factorization``: :class:`DeepMatrixFactorization`, :func:`factorization_lr`, :func:`completion_errors`,
  :func:`train_factorization`, :func:`half_times`, :func:`with_spectrum`;
- ``ngd``: ``METRICS``, the block preconditioner, :func:`train_ngd_factorization`;
- ``separable``: ``SEPARABLE_METHODS``, :func:`sparse_classification`, :func:`l1_max_margin`, :func:`diagonal_weight`,
  :func:`natural_gradient_diagonal`, :func:`train_separable`, :func:`classification_error`, :class:`SeparableComparison`,
  :func:`separable_comparison` (GD's depth-dependent bias on separable data against natural gradient);
- ``sweeps``: :class:`DiagonalSweep`, :func:`diagonal_sweep`, :class:`FactorizationSweep`, :func:`factorization_sweep`.

References:
* Soudry et al., *The implicit bias of gradient descent on separable data*, arXiv:1710.10345.
* Nacson et al., *Convergence of gradient descent on separable data* (normalized GD), arXiv:1803.01905.
* Woodworth et al., *Kernel and rich regimes in overparametrized models*, arXiv:2002.09277.
* Arora, Cohen, Hu & Luo, *Implicit regularization in deep matrix factorization*, arXiv:1905.13655.
* Gissin, Shalev-Shwartz & Daniely, *The implicit bias of depth*, arXiv:1909.12051.
* Kerekes, Mészáros & Huszár, *Depth without the magic: inductive bias of natural gradient descent*,
  arXiv:2111.11542.
* Gunasekar, Lee, Soudry & Srebro, *Implicit bias of gradient descent on linear convolutional networks*,
  arXiv:1806.00468.
* Martens, *New insights and perspectives on the natural gradient method*, arXiv:1412.1193.
* Pesme, Pillaud-Vivien & Flammarion, *Implicit bias of SGD for diagonal linear networks*, arXiv:2106.09524.
* Mazumder, Hastie & Tibshirani, *Spectral regularization algorithms for learning large incomplete
  matrices* (soft-impute), JMLR 2010.
* Roy & Vetterli, *The effective rank: a measure of effective dimensionality*, EUSIPCO 2007.
"""
from __future__ import annotations

from ._common import DTYPE as DTYPE, Runs as Runs
from .diagonal import (
    DiagonalLinearNet as DiagonalLinearNet, diagonal_hessian as diagonal_hessian, diagonal_lr as diagonal_lr, relative_error as relative_error,
    train_diagonal as train_diagonal,
)
from .factorization import (
    DeepMatrixFactorization as DeepMatrixFactorization, _product as _product, completion_errors as completion_errors,
    factorization_lr as factorization_lr, half_times as half_times, train_factorization as train_factorization,
    with_spectrum as with_spectrum,
)
from .logistic import (
    METHODS as METHODS, log_logistic_loss as log_logistic_loss, logistic_loss as logistic_loss,
    train_logistic as train_logistic,
)
from .ngd import (
    METRICS as METRICS, _block_preconditioner as _block_preconditioner,
    train_ngd_factorization as train_ngd_factorization,
)
from .references import (
    SVMSolution as SVMSolution, min_l1_interpolant as min_l1_interpolant, min_l2_interpolant as min_l2_interpolant,
    mirrored as mirrored, normalized_margin as normalized_margin, nuclear_norm_completion as nuclear_norm_completion,
    svm_direction as svm_direction,
)
from .separable import (
    SEPARABLE_METHODS as SEPARABLE_METHODS, SeparableComparison as SeparableComparison,
    classification_error as classification_error, diagonal_weight as diagonal_weight, l1_max_margin as l1_max_margin,
    natural_gradient_diagonal as natural_gradient_diagonal, separable_comparison as separable_comparison,
    sparse_classification as sparse_classification, train_separable as train_separable,
)
from .solvers import conjugate_gradient as conjugate_gradient, natural_gradient as natural_gradient
from .spectra import effective_rank as effective_rank
from .sweeps import (
    DiagonalSweep as DiagonalSweep, FactorizationSweep as FactorizationSweep, diagonal_sweep as diagonal_sweep,
    factorization_sweep as factorization_sweep,
)
