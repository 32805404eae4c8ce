# Two entry points, each doing its own set-up:
#   make book   - the companion end to end: install, convert the offline model, evaluate the
#                 small real preset, execute the notebooks, build the Jupyter Book (_build/html)
#   make test   - install and run the test suite
# HYBRIDIR_DATA_DIR must point at the data (e.g. ../shared/data) where there is no internet.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only machines take the CPU wheel of torch instead of a multi-GB CUDA build.
CONSTRAINTS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints/cpu.txt)
PRESET ?= smoke

.PHONY: install model book test clean

$(BIN)/hybridir: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' $(CONSTRAINTS)
	touch $@

install: $(BIN)/hybridir

model: install
	$(BIN)/hybridir convert-model

book: model
	$(BIN)/hybridir book --preset $(PRESET)

test: model
	$(BIN)/python -m pytest

clean:
	rm -rf _build
