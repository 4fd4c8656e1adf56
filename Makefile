# Gradient Flow Lab: `make lab` to learn, `make test` to check everything. `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements-stamp
DEV_STAMP := $(VENV)/.requirements-dev-stamp
NB     ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: help lab test notebooks system-deps learner-deps venv venv-dev clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  make notebooks NB=00_start_here   rebuild one notebook"

system-deps: ## Install what the tests need (Graphviz, python3-venv, Chromium, npm) if missing
	@PYTHON=$(PYTHON) tools/system_deps.sh dev

learner-deps: ## Install what learners need (Graphviz, python3-venv) if missing
	@PYTHON=$(PYTHON) tools/system_deps.sh learner

$(BIN)/python: | learner-deps
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10) and \
	  "Python >= 3.10 is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins or the package metadata change. requirements.txt = what
# learners need; requirements-dev.txt = that (-r requirements.txt) plus the test/build tools.
$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --no-input -r requirements.txt
	@touch $@

# Installing requirements-dev.txt installs requirements.txt too, so both stamps are current.
$(DEV_STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --no-input -r requirements-dev.txt
	@touch $(STAMP) $@

venv: $(STAMP) ## Create .venv and install requirements.txt (only when changed)

venv-dev: $(DEV_STAMP) ## Create .venv and install requirements-dev.txt: also the test tools

# Root = the repository (as on Binder), opened at notebook 00; relative links then work.
# JUPYTER_CONFIG_PATH: binder/jupyter/ holds the server config Binder uses too (binder/start):
# idle kernels are shut down after 15 minutes, so finished notebooks give their memory back,
# and kernel messages reach the page without Nagle's delay (jupyter_server_config.py).
lab: venv learner-deps ## Start JupyterLab on notebooks/00_start_here.ipynb
	JUPYTER_CONFIG_PATH="$(CURDIR)/binder/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	$(BIN)/jupyter lab --ip=127.0.0.1 $(ROOT_FLAG) \
	  --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb

# --dist loadfile: all cells of one notebook run in one worker (one kernel), in order.
# pytest exit 5 = no tests collected: reported loudly, but not a failure.
test: venv-dev system-deps ## Run every test: unit tests and strict nbval over notebooks/*.ipynb
	$(BIN)/python -m pytest -n 2 --dist loadfile \
	  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  tests notebooks $(PYTEST_ARGS) \
	  || { s=$$?; [ $$s -eq 5 ] || exit $$s; echo "make test: NO TESTS WERE COLLECTED (pytest exit 5)" >&2; }

notebooks: venv-dev system-deps ## Rebuild notebooks/*.ipynb from notebooks/sources/*.py, executed
	$(BIN)/python tools/build_notebooks.py $(NB)

clean: ## Remove .venv and build/ (the Binder test venv)
	rm -rf $(VENV) build

APP_PORT ?= 8866
.PHONY: app
app: venv learner-deps ## Serve 08_compare_all as an app (Voila: code hidden, widgets live) on 127.0.0.1
	$(BIN)/voila notebooks/08_compare_all.ipynb --no-browser --Voila.ip=127.0.0.1 --port=$(APP_PORT)

.PHONY: bench
# Timings go to BENCHMARKS.md only, from a passing run (a failing notebook: exit 1, file untouched).
# One module per section: tools/bench_<section>.py. BENCH_QUICK=1: fewer repeats; BENCH_SKIP=...
bench: venv-dev system-deps ## Time toggles and notebooks, kernel memory, install size; write BENCHMARKS.md
	$(BIN)/python tools/bench.py

.PHONY: matrix
# Not part of `make test`: one venv per torch version (CUDA wheels of 4-7 GB from PyPI, run on the
# CPU), each deleted after use; 15-40 minutes per version here. MATRIX_ARGS='--versions 2.6.0'
matrix: venv-dev ## Run every notebook on several torch/Python versions; write MATRIX.md + README
	$(BIN)/python tools/matrix.py $(MATRIX_ARGS)

.PHONY: slides
# reveal.js, RequireJS, jQuery, MathJax and the widget renderer are fetched once with npm into
# slides/vendor/ (git-ignored); the decks load them from there, so they open offline.
slides: venv-dev system-deps ## Build a reveal.js deck per notebook into slides/ (opens offline; needs npm)
	$(BIN)/python tools/slides.py
