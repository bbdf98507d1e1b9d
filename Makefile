# `make test` and `make demo` work on a fresh machine: both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast demo arena bench clean

setup: $(STAMP)

# torch/torchvision first and pinned (constraints.txt) so nothing later can pull another torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	bash run/demo.sh

arena: setup
	$(PY) -m swift_plugins.editgrpo.cli arena $(ARENA_ARGS)

bench: setup
	$(PY) benchmarks/edits.py
	$(PY) benchmarks/rewards.py
	$(PY) benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) demo_out arena_out
