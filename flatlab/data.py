"""Tasks as tensors: every data set is generated offline from a seed (nothing is downloaded).

Each function returns a :class:`Dataset` with train and test tensors. Classification tasks have
integer labels and ``n_classes``; regression tasks have float targets and ``n_classes = 0``.

References: MNIST-1D (Greydanus & Kobak, arXiv:2011.14439); grokking on modular arithmetic
(Power et al., arXiv:2201.02177); implicit bias tasks (Soudry et al., arXiv:1710.10345;
Woodworth et al., arXiv:2002.09277; Arora et al., arXiv:1905.13655).
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from . import _validate as _v
from .config import atomic_write, cache_dir_or_none

TASKS = ("classification", "regression", "binary")


@dataclass
class Dataset:
    """Train and test tensors of one task.

    ``task`` is ``"classification"`` (integer labels in ``0..n_classes-1``), ``"binary"`` (labels
    ±1 as floats, for logistic regression) or ``"regression"`` (float targets).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str = "classification"
    n_classes: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        _v.choice("task", self.task, TASKS)
        self.n_classes = _v.integer("n_classes", self.n_classes, 0)
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
                raise TypeError(f"x_{split} and y_{split} must be torch tensors")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"x_{split} has {x.shape[0]} examples but y_{split} has {y.shape[0]}")

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test examples (data are already shuffled)."""
        for name, n, total in (("n_train", n_train, self.n_train), ("n_test", n_test, self.n_test)):
            n = _v.integer(name, n, allow_none=True)
            if n is not None and not (1 <= n <= total):
                raise ValueError(f"{name}={n} must be between 1 and {total}")
            if name == "n_train":
                n_train = n
            else:
                n_test = n
        nt = self.n_train if n_train is None else n_train
        ns = self.n_test if n_test is None else n_test
        return replace(self, x_train=self.x_train[:nt], y_train=self.y_train[:nt],
                       x_test=self.x_test[:ns], y_test=self.y_test[:ns], meta=dict(self.meta))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, task={self.task}, train={tuple(self.x_train.shape)}, "
                f"test={tuple(self.x_test.shape)}, n_classes={self.n_classes})")


def _fraction(name: str, value, low_open: bool = True) -> float:
    return _v.number(name, value, 0, 1, low_open=low_open, high_open=True)


def _count(name: str, value, minimum: int = 1) -> int:
    return _v.integer(name, value, minimum)


def _split_sizes(name: str, value: float, total: int, n_first: int, first: str, second: str) -> None:
    """A fraction that leaves one side of a split empty is refused, naming the fraction."""
    n_second = total - n_first
    if n_first >= 1 and n_second >= 1:
        return
    raise ValueError(f"{name}={value!r} leaves the {first if n_first < 1 else second} set empty ({n_first} {first} "
                     f"and {n_second} {second} examples of {total}); both need at least one example, so choose "
                     f"{name} between about {0.5 / total:.2g} and {1 - 0.5 / total:.6g}")


def corrupt_labels(y: torch.Tensor, fraction: float, n_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a ``fraction`` of labels by a *different* random class; return (labels, corrupted mask).

    >>> y, mask = corrupt_labels(torch.zeros(10, dtype=torch.long), 0.3, n_classes=5)
    >>> int(mask.sum()), bool((y[mask] != 0).all())
    (3, True)
    """
    _v.instance("y", y, torch.Tensor, "a tensor of integer class labels")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    fraction = _fraction("fraction", fraction, low_open=False)
    n_classes = _count("n_classes", n_classes, 2)
    seed = _v.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    k = int(round(fraction * n))
    idx = torch.randperm(n, generator=g)[:k]
    shift = torch.randint(1, n_classes, (k,), generator=g)
    y = y.clone()
    y[idx] = (y[idx] + shift) % n_classes
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return y, mask


MODULAR_OPS = {
    "+": lambda a, b, p: (a + b) % p,
    "-": lambda a, b, p: (a - b) % p,
    "*": lambda a, b, p: (a * b) % p,
    "/": lambda a, b, p: (a * torch.tensor([pow(int(v), p - 2, p) for v in b])) % p,
    "x^2+y^2": lambda a, b, p: (a * a + b * b) % p,
}


