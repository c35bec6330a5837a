"""What the console's templates draw, computed in Python: time windows, chart geometry, the
step waterfall and the display formats.

Pure functions over typed rows (no request, no storage), so each rule is testable alone and
the templates only lay values out. Charts and waterfall bars are SVG coordinates drawn by the
server: the pages need no charting library and no inline style (the Content-Security-Policy
forbids both scripts and styles that are not ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from otel_diag.rows import Report, Step
from otel_diag.store.port import ActivityBucket


@dataclass(frozen=True, slots=True)
class Window:
    """A look-back the pages offer, and the bucket its charts count in."""

    name: str
    span: timedelta
    bucket: timedelta

    @property
    def bucket_label(self) -> str:
        minutes = int(self.bucket.total_seconds() // 60)
        return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


WINDOWS = {
    w.name: w
    for w in (
        Window("15m", timedelta(minutes=15), timedelta(minutes=1)),
        Window("1h", timedelta(hours=1), timedelta(minutes=2)),
        Window("24h", timedelta(hours=24), timedelta(minutes=30)),
        Window("7d", timedelta(days=7), timedelta(hours=6)),
    )
}
DEFAULT_WINDOW = "24h"


def window(name: str | None, default: str = DEFAULT_WINDOW) -> Window:
    """The window a query parameter names; an unknown name is the default (never an error)."""
    return WINDOWS.get(name or "", WINDOWS[default])


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    """The bucket and its value, for the bar's tooltip and screen readers."""


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart in a ``0 0 WIDTH HEIGHT`` SVG viewBox."""

    title: str
    total: str
    bars: tuple[Bar, ...]
    peak: str
    empty: bool


CHART_W, CHART_H = 600.0, 120.0


def _buckets(now: datetime, w: Window) -> list[datetime]:
    """Every bucket start of the window, aligned on the epoch as the store aligns them."""
    size = int(w.bucket.total_seconds())
    first = int((now - w.span).timestamp()) // size * size
    last = int(now.timestamp()) // size * size
    return [datetime.fromtimestamp(t, UTC) for t in range(first, last + 1, size)]


def _chart(
    title: str, total: str, points: list[tuple[datetime, float | None]], fmt: str, unit: str
) -> Chart:
    peak = max((v for _, v in points if v is not None), default=0.0)
    step = CHART_W / max(1, len(points))
    bars = []
    for i, (start, value) in enumerate(points):
        v = value or 0.0
        h = 0.0 if peak <= 0 or v <= 0 else max(1.0, v / peak * (CHART_H - 4))
        shown = "no finished runs" if value is None else f"{v:{fmt}} {unit}"
        bars.append(
            Bar(
                x=round(i * step + step * 0.1, 2),
                y=round(CHART_H - h, 2),
                width=round(step * 0.8, 2),
                height=round(h, 2),
                label=f"{start:%Y-%m-%d %H:%M} UTC: {shown}",
            )
        )
    return Chart(title, total, tuple(bars), f"{peak:{fmt}} {unit}", peak <= 0)


def activity_charts(
    buckets: Sequence[ActivityBucket], now: datetime, w: Window
) -> tuple[Chart, Chart, Chart]:
    """Runs per minute, failure rate and cost per hour, one bar per bucket of the window."""
    by_start = {b.start: b for b in buckets}
    starts = _buckets(now, w)
    minutes = w.bucket.total_seconds() / 60
    hours = minutes / 60
    rows = [by_start.get(s) for s in starts]
    runs = sum(b.runs for b in buckets)
    failed = sum(b.failed for b in buckets)
    finished = sum(b.finished for b in buckets)
    cost = sum(b.cost_usd for b in buckets)
    span_min = w.span.total_seconds() / 60
    return (
        _chart(
            "Runs per minute",
            f"{runs / span_min:.2f}/min ({runs} runs)",
            [(s, (b.runs if b else 0) / minutes) for s, b in zip(starts, rows, strict=True)],
            ".2f",
            "runs/min",
        ),
        _chart(
            "Failure rate",
            percent(failed / finished if finished else None) + f" ({failed} failed)",
            [
                (s, (b.failed / b.finished * 100) if b and b.finished else None)
                for s, b in zip(starts, rows, strict=True)
            ],
            ".1f",
            "%",
        ),
        _chart(
            "Cost per hour",
            f"{money(cost / (span_min / 60))}/h ({money(cost)} in all)",
            [(s, (b.cost_usd if b else 0.0) / hours) for s, b in zip(starts, rows, strict=True)],
            ".4f",
            "USD/h",
        ),
    )


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    step: Step
    depth: int
    x: float
    """Start offset in per mille of the run's extent."""
    width: float
    resume: bool
    """The step the latest diagnosis says to resume from (one row, see :func:`_resume_step`)."""


def waterfall(
    steps: Sequence[Step], resume_step: str | None, max_depth: int = 8
) -> list[WaterfallRow]:
    """The run's steps in start order with their bar geometry (0..1000) and nesting depth."""
    if not steps:
        return []
    t0 = min(s.started_at for s in steps)
    t1 = max(s.ended_at for s in steps)
    extent = max((t1 - t0).total_seconds(), 1e-6)
    parents = {s.span_id: s.parent_span_id for s in steps}

    def depth(step: Step) -> int:
        d, parent, seen = 0, step.parent_span_id, set()
        while parent in parents and parent not in seen and d < max_depth:
            seen.add(parent)
            d += 1
            parent = parents[parent]
        return d

    resume = _resume_step(steps, resume_step)
    rows = []
    for s in steps:
        x = (s.started_at - t0).total_seconds() / extent * 1000
        w = max(2.0, (s.ended_at - s.started_at).total_seconds() / extent * 1000)
        rows.append(
            WaterfallRow(
                s,
                depth(s),
                round(x, 1),
                round(min(w, 1000 - x) if x < 998 else 2.0, 1),
                s is resume,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Action:
    priority: int | None
    action: str
    rationale: str


def _resume_step(steps: Sequence[Step], name: str | None) -> Step | None:
    """The one step a report's ``resume_step`` (a step name) points at when several share
    the name (a chat model called in a loop): the last of them that started before the
    failure, i.e. before the earliest failed step no other failed step descends from."""
    named = [s for s in steps if name is not None and s.step_name == name]
    if len(named) < 2:
        return named[0] if named else None
    failed_parents = {s.parent_span_id for s in steps if s.status == "error"}
    origins = [
        s.started_at for s in steps if s.status == "error" and s.span_id not in failed_parents
    ]
    if not origins:
        return named[-1]
    before = [s for s in named if s.started_at <= min(origins)]
    return before[-1] if before else named[0]


def actions(report: Report) -> list[Action]:
    """A report's recommended actions, priority 1 first (as the diagnosis numbers them)."""
    out = []
    for a in report.recommended_actions:
        raw = a.get("priority")
        prio = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        out.append(Action(prio, str(a.get("action") or ""), str(a.get("rationale") or "")))
    return sorted(out, key=lambda x: (x.priority is None, x.priority or 0))


# --- display formats (Jinja filters) -----------------------------------------------------
def money(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:  # one LLM call: the digits that say how much
        return f"${value:.6f}"
    return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def millis(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    return f"{value / 60_000:.1f} min"


def when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def short_id(value: object) -> str:
    return str(value)[:8]
