"""``otel-diag serve``: the OTLP receiver, the REST API and the background services together."""