def modular_arithmetic(p: int = 59, op: str = "+", train_fraction: float = 0.4,
                       label_noise: float = 0.0, seed: int = 0) -> Dataset:
    """All pairs (a, b) with label ``a ∘ b mod p``, split at random into train and test.

    ``x`` holds the integer pair (a, b) (shape ``(N, 2)``, dtype long); for ``op="/"`` b ≠ 0 and
    a / b = a·b^(p−2) mod p. ``label_noise`` corrupts that fraction of *training* labels.

    >>> ds = modular_arithmetic(p=7, train_fraction=0.5)
    >>> ds.n_train + ds.n_test, ds.n_classes
    (49, 7)
    """
    p = _count("p", p, minimum=2)
    _v.choice("op", op, MODULAR_OPS)
    if op == "/" and any(p % d == 0 for d in range(2, int(p**0.5) + 1)):
        raise ValueError(f"p={p} must be prime for op='/'")
    _fraction("train_fraction", train_fraction)
    label_noise = _fraction("label_noise", label_noise, low_open=False)
    seed = _v.seed("seed", seed)
    total = p * (p - 1 if op == "/" else p)
    _split_sizes("train_fraction", train_fraction, total, max(1, int(round(train_fraction * total))), "training", "test")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(1 if op == "/" else 0, p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    y = MODULAR_OPS[op](a, b, p)
    x = torch.stack([a, b], dim=1)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n_train = max(1, int(round(train_fraction * len(y))))
    tr, te = perm[:n_train], perm[n_train:]
    y_train, corrupted = y[tr], torch.zeros(n_train, dtype=torch.bool)
    if label_noise > 0:
        y_train, corrupted = corrupt_labels(y_train, label_noise, p, seed=seed + 1)
    return Dataset(f"a{op}b mod {p}", x[tr], y_train, x[te], y[te], "classification", p,
                   meta={"p": p, "op": op, "train_fraction": train_fraction, "corrupted": corrupted,
                         "clean_y_train": y[tr]})


def mnist1d(n_train: int | None = None, n_test: int | None = None, seed: int = 42) -> Dataset:
    """MNIST-1D (40-sample 1-D signals of the ten digits), generated offline and cached.

    4,000 training and 1,000 test examples (``num_samples=5000``); ``seed`` is the generator's
    seed (42 reproduces the published data set). Never downloads.

    >>> ds = mnist1d(n_train=500)
    >>> ds.input_shape, ds.n_classes
    ((40,), 10)
    """
    seed = _v.seed("seed", seed)
    n_train = _v.integer("n_train", n_train, 1, MNIST1D_SIZES[0], allow_none=True)
    n_test = _v.integer("n_test", n_test, 1, MNIST1D_SIZES[1], allow_none=True)
    folder = cache_dir_or_none()
    path = None if folder is None else folder / f"mnist1d_seed{seed}.pt"
    arrays = _load_mnist1d(path) if path is not None and path.exists() else None
    if arrays is None:
        arrays = _make_mnist1d(seed)
        if path is not None:
            atomic_write(path, lambda fh: torch.save(arrays, fh))
    ds = Dataset("MNIST-1D", arrays["x"].float(), arrays["y"].long(), arrays["x_test"].float(),
                 arrays["y_test"].long(), "classification", 10, meta={"seed": seed})
    return ds.subset(n_train, n_test) if (n_train is not None or n_test is not None) else ds


MNIST1D_SIZES = (4000, 1000)
_MNIST1D_SHAPES = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}


def _load_mnist1d(path) -> dict | None:
    """The cached arrays, or None (with a warning) when the file is truncated or not what it should be."""
    try:
        arrays = torch.load(path, weights_only=True)
        if not isinstance(arrays, dict) or any(not isinstance(arrays.get(k), torch.Tensor)
                                               or tuple(arrays[k].shape) != shape for k, shape in _MNIST1D_SHAPES.items()):
            raise ValueError("unexpected contents")
        return arrays
    except Exception as err:  # a truncated or damaged file: generate the data again
        warnings.warn(f"the cached MNIST-1D file {path} is damaged ({type(err).__name__}: {err}); "
                      f"generating the data set again", RuntimeWarning, stacklevel=3)
        return None


def _make_mnist1d(seed: int) -> dict:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = int(seed)
    # make_dataset reseeds the global RNGs: keep the caller's streams intact.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: torch.as_tensor(np.asarray(raw[k])) for k in ("x", "y", "x_test", "y_test")}


