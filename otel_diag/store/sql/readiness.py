"""Whether a tenant's database can take writes now, said in words safe to show anyone.

``SELECT 1`` only proves the server answers. A database restored empty, replaced by a fresh
instance or left read-only by a failover answers too, yet every write fails; readiness must
say so (and an emptied schema is migrated again on the spot). The answer names the
failing part, never a host, port, user or database name: ``/readyz`` is unauthenticated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from otel_diag.store.sql import migrate
from otel_diag.store.sql.failures import is_schema_missing, is_transient

if TYPE_CHECKING:
    from otel_diag.store.sql.engine import TenantDBManager

OK = "ok"


def _reason(exc: BaseException) -> str:
    if is_schema_missing(exc):
        return "not ready: no schema (migrating it)"
    if is_transient(exc):
        text_ = str(getattr(exc, "orig", None) or exc).lower()
        if "timeout" in text_ or "timed out" in text_:
            return "unavailable: timed out"
        if "read-only" in text_ or "read only" in text_:
            return "unavailable: read-only"
        return "unavailable: unreachable or refusing connections"
    return f"unavailable: {type(exc).__name__}"


def write_readiness(manager: TenantDBManager, tenant: str) -> str:
    """``ok``, or why writes to ``tenant``'s database would fail now (no DSN, no names)."""
    try:
        engine = manager.get_engine(tenant)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if conn.dialect.name == "postgresql":
                read_only = conn.execute(text("SHOW transaction_read_only")).scalar_one()
                if read_only == "on":
                    return "unavailable: read-only (a standby?)"
        if not migrate.is_current(engine) and not manager.repair(tenant):
            return "not ready: no schema (migrating it)"
    except Exception as exc:  # the reason is the answer
        return _reason(exc)
    return OK
