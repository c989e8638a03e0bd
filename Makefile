# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# The install also puts the commands (rs3d-train, rs3d-test, rs3d-predict, ...) in $(VENV)/bin.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision are pinned here (they install from this machine's disk); setup.cfg states real ranges.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-fast demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(VENV)/bin/rs3d-demo

clean:
	rm -rf $(VENV) build *.egg-info
