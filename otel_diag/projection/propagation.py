"""One failure, one error row: which recorded errors are the same exception seen twice.

An exception raised in a tool propagates through the agent and the workflow spans above
it, and each of them records it again (OpenTelemetry's ``start_as_current_span`` records
every exception that leaves a span). Counting each recording as an error would make one
failure look like three. The rules, applied per trace:

1. **Propagation.** A recorded error is a copy of one recorded on a *descendant* span when
   both carry the same exception key (exception type and message) and the descendant's was
   recorded no later. After retries the ancestor took the exception of the *latest* such
   descendant (the last attempt, which is the one that escaped); ties go to the deepest.
2. **Bare ERROR status.** A span that only says ERROR (no exception event, no status
   message) above a failed descendant reports that descendant's failure.
3. **Logs.** An exception reported as an OTLP log record on a span is a copy of the
   ``exception`` event of the same key on that same span, when the span carries one.

Everything else is its own failure: retry attempts and parallel calls are siblings, and a
parent that fails with a *different* exception (a wrapper, a new error) is not a copy.
The origin keeps one row, with ``propagated_to``: the step names of its copies, innermost
first (outermost last).

Ancestry comes from the parent links the caller knows: every span of the batch at hand and
every span that recorded an error. A chain through a span that neither failed nor arrived
in the same batch is not followed; the two errors then stay separate rows (an over-count,
never a lost failure). Spans may arrive in any order and in any number of batches: the
result depends only on the set of recorded errors, so it converges and re-sends change
nothing.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

BARE_STATUS = "*"
"""The exception key of a span that only says ERROR: it stands for any key beneath it."""

EVENT, STATUS, LOG = "event", "status", "log"
"""Where a recorded error came from: an exception event, a span status, an OTLP log."""

MAX_DEPTH = 256
"""Parent hops followed from one span (a guard against absurd or cyclic parent links)."""

_STATUS_DESCRIPTION = re.compile(r"^([A-Za-z_][\w.]{0,255}): (.*)$", re.S)


def exception_key(error_type: str | None, message: str | None) -> str:
    """The identity of an exception across the spans it passes: type name and message.

    Only the last component of the type counts: the SDK writes ``module.Class`` in the
    event and ``Class`` in the status description of the same exception.
    """
    short = (error_type or "").rsplit(".", 1)[-1]
    raw = f"{short}\x1f{message or ''}".encode("utf-8", "replace")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def status_key(status_message: str | None, error_type: str | None) -> str:
    """The key of an error known only from a span's ERROR status.

    The SDK's description of an escaping exception is ``"Type: message"``, which names the
    same exception as the event; an empty description is a bare ERROR (:data:`BARE_STATUS`).
    """
    text = (status_message or "").strip()
    if not text:
        return BARE_STATUS
    match = _STATUS_DESCRIPTION.match(text)
    if match:
        return exception_key(match.group(1), match.group(2))
    return exception_key(error_type, text)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded error as the rules see it (a stored row or one of the batch)."""

    id: uuid.UUID
    span_id: str
    parent_span_id: str | None
    key: str
    time: datetime
    step_name: str | None
    origin: str = EVENT


@dataclass(frozen=True, slots=True)
class Chains:
    """The outcome for one trace: which errors are copies, and where each origin went."""

    origin_of: dict[uuid.UUID, uuid.UUID]
    """copy id -> id of the origin it repeats (origins are absent)."""
    propagated_to: dict[uuid.UUID, tuple[str, ...]]
    """origin id -> step names of its copies on ancestor spans, innermost first."""


def _ancestors(span_id: str, parents: Mapping[str, str | None]) -> Iterable[tuple[str, int]]:
    """(ancestor span id, hops) from the parent up to the root, as far as links are known."""
    seen = {span_id}
    span = parents.get(span_id)
    hops = 1
    while span is not None and span not in seen and hops <= MAX_DEPTH:
        yield span, hops
        seen.add(span)
        span = parents.get(span)
        hops += 1


def resolve(recorded: Iterable[Recorded], parents: Mapping[str, str | None]) -> Chains:
    """Apply the module's rules to the recorded errors of one trace.

    ``parents`` maps span id -> parent span id for the spans the caller knows; each
    recorded error's own link is added to it.
    """
    items = sorted({r.id: r for r in recorded}.values(), key=lambda r: r.id.bytes)
    links = dict(parents)
    for r in items:
        if r.parent_span_id is not None or r.span_id not in links:
            links.setdefault(r.span_id, r.parent_span_id)
    on_span: dict[str, list[Recorded]] = {}
    for r in items:
        on_span.setdefault(r.span_id, []).append(r)

    # best[c] = (rank, d): the descendant record d that c repeats, ranked by (time, hops).
    best: dict[uuid.UUID, tuple[tuple[datetime, int], Recorded]] = {}

    def offer(copy: Recorded, source: Recorded, hops: int) -> None:
        rank = (source.time, hops)
        current = best.get(copy.id)
        if current is None or rank > current[0]:
            best[copy.id] = (rank, source)

    for d in items:
        for span, hops in _ancestors(d.span_id, links):
            for c in on_span.get(span, ()):
                if (c.key == d.key or c.key == BARE_STATUS) and d.time <= c.time:
                    offer(c, d, hops)
    for span_records in on_span.values():  # rule 3 wins: the twin is on the same span
        for log in span_records:
            if log.origin != LOG:
                continue
            twins = [r for r in span_records if r.origin != LOG and r.key == log.key]
            if twins:
                twin = min(twins, key=lambda r: (abs((r.time - log.time).total_seconds()), r.id))
                best[log.id] = ((twin.time, 0), twin)

    origin_of: dict[uuid.UUID, uuid.UUID] = {}
    depth: dict[uuid.UUID, int] = {}
    for r in items:
        path: list[uuid.UUID] = []
        cur = r.id
        while cur in best and cur not in path:
            path.append(cur)
            cur = best[cur][1].id
        if cur in path:  # a cycle (contradictory parent links): its closing link is dropped
            del best[cur]
            path = path[: path.index(cur)]
        for hops, copy_id in enumerate(reversed(path), start=1):
            origin_of[copy_id] = cur
            depth[copy_id] = hops
    by_id = {r.id: r for r in items}
    names: dict[uuid.UUID, list[tuple[int, datetime, str]]] = {}
    for copy_id, origin_id in origin_of.items():
        copy, origin = by_id[copy_id], by_id[origin_id]
        if copy.span_id != origin.span_id and copy.step_name:
            names.setdefault(origin_id, []).append((depth[copy_id], copy.time, copy.step_name))
    propagated = {
        origin_id: tuple(dict.fromkeys(name for _, _, name in sorted(entries)))
        for origin_id, entries in names.items()
    }
    return Chains(origin_of, propagated)
