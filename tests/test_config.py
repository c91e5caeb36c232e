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
