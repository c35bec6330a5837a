"""The reports' roll-ups (``stats``, ``cost``, a ``monitor`` frame), shared by the SQL and
MongoDB stores.

A backend groups in its own way (SQL by grouped queries, MongoDB by one streamed pass over
documents, since FerretDB lacks most accumulators) and feeds the groups here; the sums,
rates, rounding and orderings of the reports live in this one place, so the backends give
the same :mod:`otel_diag.report_rows` to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from otel_diag.report_rows import (
    AgentCost,
    AgentStats,
    CategoryCount,
    CostBreakdown,
    CostMismatch,
    CostMismatches,
    CostTotal,
    DayCost,
    DiagnosisExcerpt,
    DiagnosisOutcomes,
    ErrorExcerpt,
    MinuteCount,
    MismatchExample,
    ModelCost,
    ModelRate,
    MonitorFrame,
    RunStats,
    RunTotals,
    UnpricedUsage,
)
from otel_diag.store.rules import CHOSEN_FALLBACKS, NO_AGENT, NO_MODEL, rate, rounded

COST_DIGITS = 9
"""USD sums are rounded to a billionth: float noise of long sums never shows."""


class StatsRollup:
    """``otel-diag stats``: feed one :meth:`agent` per agent, then :meth:`result`."""

    def __init__(self) -> None:
        self._agents: list[AgentStats] = []
        self._finished = 0

    def agent(
        self,
        name: str | None,
        *,
        runs: int,
        failed: int,
        finished: int,
        errors: Any,
        llm_calls: Any,
        tool_calls: Any,
        input_tokens: Any,
        output_tokens: Any,
        cost_usd: Any,
        unpriced_tokens: Any,
        p50_ms: Any,
        p95_ms: Any,
    ) -> None:
        """One agent's runs (sums may be None or Decimal, as databases return them)."""
        self._finished += finished
        self._agents.append(
            AgentStats(
                agent=name or NO_AGENT,
                runs=runs,
                failed=failed,
                running=runs - finished,
                failure_rate=rate(failed, finished),
                p50_ms=rounded(p50_ms),
                p95_ms=rounded(p95_ms),
                errors=int(errors or 0),
                llm_calls=int(llm_calls or 0),
                tool_calls=int(tool_calls or 0),
                input_tokens=int(input_tokens or 0),
                output_tokens=int(output_tokens or 0),
                cost_usd=None if cost_usd is None else round(float(cost_usd), COST_DIGITS),
                unpriced_tokens=int(unpriced_tokens or 0),
            )
        )

    def result(self, categories: Iterable[CategoryCount]) -> RunStats:
        agents = sorted(self._agents, key=lambda a: (-a.runs, a.agent))
        runs = sum(a.runs for a in agents)
        failed = sum(a.failed for a in agents)
        totals = RunTotals(
            runs=runs,
            failed=failed,
            running=runs - self._finished,
            failure_rate=rate(failed, self._finished),
            errors=sum(a.errors for a in agents),
            llm_calls=sum(a.llm_calls for a in agents),
            tool_calls=sum(a.tool_calls for a in agents),
            input_tokens=sum(a.input_tokens for a in agents),
            output_tokens=sum(a.output_tokens for a in agents),
            cost_usd=round(sum((a.cost_usd or 0.0 for a in agents), 0.0), COST_DIGITS),
            unpriced_tokens=sum(a.unpriced_tokens for a in agents),
        )
        return RunStats(totals, tuple(agents), tuple(categories))


class _Usage:
    __slots__ = ("calls", "cost_usd", "input_tokens", "output_tokens", "unpriced_tokens")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = self.unpriced_tokens = 0
        self.cost_usd = 0.0

    def add(self, calls: int, inp: int, out: int, cost: float, unpriced: bool) -> None:
        self.calls += calls
        self.input_tokens += inp
        self.output_tokens += out
        self.cost_usd += cost
        if unpriced:
            self.unpriced_tokens += inp + out

    def figures(self) -> tuple[int, int, int, float, int]:
        cost = round(self.cost_usd, COST_DIGITS)
        return self.calls, self.input_tokens, self.output_tokens, cost, self.unpriced_tokens


