# gm_plugins: `make demo` runs the main job, `make test` the checks. Both install first; `make test`
# also installs the report test's browser (requirements/browser.sh; GM_PLUGINS_SKIP_BROWSER=1 skips
# it and that test) and builds the documentation (tests/test_docs.py), so a fresh clone needs no
# other step. `make docs` builds the documentation alone, into $(DOCS_DIR). `make benchmark-pages`
# rebuilds the benchmark pages (docs/en/benchmarks/results/) from the committed records (results/).
# `make demo`, `make table1`, `make confounding` and `make preprocessing` run the experiments of
# tools/run_benchmark.py: table1 and confounding are the synthetic benchmark
# (gm_plugins/experiments/benchmark.py), demo and preprocessing are listed in
# gm_plugins/experiments/shipped.py.
# `make demo` takes its segmentation and pose models from the model zoo (model-index.yml, zoo/);
# `make demo-retrain` trains them too, from their configs. `make zoo-check` measures the zoo's
# models on held-out synthetic infants against their recorded metrics.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gm_plugins-installed
REQS := $(wildcard requirements/*.txt requirements/*.sh) setup.py
DEMO_DIR ?= work_dirs/demo
DOCS_DIR ?= work_dirs/docs

.PHONY: install demo demo-retrain zoo-check test lint format pytest clean-demo table1 confounding \
	preprocessing browser docs benchmark-pages

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

benchmark-pages: $(STAMP)
	$(PY) tools/analysis_tools/publish_benchmarks.py

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

pytest: $(STAMP) browser
	$(PY) -m pytest tests

browser:
	bash requirements/browser.sh

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs/en $(DOCS_DIR)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-demo:
	rm -rf $(DEMO_DIR)
