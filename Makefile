# flatlab — every target bootstraps .venv on first use (python3 -m venv + pip install -e .[dev]).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := build
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: lab test book bench clean doctor student slides browser chromium robustness

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

lab: $(STAMP)  ## open the workbook in JupyterLab
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00_welcome.ipynb $(LAB_ARGS)

# make test runs on an empty cache of its own (data sets, sweeps), as a new machine would: a warm
# ~/.cache/flatlab must never hide a failure.
test: $(STAMP) chromium  ## unit tests + every chapter executed at the small budget, claims checked
	$(PY) -m ruff check flatlab tests benchmarks
	@mkdir -p $(BUILD) && rm -f $(BUILD)/claims-test.jsonl
	@cache=$$(mktemp -d -t flatlab-test-cache.XXXXXX) && echo "empty cache for this run: $$cache" && \
	FLATLAB_CACHE=$$cache FLATLAB_BUDGET=small FLATLAB_THREADS=1 FLATLAB_CLAIMS_FILE=$(CURDIR)/$(BUILD)/claims-test.jsonl \
		$(PY) -m pytest tests notebooks flatlab --doctest-modules --nbval-lax -p no:cacheprovider -n 2 --dist loadscope; \
	status=$$?; rm -rf $$cache; exit $$status
	@$(PY) -m flatlab.cli claims $(BUILD)/claims-test.jsonl $(BUILD)/claims.json

robustness: $(STAMP)  ## every claim over many seeds: SEEDS=0-19 BUDGET=small CHAPTERS="00 01"
	$(PY) -m flatlab.cli robustness --seeds $(or $(SEEDS),0-19) --budget $(or $(BUDGET),small) $(CHAPTERS)

book: $(STAMP)  ## execute every chapter at the full budget into build/ (notebooks, HTML, claims.json)
	$(PY) -m flatlab.cli book --budget full --build $(BUILD)

student: $(STAMP)  ## student (no solutions) and teacher versions into build/student, build/teacher
	$(PY) -m flatlab.cli student

slides: $(STAMP)  ## reveal.js slides of every chapter into build/slides (CHAPTERS="00 01" to choose)
	$(PY) -m flatlab.cli slides $(or $(CHAPTERS),$(shell ls notebooks | grep -o '^[0-9][0-9]' | sort -u))

bench: $(STAMP)  ## speed against named peers, as ratios (installs the peers first: pyhessian)
	@$(PY) -c "import pyhessian" 2>/dev/null || $(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	@status=0; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || status=1; done; \
		[ $$status = 0 ] || echo "make bench: some goals were missed (benchmarks/goals.py has the table)"; exit $$status

browser: $(STAMP) chromium  ## the real-browser widget test alone
	$(PY) -m pytest -q tests/test_browser.py -p no:cacheprovider

doctor: $(STAMP)
	$(PY) -m flatlab.cli doctor

clean:
	rm -rf $(BUILD) .pytest_cache notebooks/.ipynb_checkpoints
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

chromium:  # Debian's chromium for the real-browser test, installed once when root can (else that test skips)
	@command -v $${FLATLAB_CHROMIUM:-chromium} >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& echo "installing Debian's chromium for the browser test" && apt-get update -qq >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not found and not installable here: the real-browser test will be skipped"