def _split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, g: torch.Generator):
    perm = torch.randperm(x.shape[0], generator=g)
    n_test = int(round(test_fraction * x.shape[0]))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 handwritten digits (1,797 images shipped with sklearn), flattened to 64
    features scaled to [0, 1].

    >>> digits().input_shape
    (64,)
    """
    from sklearn.datasets import load_digits

    test_fraction = _fraction("test_fraction", test_fraction)
    seed = _v.seed("seed", seed)
    raw = load_digits()
    n = len(raw.target)
    _split_sizes("test_fraction", test_fraction, n, n - int(round(test_fraction * n)), "training", "test")
    x = torch.tensor(raw.data, dtype=torch.float32) / 16.0
    y = torch.tensor(raw.target, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    return Dataset("digits", *_split(x, y, test_fraction, g), "classification", 10)


def gaussian_clouds(n_train: int = 200, n_test: int = 1000, n_classes: int = 3, dim: int = 2,
                    spread: float = 1.0, seed: int = 0) -> Dataset:
    """Isotropic Gaussian clouds with unit-norm×3 centres and standard deviation ``spread``.

    >>> gaussian_clouds(n_train=30, n_classes=3).n_classes
    3
    """
    n_train, n_test = _count("n_train", n_train), _count("n_test", n_test)
    n_classes, dim = _count("n_classes", n_classes, 2), _count("dim", dim)
    spread = _v.positive("spread", spread)
    seed = _v.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=g)
    centres = 3.0 * centres / centres.norm(dim=1, keepdim=True)
    n = n_train + n_test
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = centres[y] + spread * torch.randn(n, dim, generator=g)
    return Dataset("Gaussian clouds", x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                   "classification", n_classes, meta={"centres": centres})


def separable_logistic(n_train: int = 100, n_test: int = 1000, dim: int = 2, margin: float = 0.5,
                       seed: int = 0) -> Dataset:
    """Linearly separable data through the origin: labels ±1 = sign(⟨w*, x⟩), with every point at
    distance ≥ ``margin`` from the hyperplane (points inside the slab are pushed out).

    >>> ds = separable_logistic(n_train=20)
    >>> bool(((ds.x_train @ ds.meta["w_star"]) * ds.y_train > 0).all())
    True
    """
    n_train, n_test = _count("n_train", n_train, 2), _count("n_test", n_test)
    dim = _count("dim", dim, 2)
    margin = _v.non_negative("margin", margin)
    seed = _v.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    w_star = torch.randn(dim, generator=g)
    w_star /= w_star.norm()
    x = torch.randn(n_train + n_test, dim, generator=g)
    s = x @ w_star
    y = torch.where(s >= 0, 1.0, -1.0)
    x = x + ((margin - s * y).clamp(min=0) * y).unsqueeze(1) * w_star  # push points out of the slab
    return Dataset("separable logistic", x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                   "binary", 2, meta={"w_star": w_star, "margin": margin})


def sparse_regression(n_train: int = 40, n_test: int = 200, dim: int = 100, k: int = 5,
                      noise: float = 0.0, seed: int = 0) -> Dataset:
    """Under-determined linear regression y = ⟨w*, x⟩ + noise with a k-sparse w* (entries ±1).

    >>> ds = sparse_regression(n_train=10, dim=30, k=3)
    >>> int((ds.meta["w_star"] != 0).sum())
    3
    """
    n_train, n_test = _count("n_train", n_train), _count("n_test", n_test)
    dim, k = _count("dim", dim), _count("k", k)
    if k > dim:
        raise ValueError(f"k={k} must be ≤ dim={dim}")
    noise = _v.non_negative("noise", noise)
    seed = _v.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    w_star = torch.zeros(dim)
    support = torch.randperm(dim, generator=g)[:k]
    w_star[support] = torch.where(torch.rand(k, generator=g) < 0.5, -1.0, 1.0)
    x = torch.randn(n_train + n_test, dim, generator=g)
    y = x @ w_star + noise * torch.randn(n_train + n_test, generator=g)
    return Dataset("sparse regression", x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                   "regression", 0, meta={"w_star": w_star, "support": support})


def low_rank_matrix(n: int = 30, rank: int = 2, observed_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """Matrix completion: an n×n matrix of the given rank (Frobenius norm n), of which a random
    ``observed_fraction`` of entries is the training set and the rest the test set.

    ``x`` holds the (row, column) index pairs, ``y`` the entries; ``meta["matrix"]`` the full
    matrix and ``meta["mask"]`` the observed entries.

    >>> ds = low_rank_matrix(n=10, rank=1, observed_fraction=0.5)
    >>> int(torch.linalg.matrix_rank(ds.meta["matrix"]))
    1
    """
    n, rank = _count("n", n, 2), _count("rank", rank)
    if rank > n:
        raise ValueError(f"rank={rank} must be ≤ n={n}")
    _fraction("observed_fraction", observed_fraction)
    seed = _v.seed("seed", seed)
    _split_sizes("observed_fraction", observed_fraction, n * n, max(1, int(round(observed_fraction * n * n))),
                 "observed (training)", "test")
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(n, rank, generator=g))[0]
    v = torch.linalg.qr(torch.randn(n, rank, generator=g))[0]
    m = u @ torch.diag(torch.full((rank,), n / rank**0.5)) @ v.T
    idx = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1).reshape(-1, 2)
    perm = torch.randperm(n * n, generator=g)
    n_obs = max(1, int(round(observed_fraction * n * n)))
    tr, te = perm[:n_obs], perm[n_obs:]
    mask = torch.zeros(n * n, dtype=torch.bool)
    mask[tr] = True
    return Dataset("low-rank matrix", idx[tr], m.reshape(-1)[tr], idx[te], m.reshape(-1)[te],
                   "regression", 0, meta={"matrix": m, "mask": mask.reshape(n, n), "rank": rank})


REGISTRY = {
    "modular_arithmetic": modular_arithmetic,
    "mnist1d": mnist1d,
    "digits": digits,
    "gaussian_clouds": gaussian_clouds,
    "separable_logistic": separable_logistic,
    "sparse_regression": sparse_regression,
    "low_rank_matrix": low_rank_matrix,
}
