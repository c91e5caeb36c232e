"""flatlab.adaptive.smoothness_path: the local-smoothness estimate along (clipped) gradient descent."""
import copy
import math

import pytest
import torch
from torch import nn

from flatlab.adaptive import smoothness_path
from flatlab.data import gaussian_clouds, sparse_regression
from flatlab.models import MLP
from flatlab.train import make_loss


def _linear_problem():
    ds = sparse_regression(n_train=30, dim=8, k=3, noise=0.1, seed=1)
    torch.manual_seed(0)
    return nn.Linear(8, 1), ds


def test_on_a_quadratic_the_estimate_is_the_exact_curvature_along_the_gradient():
    # ½·mean((w·x + b − y)²): H = mean([x, 1][x, 1]ᵀ), the gradient is linear, so L̂ = ‖H g‖ / ‖g‖ exactly.
    model, ds = _linear_problem()
    x, y = ds.train
    z = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    hessian = z.T @ z / len(x)
    start = copy.deepcopy(model)
    df = smoothness_path(model, ds, lr=0.05, steps=5)
    w = torch.cat([start.weight.detach().reshape(-1), start.bias.detach()]).double()
    for row in df.itertuples():
        g = hessian @ w - z.T @ y.double() / len(x)
        assert row.grad_norm == pytest.approx(float(g.norm()), rel=1e-5)
        assert row.smoothness == pytest.approx(float((hessian @ g).norm() / g.norm()), rel=1e-4)
        assert row.smoothness <= float(torch.linalg.eigvalsh(hessian)[-1]) * (1 + 1e-5)
        w = w - 0.05 * g
    assert df.step_size.eq(0.05).all()


def test_lambda_max_at_every_kth_iterate_is_the_top_hessian_eigenvalue():
    # on the quadratic the Hessian is the same everywhere: λ_max = the top eigenvalue of mean([x, 1][x, 1]ᵀ)
    from flatlab.adaptive import path_summary

    model, ds = _linear_problem()
    x = ds.train[0]
    z = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    top = float(torch.linalg.eigvalsh(z.T @ z / len(x))[-1])
    df = smoothness_path(model, ds, lr=0.05, steps=5, curvature_every=2, curvature_tol=1e-8)
    assert df.lambda_max.iloc[[0, 2, 4]].to_numpy() == pytest.approx([top] * 3, rel=1e-5)
    assert df.lambda_max.iloc[[1, 3]].isna().all()
    s = path_summary(df)
    assert s["lambda_points"] == 3 and s["lambda_spread"] == pytest.approx(1.0, abs=1e-5)
    assert math.isnan(s["lambda_rank_correlation"]) or abs(s["lambda_rank_correlation"]) <= 1
    assert s["median_h_lambda"] == pytest.approx(0.05 * top, rel=1e-5)
    assert "lambda_max" in df and smoothness_path(model, ds, lr=0.05, steps=2).lambda_max.isna().all()


def test_clipping_sets_the_step_size_and_the_plain_step_is_measured_from_the_same_point():
    ds = gaussian_clouds(seed=0)
    model = MLP(2, [16], 3, seed=0)
    start = copy.deepcopy(model)
    df = smoothness_path(model, ds, lr=4.0, steps=6, clip=0.2)
    for row in df.itertuples():
        assert row.step_size == pytest.approx(4.0 * min(1.0, 0.2 / row.grad_norm))
    # step 0 by hand: the loss after an unclipped step of lr from the start
    loss_fn, (x, y) = make_loss(ds), ds.train
    params = list(start.parameters())
    value = loss_fn(start(x), y)
    grads = torch.autograd.grad(value, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 4.0 * g
        after = float(loss_fn(start(x), y))
    assert df.plain_change.iloc[0] == pytest.approx(after - float(value.detach()), rel=1e-5)
    assert df.attrs["diverged_step"] is None and df.attrs["clip"] == 0.2


def test_the_model_ends_at_the_last_iterate_and_the_loss_column_follows_the_steps():
    ds = gaussian_clouds(seed=0)
    model = MLP(2, [16], 3, seed=0)
    df = smoothness_path(model, ds, lr=0.5, steps=4)
    # without clipping plain_change is the change of the step taken: consecutive losses
    assert df.plain_change.iloc[:-1].to_numpy() == pytest.approx(df.train_loss.diff().iloc[1:].to_numpy())
    with torch.no_grad():
        final = float(make_loss(ds)(model(ds.train[0]), ds.train[1]))
    assert df.train_loss.iloc[-1] + df.plain_change.iloc[-1] == pytest.approx(final, rel=1e-6)


def test_a_run_that_blows_up_stops_with_its_step_and_only_finite_rows():
    model, ds = _linear_problem()
    df = smoothness_path(model, ds, lr=1e4, steps=200)
    assert df.attrs["diverged_step"] is not None and len(df) == df.attrs["diverged_step"]
    assert df[["train_loss", "grad_norm", "smoothness"]].map(math.isfinite).all().all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lr=0.0), ValueError, "lr"), (dict(lr=float("nan")), ValueError, "lr"), (dict(lr="1"), TypeError, "lr"),
    (dict(steps=0), ValueError, "steps"), (dict(steps=2.5), TypeError, "steps"),
    (dict(clip=-1.0), ValueError, "clip"), (dict(clip=float("inf")), ValueError, "clip"),
    (dict(loss="hinge"), ValueError, "loss"), (dict(curvature_every=0), ValueError, "curvature_every"),
    (dict(curvature_every=1.5), TypeError, "curvature_every"), (dict(curvature_tol=0.0), ValueError, "curvature_tol"),
])
def test_bad_arguments_name_the_parameter(kwargs, error, match):
    args = dict(lr=0.1, steps=3) | kwargs
    with pytest.raises(error, match=match):
        smoothness_path(MLP(2, [4], 3, seed=0), gaussian_clouds(), **args)


