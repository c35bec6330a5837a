"""The REST API of ``otel-diag serve`` (FastAPI): runs, errors, diagnoses, health, metrics."""
