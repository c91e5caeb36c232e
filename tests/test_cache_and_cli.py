"""State that bad input must not corrupt: the sweep and data caches, fit's pre-flight on the model's
state, and the command line's build directory and exit codes."""
import os
import warnings

import pandas as pd
import pytest
import torch
from torch import nn

import flatlab.config as config
import flatlab.data as data
import flatlab.grokking as gk
from flatlab import cli
from flatlab.models import MLP
from flatlab.sweep import Run, sweep
from flatlab.train import _check_model_fits, fit, make_loss


def clouds():
    return data.gaussian_clouds(n_train=32, n_test=16, seed=0)


def make_for(ds):
    return lambda lr, seed: Run(MLP(2, [4], 3, seed=seed), ds, steps=4, lr=lr, batch_size=8)


def run(ds, cache):
    return sweep(make_for(ds), {"lr": [0.1]}, seeds=[0], backend="loop", cache=cache, progress=False)


def same_numbers(a, b):
    cols = ["step", "train_loss", "test_loss"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


# ------------------------------------------------------------------------------ the sweep cache
@pytest.mark.parametrize("edit", ["in place", "reassigned", "through .data", "through numpy"])
def test_sweep_cache_sees_edits_of_the_data(tmp_path, edit):
    ds = clouds()
    first = run(ds, tmp_path)
    assert first.attrs["from_cache"] is False and run(ds, tmp_path).attrs["from_cache"] is True
    if edit == "in place":
        ds.x_train.mul_(0.5)
    elif edit == "reassigned":
        ds.y_train = torch.roll(ds.y_train, 1)
    elif edit == "through .data":
        ds.x_train.data.mul_(0.5)  # no version bump: the content is hashed on every call
    else:
        ds.x_test.numpy()[:] *= 0.5
    again = run(ds, tmp_path)
    assert again.attrs["from_cache"] is False
    same_numbers(again, run(ds, False))  # the numbers of the edited data, not the cached ones
    assert run(ds, tmp_path).attrs["from_cache"] is True


def test_truncated_sweep_cache_entry_is_recomputed(tmp_path):
    ds = clouds()
    first = run(ds, tmp_path)
    (entry,) = tmp_path.rglob("output.pkl")
    entry.write_bytes(entry.read_bytes()[:50])
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = run(ds, tmp_path)
    assert again.attrs["from_cache"] is False
    same_numbers(first, again)
    assert run(ds, tmp_path).attrs["from_cache"] is True  # and stored again, whole
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]  # no temporary files left


def test_flatlab_cache_expands_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATLAB_CACHE", "~/x")
    assert config.cache_dir() == tmp_path / "home" / "x" and (tmp_path / "home" / "x").is_dir()
    assert not (tmp_path / "~").exists()
    monkeypatch.setenv("FLATLAB_CACHE", "  ")  # empty: the default, not the working directory
    assert config.cache_dir() == tmp_path / "home" / ".cache" / "flatlab"
    run(clouds(), True)
    assert any((tmp_path / "home" / ".cache" / "flatlab" / "sweeps").rglob("output.pkl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_uncreatable_cache_warns_once_and_runs_uncached(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path / "file" / "cache"))
    ds = clouds()
    with pytest.warns(RuntimeWarning, match="not usable.*continuing without caching") as record:
        df = run(ds, True)
    assert len(record) == 1
    assert df.attrs["from_cache"] is False
    same_numbers(df, run(ds, False))


def test_read_only_cache_warns_and_still_returns_correct_results(tmp_path, monkeypatch):
    ds = clouds()
    reference = run(ds, False)
    if os.geteuid() != 0:  # a real read-only directory (root may write anywhere)
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.warns(RuntimeWarning, match="not usable"):
                same_numbers(run(ds, ro), reference)
        finally:
            ro.chmod(0o700)

    def read_only(directory, suffix):
        raise PermissionError(13, "Read-only file system", str(directory))

    monkeypatch.setattr(config, "_open_temp", read_only)
    with pytest.warns(RuntimeWarning, match="not usable.*Read-only") as record:
        df = run(ds, tmp_path / "rw")
    assert len(record) == 1 and df.attrs["from_cache"] is False
    same_numbers(df, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same directory warns only once
        run(ds, tmp_path / "rw")


def fake_mnist1d(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(4000, 40, generator=g), "y": torch.randint(0, 10, (4000,), generator=g),
            "x_test": torch.randn(1000, 40, generator=g), "y_test": torch.randint(0, 10, (1000,), generator=g)}


def test_truncated_mnist1d_cache_file_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(data, "_make_mnist1d", fake_mnist1d)
    first = data.mnist1d(seed=3)
    path = tmp_path / "mnist1d_seed3.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = data.mnist1d(seed=3)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # regenerated whole: read back without complaint
        assert torch.equal(data.mnist1d(seed=3).x_test, first.x_test)


def test_mnist1d_with_an_unusable_cache_warns_and_generates(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path / "file"))
    monkeypatch.setattr(data, "_make_mnist1d", fake_mnist1d)
    with pytest.warns(RuntimeWarning, match="not usable"):
        ds = data.mnist1d(n_train=10, seed=1)
    assert ds.n_train == 10 and torch.equal(ds.x_train, fake_mnist1d(1)["x"][:10])


def test_grokking_cache_unusable_runs_uncached(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path / "file"))
    config_ = gk.GrokConfig(p=7, embed_dim=4, hidden=8, steps=3, eval_every=1)
    with pytest.warns(RuntimeWarning, match="not usable"):
        h = gk.cached_grok(config_)
    assert h.train_loss.tolist() == gk.grok(config_).history.train_loss.tolist()


# ------------------------------------------------------------------------------ fit's pre-flight
def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))


def buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def test_preflight_leaves_batchnorm_statistics_modes_and_rng_untouched():
    model, ds = bn_model(), clouds()
    model[3].eval()  # a mixed-mode model: its modes come back as they were
    before, modes = buffers(model), [m.training for m in model.modules()]
    torch.manual_seed(5)
    _check_model_fits(model, ds, make_loss(ds))
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))  # no random numbers consumed
    assert all(torch.equal(before[k], v) for k, v in buffers(model).items())
    assert [m.training for m in model.modules()] == modes


def test_fit_updates_batchnorm_statistics_only_by_its_training_steps():
    ds = clouds()
    expected = bn_model()
    expected.train()
    with torch.no_grad():
        torch.manual_seed(0)
        expected(ds.x_train)  # the one train-mode pass of one full-batch step
    model = bn_model()
    fit(model, ds, "sgd", 1, lr=1e-12, progress=False)
    got, want = buffers(model), buffers(expected)
    assert torch.allclose(got["1.running_mean"], want["1.running_mean"])
    assert int(got["1.num_batches_tracked"]) == 1


# ------------------------------------------------------------------------------ the command line
def test_book_reports_a_raising_chapter_by_its_error_and_keeps_its_notebook(tmp_path, monkeypatch, capsys):
    """A chapter whose cell raises is a failure named by the error (not by a traceback's first line); the executed
    notebook is written up to that cell, and the chapters after it still run."""
    import nbformat

    from tiny_chapter import write_chapter

    paths = [write_chapter(tmp_path / name, body) for name, body in
             (("98_raises.ipynb", "raise KeyError('no such run')"), ("99_fine.ipynb", "print(SEED)"))]
    monkeypatch.setattr(cli, "_selected", lambda only: paths)
    failures, _ = cli._execute(None, tmp_path / "build", "teacher", seed=3)
    assert failures == ["98_raises.ipynb: KeyError: 'no such run'"]
    out = tmp_path / "build" / "notebooks"
    raised = nbformat.read(out / "98_raises.ipynb", as_version=4)
    assert raised.cells[-1].outputs[0].ename == "KeyError"
    assert nbformat.read(out / "99_fine.ipynb", as_version=4).cells[-1].outputs[0].text == "3\n"
    assert "98_raises.ipynb" in capsys.readouterr().out


def test_book_with_an_unknown_chapter_touches_nothing(tmp_path, capsys):
    (tmp_path / "claims.jsonl").write_text('{"name": "kept", "passed": true}\n')
    with pytest.raises(SystemExit) as exit_:
        cli.main(["book", "99", "--build", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "99" in err and "chapters: 00_" in err
    assert (tmp_path / "claims.jsonl").read_text() == '{"name": "kept", "passed": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims.jsonl"]


@pytest.mark.parametrize("content", [None, '{"name": "a", "passed": true}\n{"name": "b", "pass'])
def test_claims_fails_on_a_missing_or_truncated_file(tmp_path, capsys, content):
    jsonl, out = tmp_path / "claims.jsonl", tmp_path / "out.json"
    if content is not None:
        jsonl.write_text(content)
    assert cli.main(["claims", str(jsonl), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "claims.jsonl" in err and "Traceback" not in err
    assert not out.exists()


def test_doctor_reports_a_bad_budget_as_a_finding(monkeypatch, capsys):
    monkeypatch.setenv("FLATLAB_BUDGET", "bogus")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FLATLAB_BUDGET='bogus'" in out and "small, full" in out and "budget ?" in out


def test_a_bad_thread_count_is_named_by_cores_setup_and_doctor(monkeypatch, capsys):
    """One parser for FLATLAB_THREADS: config.cores, which setup_notebook and doctor both use."""
    import flatlab
    from flatlab.config import cores
    monkeypatch.setenv("FLATLAB_THREADS", "two")
    with pytest.raises(ValueError, match=r"FLATLAB_THREADS='two' must be a positive integer \(or unset\)"):
        cores()
    with pytest.raises(ValueError, match="FLATLAB_THREADS='two'"):
        flatlab.setup_notebook(0)
    assert cli.main(["doctor"]) == 1
    assert "FLATLAB_THREADS='two' must be a positive integer (or unset)" in capsys.readouterr().out
    monkeypatch.setenv("FLATLAB_THREADS", "3")
    assert cores() == 3
