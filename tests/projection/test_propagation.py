"""The propagation rules: which recorded errors of a trace are one failure seen twice."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from otel_diag.projection.propagation import (
    BARE_STATUS,
    LOG,
    STATUS,
    Recorded,
    exception_key,
    resolve,
    status_key,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CONN = exception_key("ConnectionError", "upstream unreachable")


def rec(
    span: str,
    parent: str | None,
    at: int,
    *,
    key: str = CONN,
    name: str | None = None,
    origin: str = "event",
) -> Recorded:
    return Recorded(
        id=uuid.uuid5(uuid.NAMESPACE_OID, f"{span}:{at}:{key}:{origin}"),
        span_id=span,
        parent_span_id=parent,
        key=key,
        time=T0 + timedelta(milliseconds=at),
        step_name=name or span,
        origin=origin,
    )


def origins(records: list[Recorded]) -> dict[str, tuple[str, ...]]:
    """step name of each failure -> where it propagated; copies are absent."""
    chains = resolve(records, {})
    return {
        r.step_name or "": chains.propagated_to.get(r.id, ())
        for r in records
        if r.id not in chains.origin_of
    }


def test_an_exception_recorded_by_its_ancestors_is_one_failure_on_the_span_that_raised_it():
    tool, agent, root = rec("tool", "agent", 1), rec("agent", "root", 2), rec("root", None, 3)

    assert origins([root, agent, tool]) == {"tool": ("agent", "root")}


def test_retry_attempts_stay_separate_and_the_last_one_is_what_escaped():
    attempts = [rec(f"try{i}", "agent", i, name=f"search#{i}") for i in (1, 2, 3)]
    agent, root = rec("agent", "root", 4), rec("root", None, 5)

    assert origins([*attempts, agent, root]) == {
        "search#1": (),
        "search#2": (),
        "search#3": ("agent", "root"),
    }


def test_a_parent_that_wraps_the_exception_is_its_own_failure_and_its_parent_repeats_it():
    wrapped = exception_key("ToolFailed", "search failed: upstream unreachable")
    tool = rec("tool", "agent", 1)
    agent = rec("agent", "root", 2, key=wrapped)
    root = rec("root", None, 3, key=wrapped)

    assert origins([tool, agent, root]) == {"tool": (), "agent": ("root",)}


def test_siblings_failing_the_same_way_in_parallel_are_separate_failures():
    left, right = rec("left", "agent", 5), rec("right", "agent", 1)

    assert origins([left, right]) == {"left": (), "right": ()}


def test_an_ancestor_that_recorded_the_exception_before_the_child_did_is_not_a_copy():
    """A parent that failed first with the same message had a failure of its own."""
    parent, child = rec("parent", None, 1), rec("child", "parent", 2)

    assert origins([parent, child]) == {"parent": (), "child": ()}


def test_a_bare_error_status_above_a_failure_reports_that_failure():
    tool = rec("tool", "handler", 1)
    handler = rec("handler", "server", 2, key=BARE_STATUS, origin=STATUS)
    server = rec("server", None, 3, key=BARE_STATUS, origin=STATUS)

    assert origins([server, handler, tool]) == {"tool": ("handler", "server")}


def test_a_status_description_names_the_same_exception_as_the_event():
    assert status_key("ConnectionError: upstream unreachable", None) == CONN
    assert exception_key("requests.exceptions.ConnectionError", "upstream unreachable") == CONN
    assert status_key("", "SomeError") == BARE_STATUS
    assert status_key("quota exceeded", "RateLimit") == exception_key("RateLimit", "quota exceeded")


def test_a_log_record_of_the_exception_on_the_same_span_is_the_same_failure():
    event = rec("tool", "agent", 2)
    log = rec("tool", None, 2, origin=LOG)

    chains = resolve([log, event], {})

    assert chains.origin_of == {log.id: event.id}
    assert chains.propagated_to == {}  # a twin on the same span is not a propagation


def test_the_outcome_does_not_depend_on_the_order_or_grouping_of_arrival():
    attempts = [rec(f"try{i}", "agent", i) for i in (1, 2, 3)]
    records = [*attempts, rec("agent", "root", 4), rec("root", None, 5)]
    expected = resolve(records, {})

    for order in itertools.permutations(records):
        assert resolve(list(order), {}) == expected


def test_parent_links_from_spans_without_errors_connect_a_chain():
    """tool -> http (no error of its own) -> agent: the batch's links bridge the gap."""
    tool, agent = rec("tool", "http", 1), rec("agent", None, 2)

    assert origins([tool, agent]) == {"tool": (), "agent": ()}
    chains = resolve([tool, agent], {"http": "agent"})
    assert chains.origin_of == {agent.id: tool.id}


def test_contradictory_parent_links_end_without_a_loop():
    a, b = rec("a", "b", 1), rec("b", "a", 1)

    chains = resolve([a, b], {})

    assert len(chains.origin_of) == 1  # one of the two is kept as the failure