class CostRollup:
    """``otel-diag cost``: feed :meth:`steps` (and :meth:`mismatch`) per group of LLM steps
    and :meth:`agent` per agent, then :meth:`result`."""

    def __init__(self) -> None:
        self._total = _Usage()
        self._models: dict[str, _Usage] = {}
        self._days: dict[str, _Usage] = {}
        self._unpriced: dict[str, _Usage] = {}
        self._mismatched: dict[str, list[Any]] = {}
        self._agents: list[AgentCost] = []

    def steps(
        self,
        *,
        day: str,
        model: str | None,
        unpriced: bool,
        calls: int,
        input_tokens: Any,
        output_tokens: Any,
        cost_usd: Any,
    ) -> None:
        """LLM steps of one day and model, priced or not (``unpriced``)."""
        m = model or NO_MODEL
        inp, out, cost = int(input_tokens or 0), int(output_tokens or 0), float(cost_usd or 0.0)
        by_model = self._models.get(m) or self._models.setdefault(m, _Usage())
        by_day = self._days.get(day) or self._days.setdefault(day, _Usage())
        for usage in (self._total, by_model, by_day):
            usage.add(calls, inp, out, cost, unpriced)
        if unpriced:
            self._unpriced.setdefault(m, _Usage()).add(calls, inp, out, 0.0, False)

    def mismatch(self, model: str | None, steps: int, reported: Any, computed: Any) -> None:
        """Steps whose reported cost disagrees with the computed one (both summed)."""
        mm = self._mismatched.setdefault(model or NO_MODEL, [0, 0.0, 0.0])
        mm[0] += steps
        mm[1] += float(reported or 0.0)
        mm[2] += float(computed or 0.0)

    @property
    def mismatched(self) -> bool:
        return bool(self._mismatched)

    def agent(
        self,
        name: str | None,
        *,
        runs: int,
        calls: Any,
        input_tokens: Any,
        output_tokens: Any,
        cost_usd: Any,
        unpriced_tokens: Any,
    ) -> None:
        """One agent's runs started in the window, from the runs' stored totals."""
        self._agents.append(
            AgentCost(
                agent=name or NO_AGENT,
                runs=runs,
                calls=int(calls or 0),
                input_tokens=int(input_tokens or 0),
                output_tokens=int(output_tokens or 0),
                cost_usd=round(float(cost_usd or 0.0), COST_DIGITS),
                unpriced_tokens=int(unpriced_tokens or 0),
            )
        )

    def result(self, examples: Iterable[MismatchExample] = ()) -> CostBreakdown:
        models = sorted(
            self._models.items(), key=lambda kv: (-round(kv[1].cost_usd, COST_DIGITS), kv[0])
        )
        unpriced = sorted(
            self._unpriced.items(),
            key=lambda kv: (-(kv[1].input_tokens + kv[1].output_tokens), kv[0]),
        )
        mismatched = sorted(self._mismatched.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return CostBreakdown(
            total=CostTotal(*self._total.figures()),
            by_model=tuple(ModelCost(m, *u.figures()) for m, u in models),
            by_agent=tuple(sorted(self._agents, key=lambda a: (-a.cost_usd, a.agent))),
            by_day=tuple(DayCost(d, *self._days[d].figures()) for d in sorted(self._days)),
            unpriced=tuple(
                UnpricedUsage(m, u.calls, u.input_tokens, u.output_tokens) for m, u in unpriced
            ),
            mismatches=CostMismatches(
                by_model=tuple(CostMismatch(m, *mm) for m, mm in mismatched),
                examples=tuple(examples),
            ),
        )


def _costliest_first(model: tuple[str, int, Any, Any, Any]) -> tuple[bool, float, str]:
    """Costliest model first (compared at the reports' rounding, so backends agree), models
    without a priced call last, ties by name."""
    name, _, cost, _, _ = model
    return cost is None, -round(float(cost or 0.0), COST_DIGITS), name


def monitor_frame(
    *,
    now: datetime,
    window: timedelta,
    runs: int,
    failed: int,
    running: int,
    finished: int,
    cost_usd: Any,
    pending_diagnoses: int,
    per_minute: Iterable[MinuteCount],
    models: Iterable[tuple[str, int, Any, Any, Any]],
    latest_errors: Iterable[ErrorExcerpt],
    latest_diagnoses: Iterable[DiagnosisExcerpt],
) -> MonitorFrame:
    """A monitor frame from a backend's counts. ``models``: (model, calls, cost or None when
    no call was priced, tokens, unpriced calls), in any order."""
    minutes = window.total_seconds() / 60.0
    spent = float(cost_usd or 0.0)
    rates = [
        ModelRate(
            model=m,
            calls=n,
            cost_usd=round(float(c or 0.0), COST_DIGITS),
            cost_per_minute=round(float(c or 0.0) / minutes, COST_DIGITS),
            tokens=int(t or 0),
            unpriced_calls=int(u or 0),
        )
        for m, n, c, t, u in sorted(models, key=_costliest_first)
    ]
    return MonitorFrame(
        now=now,
        window_minutes=round(minutes, 2),
        runs=runs,
        failed=failed,
        running=running,
        runs_per_minute=round(runs / minutes, 3),
        failure_rate=rate(failed, finished),
        cost_usd=round(spent, COST_DIGITS),
        cost_per_minute=round(spent / minutes, COST_DIGITS),
        pending_diagnoses=pending_diagnoses,
        per_minute=tuple(sorted(per_minute, key=lambda m: m.minute)),
        models=tuple(rates),
        latest_errors=tuple(latest_errors),
        latest_diagnoses=tuple(latest_diagnoses),
    )


def outcomes(reports: int, failed_runs: int, reasons: dict[str, int]) -> DiagnosisOutcomes:
    """Diagnosis health from the counts: a fallback the operator chose (rules mode, the
    spend cap) is not an LLM failure."""
    return DiagnosisOutcomes(
        reports=reports,
        llm_fallbacks=sum(n for r, n in reasons.items() if r not in CHOSEN_FALLBACKS),
        failed_runs=failed_runs,
        fallback_reasons=reasons,
    )
