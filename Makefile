# didlink: `make demo` and `make test` set themselves up (a .venv beside this file) and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types pytest bench reliability docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/didlink demo

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Two workers, one test file each at a time (module fixtures such as relays stay per file): most
# end-to-end tests wait on the network, so the suite takes about half as long on two cores.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench

# The API reference (from the docstrings) and the agent's walk-through, into site/.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# The long runs: fuzzing with a large budget (atheris when it installs, Hypothesis always).
reliability: $(STAMP)
	-$(BIN)/python -m pip install --quiet atheris
	DIDLINK_RELIABILITY=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis site
