"""The one place otel-diag reads its configuration.

Precedence: explicit argument > CLI flag > environment > ``$OTEL_DIAG_HOME/config.toml`` >
default. Callers pass explicit values as keyword overrides to :func:`load_settings`; the CLI
passes its flags the same way. Every environment variable is documented where it is defined
(:data:`ENV_VARS`), and nothing here touches the network.

Two readers, one set of rules. The server side (``serve``, the CLI, the workers) uses
:func:`load_settings`, which refuses a bad value with the reason. Code that runs inside the
user's application must never be stopped by configuration it does not use: instrumentation
reads only its own settings with :func:`load_instrumentation_settings`, and the in-process
exporter reads the store's with ``load_settings(lenient=True)``; both log a bad value once
and use its default.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# env var -> (settings field, documentation). Order is the README's order.
ENV_VARS: dict[str, tuple[str, str]] = {
    "OTEL_DIAG_HOME": ("home", "data + config directory (default ~/.otel-diag)"),
    "OTEL_DIAG_DATABASE_URL": (
        "database_url",
        "SQLAlchemy URL; default sqlite:///$OTEL_DIAG_HOME/otel_diag.db; PostgreSQL as "
        "postgresql+psycopg://...; may contain {tenant}",
    ),
    "OTEL_DIAG_LLM_MODEL": ("llm_model", "litellm model string for diagnosis (gpt-4o-mini)"),
    "OTEL_DIAG_LLM_API_BASE": ("llm_api_base", "OpenAI-compatible base URL for diagnosis"),
    "OTEL_DIAG_DIAGNOSIS": ("diagnosis", "auto (LLM, rules on failure), rules, off"),
    "OTEL_DIAG_DECISION_WAIT": (
        "decision_wait",
        "seconds of silence after a run's last span before it is diagnosed (5)",
    ),
    "OTEL_DIAG_API_KEYS": ("api_keys", "tenant:key,...; unset = trusted loopback mode"),
    "OTEL_DIAG_TRACE_URL_TEMPLATE": (
        "trace_url_template",
        "e.g. http://localhost:16686/trace/{trace_id} (Jaeger)",
    ),
    "OTEL_DIAG_TENANT": ("tenant", "tenant for spans that name none (default)"),
    "OTEL_DIAG_METRICS_TOKEN": (
        "metrics_token",
        "with API keys: the bearer token that reads all of /metrics (a tenant's API key reads "
        "its own series and the server-wide ones; no token, 401) (unset)",
    ),
    "OTEL_DIAG_NEW_TENANTS_PER_MINUTE": (
        "new_tenants_per_minute",
        "trusted mode: tenants (databases or schemas) ingest may create per minute; spans of "
        "further new tenants get 429 / RESOURCE_EXHAUSTED with a retry delay (10; 0 = no cap)",
    ),
    "OTEL_DIAG_TRUST_BAGGAGE_TENANT": (
        "trust_baggage_tenant",
        "true: a tenant in a caller's W3C baggage tags this service's spans; false for "
        "services exposed to untrusted callers (only a local run() chooses the tenant) (true)",
    ),
    "OTEL_DIAG_MAX_FIELD_CHARS": (
        "max_field_chars",
        "longest message/stack trace stored before truncation with a marker (16384)",
    ),
    "OTEL_DIAG_DB_TIMEOUT": (
        "db_timeout",
        "seconds a database connect or lock wait may take before export fails (5)",
    ),
    "OTEL_DIAG_MAX_REQUEST_BYTES": (
        "max_request_bytes",
        "largest OTLP request serve accepts, compressed and decompressed (33554432 = 32 MiB)",
    ),
    "OTEL_DIAG_MAX_INFLIGHT": (
        "max_inflight",
        "OTLP requests serve decodes/writes or queues at once; more get UNAVAILABLE / 503 (16)",
    ),
    "OTEL_DIAG_MAX_INFLIGHT_BYTES": (
        "max_inflight_bytes",
        "OTLP request bytes serve holds at once, from before the first byte is read until "
        "stored (a gRPC request counts as OTEL_DIAG_MAX_REQUEST_BYTES while it is read). Under "
        "any flood, peak RSS stays under idle RSS + 50 MiB + 2 x this + 2 x "
        "OTEL_DIAG_MAX_REQUEST_BYTES per ingest worker: about 535 MiB with the defaults (idle "
        "~100 MiB; the diagnosis worker's litellm adds ~170 MiB to idle; each ingest process "
        "~100 MiB) (134217728 = 128 MiB)",
    ),
    "OTEL_DIAG_TENANT_SHARE": (
        "tenant_share",
        "with two or more API-key tenants, the fraction of the in-flight requests and bytes "
        "one tenant may hold, so one tenant's floods or slow uploads leave the others room (0.5)",
    ),
    "OTEL_DIAG_MIN_UPLOAD_RATE": (
        "min_upload_rate",
        "bytes/s an OTLP/HTTP body must keep arriving at after its first 2 s; a slower upload "
        "is cut with 503 + Retry-After (16384)",
    ),
    "OTEL_DIAG_UPLOAD_TIMEOUT": (
        "upload_timeout",
        "seconds a request body (HTTP or gRPC) may take to arrive in full (30)",
    ),
    "OTEL_DIAG_MAX_CONNECTIONS": (
        "max_connections",
        "connections serve keeps open per port; more are closed at once (1024; lowered to fit "
        "the open-file limit, whose soft value serve raises to the hard one)",
    ),
    "OTEL_DIAG_IDLE_TIMEOUT": (
        "idle_timeout",
        "seconds a connection may stay open without a request under way (HTTP: also a "
        "request head still incomplete; gRPC: no RPC, or no HTTP/2 handshake) (60)",
    ),
    "OTEL_DIAG_INGEST_WORKERS": (
        "ingest_workers",
        "threads that decode and write OTLP requests in serve (2)",
    ),
    "OTEL_DIAG_INGEST_PROCESSES": (
        "ingest_processes",
        "worker processes that decode and write OTLP requests in serve instead of threads, "
        "spreading the Python work over cores (0 = threads in the server process)",
    ),
    "OTEL_DIAG_ALERT_INTERVAL": (
        "alert_interval",
        "seconds between two evaluations of the alert rules by serve (30)",
    ),
    "OTEL_DIAG_ALERT_WEBHOOK": (
        "alert_webhook",
        "URL alerts POST JSON to when a rule names no webhook (unset = log line only)",
    ),
    "OTEL_DIAG_PUBLIC_URL": (
        "public_url",
        "base URL people reach serve's HTTP port at, for links in alerts (e.g. "
        "http://otel-diag.internal:4318; unset = alerts carry no console link)",
    ),
    "OTEL_DIAG_LLM_API_KEY": (
        "llm_api_key",
        "API key for the diagnosis model (default: the provider's own env var, e.g. OPENAI_API_KEY)",
    ),
    "OTEL_DIAG_LLM_TIMEOUT": ("llm_timeout", "seconds one diagnosis LLM request may take (30)"),
    "OTEL_DIAG_LLM_RETRIES": (
        "llm_retries",
        "retries of a diagnosis LLM request after 429 / 5xx / timeout / connection errors (2)",
    ),
    "OTEL_DIAG_DIAGNOSIS_TTL": (
        "diagnosis_ttl",
        "seconds a diagnosis is reused for runs with the same error fingerprints (3600; 0 = never)",
    ),
    "OTEL_DIAG_SPEND_CAP_USD_PER_HOUR": (
        "spend_cap_usd_per_hour",
        "LLM diagnosis spend per tenant per hour; beyond it runs get the rules (1.0; 0 = no cap)",
    ),
    "OTEL_DIAG_DIAGNOSIS_CONCURRENCY": (
        "diagnosis_concurrency",
        "diagnoses (LLM requests) one process runs at once (4)",
    ),
    "OTEL_DIAG_DIAGNOSIS_IN_PROCESS": (
        "diagnosis_in_process",
        "true: the in-process exporter also runs the diagnosis worker (long-lived apps) (false)",
    ),
}

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_TENANT = "default"
DIAGNOSIS_MODES = ("auto", "rules", "off")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`, never by hand in app code."""

    home: Path = field(default_factory=lambda: Path("~/.otel-diag").expanduser())
    database_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_base: str | None = None
    diagnosis: str = "auto"
    decision_wait: float = 5.0
    api_keys: str | None = None
    trace_url_template: str | None = None
    tenant: str = DEFAULT_TENANT
    metrics_token: str | None = field(default=None, repr=False)
    new_tenants_per_minute: int = 10
    trust_baggage_tenant: bool = True
    max_field_chars: int = 16384
    db_timeout: float = 5.0
    max_request_bytes: int = 32 * 1024 * 1024
    max_inflight: int = 16
    max_inflight_bytes: int = 128 * 1024 * 1024
    tenant_share: float = 0.5
    min_upload_rate: float = 16384.0
    upload_timeout: float = 30.0
    max_connections: int = 1024
    idle_timeout: float = 60.0
    ingest_workers: int = 2
    ingest_processes: int = 0
    alert_interval: float = 30.0
    alert_webhook: str | None = None
    alerts: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    """Alert rules: the ``[[otel_diag.alerts]]`` tables of config.toml (see otel_diag.alerts)."""
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout: float = 30.0
    llm_retries: int = 2
    diagnosis_ttl: float = 3600.0
    spend_cap_usd_per_hour: float = 1.0
    diagnosis_concurrency: int = 4
    diagnosis_in_process: bool = False
    public_url: str | None = None

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the embedded SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'otel_diag.db'}"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    def trace_url(self, trace_id: str | None) -> str | None:
        """Link to a trace in Jaeger/Tempo, if a template is configured."""
        if not self.trace_url_template or not trace_id:
            return None
        return self.trace_url_template.replace("{trace_id}", trace_id)

    def console_url(self, run_id: object) -> str | None:
        """Link to a run in the web console (``/runs/{id}``), if ``public_url`` is set."""
        if not self.public_url or run_id is None:
            return None
        return f"{self.public_url.rstrip('/')}/runs/{run_id}"


