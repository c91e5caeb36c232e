"""flatlab.sweep: every backend gives the loop's numbers; caching; input validation."""
import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

import flatlab
from flatlab import sweep as sw
from flatlab.sweep import Run, finals, sweep, train_batched

TOL = 1e-5
NUMERIC = ["train_loss", "train_acc", "test_loss", "test_acc", "lr_t"]


@pytest.fixture(scope="module")
def mnist():
    return flatlab.data.mnist1d(n_train=256, n_test=128)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, extra=(), tol=TOL):
    assert list(a.columns) == list(b.columns)
    assert a[["run", "step", "diverged", "stopped_early"]].equals(b[["run", "step", "diverged", "stopped_early"]])
    for col in NUMERIC + list(extra):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=tol, rtol=tol,
                                   equal_nan=True, err_msg=col)


def _mlp_run(ds, **kw):
    def make_run(lr, batch_size, seed, momentum=0.0, weight_decay=0.0, warmup=0):
        return Run(flatlab.MLP(40, [16, 16], 10, seed=seed), ds, steps=30, lr=lr, batch_size=batch_size,
                   momentum=momentum, weight_decay=weight_decay, warmup=warmup, eval_every=10, **kw)
    return make_run


@pytest.mark.parametrize("impl", ["bmm", "func"])
def test_vmap_equals_loop_same_seeds(mnist, impl):
    grid = [dict(lr=0.05, batch_size=32), dict(lr=0.1, batch_size=32, momentum=0.9),
            dict(lr=0.1, batch_size=32, weight_decay=0.01, warmup=10), dict(lr=0.2, batch_size=None),
            dict(lr=0.05, batch_size=None, momentum=0.5, weight_decay=1e-3)]
    grid = [{"momentum": 0.0, "weight_decay": 0.0, "warmup": 0, **p} for p in grid]
    make = _mlp_run(mnist)
    loop = sweep(make, grid, seeds=[0, 1], backend="loop", cache=False, progress=False)
    vmap = sweep(make, grid, seeds=[0, 1], backend="vmap", cache=False, progress=False, vmap_impl=impl)
    _assert_same(loop, vmap)
    assert len(loop) == 10 * 4 and set(loop.columns[:6]) == {"lr", "batch_size", "momentum", "weight_decay",
                                                             "warmup", "seed"}
    warm = loop[(loop.warmup == 10) & (loop.seed == 0)]
    assert warm.lr_t.tolist() == pytest.approx([0.01, 0.1, 0.1, 0.1])  # η·min(1, t/10) at t = 1, 10, 20, 30


def test_vmap_equals_loop_with_probes_target_loss_and_final_probes(mnist):
    probe_loss = flatlab.make_loss(mnist, "mse")

    def make_run(lr, seed):
        return Run(flatlab.MLP(40, [16], 10, activation="tanh", seed=seed), mnist, steps=60, lr=lr, loss="mse",
                   batch_size=64, eval_every=5, target_loss=0.38,
                   probes=[flatlab.CurvatureProbe(probe_loss, every=20, max_examples=128)],
                   final_probes=[flatlab.CurvatureProbe(probe_loss, every=1, trace=True, n_trace_samples=4)])

    loop = sweep(make_run, {"lr": [0.2, 0.5]}, seeds=[0, 1], backend="loop", cache=False, progress=False)
    vmap = sweep(make_run, {"lr": [0.2, 0.5]}, seeds=[0, 1], backend="vmap", cache=False, progress=False)
    _assert_same(loop, vmap, extra=["lambda_max", "trace"], tol=1e-4)
    last = finals(vmap)
    assert last.trace.notna().all() and last.lambda_max.notna().all()
    assert last.stopped_early.any() and (last.train_loss[last.stopped_early] <= 0.38).all()
    assert vmap.groupby("run").step.max().nunique() > 1  # runs stopped at their own steps


def test_vmap_general_modules_and_losses_equal_loop():
    """Binary (logistic), regression (MSE) and GELU take the autograd / torch.func paths."""
    cases = [(flatlab.data.separable_logistic(n_train=64, dim=2), 1),
             (flatlab.data.sparse_regression(n_train=40, dim=20), 1),
             (flatlab.data.gaussian_clouds(n_train=60, n_classes=3), 3)]
    for ds, out in cases:
        def make_run(lr, seed, ds=ds, out=out):
            act = "gelu" if ds.task == "classification" else "tanh"
            return Run(flatlab.MLP(ds.input_shape[0], [8], out, activation=act, seed=seed), ds, steps=20, lr=lr,
                       batch_size=16, eval_every=5)
        loop = sweep(make_run, {"lr": [0.05, 0.1]}, seeds=[0], backend="loop", cache=False, progress=False)
        for impl in ("auto", "func"):
            vmap = sweep(make_run, {"lr": [0.05, 0.1]}, seeds=[0], backend="vmap", cache=False, progress=False,
                         vmap_impl=impl)
            _assert_same(loop, vmap)


