# `make test` and `make study` work from a fresh clone: they create .venv
# unless a virtual environment is already active.
PYTHON ?= python3
ifdef VIRTUAL_ENV
  VENV := $(VIRTUAL_ENV)
else
  VENV := .venv
endif
BIN := $(VENV)/bin

.PHONY: install test study clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The aot extra, libtpu (Linux x86-64 wheels only), lets tests/test_aot.py compile for TPU
# slices; where it does not install, those tests skip.
install: $(BIN)/python
	$(BIN)/pip install -q -e '.[test,tfds]'
	-$(BIN)/pip install -q -e '.[aot]'

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 -q tests

study: $(BIN)/python
	$(BIN)/pip install -q -e .
	HF_HUB_OFFLINE=1 $(BIN)/vlm-jax study --workdir runs/study

clean:
	rm -rf $(VENV) runs build *.egg-info
