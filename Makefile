# bytelm: the two quick-start commands are `make demo` and `make test`.
# Both create .venv with the CPU build of torch (pinned, so pip never pulls a multi-GB CUDA
# build) and install bytelm into it in editable mode. GPU users: see docs/usage.md ("On a GPU").
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.bytelm-installed

.PHONY: setup demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# train a small model on the default corpus for a few minutes, evaluate it, print a sample
demo: $(STAMP)
	$(BIN)/bytelm demo

# the whole test suite (CPU; GPU tests are skipped without CUDA)
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) runs
