"""Training loops: ``fit`` for models on data sets (its :class:`History` built by a :class:`Recorder`, as every
loop's is), and the 2-D runners (``optimizer_trajectory``, ``trajectory``, ``landscape_run``, ``quadratic_run``).

``fit`` returns a :class:`History` (a pandas DataFrame, one row per evaluation) with
``diverged`` / ``diverged_step`` attributes: a NaN/inf (or exploding) loss stops the run
cleanly instead of raising. Probes are called on the model every ``probe.every`` steps and add
columns to the history (e.g. ``flatlab.curvature.CurvatureProbe`` adds ``lambda_max``).
"""
from __future__ import annotations

from .core import LOSSES as LOSSES
from .core import OPTIMIZERS as OPTIMIZERS
from .core import Probe as Probe
from .core import _check_model_fits as _check_model_fits
from .core import accuracy as accuracy
from .core import check_dataset as check_dataset
from .core import evaluate as evaluate
from .core import make_loss as make_loss
from .core import make_optimizer as make_optimizer
from .history import History as History
from .history import Recorder as Recorder
from .loop import fit as fit
from .sampler import EpochSampler as EpochSampler
from .schedules import linear_warmup as linear_warmup
from .trajectories import HeavyBall as HeavyBall
from .trajectories import Trajectory as Trajectory
from .trajectories import _start_point as _start_point
from .trajectories import landscape_run as landscape_run
from .trajectories import optimizer_trajectory as optimizer_trajectory
from .trajectories import quadratic_run as quadratic_run
from .trajectories import trajectory as trajectory
