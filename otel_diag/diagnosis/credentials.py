"""No key, no wasted calls: whether the diagnosis model can be asked at all.

With the default model and no provider key, every failed run used to spend its LLM
attempts on authentication errors before the rules answered. :data:`CREDENTIALS` asks
:func:`~otel_diag.diagnosis.llm.missing_credentials` before each LLM diagnosis (about a
millisecond, no network) and the service diagnoses with the rules (``fallback_reason``
``no_credentials``) while keys are missing. What counts as a configuration change is what
that check reads: the settings in use (model, ``OTEL_DIAG_LLM_API_KEY``,
``OTEL_DIAG_LLM_API_BASE``) and the provider's key variable in the process environment. It
is logged once when first seen (``serve`` checks at start) and once whenever it changes,
never per run.
"""

from __future__ import annotations

import logging
import threading

from otel_diag.config import Settings
from otel_diag.diagnosis.llm import missing_credentials

logger = logging.getLogger("otel_diag.diagnosis")

NO_CREDENTIALS = "no_credentials"


class CredentialsCheck:
    """Process-wide credentials state per configuration, logged on changes only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str | None, bool], tuple[str, ...]] = {}

    def missing(self, settings: Settings) -> tuple[str, ...]:
        """The missing key variables of ``settings``' model (empty: the LLM may be asked)."""
        missing = missing_credentials(settings)
        key = (settings.llm_model, settings.llm_api_base, bool(settings.llm_api_key))
        with self._lock:
            before = self._seen.get(key)
            self._seen[key] = missing
        if before != missing:
            if missing:
                logger.warning(
                    "no credentials for diagnosis model %s (%s unset, no OTEL_DIAG_LLM_API_KEY "
                    "or OTEL_DIAG_LLM_API_BASE): diagnosing with the rules, no LLM requests, "
                    "until one is set",
                    settings.llm_model,
                    " / ".join(missing),
                )
            elif before is not None:
                logger.warning(
                    "credentials for diagnosis model %s found: diagnosing with the LLM again",
                    settings.llm_model,
                )
        return missing

    def forget(self) -> None:
        """Start over (tests): the next check logs as if first seen."""
        with self._lock:
            self._seen.clear()


CREDENTIALS = CredentialsCheck()
