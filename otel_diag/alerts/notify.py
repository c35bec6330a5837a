"""Alert actions: one log line, and a JSON POST to the rule's webhook.

The POST is bounded (timeout, two attempts) and never raises: a dead webhook is logged and
the evaluator carries on. The payload carries a ``text`` field too, so chat webhooks that
only read ``text`` (Slack, Mattermost, Teams connectors) show the message as is.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otel_diag.alerts.signals import headline
from otel_diag.version import __version__

logger = logging.getLogger("otel_diag.alerts")

WEBHOOK_TIMEOUT = 5.0
WEBHOOK_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing of one rule for one tenant."""

    rule: str
    kind: str
    tenant: str
    value: float
    threshold: float
    window: str
    message: str
    fired_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        text = f"otel-diag alert [{self.rule}] tenant {self.tenant}: {self.message}"
        diagnosis = headline(self.details)
        return {
            "source": "otel-diag",
            "version": __version__,
            "status": "firing",
            "rule": self.rule,
            "kind": self.kind,
            "tenant": self.tenant,
            "value": self.value,
            "threshold": self.threshold,
            "window": self.window,
            "message": self.message,
            "text": f"{text}\n{diagnosis}" if diagnosis else text,
            "fired_at": self.fired_at.isoformat(),
            "details": self.details,
        }


def log_alert(alert: Alert) -> None:
    logger.warning("otel-diag alert [%s] tenant=%s: %s", alert.rule, alert.tenant, alert.message)


def post_webhook(
    url: str,
    alert: Alert,
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    attempts: int = WEBHOOK_ATTEMPTS,
) -> bool:
    """POST the alert as JSON; True when the webhook answered 2xx. Never raises."""
    body = json.dumps(alert.payload(), default=str).encode("utf-8")
    last = ""
    for _ in range(max(1, attempts)):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"otel-diag/{__version__}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return True
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code != 429:
                break  # the webhook refuses this payload; retrying will not help
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
    logger.error("otel-diag alert [%s]: webhook %s failed (%s)", alert.rule, _host(url), last)
    return False


def _host(url: str) -> str:
    """The webhook without its path or query (which often carry a secret token)."""
    parts = url.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else url
