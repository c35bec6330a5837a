"""OTLP log requests: exception records become errors of their span; the rest is counted."""

from __future__ import annotations

import json
import os

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_diag.spans.from_otlp import MalformedRequest
from otel_diag.spans.from_otlp_logs import UNLINKED, decode_logs_json, decode_logs_protobuf
from otel_diag.spans.record import KIND_LOG
from tests.logs_sdk import as_request, sdk_logger


def test_an_exception_logged_inside_a_span_is_an_exception_record_of_that_span() -> None:
    tracer = TracerProvider().get_tracer("t")
    with sdk_logger() as (logger, memory), tracer.start_as_current_span("tool") as span:
        try:
            raise ValueError("bad date 31/02")
        except ValueError:
            logger.exception("tool failed")
        logger.warning("a plain warning")

    decoded = decode_logs_protobuf(as_request(memory).SerializeToString())

    (record,) = decoded.records
    assert (decoded.log_records, decoded.other_logs, decoded.rejected) == (2, 1, 0)
    ctx = span.get_span_context()
    assert (record.trace_id, record.span_id) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert record.kind == KIND_LOG and not record.is_root and record.failed
    (event,) = record.events
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad date 31/02"
    assert "Traceback" in event.attributes["exception.stacktrace"]
    assert record.service_name == "log-svc"


def test_an_exception_logged_outside_any_span_is_dropped_with_a_reason() -> None:
    with sdk_logger() as (logger, memory):
        try:
            raise KeyError("x")
        except KeyError:
            logger.exception("no span here")

    decoded = decode_logs_protobuf(as_request(memory).SerializeToString())

    assert decoded.records == []
    assert (decoded.unlinked, decoded.rejected, decoded.reasons) == (1, 1, [UNLINKED])


def test_otlp_json_logs_with_hex_ids_decode_like_protobuf() -> None:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    document = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "app"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "traceId": trace_id,
                                "spanId": span_id,
                                "attributes": [
                                    {
                                        "key": "exception.type",
                                        "value": {"stringValue": "TypeError"},
                                    },
                                    {
                                        "key": "exception.message",
                                        "value": {"stringValue": "x is undefined"},
                                    },
                                ],
                            },
                            {"body": {"stringValue": "hello"}},
                            {"traceId": "zz", "attributes": []},
                        ],
                    }
                ],
            }
        ]
    }

    decoded = decode_logs_json(json.dumps(document))

    (record,) = decoded.records
    assert (record.trace_id, record.span_id, record.name) == (trace_id, span_id, "app")
    assert (decoded.log_records, decoded.other_logs, decoded.rejected) == (3, 1, 1)
    assert "traceId" in decoded.reasons[0]


@pytest.mark.parametrize("body", [b"\xff\x00garbage", b"[1, 2]"])
def test_a_body_that_is_not_a_logs_request_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        if body.startswith(b"["):
            decode_logs_json(body)
        else:
            decode_logs_protobuf(body)
