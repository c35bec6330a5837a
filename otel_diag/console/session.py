"""Who is looking at the console, and whether a form post really comes from it.

In key mode (``OTEL_DIAG_API_KEYS``) the console asks for the tenant key once: the login form
puts it in an HttpOnly, SameSite=Strict cookie (never in a URL, never readable by a script),
and every page resolves the tenant from it with the API's rule
(:meth:`~otel_diag.tenancy.Tenancy.api_tenant`): a removed key logs the browser out at once.
Without keys (trusted mode, loopback) the tenant is a cookie the tenant picker sets,
``default`` unless chosen.

State-changing posts ("diagnose again", logout, the tenant picker) must pass two checks:
the ``Origin`` (or, without one, the ``Referer``) names this server, and the form carries
the per-browser token of the ``otel_diag_csrf`` cookie (double submit: a foreign page can
neither read the cookie nor the token in our page).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from fastapi import Request, Response

from otel_diag.config import DEFAULT_TENANT, Settings
from otel_diag.store.port import Storage
from otel_diag.tenancy import Tenancy, Unauthenticated
from otel_diag.tenants import InvalidTenantError, validate_tenant_id

KEY_COOKIE = "otel_diag_key"
TENANT_COOKIE = "otel_diag_tenant"
CSRF_COOKIE = "otel_diag_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 16 * 1024
"""The console's forms carry a key, a token, a tenant: anything longer is refused."""


class ConsoleContext(Protocol):
    """What the console reads from the server's shared state (``app.state.ctx``)."""

    settings: Settings
    storage: Storage
    tenancy: Tenancy


class LoginRequired(Exception):
    """No valid key in key mode: the answer is the login page."""


class Forbidden(Exception):
    """A post that failed the same-origin or token check (answer 403)."""


def context(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.ctx
    return ctx


def known_tenants(request: Request) -> list[str]:
    """Trusted mode: the tenants storage holds (read once per request)."""
    known: list[str] | None = getattr(request.state, "known_tenants", None)
    if known is None:
        known = request.state.known_tenants = context(request).storage.discover_tenants()
    return known


def page_tenant(request: Request) -> str:
    """The tenant this browser may read (:class:`LoginRequired` without a valid key)."""
    tenancy = context(request).tenancy
    if not tenancy.trusted:
        key = request.cookies.get(KEY_COOKIE)
        if not key:
            raise LoginRequired
        try:
            return tenancy.api_tenant(f"Bearer {key}", None)
        except Unauthenticated:
            raise LoginRequired from None
    chosen = request.cookies.get(TENANT_COOKIE) or DEFAULT_TENANT
    try:
        return validate_tenant_id(chosen)
    except InvalidTenantError:
        return DEFAULT_TENANT


def key_tenant(tenancy: Tenancy, key: str) -> str | None:
    """The tenant of ``key``, or None when no tenant has it."""
    try:
        return tenancy.api_tenant(f"Bearer {key.strip()}", None)
    except Unauthenticated:
        return None


def csrf_token(request: Request) -> str:
    """This browser's form token (a new one when it has none; :func:`set_cookies` stores it)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def set_cookies(request: Request, response: Response) -> None:
    """Store a token :func:`csrf_token` just made up."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        _cookie(response, request, CSRF_COOKIE, token)


def remember_key(request: Request, response: Response, key: str) -> None:
    _cookie(response, request, KEY_COOKIE, key.strip())


def remember_tenant(request: Request, response: Response, tenant: str) -> None:
    _cookie(response, request, TENANT_COOKIE, tenant)


def forget(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path="/")


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> bool:
    """Whether the post names this server as its origin (``Origin``, else ``Referer``)."""
    host = request.headers.get("host")
    if not host:
        return False
    ours = f"{request.url.scheme}://{host}".lower()
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.lower() == ours
    referer = request.headers.get("referer")
    return referer is not None and _origin_of(referer) == ours


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as {field: first value} (bounded)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden("form too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise Forbidden("unreadable form") from None
    return {k: v[0] for k, v in fields.items()}


async def checked_form(request: Request) -> dict[str, str]:
    """The form of a state-changing post, after the same-origin and token checks."""
    if not same_origin(request):
        raise Forbidden("cross-site post refused")
    form = await read_form(request)
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("missing or stale form token; reload the page")
    return form
