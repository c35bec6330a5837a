"""End to end with the real peers: an app, the gateway collector, Jaeger v2 and otel-diag.

Run by ``make e2e`` (and ``.ci/run``), not by ``make test``: every test here starts real
processes (``tests/peers/build.sh`` builds Jaeger and the collector once, cached) and takes
seconds to a minute. ``python -m tests.e2e.stack`` (``make stack``) starts the same three
processes for a person to look at.
"""
