"""Tenant ids: what a valid one looks like, with no database dependency.

Instrumentation validates the tenant of a ``run()`` before it goes into baggage, and the
store validates it before it names a file or a schema; both use this module, so importing
the decorators never pulls SQLAlchemy in.
"""

from __future__ import annotations

import re

from otel_diag.config import DEFAULT_TENANT

TENANT_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,46}[a-z0-9])?$")


class InvalidTenantError(ValueError):
    """A tenant id that is not 1-48 chars of lowercase letters, digits, '_' or '-'."""


def validate_tenant_id(tenant_id: str | None) -> str:
    """The tenant id itself (``default`` for None), or :class:`InvalidTenantError`."""
    tenant = DEFAULT_TENANT if tenant_id is None else tenant_id
    if not isinstance(tenant, str) or not TENANT_ID_RE.match(tenant):
        raise InvalidTenantError(
            f"invalid tenant id {tenant_id!r}: use 1-48 characters of lowercase letters, "
            "digits, '_' or '-', starting and ending with a letter or digit"
        )
    return tenant


def configured_tenants(api_keys: str | None, default: str = DEFAULT_TENANT) -> list[str]:
    """The tenants a configuration names: those of ``OTEL_DIAG_API_KEYS`` (``tenant:key,...``;
    keys mode has no other), or ``default`` without keys. Malformed entries are skipped here;
    ``serve`` refuses them at start."""
    tenants = set()
    for item in (api_keys or "").split(","):
        tenant, sep, key = item.strip().partition(":")
        if sep and key.strip() and TENANT_ID_RE.match(tenant.strip()):
            tenants.add(tenant.strip())
    return sorted(tenants) if tenants else [default]
