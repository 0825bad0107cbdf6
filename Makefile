# gm_plugins: `make demo` runs the main job, `make test` the checks. Both install first.
# `make demo`, `make table1`, `make confounding` and `make preprocessing` run the experiments of
# tools/run_benchmark.py: table1 and confounding are the synthetic benchmark
# (gm_plugins/apis/benchmark.py), demo and preprocessing are listed in gm_plugins/apis/experiments.py.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gm_plugins-installed
REQS := $(wildcard requirements/*.txt requirements/*.sh) setup.py
DEMO_DIR ?= work_dirs/demo

.PHONY: install demo test lint format pytest clean-demo table1 confounding preprocessing

install: $(STAMP)

$(STAMP): $(REQS)
	bash requirements/install.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_benchmark.py demo --work-dir $(DEMO_DIR)

table1: $(STAMP)
	$(PY) tools/run_benchmark.py table1

confounding: $(STAMP)
	$(PY) tools/run_benchmark.py confounding

preprocessing: $(STAMP)
	$(PY) tools/run_benchmark.py preprocessing

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

pytest: $(STAMP)
	$(PY) -m pytest tests

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-demo:
	rm -rf $(DEMO_DIR)
