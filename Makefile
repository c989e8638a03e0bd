# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# The install also puts the commands (rs3d-train, rs3d-test, rs3d-predict, ...) in $(VENV)/bin.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision are pinned to the versions the suite is run with; setup.cfg states real ranges.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install lint test test-fast demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# ruff (pinned in the dev extra: its formatting changes between versions); settings in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(VENV)/bin/rs3d-demo

clean:
	rm -rf $(VENV) build *.egg-info
