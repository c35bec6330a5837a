# Everything installs into a local virtual environment; nothing needs installing by hand.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install run demo test lint bench clean peers e2e stack

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
# it is absent (a no-op when it already answers). The web console's tests drive Debian's
# chromium: tests/peers/chromium.sh installs it when absent. The MongoDB backend's tests
# start the FerretDB peer, built here when the cache is cold (a no-op when it is warm).
test: install
	bash tests/peers/postgres.sh
	bash tests/peers/chromium.sh
	bash tests/peers/build.sh ferretdb >/dev/null
	$(PY) -m pytest -q

# The real peers (Jaeger v2, the OpenTelemetry Collector, FerretDB), built from the pinned Go
# modules in tests/peers/ into ~/.cache/otel-diag/peers (OTEL_DIAG_PEERS_CACHE) once.
peers:
	bash tests/peers/build.sh jaeger otelcol ferretdb

# End to end with a real Jaeger v2 and a real collector running the shipped configs, and the
# FerretDB peer (builds the peers first if the cache is cold; `make test` does not run these).
e2e: install
	bash tests/peers/build.sh jaeger otelcol ferretdb >/dev/null
	$(PY) -m pytest -q tests/e2e

# Jaeger, the gateway collector and otel-diag on loopback for a person; Ctrl-C stops all three.
stack: install
	$(PY) -m tests.e2e.stack

lint: install
	$(VENV)/bin/ruff check otel_diag tests
	$(VENV)/bin/ruff format --check otel_diag tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

bench: install
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
