import os

import pytest
import torch

# Tests run single-threaded and at the small budget unless told otherwise.
os.environ.setdefault("FLATLAB_BUDGET", "small")
torch.set_num_threads(int(os.environ.get("FLATLAB_THREADS", "0")) or min(2, torch.get_num_threads()))


@pytest.fixture
def clouds():
    from flatlab.data import gaussian_clouds

    return gaussian_clouds(n_train=120, n_test=200, n_classes=3, seed=0)


@pytest.fixture
def recording_bars(monkeypatch) -> list:
    """config.progress_bar replaced by real tqdm bars that write to a string; the list the bars land in."""
    import io

    from tqdm.std import tqdm

    import flatlab.config

    bars = []

    def recording_bar(**kwargs):
        bars.append(tqdm(**kwargs, disable=False, mininterval=0, file=io.StringIO()))
        return bars[-1]

    monkeypatch.setattr(flatlab.config, "progress_bar", recording_bar)
    return bars


@pytest.fixture(autouse=True)
def _no_claims_file(monkeypatch):
    """Unit tests make claims of their own (some false on purpose): keep them out of the chapters'
    claims file that ``make test`` summarizes. A test that wants a file sets the variable itself."""
    monkeypatch.delenv("FLATLAB_CLAIMS_FILE", raising=False)