def test_divergence_is_detected_at_the_same_step(mnist):
    make = _mlp_run(mnist)
    grid = [dict(lr=0.05, batch_size=32), dict(lr=200.0, batch_size=32)]
    loop = sweep(make, grid, seeds=[0], backend="loop", cache=False, progress=False)
    vmap = sweep(make, grid, seeds=[0], backend="vmap", cache=False, progress=False)
    _assert_same(loop, vmap)
    bad = finals(vmap).set_index("lr").loc[200.0]
    assert bad.diverged and not finals(vmap).set_index("lr").loc[0.05].diverged


def test_joblib_equals_loop(mnist):
    make = _mlp_run(mnist)
    grid = {"lr": [0.05, 0.1], "batch_size": [32]}
    loop = sweep(make, grid, seeds=[0, 1], backend="loop", cache=False, progress=False)
    par = sweep(make, grid, seeds=[0, 1], backend="joblib", n_jobs=2, cache=False, progress=False)
    _assert_same(loop, par)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'flatlab[cluster]'); the Ray backend is untested")
def test_ray_equals_loop_on_a_local_two_cpu_instance(mnist, monkeypatch):
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    make = _mlp_run(mnist)
    grid = {"lr": [0.05, 0.1], "batch_size": [32]}
    try:
        loop = sweep(make, grid, seeds=[0, 1], backend="loop", cache=False, progress=False)
        par = sweep(make, grid, seeds=[0, 1], backend="ray", n_jobs=2, cache=False, progress=False)
        assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
    finally:
        ray.shutdown()
    _assert_same(loop, par)


def test_cache_returns_identical_frame_without_recomputing(mnist, tmp_path, monkeypatch):
    make = _mlp_run(mnist)
    grid = {"lr": [0.05, 0.1], "batch_size": [32]}
    first = sweep(make, grid, seeds=[0], cache=tmp_path, progress=False)
    assert first.attrs["from_cache"] is False

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although the sweep is cached")

    monkeypatch.setattr(sw, "train_batched", boom)
    again = sweep(make, grid, seeds=[0], cache=tmp_path, progress=False)
    assert again.attrs["from_cache"] is True
    pd.testing.assert_frame_equal(first, again)
    # another configuration (a different learning rate) is a different key: it is computed
    with pytest.raises(AssertionError, match="recomputed"):
        sweep(make, {"lr": [0.07], "batch_size": [32]}, seeds=[0], cache=tmp_path, progress=False)
    # so is the same grid on other data (make_run closes over a different data set)
    with pytest.raises(AssertionError, match="recomputed"):
        sweep(_mlp_run(mnist.subset(200)), grid, seeds=[0], cache=tmp_path, progress=False)


def test_cache_default_location_is_under_cache_dir(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path))
    sweep(_mlp_run(mnist), {"lr": [0.05], "batch_size": [32]}, seeds=[0], progress=False)
    assert (tmp_path / "sweeps").is_dir() and any((tmp_path / "sweeps").rglob("output.pkl"))


def test_bad_inputs_name_the_parameter(mnist):
    make = _mlp_run(mnist)
    with pytest.raises(ValueError, match="backend='gpu'.*vmap, loop, joblib, ray"):
        sweep(make, {"lr": [0.1], "batch_size": [32]}, backend="gpu")
    with pytest.raises(ValueError, match="grid must not be empty"):
        sweep(make, {})
    with pytest.raises(ValueError, match="grid must not be empty"):
        sweep(make, [])
    with pytest.raises(ValueError, match=r"grid\['lr'\] is empty"):
        sweep(make, {"lr": [], "batch_size": [32]})
    with pytest.raises(ValueError, match="grid must be a dict"):
        sweep(make, "lr")
    with pytest.raises(ValueError, match="grid name 'seed' is reserved"):
        sweep(make, {"seed": [1]})
    for bad in ([], [-1], [0, 0]):
        with pytest.raises(ValueError, match="seeds"):
            sweep(make, {"lr": [0.1], "batch_size": [32]}, seeds=bad)
    for bad in (3, [0.5], "01"):  # not a sequence of integers: the wrong type
        with pytest.raises(TypeError, match="seeds"):
            sweep(make, {"lr": [0.1], "batch_size": [32]}, seeds=bad)
    with pytest.raises(ValueError, match="vmap_impl='jit'"):
        sweep(make, {"lr": [0.1], "batch_size": [32]}, vmap_impl="jit")
    with pytest.raises(ValueError, match="n_jobs=0"):
        sweep(make, {"lr": [0.1], "batch_size": [32]}, n_jobs=0)
    with pytest.raises(TypeError, match="must return a flatlab.sweep.Run"):
        sweep(lambda lr, seed: {"lr": lr}, {"lr": [0.1]}, cache=False)
    with pytest.raises(TypeError, match="make_run must be callable"):
        sweep(None, {"lr": [0.1]})


