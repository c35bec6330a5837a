"""The emit side: classification of exceptions, log_* and collect_error, ErrorCollector."""

from __future__ import annotations

import json
import sqlite3

import pytest
import sqlalchemy.exc
from opentelemetry.trace import StatusCode

from otel_diag import ErrorCollector, run, step, tool
from otel_diag import semconv as sc
from otel_diag.instrumentation import (
    LogSource,
    classify_exception,
    collect_error,
    log_error,
    log_exception,
    log_llm_error,
    log_tool_error,
)
from otel_diag.instrumentation.tracing import get_tracer
from tests.instrumentation.conftest import Spans


class ValidationError(ValueError):
    """Shaped like pydantic's: recognised by its name."""


class NotFoundError(Exception):
    """A tool's own 'not found' (not an LLM client error)."""


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads("{not json")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("exc", "kind", "expected"),
    [
        (TimeoutError("took too long"), "tool", ("tool", "timeout")),
        (ConnectionRefusedError("refused"), "tool", ("tool", "dependency")),
        (ConnectionError("timed out while connecting"), None, ("api", "dependency")),
        (ValueError("quantity must be positive"), None, ("validation", "validation")),
        (ValueError("quantity must be positive"), "tool", ("tool", "validation")),
        (ValidationError("1 validation error for Order"), "agent", ("validation", "validation")),
        (_json_error(), "tool", ("tool", "output_parse")),
        (
            sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("locked")),
            "tool",
            ("storage", "storage"),
        ),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), None, ("storage", "storage")),
        (KeyError("missing"), "tool", ("tool", "tool_error")),
        (NotFoundError("no such city"), "tool", ("tool", "tool_error")),
        (RuntimeError("HTTP 429 Too Many Requests"), "agent", ("activity", "rate_limit")),
        (RuntimeError("unexpected state"), "agent", ("activity", "internal")),
    ],
)
def test_plain_exceptions_are_classified_by_type_then_message(
    exc: BaseException, kind: str | None, expected: tuple[str, str]
) -> None:
    assert classify_exception(exc, kind) == expected


def test_explicit_source_and_category_win() -> None:
    assert classify_exception(TimeoutError(), "tool", source="api", category="x") == ("api", "x")


def test_a_generic_error_raised_while_handling_a_specific_one_takes_its_category() -> None:
    try:
        try:
            raise TimeoutError("upstream")
        except TimeoutError:
            raise RuntimeError("retry helper failed") from None
    except RuntimeError as suppressed:
        assert classify_exception(suppressed, "tool")[1] == "tool_error"
    try:
        try:
            raise TimeoutError("upstream")
        except TimeoutError as exc:
            raise RuntimeError("retry helper failed") from exc
    except RuntimeError as chained:
        assert classify_exception(chained, "tool")[1] == "timeout"


def test_log_exception_records_on_the_current_span_with_context(spans: Spans) -> None:
    @tool
    def charge(card: str) -> None:
        try:
            raise ConnectionError("payment gateway down")
        except ConnectionError as exc:
            info = log_exception(exc, context={"card": card, "amount": 12.5, "api_key": "x"})
            assert (info.source, info.category) == ("tool", "dependency")

    charge("visa")
    span = spans.one("execute_tool charge")
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.attributes[sc.ERROR_CONTEXT_PREFIX + "card"] == "visa"
    assert event.attributes[sc.ERROR_CONTEXT_PREFIX + "amount"] == 12.5


def test_logging_then_raising_the_same_exception_records_it_once(spans: Spans) -> None:
    @tool
    def fetch() -> None:
        try:
            raise TimeoutError("slow")
        except TimeoutError as exc:
            log_exception(exc, category="timeout", context={"try": 1})
            raise

    with pytest.raises(TimeoutError):
        fetch()
    span = spans.one("execute_tool fetch")
    assert len(span.events) == 1
    assert span.events[0].attributes[sc.ERROR_CONTEXT_PREFIX + "try"] == 1


def test_log_error_accepts_a_message_and_redacts_it(spans: Spans) -> None:
    with step("sync-crm"):
        info = log_error(
            LogSource.API,
            "CRM rejected request: Authorization: Bearer abcdefghijklmnop123",
            category="auth",
            error_type="CRMError",
        )
    assert (info.source, info.category, info.error_type) == ("api", "auth", "CRMError")
    (event,) = spans.one("sync-crm").events
    assert "abcdefghijklmnop123" not in event.attributes[sc.EXCEPTION_MESSAGE]
    assert event.attributes[sc.EXCEPTION_TYPE] == "CRMError"
    assert sc.EXCEPTION_STACKTRACE not in event.attributes


def test_without_a_recording_span_the_error_gets_a_span_of_its_own(spans: Spans) -> None:
    info = log_error("storage", RuntimeError("disk full"), tenant_id="acme")
    assert info.source == "storage"
    span = spans.one("error storage")
    assert span.attributes[sc.TENANT_ID] == "acme"
    assert span.status.status_code is StatusCode.ERROR


def test_llm_and_tool_helpers_set_their_source(spans: Spans) -> None:
    with get_tracer().start_as_current_span("work"):
        assert log_llm_error(RuntimeError("boom"), model="gpt-4o-mini").source == "llm"
        assert log_tool_error(RuntimeError("boom"), tool_name="search").source == "tool"
    span = spans.one("work")
    assert span.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert len(span.events) == 2
    assert span.events[1].attributes[sc.ERROR_CONTEXT_PREFIX + "tool.name"] == "search"


def test_collect_error_records_the_activity_as_a_step_with_its_attempt(spans: Spans) -> None:
    with run("order-workflow", run_id="wf-9"):
        info = collect_error("reserve_stock", TimeoutError("warehouse API"), attempt=2)
        with step("ship", attempt=1):
            collect_error("ship", ConnectionError("carrier down"), attempt=4)
    assert (info.source, info.category) == ("activity", "timeout")
    reserve = spans.one("reserve_stock")
    assert reserve.attributes[sc.STEP_NAME] == "reserve_stock"
    assert reserve.attributes[sc.STEP_ATTEMPT] == 2
    assert reserve.attributes[sc.RUN_ID] == "wf-9"
    ship = spans.one("ship")  # the activity's own span, not a second one
    assert ship.attributes[sc.STEP_ATTEMPT] == 4
    assert ship.attributes[sc.ERROR_CATEGORY] == "dependency"


def test_error_collector_emit_methods_use_its_tenant(spans: Spans) -> None:
    collector = ErrorCollector("acme")
    info = collector.log_error(LogSource.VALIDATION, ValueError("bad order"))
    collector.collect_error("bill", RuntimeError("x"), attempt=3)
    assert info.category == "validation"
    assert spans.one("error validation").attributes[sc.TENANT_ID] == "acme"
    bill = spans.one("bill")
    assert bill.attributes[sc.TENANT_ID] == "acme" and bill.attributes[sc.STEP_ATTEMPT] == 3


def test_an_unknown_source_is_rejected() -> None:
    with pytest.raises(ValueError):
        log_error("database", "x")
