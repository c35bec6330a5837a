"""What the pages draw, computed without a server: windows, chart bars, the waterfall."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from otel_diag.console.views import WINDOWS, activity_charts, waterfall, window
from otel_diag.rows import Step
from otel_diag.store.port import ActivityBucket

NOW = datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC)


def _step(name: str, span: str, parent: str | None, start_ms: int, dur_ms: int) -> Step:
    start = NOW + timedelta(milliseconds=start_ms)
    return Step(
        id=uuid.uuid4(),
        run_id=uuid.UUID(int=1),
        trace_id="ab" * 16,
        span_id=span,
        parent_span_id=parent,
        step_name=name,
        kind="tool",
        status="ok",
        started_at=start,
        ended_at=start + timedelta(milliseconds=dur_ms),
        duration_ms=dur_ms,
    )


def test_an_unknown_window_name_is_the_default_never_an_error() -> None:
    assert window("7d") is WINDOWS["7d"]
    assert window("1y").name == "24h" and window(None).name == "24h"
    assert window("", default="7d").name == "7d"


def test_charts_have_one_bar_per_bucket_and_fill_the_gaps_with_zero() -> None:
    w = WINDOWS["15m"]  # 1-minute buckets
    minute = NOW.replace(second=0)
    buckets = [
        ActivityBucket(minute - timedelta(minutes=3), runs=4, finished=4, failed=1, cost_usd=0.6),
        ActivityBucket(minute, runs=2, finished=1, failed=1, cost_usd=0.0),
    ]
    runs, failures, cost = activity_charts(buckets, NOW, w)
    assert len(runs.bars) == len(failures.bars) == len(cost.bars) == 16
    heights = [b.height for b in runs.bars]
    assert heights[-4] == 116 and heights[-1] == 58 and heights.count(0) == 14
    assert runs.total == "0.40/min (6 runs)"
    assert failures.total.startswith("40.0%")  # 2 failed of 5 finished
    assert "no finished runs" in failures.bars[0].label
    assert cost.peak == "36.0000 USD/h"  # $0.60 in one minute
    assert not runs.empty and activity_charts([], NOW, w)[0].empty


def test_the_waterfall_nests_steps_scales_bars_and_marks_the_resume_step() -> None:
    steps = [
        _step("agent", "a", "root-not-a-step", 0, 1000),
        _step("search", "b", "a", 100, 400),
        _step("fetch", "c", "b", 500, 500),
    ]
    rows = waterfall(steps, resume_step="search")
    assert [(r.step.step_name, r.depth, r.x, r.width, r.resume) for r in rows] == [
        ("agent", 0, 0.0, 1000.0, False),
        ("search", 1, 100.0, 400.0, True),
        ("fetch", 2, 500.0, 500.0, False),
    ]
    assert waterfall([], None) == []
    loop = [_step("x", "p", "q", 0, 1), _step("y", "q", "p", 0, 1)]  # a cycle ends
    assert [r.depth for r in waterfall(loop, None)] == [2, 2]


def test_of_several_steps_with_the_resume_name_the_last_before_the_failure_is_marked() -> None:
    steps = [
        _step("agent", "a", None, 0, 1000),
        _step("chat", "b", "a", 100, 100),
        _step("chat", "c", "a", 300, 100),
        _step("book", "d", "a", 500, 100),
        _step("chat", "e", "a", 700, 100),  # after the failure: a retry, not the place to resume
    ]
    failed = [
        s if s.span_id not in ("a", "d") else Step(**{**_fields(s), "status": "error"})
        for s in steps
    ]
    marked = [r.step.span_id for r in waterfall(failed, "chat") if r.resume]
    assert marked == ["c"]
    assert [r.step.span_id for r in waterfall(steps, "chat") if r.resume] == ["e"]  # no failure


def _fields(step: Step) -> dict[str, object]:
    return {f: getattr(step, f) for f in Step.__dataclass_fields__}
