# make test     the test suite                   make report   every exercise in full, README table, report PDF
# make results  every exercise script, JOBS at a time (one rule per results file; each run trained once)
# make replicate  every script again with other seeds and with another CPU's kernels, outcomes compared (hours)
# make figures  every figure redrawn from the committed results, without training (under a minute)
# make pdf      report/report.pdf from the existing results (needs LaTeX: latexmk + TeX Live)
# make report PDF=no   results and figures without the PDF (no LaTeX needed)
# make smoke    every exercise with --quick into scratch/smoke, and a PDF built from those
# make bench    pipeline benchmark               make submission   submission.zip: the committed tree
# The virtual environment .venv is created on first use from requirements.txt.
# Data: data/ if it holds a data set, else ../shared/data; $DLIA_DATA_DIR from the environment wins over
# both, and DATA_DIR on the command line over everything (make report DATA_DIR=...).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEVICE ?= auto
PDF ?= yes
# scripts at once (each trains on one thread); where they write results/ and figures/; more options for
# every script (e.g. --quick, or --seed 100)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
OUT ?= report
SCRIPT_ARGS ?=
TEX_INSTALL := apt-get install -y --no-install-recommends latexmk texlive-latex-recommended \
	texlive-latex-extra texlive-fonts-recommended
# What common/mnist.find_mnist and common/warwick.find_warwick accept in a data folder D, as files or
# folders that must exist: MNIST's PNG folders or IDX files (.gz too) in D/MNIST, D/MNIST/raw, D or D/raw;
# WARWICK's image_NN.png in D/WARWICK/Train or D/Train, or the zip. An empty data/WARWICK/ is no data set.
MNIST_IDX := train-images-idx3-ubyte train-images-idx3-ubyte.gz
DATA_SETS_IN = $(wildcard $(foreach d,$(1)/MNIST $(1),$(d)/Train/0 $(addprefix $(d)/,$(MNIST_IDX)) \
	$(addprefix $(d)/raw/,$(MNIST_IDX)) $(d)/Train/image_*.png) $(1)/WARWICK/Train/image_*.png \
	$(1)/WARWICK.zip $(1)/warwick.zip)
DATA_DIR ?= $(if $(call DATA_SETS_IN,data),data,../shared/data)
ifeq ($(origin DATA_DIR),command line)
export DLIA_DATA_DIR := $(DATA_DIR)
else ifeq ($(origin DLIA_DATA_DIR),undefined)
export DLIA_DATA_DIR := $(DATA_DIR)
endif
# build a report from <root>/results + <root>/figures into <latex-dir>/report.pdf
LATEX = cd report && TEXINPUTS=$(abspath $(1))/generated//: latexmk -pdf -interaction=nonstopmode -halt-on-error \
	-file-line-error -jobname=report -outdir=$(abspath $(2)) main.tex

.PHONY: test report results always replicate figures pdf bench smoke smoke-runs readme submission disk-space check-tex clean

# PyTorch 2.14.1 for Linux x86_64 brings its CUDA libraries: the environment takes about 6 GiB.
VENV_GIB ?= 6
$(VENV)/.installed: requirements.txt
	@$(MAKE) --no-print-directory -s disk-space
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

# Checked before any training: without LaTeX the PDF would fail only after all of it.
check-tex:
	@if [ "$(PDF)" != "no" ] && ! command -v latexmk >/dev/null 2>&1; then \
		echo "error: the report PDF needs LaTeX (latexmk and TeX Live), which this machine lacks. Install it:"; \
		echo "  $(TEX_INSTALL)"; \
		echo "(as root, or with sudo in front)"; \
		echo "or make the results and figures without the PDF: make report PDF=no"; \
		exit 1; \
	fi

