# AstraDup: `make demo` runs the main job end to end; `make test` runs the test suite.
# Both create .venv on first use (torch's CPU wheel first, then the package) and are quick after.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.astradup-installed
APT_PACKAGES := libchromaprint1 chromium chromium-driver fonts-dejavu-core
# what `pip install vpdq` (a benchmark peer) compiles against; only `make bench` needs them
BENCH_APT_PACKAGES := libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libavdevice-dev \
  libavfilter-dev libswresample-dev pkg-config cmake g++
DEMO_DIR := data/demo
PYTEST_ARGS ?=

.PHONY: help setup system-deps bench-deps demo test test-fast lint report bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## Install the Debian packages AstraDup uses (as root), or print the apt-get line
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
	    || echo "warning: apt-get could not install$$missing; AstraDup falls back where it can"; \
	else \
	  echo "Optional Debian packages are missing. Install them with:"; \
	  echo "  sudo apt-get install -y$$missing"; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	@# torch first, pinned to the local CPU wheel, so no dependency can pull a CUDA build
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import astradup, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
	@touch $(STAMP)

setup: system-deps $(STAMP) ## Create .venv and install AstraDup with its test tools

demo: setup ## Build a labelled demo corpus, index it, match it and print the metrics
	$(BIN)/astradup demo --workdir $(DEMO_DIR)

test: setup ## Run the whole test suite (slow tests included)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup ## Run the tests not marked slow
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup ## ruff and mypy
	$(BIN)/ruff check astradup tests benchmarks
	$(BIN)/mypy astradup

report: setup ## Render the HTML report for the demo corpus (after make demo)
	$(BIN)/astradup report --store $(DEMO_DIR)/astradup.duckdb --truth $(DEMO_DIR)/corpus/ground_truth.csv \
	  --pairs $(DEMO_DIR)/pairs.csv --out $(DEMO_DIR)/report

bench-deps: setup ## Install the benchmark peers: Debian's libav*-dev and build tools (as root), then vpdq
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
	  else \
	    echo "vpdq needs Debian packages; install them with:"; echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@$(PY) -c "import vpdq" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]"
	@$(PY) -c "import vpdq"

bench: bench-deps ## Run the benchmarks and update benchmarks/RESULTS.md
	$(PY) benchmarks/run_all.py

clean: ## Remove the virtual environment and generated data (never user media)
	rm -rf $(VENV) data/demo reports/demo .pytest_cache
