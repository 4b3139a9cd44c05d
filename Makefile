# make test    the test suite           make report   every exercise in full + README table
# make bench   pipeline benchmark       make smoke    every exercise with --quick into scratch/smoke
# The virtual environment .venv is created on first use from requirements.txt.
# Data: data/ if it holds a data set, else ../shared/data (override: make report DATA_DIR=...).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEVICE ?= auto
DATA_DIR ?= $(if $(wildcard data/MNIST data/WARWICK data/WARWICK.zip),data,../shared/data)
ifeq ($(origin DLIA_DATA_DIR),undefined)
export DLIA_DATA_DIR := $(DATA_DIR)
endif
EXERCISES := $(sort $(wildcard ex[0-9]_[0-9]_*.py))

.PHONY: test report bench smoke readme clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

report: $(VENV)/.installed
	@for script in $(EXERCISES); do \
		echo "== $$script"; \
		$(PY) $$script --device $(DEVICE) || exit 1; \
	done
	$(PY) -m common.report

readme: $(VENV)/.installed
	$(PY) -m common.report

smoke: $(VENV)/.installed
	@for script in $(EXERCISES); do \
		echo "== $$script --quick"; \
		$(PY) $$script --quick --device $(DEVICE) --out-dir scratch/smoke --no-progress || exit 1; \
	done

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_mnist_pipeline.py --device $(DEVICE)

clean:
	rm -rf scratch .pytest_cache
