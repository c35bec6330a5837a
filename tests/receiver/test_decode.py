"""OTLP protobuf and OTLP/JSON decode into the same normalized span records."""

from __future__ import annotations

import base64
import json

import pytest

from otel_diag.spans.from_otlp import (
    MAX_ATTRIBUTES,
    MalformedRequest,
    decode_json,
    decode_protobuf,
    records_from_json,
)
from otel_diag.spans.record import SpanRecord
from tests.receiver.otlp import Span, agent_trace, to_json, to_protobuf

_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
    "service_name",
    "run_key",
    "step_kind",
    "step_name",
    "request_model",
    "input_tokens",
    "output_tokens",
)


def _key(rec: SpanRecord) -> tuple:
    events = tuple((e.name, e.time_ns, dict(e.attributes)) for e in rec.events)
    return (*(getattr(rec, f) for f in _FIELDS), dict(rec.attributes), events)


def test_protobuf_spans_become_normalized_records_with_hex_ids() -> None:
    spans = agent_trace("run-1")
    decoded = decode_protobuf(to_protobuf(spans).SerializeToString())
    assert decoded.rejected == 0
    root, agent, llm, tool = decoded.records
    assert root.trace_id == spans[0].trace_id.hex() and len(root.trace_id) == 32
    assert root.span_id == spans[0].span_id.hex() and root.parent_span_id is None
    assert agent.parent_span_id == spans[0].span_id.hex()
    assert root.run_key == "run-1" and root.service_name == "receiver-test"
    assert llm.kind == "client" and llm.step_kind == "llm" and llm.input_tokens == 800
    assert tool.status == "error" and tool.failed and tool.step_name == "search"
    assert tool.events[0].attributes["exception.type"] == "TimeoutError"


def test_json_and_protobuf_of_the_same_spans_decode_identically() -> None:
    spans = agent_trace("run-2")
    spans[2].attributes.update({"list": [1, "a", True], "map": {"k": 1.5}, "flag": False})
    from_pb = decode_protobuf(to_protobuf(spans).SerializeToString())
    from_js = decode_json(json.dumps(to_json(spans)).encode())
    assert [_key(r) for r in from_pb.records] == [_key(r) for r in from_js.records]


def test_json_ids_are_hex_not_base64() -> None:
    span = Span("x", trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)))
    rec = decode_json(json.dumps(to_json([span]))).records[0]
    assert rec.trace_id == "0102030405060708090a0b0c0d0e0f10"
    assert rec.span_id == "0102030405060708"


def test_json_accepts_enum_names_numbers_for_int64_and_ignores_unknown_fields() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "tenant.id", "value": {"stringValue": "acme"}}]
                },
                "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
                "futureField": {"anything": [1, 2]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "execute_tool t",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": 1700000000000000000,
                                "endTimeUnixNano": "1700000000500000000",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "bad"},
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "execute_tool"},
                                    },
                                    {"key": "n", "value": {"intValue": 7}},
                                    {
                                        "key": "blob",
                                        "value": {
                                            "bytesValue": base64.b64encode(b"\x00\x01").decode()
                                        },
                                    },
                                    {"key": "nan", "value": {"doubleValue": "NaN"}},
                                    {"key": "weird", "value": {"unknownValue": 1}},
                                ],
                                "droppedAttributesCount": 0,
                                "flags": 256,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    rec = records_from_json(doc).records[0]
    assert rec.trace_id == "5b8efff798038103d269b633813fc60c"
    assert rec.kind == "server" and rec.status == "error" and rec.status_message == "bad"
    assert rec.end_ns - rec.start_ns == 500_000_000
    assert rec.attributes["n"] == 7 and rec.attributes["blob"] == b"\x00\x01"
    assert rec.attributes["weird"] is None
    assert rec.resource_tenant == "acme" and rec.tenant_id == "acme"


@pytest.mark.parametrize("codec", ["protobuf", "json"])
def test_spans_with_ids_of_wrong_length_are_rejected_one_by_one(codec: str) -> None:
    good = Span("good")
    short_trace = Span("bad-trace", trace_id=b"\x01" * 5)
    short_span = Span("bad-span", span_id=b"\x02" * 3)
    zero = Span("zero", trace_id=bytes(16))
    spans = [good, short_trace, short_span, zero]
    if codec == "protobuf":
        decoded = decode_protobuf(to_protobuf(spans).SerializeToString())
    else:
        decoded = decode_json(json.dumps(to_json(spans)))
    assert [r.name for r in decoded.records] == ["good"]
    assert decoded.rejected == 3
    assert "trace" in decoded.error_message.lower() and "span" in decoded.error_message.lower()


def test_a_json_span_with_a_wrongly_typed_field_is_rejected_alone() -> None:
    doc = to_json([Span("ok"), Span("bad")])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["startTimeUnixNano"] = "yesterday"
    decoded = records_from_json(doc)
    assert [r.name for r in decoded.records] == ["ok"] and decoded.rejected == 1


def test_absurd_attribute_counts_are_bounded() -> None:
    span = Span("huge", attributes={f"k{i}": i for i in range(20_000)})
    decoded = decode_protobuf(to_protobuf([span]).SerializeToString())
    assert len(decoded.records[0].attributes) == MAX_ATTRIBUTES
    assert decoded.dropped_attributes == 20_000 - MAX_ATTRIBUTES


def test_deeply_nested_values_are_cut_off() -> None:
    value: object = "leaf"
    for _ in range(30):
        value = [value]
    span = Span("deep", attributes={"deep": value})
    rec = decode_protobuf(to_protobuf([span]).SerializeToString()).records[0]
    depth, cur = 0, rec.attributes["deep"]
    while isinstance(cur, list):
        depth, cur = depth + 1, cur[0]
    assert depth <= 5 and cur is None


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff\xff\xff", to_protobuf(agent_trace("t")).SerializeToString()[:-7]],
    ids=["garbage", "truncated"],
)
def test_unparseable_protobuf_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        decode_protobuf(body)


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b'{"resourceSpans": 5}', b'{"resourceSpans": [{"scopeSpans": "x"}]}'],
)
def test_invalid_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        decode_json(body)


def test_an_empty_request_is_valid_and_empty() -> None:
    assert decode_protobuf(b"").records == []
    assert decode_json(b"{}").records == []
