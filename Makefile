# shardgrad: every target installs what it needs into .venv by itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_BACKEND ?= ray

.PHONY: install test lint format demo bench proto reliability clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The demo needs the service and Ray, not the test tools (torch, cupy).
$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[service,ray]'
	touch $(DEMO_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest -q

demo: $(DEMO_STAMP)
	$(VENV)/bin/shardgrad demo --backend $(DEMO_BACKEND)

bench: $(STAMP)
	$(PY) benchmarks/core_step.py

# The whole reliability suite (faults, load, fuzzing, security) and the figures in
# docs/reliability.md; `make test` runs its short version.
reliability: $(STAMP)
	mkdir -p build && rm -f build/reliability.json
	SHARDGRAD_RELIABILITY_FULL=1 SHARDGRAD_RELIABILITY_RESULTS=build/reliability.json \
		$(PY) -m pytest tests/reliability -q
	$(PY) tests/reliability/report.py build/reliability.json docs/reliability.md

proto: $(STAMP)
	bash scripts/gen_protos.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
