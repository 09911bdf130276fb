# The two commands:  `make repro` (set up, then run the pipeline)  and  `make test`.
# Set-up is idempotent: the virtual environment is (re)built only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
# Installed only when the venv has no torch yet: put your own build (CUDA, ROCm) there first to keep it.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test,openvino]"
	touch $@

repro: $(STAMP)
	dvc repro

test: $(STAMP)
	ruff check .
	python -m pytest