def test_bad_model_and_dataset():
    with pytest.raises(TypeError, match="model"):
        smoothness_path("mlp", gaussian_clouds(), lr=0.1, steps=2)
    with pytest.raises(TypeError, match="dataset"):
        smoothness_path(MLP(2, [4], 3), (torch.zeros(3, 2), torch.zeros(3)), lr=0.1, steps=2)
    with pytest.raises(ValueError, match="does not fit the model"):
        smoothness_path(MLP(5, [4], 3), gaussian_clouds(), lr=0.1, steps=2)
    with pytest.raises(ValueError, match="3 classes"):
        smoothness_path(MLP(2, [4], 4), gaussian_clouds(), lr=0.1, steps=2)
    frozen = MLP(2, [4], 3).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        smoothness_path(frozen, gaussian_clouds(), lr=0.1, steps=2)


def test_the_figure_plots_every_path_and_lambda_max_where_measured():
    from flatlab.widgets.adaptive import smoothness_figure

    ds = gaussian_clouds(seed=0)
    clipped = smoothness_path(MLP(2, [16], 3, seed=0), ds, lr=4.0, steps=8, clip=0.2, curvature_every=4)
    plain = smoothness_path(MLP(2, [16], 3, seed=0), ds, lr=0.1, steps=8)
    fig = smoothness_figure({"clipped": clipped, "plain": plain})
    names = [t.name for t in fig.data]
    assert names == ["clipped: midpoint estimate L̂", "clipped: λ_max at the iterate", "plain: midpoint estimate L̂"]
    assert list(fig.data[0].y) == pytest.approx(list(clipped.smoothness))
    assert list(fig.data[1].y) == pytest.approx(list(clipped.lambda_max.iloc[[0, 4]]))
    with pytest.raises(ValueError, match="paths"):
        smoothness_figure({})
    with pytest.raises(ValueError, match="smoothness"):
        smoothness_figure({"bad": clipped.drop(columns="smoothness")})


def test_path_summary_against_hand_computed_figures():
    from flatlab.adaptive import path_summary
    import pandas as pd

    df = pd.DataFrame(dict(grad_norm=[3.0, 1.0, 2.0, 4.0], smoothness=[1.0, 4.0, 2.0, 0.5],
                           step_size=[1.0, 0.5, 1.0, 2.0], plain_change=[0.1, -0.2, 0.0, 0.4]))
    s = path_summary(df)
    assert s["spread"] == 8.0 and s["rank_correlation"] == pytest.approx(-1.0)  # L̂ falls as ‖g‖ rises, in rank
    assert s["median_hL"] == 1.5 and s["max_hL"] == 2.0 and s["share_raised"] == 0.5
    assert s["median_plain_change"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="path"):
        path_summary(df.iloc[:1])
    with pytest.raises(ValueError, match="step_size"):
        path_summary(df.drop(columns="step_size"))


def test_rank_correlation_of_a_constant_series_is_nan_without_a_warning():
    import warnings

    import pandas as pd

    from flatlab.adaptive.smoothness import _rank_correlation

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(_rank_correlation(pd.Series([1.0, 1.0, 1.0]), pd.Series([1.0, 2.0, 3.0])))
    assert _rank_correlation(pd.Series([1.0, 2.0, 3.0]), pd.Series([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
