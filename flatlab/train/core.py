"""What every training loop shares: losses by name, full-batch evaluation, the
optimizers ``fit`` builds by name, and the checks of a data set, a model and an optimizer before training."""
from __future__ import annotations

from typing import Callable, Iterable, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as _v
from .. import optim
from ..data import Dataset


LOSSES = ("auto", "cross_entropy", "mse", "logistic")
OPTIMIZERS = ("sgd", "adam", "adamw")


class Probe(Protocol):
    """What ``fit`` needs of a probe: ``every`` (steps) and a call returning named numbers."""

    every: int

    def __call__(self, model: nn.Module, dataset: Dataset, step: int) -> dict[str, float]: ...


def make_loss(dataset: Dataset, loss: str = "auto") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``(model_output, y) -> scalar`` for a data set.

    ``"auto"``: cross-entropy for classification, logistic for ±1 labels, MSE for regression.
    ``"mse"`` on a classification task regresses one-hot targets: mean over examples of
    ½‖f(x) − e_y‖² (the setting of Cohen et al.'s edge-of-stability experiments).
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    _v.choice("loss", loss, LOSSES)
    if loss == "auto":
        loss = {"classification": "cross_entropy", "binary": "logistic", "regression": "mse"}[dataset.task]
    if loss == "cross_entropy":
        if dataset.task != "classification":
            raise ValueError(f"loss='cross_entropy' needs a classification task, not {dataset.task!r}")
        return F.cross_entropy
    if loss == "logistic":
        if dataset.task != "binary":
            raise ValueError(f"loss='logistic' needs ±1 labels (task 'binary'), not {dataset.task!r}")
        return lambda out, y: F.softplus(-y * out.reshape(y.shape)).mean()
    if dataset.task == "classification":
        k = dataset.n_classes
        return lambda out, y: 0.5 * (out - F.one_hot(y, k).to(out.dtype)).pow(2).sum(1).mean()
    return lambda out, y: 0.5 * (out.reshape(y.shape) - y).pow(2).mean()


def accuracy(out: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Fraction correct (NaN for regression)."""
    if task == "classification":
        return float((out.argmax(1) == y).float().mean())
    if task == "binary":
        return float((torch.sign(out.reshape(y.shape)) == y).float().mean())
    return float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, loss_fn=None) -> dict[str, float]:
    """Full-batch loss and accuracy on the train and test sets."""
    loss_fn = loss_fn or make_loss(dataset)
    was_training = model.training
    model.eval()
    row = {}
    for split in ("train", "test"):
        x, y = getattr(dataset, split)
        if len(x) == 0:
            row[f"{split}_loss"], row[f"{split}_acc"] = float("nan"), float("nan")
            continue
        out = model(x)
        row[f"{split}_loss"] = float(loss_fn(out, y))
        row[f"{split}_acc"] = accuracy(out, y, dataset.task)
    model.train(was_training)
    return row


def make_optimizer(params: Iterable, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                   weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """Build a torch optimizer by name (``"sgd"``, ``"adam"``, ``"adamw"``) with checked arguments, through
    :func:`flatlab.optim.make_optimizer` (which knows every optimizer; ``fit`` accepts any instance)."""
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or a torch.optim.Optimizer instance, "
                        f"got {type(optimizer).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is unknown; allowed values: {', '.join(OPTIMIZERS)} "
                         "or a torch.optim.Optimizer instance")
    lr = _v.positive("lr", lr)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    weight_decay = _v.non_negative("weight_decay", weight_decay)
    betas = _v.pair("betas", betas, 0, 1, high_open=True)
    if optimizer == "sgd":
        return optim.make_optimizer(params, "sgd", lr, momentum=momentum, weight_decay=weight_decay)
    return optim.make_optimizer(params, optimizer, lr, betas=betas, weight_decay=weight_decay)


def check_dataset(dataset: Dataset) -> None:
    """Raise a ValueError naming the problem when ``dataset`` cannot be trained on.

    Checked on the *whole* train and test sets: at least one training example; finite features
    (and finite targets for regression); classification labels integers in ``0..n_classes-1``;
    binary labels ±1. ``fit`` and ``flatlab.sweep`` call it before training, so a mistyped or
    mutated data set is reported as such, not as a diverged run or a crash mid-run.
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    if dataset.n_train == 0:
        raise ValueError(f"dataset {dataset.name!r} has no training examples (x_train has shape "
                         f"{tuple(dataset.x_train.shape)}): fit needs at least one")
    k = dataset.n_classes
    if dataset.task == "classification" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"dataset.n_classes={k!r} must be a positive integer (≥ 1) for a classification task")
    for split in ("train", "test"):
        x, y = getattr(dataset, split)
        _v.finite_tensor(f"dataset.x_{split}", x)
        if dataset.task == "classification":
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise ValueError(f"dataset.y_{split} must hold integer class labels 0..{k - 1} (dtype torch.long), "
                                 f"got dtype {y.dtype}; convert with y.long()")
            if y.dim() != 1:
                raise ValueError(f"dataset.y_{split} must be a vector of class labels, got shape {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
                bad = int(((y < 0) | (y >= k)).sum())
                raise ValueError(f"dataset.y_{split} holds {bad} label(s) outside 0..{k - 1} (found "
                                 f"{int(y.min())}..{int(y.max())}); labels must be in 0..n_classes-1 = 0..{k - 1}")
        elif dataset.task == "binary":
            if y.numel() and not bool(((y == 1) | (y == -1)).all()):
                raise ValueError(f"dataset.y_{split} must hold labels ±1 for the binary task (task 'binary'); "
                                 f"found other values, e.g. {y[(y != 1) & (y != -1)][0].item()!r}")
        else:
            _v.finite_tensor(f"dataset.y_{split}", y)


def _check_model_fits(model: nn.Module, dataset: Dataset, loss_fn) -> None:
    """One forward pass on two training examples, in eval mode and without gradients, so the model's
    state (BatchNorm running statistics, dropout's random numbers, every module's mode) is unchanged."""
    x, y = dataset.x_train[:2], dataset.y_train[:2]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
            loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(
            f"dataset {dataset.name!r} does not fit the model: inputs of shape {tuple(dataset.x_train.shape)} "
            f"({dataset.x_train.dtype}) with targets {tuple(dataset.y_train.shape)} gave: {err}") from None
    finally:
        for m, mode in modes:
            m.training = mode
    if dataset.task == "classification" and (out.dim() != 2 or out.shape[1] != dataset.n_classes):
        raise ValueError(f"dataset {dataset.name!r} has {dataset.n_classes} classes but the model outputs "
                         f"shape {tuple(out.shape[1:])}")


def _check_optimizer(opt: torch.optim.Optimizer, model: nn.Module) -> None:
    """The optimizer must train this model: its parameters are the model's, some require grad, and
    its groups' learning rate, weight decay and momentum are finite and in range."""
    own = {id(p) for p in model.parameters()}
    params = [p for g in opt.param_groups for p in g["params"]]
    foreign = sum(id(p) not in own for p in params)
    if foreign:
        raise ValueError(f"optimizer holds {foreign} of {len(params)} parameter tensor(s) that are not parameters of "
                         f"the model: fit would train nothing it evaluates; build the optimizer over this model, "
                         f"e.g. torch.optim.SGD(model.parameters(), lr=0.1)")
    if not any(p.requires_grad for p in params):
        raise ValueError("none of the optimizer's parameters requires grad (requires_grad=False): nothing can train")
    for i, group in enumerate(opt.param_groups):
        where = f"optimizer.param_groups[{i}]"
        _v.positive("lr", group["lr"], hint=where)
        for key in ("weight_decay", "momentum"):
            if isinstance(group.get(key), (int, float, np.number, torch.Tensor)):
                _v.non_negative(key, group[key], hint=where)


def _schedule_factor(value, step: int) -> float:
    """The checked learning-rate multiplier ``schedule(step - 1)`` of step ``step``."""
    return _v.non_negative(f"schedule({step - 1})", value,
                           hint=f"the learning-rate multiplier η_t/η of step {step}")
