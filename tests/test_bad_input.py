"""Bad and edge-case input across the public API: every row names its parameter in a TypeError (the
wrong type) or a ValueError (the wrong value), or — for valid edge cases — gives the right result."""
import math

import numpy as np
import pytest
import torch

import flatlab.adaptive as ad
import flatlab.curvature as cv
import flatlab.data as data
import flatlab.grokking as gk
import flatlab.implicit as im
from flatlab import config, landscapes
from flatlab.models import MLP, ModularMLP, rescale_layers
from flatlab.optim import MFVI, SAM, MixSAM, VariationalSAM
from flatlab.sweep import Run, sweep
from flatlab.train import fit, make_optimizer, trajectory

NAN, INF = float("nan"), float("inf")


def ds(**edit):
    """A small 3-class data set, with tensors replaced or edited by ``edit``."""
    d = data.gaussian_clouds(n_train=24, n_test=12, seed=0)
    for name, fn in edit.items():
        setattr(d, name, fn(getattr(d, name).clone()))
    return d


def net(**kw):
    return MLP(2, [4], 3, seed=0, **kw)


def run_fit(dataset=None, model=None, optimizer="sgd", **kw):
    return fit(model or net(), dataset or ds(), optimizer, kw.pop("steps", 2), progress=False, **kw)


def setitem(t, idx, value):
    t[idx] = value
    return t


def no_backward_closure(opt, w):
    def closure():
        opt.zero_grad()
        return (w ** 2).sum()  # forgets loss.backward()
    return closure


def step_without_backward(make):
    w = torch.nn.Parameter(torch.ones(3))
    opt = make([w])
    return opt.step(no_backward_closure(opt, w))


class NoClosureSGD(torch.optim.SGD):
    def step(self, closure=None):  # never evaluates the loss
        return None


def other_opt():
    return torch.optim.SGD(net().parameters(), lr=0.1)


def frozen():
    m = net()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def mk_run(**kw):
    args = dict(model=net(), dataset=ds(), steps=3, lr=0.1) | kw
    return Run(**args)


BIN = data.separable_logistic(n_train=10, n_test=10)
REG = data.sparse_regression(n_train=10, n_test=10, dim=5, k=2)
LIN = (torch.nn.Linear(3, 2), torch.nn.functional.mse_loss, (torch.randn(8, 3), torch.randn(8, 2)))