_CONVERTERS: dict[str, Any] = {
    "home": lambda v: Path(str(v)).expanduser(),
    "decision_wait": float,
    "max_field_chars": int,
    "db_timeout": float,
    "max_request_bytes": int,
    "max_inflight": int,
    "max_inflight_bytes": lambda v: _at_least(int(v), 1),
    "tenant_share": lambda v: _between(float(v), 0.01, 1.0),
    "min_upload_rate": lambda v: _at_least(float(v), 0.0),
    "upload_timeout": lambda v: _at_least(float(v), 0.1),
    "max_connections": lambda v: _at_least(int(v), 1),
    "new_tenants_per_minute": lambda v: _at_least(int(v), 0),
    "idle_timeout": lambda v: _at_least(float(v), 0.1),
    "ingest_workers": int,
    "ingest_processes": int,
    "alert_interval": float,
    "alerts": lambda v: _alert_tables(v),
    "llm_timeout": lambda v: _at_least(float(v), 0.001),
    "llm_retries": lambda v: _at_least(int(v), 0),
    "diagnosis_ttl": lambda v: _at_least(float(v), 0.0),
    "spend_cap_usd_per_hour": lambda v: _at_least(float(v), 0.0),
    "diagnosis_concurrency": lambda v: _at_least(int(v), 1),
    "diagnosis_in_process": lambda v: _as_bool(v),
    "trust_baggage_tenant": lambda v: _as_bool(v),
}


