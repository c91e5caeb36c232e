"""pytest settings for the docstring examples of flatlab/ (``make test`` collects them with --doctest-modules)."""
import pytest


@pytest.fixture(autouse=True)
def _docstring_examples_record_no_claims(request, monkeypatch):
    """A docstring example that calls ``claim(...)`` must not add a line to the chapters' claims table."""
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.delenv("FLATLAB_CLAIMS_FILE", raising=False)
