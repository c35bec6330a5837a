"""Who a request speaks for: API keys, or trusted single-machine mode.

With ``OTEL_DIAG_API_KEYS=tenant:key,...`` every request (OTLP ingest and REST API) must
carry ``Authorization: Bearer <key>`` and the tenant is the key's tenant, nothing else: a
span that claims another tenant is still stored under the key's. Without keys the server
trusts the caller (and refuses to bind a non-loopback address unless told ``--insecure``):
ingest takes the tenant from each span's resource, the API from the ``X-Tenant`` header.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from otel_diag.config import DEFAULT_TENANT
from otel_diag.tenants import InvalidTenantError, validate_tenant_id


class Unauthenticated(Exception):
    """No key, or a key that is not configured (answer 401 / UNAUTHENTICATED)."""


class TenancyConfigError(ValueError):
    """``OTEL_DIAG_API_KEYS`` cannot be parsed."""


def parse_api_keys(raw: str | None) -> dict[str, str]:
    """``tenant:key,tenant2:key2`` -> {key: tenant}. Empty or unset -> {} (trusted mode)."""
    keys: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        tenant, sep, key = item.partition(":")
        tenant, key = tenant.strip(), key.strip()
        if not sep or not tenant or not key:
            raise TenancyConfigError("OTEL_DIAG_API_KEYS entries must look like tenant:key")
        try:
            validate_tenant_id(tenant)
        except InvalidTenantError as exc:
            raise TenancyConfigError(f"OTEL_DIAG_API_KEYS: {exc}") from None
        if key in keys and keys[key] != tenant:
            raise TenancyConfigError("OTEL_DIAG_API_KEYS: one key is given to two tenants")
        keys[key] = tenant
    return keys


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only exposes the server to this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class Tenancy:
    """The tenancy mode of one server. ``keys`` maps API key -> tenant; empty = trusted."""

    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, api_keys: str | None) -> Tenancy:
        return cls(parse_api_keys(api_keys))

    @property
    def trusted(self) -> bool:
        return not self.keys

    @property
    def tenants(self) -> list[str]:
        return sorted(set(self.keys.values()))

    def _tenant_of(self, authorization: str | None) -> str:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated("missing Authorization: Bearer <key>")
        found = None
        for key, tenant in self.keys.items():  # compare every key: no timing hint
            if hmac.compare_digest(key.encode(), token.encode()):
                found = tenant
        if found is None:
            raise Unauthenticated("unknown API key")
        return found

    def ingest_tenant(self, authorization: str | None) -> str | None:
        """The tenant forced on ingested spans; None in trusted mode (spans say theirs)."""
        if self.trusted:
            return None
        return self._tenant_of(authorization)

    def api_tenant(self, authorization: str | None, x_tenant: str | None) -> str:
        """The tenant an API request reads. Keys mode ignores ``X-Tenant`` entirely."""
        if not self.trusted:
            return self._tenant_of(authorization)
        return validate_tenant_id(
            x_tenant.strip() if x_tenant and x_tenant.strip() else DEFAULT_TENANT
        )