def test_run_validates_its_fields(mnist):
    model = flatlab.MLP(40, [8], 10)
    with pytest.raises(ValueError, match=r"lr=-0.1 must be a positive number \(> 0\)"):
        Run(model, mnist, steps=10, lr=-0.1)
    with pytest.raises(ValueError, match="batch_size=999 must be at most"):
        Run(model, mnist, steps=10, lr=0.1, batch_size=999)
    with pytest.raises(ValueError, match=r"momentum=1.0 must be a number in \[0, 1\)"):
        Run(model, mnist, steps=10, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="loss='hinge' is unknown"):
        Run(model, mnist, steps=10, lr=0.1, loss="hinge")
    with pytest.raises(ValueError, match="optimizer='rmsprop' is unknown"):
        Run(model, mnist, steps=10, lr=0.1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="steps=0"):
        Run(model, mnist, steps=0, lr=0.1)
    with pytest.raises(TypeError, match="dataset must be a flatlab.data.Dataset"):
        Run(model, (mnist.x_train, mnist.y_train), steps=10, lr=0.1)
    with pytest.raises(TypeError, match="probes must be callable"):
        Run(model, mnist, steps=10, lr=0.1, probes=[lambda m, d, s: {}])  # no .every


def test_adam_runs_fall_back_to_the_loop_and_train_batched_refuses_them(mnist):
    def make_run(lr, seed):
        return Run(flatlab.MLP(40, [8], 10, seed=seed), mnist, steps=10, lr=lr, batch_size=32, optimizer="adam")

    loop = sweep(make_run, {"lr": [1e-3]}, seeds=[0], backend="loop", cache=False, progress=False)
    vmap = sweep(make_run, {"lr": [1e-3]}, seeds=[0], backend="vmap", cache=False, progress=False)
    _assert_same(loop, vmap, tol=0)
    with pytest.raises(ValueError, match="trains SGD only"):
        train_batched([make_run(1e-3, 0)])
    with pytest.raises(ValueError, match="differs from runs\\[0\\]"):
        train_batched([Run(flatlab.MLP(40, [8], 10), mnist, 5, 0.1, batch_size=32),
                       Run(flatlab.MLP(40, [8], 10), mnist, 5, 0.1, batch_size=64)])
    with pytest.raises(ValueError, match="impl='bmm' needs"):
        train_batched([Run(torch.nn.Sequential(torch.nn.Linear(40, 10), torch.nn.BatchNorm1d(10)), mnist, 5, 0.1)],
                      impl="bmm")


def test_finals_and_frame_layout(mnist):
    df = sweep(_mlp_run(mnist), {"lr": [0.05, 0.1], "batch_size": [32]}, seeds=[3, 4], cache=False, progress=False)
    assert list(df.columns[:4]) == ["lr", "batch_size", "seed", "run"]
    last = finals(df)
    assert len(last) == 4 and (last.step == 30).all() and last.run.tolist() == [0, 1, 2, 3]
    assert last.seed.tolist() == [3, 4, 3, 4] and df.attrs["backend"] == "vmap"
    with pytest.raises(ValueError, match="'run' column"):
        finals(pd.DataFrame({"step": [0]}))


def test_flatlab_sweep_is_callable_and_keeps_its_module_attributes():
    import flatlab
    from flatlab import sweep as module

    assert flatlab.sweep.Run is module.Run and flatlab.sweep.finals is module.finals
    ds = flatlab.data.gaussian_clouds(n_train=40, n_test=40, seed=0)
    make = lambda lr, seed: module.Run(flatlab.MLP(2, [4], 3, seed=seed), ds, steps=5, lr=lr)  # noqa: E731
    a = flatlab.sweep(make, {"lr": [0.1]}, seeds=[0], backend="loop", progress=False, cache=False)
    b = module.sweep(make, {"lr": [0.1]}, seeds=[0], backend="loop", progress=False, cache=False)
    assert a.equals(b)