# One rule per results file: the script makes it and its figures. A run that several exercises share is
# trained by the first (Ex 1.2's network, reused by Ex 1.3-1.5; Ex 2.1's, by Ex 2.2-2.4; Ex 2.2's network without
# batch norm, by Ex 2.4) and loaded from the run cache by the others, so they wait for it.
SCRIPTS := $(sort $(wildcard ex[0-9]_[0-9]_*.py))
# Under make -j the longest chain goes first: Ex 2.4 trains longest and waits for Ex 2.1 and Ex 2.2, so these three
# lead and the other scripts fill the other cores (alphabetical, Ex 2.4 started last and ran alone at the end).
FIRST := ex2_1_segnet.py ex2_2_regularization.py ex2_4_residual.py
RESULTS = $(patsubst %.py,$(OUT)/results/%.json,$(filter $(FIRST),$(SCRIPTS)) $(filter-out $(FIRST),$(SCRIPTS)))
# FORCE=1 runs every script, whatever is up to date (their runs come from the run cache where they are there).
SCRIPT_CODE := $(filter-out common/report.py common/replication.py,$(wildcard common/*.py))
$(OUT)/results/%.json: %.py $(SCRIPT_CODE) $(if $(FORCE),always) | $(PY)
	$(PY) $< --device $(DEVICE) --out-dir $(OUT) $(SCRIPT_ARGS)
$(OUT)/results/ex1_3_pool_order.json $(OUT)/results/ex1_4_adam.json $(OUT)/results/ex1_5_variants.json: \
	$(OUT)/results/ex1_2_cnn.json
$(OUT)/results/ex1_5_variants.json: $(OUT)/results/ex1_3_pool_order.json  # its tanh run is Ex 1.3's
$(OUT)/results/ex2_2_regularization.json $(OUT)/results/ex2_3_skip.json $(OUT)/results/ex2_4_residual.json: \
	$(OUT)/results/ex2_1_segnet.json
$(OUT)/results/ex2_4_residual.json: $(OUT)/results/ex2_2_regularization.json  # its depth-1 no-BN runs are Ex 2.2's

results: $(RESULTS)
always:
$(PY):
	@$(MAKE) --no-print-directory $(VENV)/.installed

# Every figure of the report from the results files in $(OUT)/results (committed for report/): no data, no
# training, no cache.
figures: $(VENV)/.installed
	@$(MAKE) --no-print-directory -j$(JOBS) $(SCRIPTS:%.py=%.figures)
	@echo "redrew every figure in $(OUT)/figures from $(OUT)/results"
%.figures: %.py
	@$(PY) $< --figures-only --out-dir $(OUT) > /dev/null

# Do the report's directions survive other seeds, and another CPU's rounding? Every script again with seeds
# 100.. (which also draw another validation split) and with PyTorch's CPU kernels limited to another
# instruction set (OTHER_CPU: the plain kernels; AVX2 would do on an AVX-512 machine), into scratch/; then every
# comparison's outcome against report/results (common/replication.py), and the outcomes of the report's table rows in both into report/replication.json:
# a direction either did not give reads "not reliably better" in the report. The run cache keys hold the
# instruction set, so the two never mix.
OTHER_CPU ?= ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
replicate: $(VENV)/.installed
	$(MAKE) --no-print-directory -j$(JOBS) results FORCE=1 OUT=scratch/seed100 SCRIPT_ARGS="--seed 100 --no-progress"
	$(OTHER_CPU) $(MAKE) --no-print-directory -j$(JOBS) results FORCE=1 OUT=scratch/other_cpu SCRIPT_ARGS="--no-progress"
	$(PY) -m common.replication report/results scratch/seed100/results --write report/replication.json \
		--other-cpu scratch/other_cpu/results
	$(PY) -m common.replication report/results scratch/other_cpu/results

report: check-tex $(VENV)/.installed
	$(PY) -m common.report timer start
	$(MAKE) --no-print-directory -j$(JOBS) results FORCE=1
	$(PY) -m common.report timer stop --jobs $(JOBS) --device $(DEVICE)
	$(PY) -m common.report readme
	@if [ "$(PDF)" != "no" ]; then $(MAKE) --no-print-directory pdf; fi

pdf: check-tex $(VENV)/.installed
	$(PY) -m common.report latex --root report
	@mkdir -p scratch/latex
	($(call LATEX,report,scratch/latex)) > scratch/latex.log 2>&1 || { tail -40 scratch/latex.log; exit 1; }
	cp scratch/latex/report.pdf report/report.pdf
	@echo "wrote report/report.pdf"

readme: $(VENV)/.installed
	$(PY) -m common.report readme

smoke: check-tex smoke-runs
	@mkdir -p scratch/smoke/latex
	($(call LATEX,scratch/smoke,scratch/smoke/latex)) > scratch/smoke/latex.log 2>&1 || { tail -40 scratch/smoke/latex.log; exit 1; }
	@echo "wrote scratch/smoke/latex/report.pdf (from the --quick results)"

smoke-runs: $(VENV)/.installed
	$(MAKE) --no-print-directory -j$(JOBS) results FORCE=1 OUT=scratch/smoke SCRIPT_ARGS="--quick --no-progress"
	$(PY) -m common.report latex --root scratch/smoke

submission: report/report.pdf
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "warning: the working tree has uncommitted changes, which submission.zip will NOT contain" \
			"(it archives the last commit, HEAD); commit them first:"; \
		git status --short; \
	fi
	git archive --format=zip --prefix=dlia-assignment3/ -o submission.zip HEAD
	@echo "wrote submission.zip: the committed tree (code, tests, README, requirements, report with its PDF);" \
		"no data, caches or virtual environments. Commit first: uncommitted changes are not in it."

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_mnist_pipeline.py --device $(DEVICE)

disk-space:
	@$(PYTHON) -c "import shutil; free = shutil.disk_usage('.').free / 2**30; \
		free < $(VENV_GIB) + 1 and print(f'WARNING: {free:.1f} GiB free on this disk; $(VENV) needs about $(VENV_GIB) GiB')"

clean:
	rm -rf scratch .pytest_cache
