"""``AlertEvaluator``: evaluates the alert rules periodically inside ``otel-diag serve``.

One daemon thread wakes every ``alert_interval`` seconds, measures every rule on every
tenant it watches and fires the rules that trip: a log line, then the webhook. A rule and
tenant that fired stay quiet for the rule's cooldown, so one incident is one alert (an
incident outlasting the cooldown is reminded once per cooldown), and a recovery is logged
once. Like the SDK's batch processor it has an explicit ``start()`` / ``stop(timeout)``,
never raises from its thread, and its own database reads and webhook calls are not traced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_diag.alerts.notify import Alert, log_alert, post_webhook
from otel_diag.alerts.rules import AlertRule, load_rules
from otel_diag.alerts.signals import Reading, describe_groups, measure
from otel_diag.config import Settings
from otel_diag.store.port import Storage
from otel_diag.timewindow import format_duration

logger = logging.getLogger("otel_diag.alerts")


class AlertEvaluator:
    """Periodic evaluation of alert rules over one :class:`~otel_diag.store.port.Storage`.

    Args:
        storage: the tenants' data to read (serve's own storage).
        settings: defaults to ``storage.settings``.
        rules: defaults to the validated rules of ``settings``; a bad rule raises
            :class:`~otel_diag.alerts.rules.AlertRuleError` here, so serve refuses to start.
        tenants: callable returning the tenants to watch (default: the tenants the
            configuration names or storage holds, plus every tenant the storage has
            opened; never an invented ``default`` in key mode). A rule's own ``tenants`` wins.
        interval: seconds between evaluations (default ``settings.alert_interval``).
        clock: monotonic seconds, for cooldowns (tests pass a fake one).
    """

    def __init__(
        self,
        storage: Storage,
        settings: Settings | None = None,
        rules: Sequence[AlertRule] | None = None,
        *,
        tenants: Callable[[], Iterable[str]] | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        send: Callable[[str, Alert], bool] = post_webhook,
    ) -> None:
        self.storage = storage
        self.settings = settings or storage.settings
        self.rules = list(rules) if rules is not None else load_rules(self.settings)
        self.interval = float(interval if interval is not None else self.settings.alert_interval)
        self._tenants = tenants
        self._clock = clock
        self._send = send
        self._last_fired: dict[tuple[str, str], float] = {}
        self._active: set[tuple[str, str]] = set()
        self._failing: set[str] = set()
        self.evaluations = 0
        """How many evaluations have completed (for health checks and tests)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Evaluate now and then every ``interval`` seconds (no thread without rules)."""
        if not self.rules:
            logger.info("otel-diag alerts: no rules configured")
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="otel-diag-alerts", daemon=True)
        self._thread.start()
        logger.info(
            "otel-diag alerts: %d rule(s), evaluated every %gs", len(self.rules), self.interval
        )

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; True if it ended within ``timeout`` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate_once()
            except Exception:  # the thread must outlive any bug in one evaluation
                logger.exception("otel-diag alerts: evaluation failed")
            if self._stop.wait(self.interval):
                return

    # --- evaluation --------------------------------------------------------------------

    def watched_tenants(self) -> list[str]:
        if self._tenants is not None:
            return sorted(set(self._tenants()))
        return sorted({*self.storage.discover_tenants(), *self.storage.tenants()})

    def evaluate_once(self, now: datetime | None = None) -> list[Alert]:
        """Measure every rule on every tenant once; fire and return the alerts that trip."""
        now = now or datetime.now(UTC)
        fired: list[Alert] = []
        with self._lock, suppress_instrumentation():
            watched = self.watched_tenants()
            tenants = sorted({t for r in self.rules for t in (r.tenants or watched)})
            for tenant in tenants:
                rules = [r for r in self.rules if tenant in (r.tenants or watched)]
                try:
                    store = self.storage.tenant(tenant)
                    readings = [(r, measure(store, r, now, self.settings)) for r in rules]
                except Exception as exc:  # a dead database must not stop the other tenants
                    if tenant not in self._failing:
                        self._failing.add(tenant)
                        logger.error(
                            "otel-diag alerts: cannot read tenant %r (%s: %s)",
                            tenant,
                            type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "",
                        )
                    continue
                self._failing.discard(tenant)
                for rule, reading in readings:
                    alert = self._decide(rule, tenant, reading, now)
                    if alert is not None:
                        fired.append(alert)
            for alert in fired:
                self._notify(alert)
            self.evaluations += 1
        return fired

    def _decide(
        self, rule: AlertRule, tenant: str, reading: Reading, now: datetime
    ) -> Alert | None:
        key = (rule.name, tenant)
        if not reading.tripped:
            if key in self._active:
                self._active.discard(key)
                logger.warning("otel-diag alert [%s] tenant=%s resolved", rule.name, tenant)
            return None
        self._active.add(key)
        at = self._clock()
        cooldown = rule.cooldown.total_seconds()
        if reading.groups:  # one cooldown per error group: a second new group still alerts
            fresh = {
                fp: group
                for fp, group in reading.groups.items()
                if at - self._last_fired.get((rule.name, f"{tenant}/{fp}"), -cooldown) >= cooldown
            }
            if not fresh:
                return None
            for fp in fresh:
                self._last_fired[(rule.name, f"{tenant}/{fp}")] = at
            groups = list(fresh.values())
            reading = Reading(
                float(len(groups)),
                True,
                describe_groups(rule.kind, groups, format_duration(rule.window)),
                {**reading.details, "groups": groups},
            )
        else:
            last = self._last_fired.get(key)
            if last is not None and at - last < cooldown:
                return None
            self._last_fired[key] = at
        return Alert(
            rule=rule.name,
            kind=rule.kind,
            tenant=tenant,
            value=round(reading.value, 9),
            threshold=rule.threshold,
            window=format_duration(rule.window),
            message=reading.message,
            fired_at=now,
            details=reading.details,
        )

    def _notify(self, alert: Alert) -> None:
        log_alert(alert)
        rule = next(r for r in self.rules if r.name == alert.rule)
        if rule.webhook:
            self._send(rule.webhook, alert)
