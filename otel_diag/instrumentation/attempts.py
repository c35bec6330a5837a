"""Attempt numbers for retried tool and LLM calls (``otel_diag.step.attempt``).

A retry is the same call made again, in the same parent step, after it failed. The tracker
remembers, per (parent span, call key), the attempt that last failed; the next call with
that key under that parent is the next attempt, and a success forgets it. Nothing is
stored while nothing fails, so the common path is one truth test of an empty dict.
Bounded, so a parent that fails once and never retries cannot grow it without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry import trace

MAX_ENTRIES = 1024


class AttemptTracker:
    """(parent span id, key) -> the attempt number that last failed there."""

    __slots__ = ("_failed", "_lock", "_size")

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._failed: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def failures(self) -> OrderedDict[tuple[int, str], int]:
        """The live table; hot paths test its truth value (empty: nothing to look up)."""
        return self._failed

    def next_attempt(self, parent_span_id: int, key: str) -> int:
        """The attempt number of a call about to start under ``parent_span_id``."""
        if not self._failed:
            return 1
        return self._failed.get((parent_span_id, key), 0) + 1

    def failed(self, parent_span_id: int, key: str, attempt: int) -> None:
        if not parent_span_id:  # no enclosing step: a later call is not "the same step again"
            return
        with self._lock:
            self._failed[(parent_span_id, key)] = attempt
            self._failed.move_to_end((parent_span_id, key))
            while len(self._failed) > self._size:
                self._failed.popitem(last=False)

    def succeeded(self, parent_span_id: int, key: str) -> None:
        if self._failed:
            with self._lock:
                self._failed.pop((parent_span_id, key), None)

    def clear(self) -> None:
        with self._lock:
            self._failed.clear()


def current_span_id() -> int:
    """The id of the current span (0 when there is none): the parent of a span about to start."""
    return trace.get_current_span().get_span_context().span_id


tracker = AttemptTracker()
"""The process-wide tracker shared by the decorators and the litellm instrumentor."""
