import pytest
import torch

from flatlab import data


@pytest.mark.parametrize("name", ["modular_arithmetic", "digits", "gaussian_clouds", "separable_logistic",
                                  "sparse_regression", "low_rank_matrix"])
def test_same_seed_same_data_other_seed_other_data(name):
    make = data.REGISTRY[name]
    a, b, c = make(seed=0), make(seed=0), make(seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not (torch.equal(a.x_train, c.x_train) and torch.equal(a.y_train, c.y_train))
    assert a.n_train > 0 and a.n_test > 0 and a.task in data.TASKS


@pytest.mark.parametrize("op,fn", [("+", lambda a, b, p: (a + b) % p), ("-", lambda a, b, p: (a - b) % p),
                                   ("*", lambda a, b, p: (a * b) % p), ("/", lambda a, b, p: (a * pow(b, p - 2, p)) % p),
                                   ("x^2+y^2", lambda a, b, p: (a * a + b * b) % p)])
def test_modular_labels_are_correct_and_cover_all_pairs(op, fn):
    ds = data.modular_arithmetic(p=11, op=op, train_fraction=0.3)
    x = torch.cat([ds.x_train, ds.x_test])
    y = torch.cat([ds.y_train, ds.y_test])
    assert len(x) == (11 * 10 if op == "/" else 121) and len({tuple(r) for r in x.tolist()}) == len(x)
    assert all(int(label) == fn(int(a), int(b), 11) for (a, b), label in zip(x.tolist(), y))
    assert abs(ds.n_train - round(0.3 * len(x))) <= 1


def test_modular_label_noise_corrupts_only_training_labels():
    ds = data.modular_arithmetic(p=13, train_fraction=0.5, label_noise=0.2, seed=0)
    mask = ds.meta["corrupted"]
    assert int(mask.sum()) == round(0.2 * ds.n_train)
    assert bool((ds.y_train[mask] != ds.meta["clean_y_train"][mask]).all())
    assert torch.equal(ds.y_train[~mask], ds.meta["clean_y_train"][~mask])
    assert torch.equal(ds.y_test, (ds.x_test[:, 0] + ds.x_test[:, 1]) % 13)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="op='\\^'.*allowed"):
        data.modular_arithmetic(op="^")
    with pytest.raises(ValueError, match="train_fraction"):
        data.modular_arithmetic(train_fraction=1.5)
    with pytest.raises(ValueError, match="p=12 must be prime"):
        data.modular_arithmetic(p=12, op="/")
    with pytest.raises(ValueError, match="k=20"):
        data.sparse_regression(dim=10, k=20)
    with pytest.raises(ValueError, match="n_train"):
        data.gaussian_clouds(n_train=0)
    with pytest.raises(ValueError, match="rank"):
        data.low_rank_matrix(n=5, rank=6)


def test_mnist1d_is_generated_offline(tmp_path, monkeypatch):
    import requests

    def no_network(*a, **k):
        raise AssertionError("flatlab must never download MNIST-1D")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path))
    ds = data.mnist1d()
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40) and ds.n_classes == 10
    assert set(ds.y_train.unique().tolist()) == set(range(10))
    again = data.mnist1d(n_train=100)  # from the cache, identical
    assert torch.equal(again.x_train, ds.x_train[:100]) and (tmp_path / "mnist1d_seed42.pt").exists()


def test_separable_data_respects_margin_and_labels():
    ds = data.separable_logistic(n_train=300, dim=5, margin=0.4, seed=2)
    s = (ds.x_train @ ds.meta["w_star"]) * ds.y_train
    assert float(s.min()) >= 0.4 - 1e-6 and set(ds.y_train.tolist()) == {-1.0, 1.0}


def test_sparse_regression_is_exactly_linear_without_noise():
    ds = data.sparse_regression(n_train=20, dim=50, k=4, seed=1)
    assert torch.allclose(ds.x_train @ ds.meta["w_star"], ds.y_train, atol=1e-5)
    assert int((ds.meta["w_star"] != 0).sum()) == 4


def test_low_rank_matrix_has_rank_and_split_matches_mask():
    ds = data.low_rank_matrix(n=12, rank=3, observed_fraction=0.4, seed=0)
    m = ds.meta["matrix"]
    assert int(torch.linalg.matrix_rank(m)) == 3
    assert torch.allclose(m[ds.x_train[:, 0], ds.x_train[:, 1]], ds.y_train)
    assert bool(ds.meta["mask"][ds.x_train[:, 0], ds.x_train[:, 1]].all())
    assert not bool(ds.meta["mask"][ds.x_test[:, 0], ds.x_test[:, 1]].any())


def test_dataset_validates_and_subsets():
    with pytest.raises(ValueError, match="x_train has 3 examples but y_train has 2"):
        data.Dataset("bad", torch.zeros(3, 2), torch.zeros(2), torch.zeros(1, 2), torch.zeros(1))
    with pytest.raises(ValueError, match="task='images'"):
        data.Dataset("bad", torch.zeros(3, 2), torch.zeros(3), torch.zeros(1, 2), torch.zeros(1), task="images")
    ds = data.gaussian_clouds(n_train=50)
    assert ds.subset(10).n_train == 10
    with pytest.raises(ValueError, match="n_train=51"):
        ds.subset(51)


def test_corrupt_labels_changes_exactly_the_fraction():
    y = torch.arange(100) % 5
    new, mask = data.corrupt_labels(y, 0.25, 5, seed=3)
    assert int(mask.sum()) == 25 and bool((new[mask] != y[mask]).all()) and torch.equal(new[~mask], y[~mask])
