"""An OTLP span exporter built from the standard ``OTEL_EXPORTER_OTLP_*`` variables.

Two places send spans over OTLP: ``configure()`` (the app's traces to Jaeger, Tempo, a
Collector or ``otel-diag serve``) and the diagnosis (each report as a span next to the failed
trace). Both decide the same way whether OTLP is configured and which exporter to build, so
the rule lives here once: the traces-specific variable wins over the general one, the
protocol is ``http/protobuf`` unless told ``grpc`` (the specification's default), and
anything the exporters read themselves (headers, compression, certificates, timeouts) is
left to them. The exporter packages are imported only when an exporter is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
DEFAULT_PROTOCOL = "http/protobuf"
PROTOCOLS = ("grpc", "http/protobuf")


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def configured_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The OTLP traces endpoint the environment names, or None (OTLP not configured)."""
    return _first(os.environ if env is None else env, ENDPOINT_VARS)


def configured_protocol(env: Mapping[str, str] | None = None) -> str:
    """The OTLP traces protocol the environment names (``http/protobuf`` by default)."""
    return (_first(os.environ if env is None else env, PROTOCOL_VARS) or DEFAULT_PROTOCOL).lower()


def otlp_span_exporter(endpoint: str | None = None, protocol: str | None = None) -> SpanExporter:
    """An OTLP span exporter for ``protocol`` (``grpc`` or ``http/protobuf``).

    ``endpoint`` None lets the exporter read the standard variables itself (the HTTP one
    appends ``/v1/traces`` to ``OTEL_EXPORTER_OTLP_ENDPOINT``, as the specification says); an
    explicit HTTP endpoint gets ``/v1/traces`` appended when it lacks it. ``protocol`` None is
    :func:`configured_protocol`. Any other protocol is a ``ValueError``.
    """
    protocol = (protocol or configured_protocol()).lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=endpoint) if endpoint else GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=endpoint) if endpoint else HttpExporter()
    raise ValueError(f"unsupported OTLP protocol {protocol!r}: use 'grpc' or 'http/protobuf'")
