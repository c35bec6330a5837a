"""Exceptions logged through the real OpenTelemetry logs SDK, as OTLP log requests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


@contextmanager
def sdk_logger(
    service: str = "log-svc",
) -> Iterator[tuple[logging.Logger, InMemoryLogRecordExporter]]:
    """A stdlib logger whose records go through the SDK's LoggingHandler into memory."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger(f"otel-diag-tests.{id(memory)}")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        yield logger, memory
    finally:
        logger.removeHandler(handler)
        provider.shutdown()


def as_request(memory: InMemoryLogRecordExporter) -> ExportLogsServiceRequest:
    """The OTLP request the SDK's log exporters would send for what was logged."""
    return encode_logs(memory.get_finished_logs())
