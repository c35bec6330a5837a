"""The OTLP trace receiver: gRPC ``TraceService/Export`` and OTLP/HTTP ``POST /v1/traces``.

Both transports hand raw request bytes to one :class:`~otel_diag.receiver.ingest.Ingestor`,
which bounds what is in flight, decodes and writes each request off the event loop in one
hop, and answers only once the spans are stored.
"""
