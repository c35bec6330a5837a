"""Pages as HTML responses: the Jinja2 environment, the security headers, the static files,
and failures answered as pages.

Autoescaping is on for every template, whatever its name: a span name, an exception message,
a stack trace or an attribute is always text. The Content-Security-Policy allows only our own
script and stylesheet (no inline script, no inline style, no other origin), so even markup
that slipped through could run nothing. Failures follow the API's rules
(:mod:`otel_diag.api.outages`) with the storage classifying the exception: a transient
database failure is a 503 page with ``Retry-After``, anything else is logged and a 500 page;
never a stack trace in the browser.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from otel_diag.console import session, views
from otel_diag.version import __version__

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=PackageLoader("otel_diag.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    money=views.money,
    count=views.count,
    percent=views.percent,
    millis=views.millis,
    when=views.when,
    short=views.short_id,
)

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_STATIC = {
    f.name: f.read_bytes()
    for f in resources.files("otel_diag.console").joinpath("static").iterdir()
    if f.name[f.name.rfind(".") :] in _STATIC_TYPES
}


class NotFound(Exception):
    """No such run (or an ambiguous reference) in this tenant: a 404 page."""


def page(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` rendered with ``values`` and what every page shows (nav, tenant, token)."""
    ctx = session.context(request)
    trusted = ctx.tenancy.trusted
    html = _env.get_template(template).render(
        path=request.url.path,
        csrf=session.csrf_token(request),
        csrf_field=session.CSRF_FIELD,
        key_mode=not trusted,
        tenants=session.known_tenants(request) if trusted else [],
        version=__version__,
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    session.set_cookies(request, response)
    return response


def static_file(name: str) -> Response:
    body = _STATIC.get(name)
    if body is None:
        return Response("not found", status_code=404, media_type="text/plain")
    media = _STATIC_TYPES[name[name.rfind(".") :]]
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _problem(request: Request, status: int, title: str, detail: str) -> Response:
    try:
        return page(request, "problem.html", status=status, title=title, detail=detail, tenant=None)
    except Exception:  # the page itself needs the storage (tenant list): plain text then
        return Response(f"{title}: {detail}", status_code=status, media_type="text/plain")


def failure_page(request: Request, exc: Exception) -> Response:
    """The answer to an exception a page raised (see the module docstring)."""
    if isinstance(exc, session.LoginRequired):
        if request.headers.get("x-console-poll"):  # the live update: tell the script
            return Response("login required", status_code=401, media_type="text/plain")
        return RedirectResponse("/login", status_code=303)
    if isinstance(exc, session.Forbidden):
        return _problem(request, 403, "Refused", str(exc))
    if isinstance(exc, NotFound):
        return _problem(request, 404, "Not found", str(exc))
    storage = session.context(request).storage
    if storage.is_transient(exc):
        response = _problem(request, 503, "Database unavailable", "retry in a few seconds")
        response.headers["Retry-After"] = "5"
        return response
    logger.error("otel-diag console: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _problem(request, 500, "Internal error", "the server log has the details")


class ConsoleRoute(APIRoute):
    """A console route whose failures are pages (never a traceback, never JSON), and whose
    answers say how long the server worked on them (``Server-Timing: app;dur=<ms>``, shown
    by browsers' developer tools and read by the benchmark)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception as exc:
                response = failure_page(request, exc)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            return response

        return guarded
