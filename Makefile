# gm_plugins: `make demo` runs the main job, `make test` the checks. Both install first.
# `make demo`, `make table1`, `make confounding` and `make preprocessing` run the experiments of
# tools/run_benchmark.py: table1 and confounding are the synthetic benchmark
# (gm_plugins/apis/benchmark.py), demo and preprocessing are listed in gm_plugins/apis/experiments.py.
# `make demo` takes its segmentation and pose models from the model zoo (model-index.yml, zoo/);
# `make demo-retrain` trains them too, from their configs. `make zoo-check` measures the zoo's
# models on held-out synthetic infants against their recorded metrics.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gm_plugins-installed
REQS := $(wildcard requirements/*.txt requirements/*.sh) setup.py
DEMO_DIR ?= work_dirs/demo

.PHONY: install demo demo-retrain zoo-check test lint format pytest clean-demo table1 confounding \
	preprocessing

install: $(STAMP)

$(STAMP): $(REQS)
	bash requirements/install.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_benchmark.py demo --work-dir $(DEMO_DIR)

demo-retrain: $(STAMP)
	$(PY) tools/run_benchmark.py demo --retrain-preprocessing --work-dir $(DEMO_DIR)-retrained

zoo-check: $(STAMP)
	$(PY) tools/analysis_tools/evaluate_zoo.py

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