def _at_least(value: Any, low: float) -> Any:
    if value < low:
        raise ValueError(f"must be >= {low}")
    return value


def _between(value: Any, low: float, high: float) -> Any:
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _alert_tables(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError("alerts must be a list of [[otel_diag.alerts]] tables")
    return tuple(dict(v) for v in value)


def _coerce(name: str, value: Any) -> Any:
    conv = _CONVERTERS.get(name)
    try:
        return conv(value) if conv else (str(value) if value is not None else None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid value for {name}: {value!r} ({exc})") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    section = data.get("otel_diag", data)
    known = {f.name for f in fields(Settings)}
    return {k: v for k, v in section.items() if k in known}


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning("otel-diag: %s", message)


def _sourced_values(
    env: Mapping[str, str], home: Path, names: Collection[str], lenient: bool
) -> dict[str, Any]:
    """Coerced values of ``names`` from the config file, then the environment (which wins).

    A value that does not parse raises ``ValueError``; with ``lenient`` it is logged once
    and left out, so its default applies.
    """
    path = home / "config.toml"
    raw: dict[str, tuple[str, Any]] = {}
    try:
        file_values = _read_config_file(path)
    except ValueError as exc:
        if not lenient:
            raise
        _warn_once(f"{exc}; using defaults for its settings")
        file_values = {}
    raw.update((k, (str(path), v)) for k, v in file_values.items() if k in names)
    for var, (name, _doc) in ENV_VARS.items():
        value = env.get(var)
        if name in names and value not in (None, ""):
            raw[name] = (var, value)
    values: dict[str, Any] = {}
    for name, (where, value) in raw.items():
        try:
            values[name] = _coerce(name, value)
        except ValueError as exc:
            if not lenient:
                raise
            _warn_once(f"{where}: {exc}; using the default")
    if values.get("diagnosis", "auto") not in DIAGNOSIS_MODES:
        where = raw["diagnosis"][0]
        rule = f"must be auto, rules or off, not {values['diagnosis']!r}"
        if not lenient:
            raise ValueError(f"OTEL_DIAG_DIAGNOSIS {rule}")
        _warn_once(f"{where} {rule}; using the default")
        del values["diagnosis"]
    return values


def load_settings(
    env: Mapping[str, str] | None = None, *, lenient: bool = False, **overrides: Any
) -> Settings:
    """Resolve settings: overrides (arguments, CLI flags) > env > config file > defaults.

    A value from the environment or the config file that does not parse is a ``ValueError``
    naming it; with ``lenient=True`` (the in-process exporter, inside the user's app) it is
    logged once and its default used. Explicit overrides are always checked strictly.
    """
    env = os.environ if env is None else env
    home_raw = overrides.get("home") or env.get("OTEL_DIAG_HOME")
    home = _coerce("home", home_raw) if home_raw else Settings().home
    given = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(Settings)} - set(given) - {"home"}
    values = _sourced_values(env, home, names, lenient)
    values.update({k: _coerce(k, v) for k, v in given.items()})
    values["home"] = home
    settings = Settings(**values)
    if settings.diagnosis not in DIAGNOSIS_MODES:
        raise ValueError(
            f"OTEL_DIAG_DIAGNOSIS must be auto, rules or off, not {settings.diagnosis!r}"
        )
    return settings


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A copy of ``settings`` with explicit values applied (None means keep)."""
    return replace(settings, **{k: _coerce(k, v) for k, v in overrides.items() if v is not None})


@dataclass(frozen=True, slots=True)
class InstrumentationSettings:
    """What the app-side instrumentation reads (decorators, ``run()``, the baggage processor).

    Content capture is not here: it follows ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    on every call (see :func:`otel_diag.instrumentation.tracing.capture_content`).
    """

    trust_baggage_tenant: bool = True


def load_instrumentation_settings(env: Mapping[str, str] | None = None) -> InstrumentationSettings:
    """The app side's own settings (env > config file > default); never raises.

    Only the variables of :class:`InstrumentationSettings` are read: the server's (LLM,
    limits, API keys...) are not even looked at, so a bad one cannot stop an app's
    instrumentation. A bad value of its own is logged once and its default used.
    """
    env = os.environ if env is None else env
    home_raw = env.get("OTEL_DIAG_HOME")
    home = _coerce("home", home_raw) if home_raw else Settings().home
    names = {f.name for f in fields(InstrumentationSettings)}
    return InstrumentationSettings(**_sourced_values(env, home, names, lenient=True))
