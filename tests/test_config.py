import subprocess
import sys

import numpy as np
import pytest
import torch

from flatlab import config


def test_budget_default_is_full(monkeypatch):
    monkeypatch.delenv("FLATLAB_BUDGET", raising=False)
    assert config.budget() == "full"


@pytest.mark.parametrize("value", ["small", "full", " SMALL "])
def test_budget_reads_environment(monkeypatch, value):
    monkeypatch.setenv("FLATLAB_BUDGET", value)
    assert config.budget() == value.strip().lower()


def test_unknown_budget_names_the_variable(monkeypatch):
    monkeypatch.setenv("FLATLAB_BUDGET", "huge")
    with pytest.raises(ValueError, match="FLATLAB_BUDGET='huge'.*small, full"):
        config.budget()
    with pytest.raises(ValueError, match="budget='tiny'"):
        config.budget("tiny")


def test_by_budget_picks():
    assert config.by_budget(1, 2, "small") == 1
    assert config.by_budget(1, 2, "full") == 2


def test_seed_everything_is_reproducible():
    config.seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    config.seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)


def test_setup_notebook_sets_template_and_prints(capsys, monkeypatch):
    import plotly.io as pio

    monkeypatch.setenv("FLATLAB_BUDGET", "small")
    line = config.setup_notebook(seed=5, chapter="99_test", renderer="json")
    assert "flatlab" in capsys.readouterr().out and "seed 5" in line and "budget small" in line
    assert "flatlab" in pio.templates.default
    assert pio.renderers.default == "json"


def test_setup_notebook_turns_on_deterministic_algorithms_without_loading_the_compiler():
    """The same switch as ``torch.use_deterministic_algorithms(True, warn_only=True)``, minus its ~1.2 s import of
    torch._dynamo in every chapter's kernel (a fresh interpreter: this one may have loaded it)."""
    code = ("import sys, torch, flatlab\n"
            "assert not torch.are_deterministic_algorithms_enabled()\n"
            "flatlab.setup_notebook(0, renderer='json')\n"
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),"
            " 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "True True False"


def test_cache_dir_respects_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_progress_bar_is_text_in_a_book_build(monkeypatch):
    """A book build has no kernel: a widget progress bar would leave a dead widget in the HTML."""
    import tqdm.std

    from flatlab.config import progress_bar

    monkeypatch.setenv("FLATLAB_OFFLINE_FIGURES", "1")
    bar = progress_bar(total=3, disable=True)
    assert type(bar) is tqdm.std.tqdm
    bar.close()
    monkeypatch.delenv("FLATLAB_OFFLINE_FIGURES")
    bar = progress_bar(total=3, disable=True)
    assert isinstance(bar, tqdm.std.tqdm)  # tqdm.auto: a notebook bar in a kernel, text elsewhere
    bar.close()


def test_progress_counts_the_items_and_closes(recording_bars):
    bars = recording_bars
    assert list(config.progress(range(4), "runs")) == [0, 1, 2, 3]
    (bar,) = bars
    assert (bar.total, bar.n, bar.desc) == (4, 4, "runs") and bar.disable  # closed: tqdm disables a closed bar
    assert list(config.progress((i for i in range(3)), "gen", total=3)) == [0, 1, 2] and bars[1].total == 3
    # nothing to show: the iterable itself, no bar
    items = [1, 2]
    assert config.progress(items, "off", show=False) is items and config.progress([1], "one") == [1]
    assert len(bars) == 2
    with pytest.raises(TypeError, match="show must be True or False"):
        config.progress([1, 2], "x", show="yes")
    with pytest.raises(TypeError, match="desc must be a str"):
        config.progress([1, 2], 3)
    with pytest.raises(ValueError, match="total"):
        config.progress([1, 2], "x", total=-1)
    # a loop that stops early still closes its bar
    with pytest.raises(RuntimeError):
        for _ in config.progress(range(5), "broken"):
            raise RuntimeError
    assert len(bars) == 3 and bars[-1].disable


def test_the_chapters_slow_helpers_show_a_bar_over_their_runs(recording_bars):
    import torch.nn.functional as F

    import flatlab
    from flatlab import adaptive, curvature, implicit
    from flatlab.data import gaussian_clouds, low_rank_matrix

    bars = recording_bars
    data = gaussian_clouds()
    adaptive.warmup_grid(flatlab.MLP(2, [8], 3, seed=0), data, [0.1], [0, 5], 3)
    implicit.factorization_sweep(low_rank_matrix(n=6, rank=1), (1, 2), (1e-1,), 5)
    models = {"a": flatlab.MLP(2, [4], 3, seed=0)}
    curvature.slice_surfaces(models, F.cross_entropy, data.train, n=3)
    assert [(b.desc, b.total, b.n) for b in bars] == [("warmup runs", 3, 3), ("depths", 2, 2), ("loss surfaces", 2, 2)]
    adaptive.warmup_grid(flatlab.MLP(2, [8], 3, seed=0), data, [0.1], [0, 5], 3, progress=False)
    implicit.factorization_sweep(low_rank_matrix(n=6, rank=1), (1, 2), (1e-1,), 5, progress=False)
    curvature.slice_surfaces(models, F.cross_entropy, data.train, n=3, progress=False)
    assert len(bars) == 3
    with pytest.raises(TypeError, match="progress must be True or False"):
        curvature.slice_surfaces(models, F.cross_entropy, data.train, n=3, progress="yes")
