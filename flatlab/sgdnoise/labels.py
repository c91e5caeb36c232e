"""Label noise: a data set with a fraction of its training labels replaced by other classes, and what a model
does with them — how many corrupted labels it reproduces (memorization), how well it fits the clean ones, and
how it does on the (clean) test set."""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .. import _validate as _v
from ..data import Dataset, corrupt_labels


def noisy_labels(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """``dataset`` with ``round(fraction · n_train)`` training labels replaced by a *different* class, at random.

    The test set is left clean. ``meta["corrupted"]`` is the boolean mask of the changed training examples and
    ``meta["clean_y_train"]`` their original labels (``flatlab.data.corrupt_labels`` draws them from ``seed``).

    >>> from flatlab.data import gaussian_clouds
    >>> ds = noisy_labels(gaussian_clouds(n_train=40), 0.25, seed=0)
    >>> int(ds.meta["corrupted"].sum()), bool((ds.y_train != ds.meta["clean_y_train"]).sum() == 10)
    (10, True)
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    if dataset.task != "classification" or dataset.n_classes < 2:
        raise ValueError(f"dataset must be a classification task with at least 2 classes, got task={dataset.task!r} "
                         f"with n_classes={dataset.n_classes}")
    fraction = _v.number("fraction", fraction, 0, 1, high_open=True)
    seed = _v.seed("seed", seed)
    y, mask = corrupt_labels(dataset.y_train, fraction, dataset.n_classes, seed=seed)
    meta = {**dataset.meta, "corrupted": mask, "clean_y_train": dataset.y_train.clone(), "label_noise": fraction}
    return replace(dataset, name=f"{dataset.name}, {fraction:.0%} labels randomized", y_train=y, meta=meta)


def _check_noisy(dataset: Dataset) -> None:
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset")
    if "corrupted" not in dataset.meta or "clean_y_train" not in dataset.meta:
        raise ValueError("dataset has no record of its corrupted labels: build it with noisy_labels(dataset, fraction)")


@torch.no_grad()
def label_metrics(model: nn.Module, dataset: Dataset) -> dict:
    """What ``model`` does with a :func:`noisy_labels` data set.

    ``memorized``: accuracy on the corrupted training examples measured against their *corrupted* labels (a
    model that only learned the rule scores about 0 here); ``clean_train_acc`` / ``clean_train_loss``: accuracy
    and cross-entropy on the training examples whose labels were left alone; ``test_acc``: on the clean test set.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> ds = noisy_labels(gaussian_clouds(n_train=40), 0.25)
    >>> sorted(label_metrics(MLP(2, [8], 3, seed=0), ds))
    ['clean_train_acc', 'clean_train_loss', 'memorized', 'test_acc']
    """
    _v.instance("model", model, nn.Module, "a torch.nn.Module")
    _check_noisy(dataset)
    mask, clean = dataset.meta["corrupted"], dataset.meta["clean_y_train"]
    was_training = model.training
    model.eval()
    try:
        out = model(dataset.x_train)
        test_pred = model(dataset.x_test).argmax(1)
    finally:
        model.train(was_training)
    pred = out.argmax(1)
    nan = float("nan")
    return {
        "memorized": float((pred[mask] == dataset.y_train[mask]).float().mean()) if mask.any() else nan,
        "clean_train_acc": float((pred[~mask] == clean[~mask]).float().mean()) if (~mask).any() else nan,
        "clean_train_loss": float(nn.functional.cross_entropy(out[~mask], clean[~mask])) if (~mask).any() else nan,
        "test_acc": float((test_pred == dataset.y_test).float().mean()),
    }


class MemorizationProbe:
    """A probe for ``fit`` and ``flatlab.sweep.Run``: :func:`label_metrics` every ``every`` steps.

    The columns are ``memorized``, ``clean_train_acc`` and ``clean_train_loss`` (``fit`` records ``test_acc``
    itself).
    """

    def __init__(self, every: int = 1):
        self.every = _v.integer("every", every, 1)

    def __call__(self, model: nn.Module, dataset: Dataset, step: int) -> dict:
        values = label_metrics(model, dataset)
        del values["test_acc"]
        return values

    def __repr__(self) -> str:
        return f"MemorizationProbe(every={self.every})"
