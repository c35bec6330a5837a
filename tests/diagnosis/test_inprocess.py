"""``OTEL_DIAG_DIAGNOSIS_IN_PROCESS=true``: the in-process exporter diagnoses too."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_diag.sdk.exporter import ErrorLogSpanExporter
from otel_diag.store.sql.engine import TenantDBManager
from tests.diagnosis.conftest import FLIGHTS, make_settings, poll, report_counts, run_uuid
from tests.diagnosis.scenarios import seed


def test_the_exporter_runs_a_worker_when_asked_and_stops_it_on_shutdown(
    db_url: str, manager: TenantDBManager
) -> None:
    settings = make_settings(db_url, None, diagnosis="rules", diagnosis_in_process=True)
    exporter = ErrorLogSpanExporter(settings=settings)
    worker = exporter._diagnosis_worker
    assert worker is not None and worker.running
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_key = seed(provider.get_tracer("app"), FLIGHTS.root, str(uuid.uuid4()))

    run_id = run_uuid(manager, run_key)
    assert poll(lambda: report_counts(manager).get(run_id) == 1)
    provider.shutdown()  # shuts the exporter down, and with it the worker
    assert not worker.running


def test_no_worker_is_started_by_default(db_url: str) -> None:
    exporter = ErrorLogSpanExporter(settings=make_settings(db_url, None))
    assert exporter._diagnosis_worker is None
    exporter.shutdown()
