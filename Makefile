# The book's commands. `make book` and `make test` each run set-up first (see README).
SHELL := /bin/bash
VENV := _build/venv
PY := $(VENV)/bin/python
# Keep bytecode caches inside _build so a build or test run leaves nothing else behind.
export PYTHONPYCACHEPREFIX := $(CURDIR)/_build/pycache
export JUPYTER_PLATFORM_DIRS := 1
PARAMS ?=

.PHONY: setup book test lab refresh soak decide rehearse clean distclean

setup:
	@bash scripts/setup.sh

## Execute every chapter against real servers into _build/executed/ (two at a time, the summary last), then render _build/html/
book: setup
	$(PY) -m experiments.bookkit all --jobs 2 $(PARAMS)

## The linter; then the package tests (real servers, the browser, JupyterLab) and every chapter re-executed under
## nbval, in one run of two workers (by file: a chapter's cells stay together), the chapters first; the summary
## last, alone (it reads every chapter's results). Timings wait for a quiet machine (experiments/lab/quiet.py),
## so what runs beside them moves no asserted number. Tests that re-run a chapter's experiments (`chapter_run`)
## are left to `make soak`: nbval runs those experiments.
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg
CHAPTERS := $(filter-out book/summary.ipynb,$(wildcard book/*.ipynb)) book/appendix
test: setup
	$(VENV)/bin/ruff check experiments tests scripts
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not chapter_run" $(NBVAL) $(CHAPTERS) tests
	$(PY) -m pytest -q $(NBVAL) book/summary.ipynb

## Rank the cache options for your own system: make decide WORKLOAD=path/to/workload.toml (see README)
WORKLOAD ?= data/workloads/chatbot.toml
decide: setup
	$(PY) -m experiments.decide --workload $(WORKLOAD) $(DECIDE_ARGS)

## Rehearse the first option (or OPTION=id) for a workload on local servers: make rehearse WORKLOAD=path/to/workload.toml
## (without WORKLOAD: the note's chatbot with the catalog's headroom, the workload the decision record answers)
OPTION ?=
rehearse: setup
	$(PY) -m experiments.rehearse --workload $(WORKLOAD) $(if $(filter file,$(origin WORKLOAD)),--headroom) $(if $(OPTION),--option $(OPTION))

## Work through the chapters in JupyterLab (servers start and stop with each chapter's kernel).
lab: setup
	$(VENV)/bin/jupyter lab --allow-root --ServerApp.root_dir=$(CURDIR)

## Re-execute chapters and replace the committed reference outputs (only on success).
refresh: setup
	$(PY) -m experiments.bookkit refresh $(PARAMS)

## Repeat the fault-injection tests 20 times: pass count and leaked servers (not part of CI).
soak: setup
	bash scripts/soak.sh 20

clean:
	find _build -mindepth 1 -maxdepth 1 ! -name venv -exec rm -rf {} +

distclean:
	rm -rf _build