# (call, error type, pattern the message must contain)
CASES = {
    # fit: silent nonsense before
    "fit schedule negative": (lambda: run_fit(schedule=lambda t: -1.0), ValueError, r"schedule\(0\)=-1.0.*step 1"),
    "fit schedule nan later": (lambda: run_fit(steps=3, schedule=lambda t: NAN if t == 1 else 1.0), ValueError,
                               r"schedule\(1\)=nan.*step 2"),
    "fit schedule str": (lambda: run_fit(schedule=lambda t: "0.5"), TypeError, "schedule"),
    "fit schedule not callable": (lambda: run_fit(schedule=0.5), TypeError, "schedule"),
    "fit other model's optimizer": (lambda: run_fit(optimizer=other_opt()), ValueError, "not parameters of the model"),
    "fit frozen parameters": (lambda: (lambda m: run_fit(model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.1)))(
        frozen()), ValueError, "requires grad"),
    "fit step ignores closure": (lambda: (lambda m: run_fit(model=m, optimizer=NoClosureSGD(m.parameters(), 0.1)))(net()),
                                 ValueError, "never called the closure"),
    "fit NaN features": (lambda: run_fit(ds(x_train=lambda x: setitem(x, 0, NAN))), ValueError, "x_train.*NaN"),
    "fit inf test features": (lambda: run_fit(ds(x_test=lambda x: setitem(x, 3, INF))), ValueError, "x_test"),
    "fit train label too big": (lambda: run_fit(ds(y_train=lambda y: setitem(y, 0, 3))), ValueError, r"y_train.*0\.\.2"),
    "fit test label too big": (lambda: run_fit(ds(y_test=lambda y: setitem(y, 0, 7))), ValueError, r"y_test.*0\.\.2"),
    "fit negative label": (lambda: run_fit(ds(y_train=lambda y: setitem(y, 1, -1))), ValueError, "y_train"),
    "fit float labels": (lambda: run_fit(ds(y_train=lambda y: y.float())), ValueError, "y_train.*integer"),
    "fit empty training set": (lambda: run_fit(data.Dataset("empty", torch.zeros(0, 2), torch.zeros(0, dtype=torch.long),
                                                             torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                                             n_classes=3)), ValueError, "no training examples"),
    "fit binary labels 0/1": (lambda: fit(torch.nn.Linear(2, 1), data.Dataset("b", BIN.x_train, (BIN.y_train > 0).float(),
                                                                              BIN.x_test, BIN.y_test, "binary", 2), "sgd", 2,
                                          progress=False), ValueError, "±1"),
    "fit NaN regression target": (lambda: fit(torch.nn.Linear(5, 1), data.Dataset("r", REG.x_train, REG.y_train * NAN,
                                                                                  REG.x_test, REG.y_test, "regression"),
                                              "sgd", 2, progress=False), ValueError, "y_train"),
    "fit weight_decay nan": (lambda: run_fit(weight_decay=NAN), ValueError, "weight_decay"),
    "fit weight_decay inf": (lambda: run_fit(weight_decay=INF), ValueError, "weight_decay"),
    "fit optimizer group weight_decay inf": (lambda: (lambda m: run_fit(
        model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=INF)))(net()), ValueError, "weight_decay"),
    "fit momentum str": (lambda: run_fit(momentum="0.9"), TypeError, "momentum"),
    "fit momentum with instance": (lambda: (lambda m: run_fit(model=m, optimizer=torch.optim.SGD(m.parameters(), 0.1),
                                                              momentum=0.9))(net()), ValueError, "momentum"),
    "fit seed str": (lambda: run_fit(seed="1"), TypeError, "seed"),
    "fit seed float": (lambda: run_fit(seed=1.5), TypeError, "seed"),
    "fit seed negative": (lambda: run_fit(seed=-1), ValueError, "seed"),
    "fit steps float": (lambda: run_fit(steps=5.0), TypeError, "steps.*write 5"),
    "fit lr bool": (lambda: run_fit(lr=True), TypeError, "lr"),
    "fit lr nan": (lambda: run_fit(lr=NAN), ValueError, "lr=nan is not finite"),
    "fit batch_size str": (lambda: run_fit(batch_size="8"), TypeError, "batch_size"),
    "fit target_loss nan": (lambda: run_fit(target_loss=NAN), ValueError, "target_loss"),
    "fit clip negative": (lambda: run_fit(clip=-1.0), ValueError, "clip"),
    "fit progress str": (lambda: fit(net(), ds(), "sgd", 2, progress="yes"), TypeError, "progress"),
    "fit divergence_factor inf": (lambda: run_fit(divergence_factor=INF), ValueError, "divergence_factor"),
    "fit optimizer int": (lambda: run_fit(optimizer=3), TypeError, "optimizer"),
    "fit model not a module": (lambda: fit("mlp", ds(), "sgd", 2), TypeError, "model"),
    "make_optimizer betas number": (lambda: make_optimizer(net().parameters(), "adam", betas=0.9), TypeError, "betas"),
    "make_optimizer betas[1]=1": (lambda: make_optimizer(net().parameters(), "adam", betas=(0.9, 1.0)), ValueError,
                                  r"betas\[1\]"),
    "trajectory start nan": (lambda: trajectory(landscapes.sharp_and_flat(), (NAN, 0.0), 0.1), ValueError, "start"),
    "trajectory noise nan": (lambda: trajectory(landscapes.sharp_and_flat(), (0, 0), 0.1, noise=NAN), ValueError, "noise"),
    "trajectory noise inf": (lambda: trajectory(landscapes.sharp_and_flat(), (0, 0), 0.1, noise=INF), ValueError, "noise"),
    "trajectory momentum str": (lambda: trajectory(landscapes.sharp_and_flat(), (0, 0), 0.1, momentum="0"), TypeError,
                                "momentum"),
    "trajectory seed str": (lambda: trajectory(landscapes.sharp_and_flat(), (0, 0), 0.1, seed="0"), TypeError, "seed"),
    # Run and sweep
    "Run lr str": (lambda: mk_run(lr="0.1"), TypeError, "lr"),
    "Run steps float": (lambda: mk_run(steps=3.5), TypeError, "steps"),
    "Run seed str": (lambda: mk_run(seed="0"), TypeError, "seed"),
    "Run momentum nan": (lambda: mk_run(momentum=NAN), ValueError, "momentum"),
    "Run weight_decay inf": (lambda: mk_run(weight_decay=INF), ValueError, "weight_decay"),
    "Run warmup negative": (lambda: mk_run(warmup=-1), ValueError, "warmup"),
    "Run NaN features": (lambda: mk_run(dataset=ds(x_train=lambda x: x * NAN)), ValueError, "x_train"),
    "Run label out of range": (lambda: mk_run(dataset=ds(y_test=lambda y: y + 5)), ValueError, "y_test"),
    "Run model does not fit": (lambda: mk_run(model=MLP(5, [4], 3)), ValueError, "does not fit the model"),
    "sweep seeds str": (lambda: sweep(lambda seed: mk_run(), [{}], seeds="01", cache=False), TypeError, "seeds"),
    "sweep seeds float": (lambda: sweep(lambda seed: mk_run(), [{}], seeds=[0.0], cache=False), TypeError, r"seeds\[0\]"),
    "sweep progress str": (lambda: sweep(lambda seed: mk_run(), [{}], progress="no", cache=False), TypeError, "progress"),
    "sweep cache int": (lambda: sweep(lambda seed: mk_run(), [{}], cache=3), TypeError, "cache"),
    "sweep n_jobs float": (lambda: sweep(lambda seed: mk_run(), [{}], n_jobs=1.5), TypeError, "n_jobs"),
    "sweep backend int": (lambda: sweep(lambda seed: mk_run(), [{}], backend=1), TypeError, "backend"),
    # generators
    "clouds spread nan": (lambda: data.gaussian_clouds(spread=NAN), ValueError, "spread"),
    "clouds spread inf": (lambda: data.gaussian_clouds(spread=INF), ValueError, "spread"),
    "clouds spread str": (lambda: data.gaussian_clouds(spread="1"), TypeError, "spread"),
    "clouds n_classes 1": (lambda: data.gaussian_clouds(n_classes=1), ValueError, "n_classes"),
    "clouds dim float": (lambda: data.gaussian_clouds(dim=2.0), TypeError, "dim"),
    "clouds seed str": (lambda: data.gaussian_clouds(seed="0"), TypeError, "seed"),
    "logistic margin nan": (lambda: data.separable_logistic(margin=NAN), ValueError, "margin"),
    "logistic margin inf": (lambda: data.separable_logistic(margin=INF), ValueError, "margin"),
    "logistic margin negative": (lambda: data.separable_logistic(margin=-0.1), ValueError, "margin"),
    "sparse noise nan": (lambda: data.sparse_regression(noise=NAN), ValueError, "noise"),
    "sparse noise inf": (lambda: data.sparse_regression(noise=INF), ValueError, "noise"),
    "sparse noise negative": (lambda: data.sparse_regression(noise=-1.0), ValueError, "noise"),
    "modular label_noise negative": (lambda: data.modular_arithmetic(7, label_noise=-0.1), ValueError, "label_noise"),
    "modular label_noise nan": (lambda: data.modular_arithmetic(7, label_noise=NAN), ValueError, "label_noise"),
    "modular label_noise 1": (lambda: data.modular_arithmetic(7, label_noise=1.0), ValueError, "label_noise"),
    "modular empty test split": (lambda: data.modular_arithmetic(7, train_fraction=0.999), ValueError,
                                 "train_fraction.*test set empty"),
    "modular p float": (lambda: data.modular_arithmetic(7.0), TypeError, "p"),
    "modular op int": (lambda: data.modular_arithmetic(7, op=1), TypeError, "op"),
    "mnist1d n_train 0": (lambda: data.mnist1d(n_train=0), ValueError, "n_train=0"),
    "mnist1d n_train too many": (lambda: data.mnist1d(n_train=4001), ValueError, r"n_train=4001.*1\.\.4000"),
    "mnist1d n_test 0": (lambda: data.mnist1d(n_test=0), ValueError, "n_test=0"),
    "mnist1d seed str": (lambda: data.mnist1d(seed="42"), TypeError, "seed"),
    "digits empty training set": (lambda: data.digits(test_fraction=0.9999), ValueError, "test_fraction.*training set empty"),
    "digits empty test set": (lambda: data.digits(test_fraction=1e-5), ValueError, "test_fraction.*test set empty"),
    "digits test_fraction nan": (lambda: data.digits(test_fraction=NAN), ValueError, "test_fraction"),
    "low rank empty test set": (lambda: data.low_rank_matrix(n=5, rank=1, observed_fraction=0.999), ValueError,
                                "observed_fraction"),
    "low rank rank 0": (lambda: data.low_rank_matrix(rank=0), ValueError, "rank"),
    "corrupt_labels fraction": (lambda: data.corrupt_labels(torch.zeros(4).long(), 1.5, 3), ValueError, "fraction"),
    "corrupt_labels n_classes": (lambda: data.corrupt_labels(torch.zeros(4).long(), 0.5, 1), ValueError, "n_classes"),
    "Dataset n_classes float": (lambda: data.Dataset("d", torch.ones(2, 1), torch.ones(2), torch.ones(1, 1), torch.ones(1),
                                                     "regression", 2.5), TypeError, "n_classes"),
    "subset n_train str": (lambda: ds().subset(n_train="5"), TypeError, "n_train"),
    # models
    "MLP init_scale inf": (lambda: net(init_scale=INF), ValueError, "init_scale"),
    "MLP init_scale nan": (lambda: net(init_scale=NAN), ValueError, "init_scale"),
    "MLP in_dim float": (lambda: MLP(40.0, [8], 10), TypeError, "in_dim"),
    "MLP hidden str": (lambda: MLP(2, "64", 3), TypeError, "hidden"),
    "MLP hidden zero width": (lambda: MLP(2, [8, 0], 3), ValueError, r"hidden\[1\]=0"),
    "MLP activation None": (lambda: MLP(2, [8], 3, activation=None), TypeError, "activation"),
    "MLP bias str": (lambda: MLP(2, [8], 3, bias="yes"), TypeError, "bias"),
    "MLP seed str": (lambda: MLP(2, [8], 3, seed="0"), TypeError, "seed"),
    "ModularMLP p 1": (lambda: ModularMLP(p=1), ValueError, "p=1"),
    "ModularMLP p float": (lambda: ModularMLP(p=7.0), TypeError, "p"),
    "ModularMLP init_scale inf": (lambda: ModularMLP(p=7, init_scale=INF), ValueError, "init_scale"),
    "rescale alpha inf": (lambda: rescale_layers(MLP(2, [4, 4], 3), INF), ValueError, "alpha"),
    "rescale layer float": (lambda: rescale_layers(MLP(2, [4, 4], 3), 2.0, layer=0.0), TypeError, "layer"),
    # optimizers
    "SAM rho inf": (lambda: SAM(net().parameters(), rho=INF, lr=0.1), ValueError, "rho"),
    "SAM rho str": (lambda: SAM(net().parameters(), rho="0.05", lr=0.1), TypeError, "rho"),
    "SAM lr str": (lambda: SAM(net().parameters(), lr="0.1"), TypeError, "lr"),
    "SAM momentum nan": (lambda: SAM(net().parameters(), lr=0.1, momentum=NAN), ValueError, "momentum"),
    "SAM betas number": (lambda: SAM(net().parameters(), "adam", lr=0.1, betas=0.9), TypeError, "betas"),
    "SAM closure without backward": (lambda: step_without_backward(lambda p: SAM(p, lr=0.1)), ValueError, "loss.backward"),
    "ASAM closure without backward": (lambda: step_without_backward(lambda p: SAM(p, lr=0.1, adaptive=True)), ValueError,
                                      "ASAM.step.*loss.backward"),
    "MFVI closure without backward": (lambda: step_without_backward(lambda p: MFVI(p, dataset_size=10)), ValueError,
                                      "MFVI.step.*loss.backward"),
    "MixSAM closure without backward": (lambda: step_without_backward(lambda p: MixSAM(p, dataset_size=10)), ValueError,
                                        "loss.backward"),
    "VariationalSAM closure without backward": (lambda: step_without_backward(lambda p: VariationalSAM(p, dataset_size=10)),
                                                ValueError, "loss.backward"),
    "AdamCM closure without backward": (lambda: step_without_backward(lambda p: ad.AdamCM(p)), ValueError, "loss.backward"),
    "OrthoGrad closure without backward": (lambda: step_without_backward(lambda p: gk.OrthoGrad(p, lr=0.1)), ValueError,
                                           "loss.backward"),
    "MFVI init_std underflows": (lambda: MFVI(net().parameters(), dataset_size=10, init_std=1e-30), ValueError,
                                 "init_std=1e-30 underflows in torch.float32"),
    "MFVI init_std overflows": (lambda: MFVI(net().parameters(), dataset_size=10, init_std=1e30), ValueError,
                                "init_std=1e\\+30 overflows"),
    "MFVI init_std float64 underflow": (lambda: MFVI([torch.nn.Parameter(torch.ones(2, dtype=torch.float64))],
                                                     dataset_size=10, init_std=1e-200), ValueError, "init_std"),
    "MFVI mc_samples float": (lambda: MFVI(net().parameters(), dataset_size=10, mc_samples=1.0), TypeError, "mc_samples"),
    "MFVI learn_std str": (lambda: MFVI(net().parameters(), dataset_size=10, learn_std="no"), TypeError, "learn_std"),
    "MFVI prior_precision nan": (lambda: MFVI(net().parameters(), dataset_size=10, prior_precision=NAN), ValueError,
                                 "prior_precision"),
    "AdamCM lr nan": (lambda: ad.AdamCM(net().parameters(), lr=NAN), ValueError, "lr"),
    "AdamCM decay nan": (lambda: ad.AdamCM(net().parameters(), decay=NAN), ValueError, "decay"),
    "make_adaptive_optimizer name int": (lambda: ad.make_adaptive_optimizer(net().parameters(), 1, 0.1), TypeError, "name"),
    "OrthoGrad base not a class": (lambda: gk.OrthoGrad(net().parameters(), "adamw"), TypeError, "base_optimizer"),
    # curvature
    "top_eigenvalues k float": (lambda: cv.top_eigenvalues(*LIN, k=1.0), TypeError, "k"),
    "top_eigenvalues tol nan": (lambda: cv.top_eigenvalues(*LIN, tol=NAN), ValueError, "tol"),
    "top_eigenvalues v0 nan": (lambda: cv.top_eigenvalues(*LIN, v0=torch.full((8,), NAN)), ValueError, "v0"),
    "top_eigenvalues NaN data": (lambda: cv.top_eigenvalues(LIN[0], LIN[1], (LIN[2][0] * NAN, LIN[2][1])), ValueError,
                                 "nan"),
    "hessian_trace n_samples 0": (lambda: cv.hessian_trace(*LIN, n_samples=0), ValueError, "n_samples"),
    "hessian_trace seed str": (lambda: cv.hessian_trace(*LIN, seed="0"), TypeError, "seed"),
    "hessian_trace seed negative": (lambda: cv.hessian_trace(*LIN, seed=-1), ValueError, "seed"),
    "hessian_trace method int": (lambda: cv.hessian_trace(*LIN, method=1), TypeError, "method"),
    "average_sharpness sigma inf": (lambda: cv.average_sharpness(*LIN, sigma=INF), ValueError, "sigma"),
    "average_sharpness seed float": (lambda: cv.average_sharpness(*LIN, seed=0.5), TypeError, "seed"),
    "worst_case_sharpness rho nan": (lambda: cv.worst_case_sharpness(*LIN, rho=NAN), ValueError, "rho"),
    "random_direction seed float": (lambda: cv.random_direction(LIN[0], seed=1.5), TypeError, "seed"),
    "stability_threshold lr str": (lambda: cv.stability_threshold("0.1"), TypeError, "lr"),
    "stability_threshold momentum nan": (lambda: cv.stability_threshold(0.1, "heavy_ball", NAN), ValueError, "momentum"),
    "CurvatureProbe every float": (lambda: cv.CurvatureProbe(LIN[1], every=1.5), TypeError, "every"),
    "CurvatureProbe seed str": (lambda: cv.CurvatureProbe(LIN[1], seed="0"), TypeError, "seed"),
    # config
    "seed_everything str": (lambda: config.seed_everything("1"), TypeError, "seed"),
    "seed_everything float": (lambda: config.seed_everything(1.5), TypeError, "seed"),
    "seed_everything negative": (lambda: config.seed_everything(-1), ValueError, "seed"),
    "seed_everything 2**64": (lambda: config.seed_everything(2**64), ValueError, "seed"),
    "budget int": (lambda: config.budget(3), TypeError, "budget"),
    "budget unknown": (lambda: config.budget("huge"), ValueError, "budget='huge'.*small, full"),
    # grokking, landscapes, implicit bias
    "GrokConfig empty test split": (lambda: gk.GrokConfig(p=7, train_fraction=0.999).validate(), ValueError,
                                    "train_fraction.*test split empty"),
    "GrokConfig lr str": (lambda: gk.GrokConfig(lr="0.1").validate(), TypeError, "lr"),
    "GrokConfig seed float": (lambda: gk.GrokConfig(seed=1.5).validate(), TypeError, "seed"),
    "GrokConfig betas number": (lambda: gk.GrokConfig(betas=0.9).validate(), TypeError, "betas"),
    "GrokConfig weight_decay nan": (lambda: gk.GrokConfig(weight_decay=NAN).validate(), ValueError, "weight_decay"),
    "GrokConfig label_noise negative": (lambda: gk.GrokConfig(label_noise=-0.1).validate(), ValueError, "label_noise"),
    "CollapseProbe every float": (lambda: gk.CollapseProbe(every=2.5), TypeError, "every"),
    "sharp_and_flat sharpness nan": (lambda: landscapes.sharp_and_flat(sharpness=NAN), ValueError, "sharpness"),
    "narrow_valley steep str": (lambda: landscapes.narrow_valley(steep="10"), TypeError, "steep"),
    "DiagonalLinearNet seed str": (lambda: im.DiagonalLinearNet(3, seed="0"), TypeError, "seed"),
    "svm_direction C nan": (lambda: im.svm_direction(torch.ones(2, 2), torch.tensor([1.0, -1.0]), C=NAN), ValueError, "C"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gets_a_named_error(case):
    call, error, match = CASES[case]
    with pytest.raises(error, match=match):
        call()


def mfvi_softplus_large_std():
    w = torch.nn.Parameter(torch.zeros(2))
    return MFVI([w], dataset_size=10, init_std=2000.0, std_param="softplus").posterior()[0][1]


# valid edge cases: (call, check of the result)
VALID = {
    "MLP with NumPy widths": (lambda: MLP(np.int64(40), np.array([8, 8]), np.int32(10)),
                              lambda m: m.in_dim == 40 and m.hidden == [8, 8] and type(m.in_dim) is int),
    "MLP 0-d tensor init_scale": (lambda: MLP(2, [4], 3, init_scale=torch.tensor(1.0)), lambda m: m.out_dim == 3),
    "fit NumPy steps, lr, seed": (lambda: (run_fit(steps=np.int64(3), lr=np.float32(0.1), seed=np.int64(0)),
                                           run_fit(steps=3, lr=float(np.float32(0.1)), seed=0)),
                                  lambda h: h[0].train_loss.tolist() == h[1].train_loss.tolist()),
    "fit schedule zero": (lambda: run_fit(steps=2, schedule=lambda t: 0.0), lambda h: not h.diverged),
    "clouds NumPy sizes": (lambda: data.gaussian_clouds(n_train=np.int64(10), n_test=np.int32(5), spread=np.float32(1)),
                           lambda d: (d.n_train, d.n_test) == (10, 5)),
    "modular p as NumPy int": (lambda: data.modular_arithmetic(np.int64(7)), lambda d: d.n_classes == 7),
    "mnist1d NumPy n_train": (lambda: data.mnist1d(n_train=np.int64(100)), lambda d: d.n_train == 100 and d.n_test == 1000),
    "Run NumPy fields": (lambda: mk_run(steps=np.int64(3), lr=np.float64(0.1), seed=np.int64(1)),
                         lambda r: (r.steps, r.lr, r.seed) == (3, 0.1, 1)),
    "seed_everything NumPy": (lambda: config.seed_everything(np.int64(3)), lambda g: g.initial_seed() == 3),
    "SAM NumPy rho": (lambda: SAM(net().parameters(), rho=np.float32(0.05), lr=0.1), lambda o: o.defaults["rho"] > 0),
    "MFVI NumPy dataset_size": (lambda: MFVI(net().parameters(), dataset_size=np.int64(10)),
                                lambda o: o.defaults["dataset_size"] == 10),
    "MFVI softplus large init_std": (mfvi_softplus_large_std, lambda s: torch.allclose(s, torch.full((2,), 2000.0))),
    "hessian_trace NumPy seed": (lambda: (cv.hessian_trace(*LIN, n_samples=4, seed=np.int64(1)),
                                          cv.hessian_trace(*LIN, n_samples=4, seed=1)), lambda t: t[0] == t[1]),
    "top_eigenvalues NumPy k": (lambda: cv.top_eigenvalues(*LIN, k=np.int64(2)), lambda v: v.shape == (2,)),
    "GrokConfig NumPy p": (lambda: gk.GrokConfig(p=np.int64(7)).validate(), lambda c: c.p == 7),
    "stability_threshold 0-d tensor": (lambda: cv.stability_threshold(torch.tensor(0.5)),
                                       lambda t: math.isclose(t, 4.0)),
}


@pytest.mark.parametrize("case", list(VALID), ids=list(VALID))
def test_valid_edge_cases_give_the_right_result(case):
    call, check = VALID[case]
    assert check(call())
