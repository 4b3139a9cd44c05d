# make test    the test suite           make report   every exercise in full, README table, report PDF
# make pdf     report/report.pdf from the existing results (LaTeX: latexmk + TeX Live)
# make smoke   every exercise with --quick into scratch/smoke, and a PDF built from those
# make bench   pipeline benchmark       make submission   submission.zip: code, README, requirements, PDF
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
# build a report from <root>/results + <root>/figures into <latex-dir>/report.pdf
LATEX = cd report && TEXINPUTS=$(abspath $(1))/generated//: latexmk -pdf -interaction=nonstopmode -halt-on-error \
	-file-line-error -jobname=report -outdir=$(abspath $(2)) main.tex

.PHONY: test report pdf bench smoke smoke-runs readme submission clean

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
	$(MAKE) pdf

pdf: $(VENV)/.installed
	$(PY) -m common.latex --root report
	@mkdir -p scratch/latex
	($(call LATEX,report,scratch/latex)) > scratch/latex.log 2>&1 || { tail -40 scratch/latex.log; exit 1; }
	cp scratch/latex/report.pdf report/report.pdf
	@echo "wrote report/report.pdf"

readme: $(VENV)/.installed
	$(PY) -m common.report

smoke: smoke-runs
	@mkdir -p scratch/smoke/latex
	($(call LATEX,scratch/smoke,scratch/smoke/latex)) > scratch/smoke/latex.log 2>&1 || { tail -40 scratch/smoke/latex.log; exit 1; }
	@echo "wrote scratch/smoke/latex/report.pdf (from the --quick results)"

smoke-runs: $(VENV)/.installed
	@for script in $(EXERCISES); do \
		echo "== $$script --quick"; \
		$(PY) $$script --quick --device $(DEVICE) --out-dir scratch/smoke --no-progress || exit 1; \
	done
	$(PY) -m common.latex --root scratch/smoke

submission: report/report.pdf
	git archive --format=zip --prefix=dlia-assignment3/ -o submission.zip HEAD
	@echo "wrote submission.zip: the committed tree (code, tests, README, requirements, report with its PDF);" \
		"no data, caches or virtual environments. Commit first: uncommitted changes are not in it."

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_mnist_pipeline.py --device $(DEVICE)

clean:
	rm -rf scratch .pytest_cache
