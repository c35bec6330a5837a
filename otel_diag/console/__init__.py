"""The web console of ``otel-diag serve``: failed runs, their errors and diagnoses, cost and
agents, in the browser, at ``/`` on the HTTP port.

Server-rendered pages (Jinja2, autoescaped: every value that came from a span is text, never
markup) with a little vanilla JS for live updates, and CSS and JS shipped in the package: no
CDN, no Node build, nothing fetched at run time. Every figure is read through the storage
port (:mod:`otel_diag.store.port`), with the same methods the CLI and the REST API use.
:func:`console_router` is mounted by the composition root (:mod:`otel_diag.server.app`).
"""

from otel_diag.console.pages import console_router

__all__ = ["console_router"]
