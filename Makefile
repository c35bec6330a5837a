# Everything installs into a local virtual environment; nothing needs installing by hand.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install run demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# otel-diag serve in the foreground on the embedded SQLite default (Ctrl-C stops it).
run: install
	$(VENV)/bin/otel-diag serve

# A failing agent app sends OTLP to the server of `make run` (or a temporary one), then the
# errors and the diagnosis are shown.
demo: install
	$(PY) -m otel_diag.examples.otlp_demo

# The suite talks to a real PostgreSQL: tests/peers/postgres.sh installs and starts it when
# it is absent (a no-op when it already answers).
test: install
	bash tests/peers/postgres.sh
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check otel_diag tests
	$(VENV)/bin/ruff format --check otel_diag tests
	$(VENV)/bin/mypy

bench: install
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
