"""How good the rules are on the labelled scenarios, and how honest their confidence is.

One evaluation, two readers: ``tests/diagnosis/test_rules.py`` asserts on it and
``python -m tests.bench diagnosis`` prints it. A diagnosis is *right* when both its category
and its resume step are the label's (the stated confidence is about the whole answer); it
is calibrated when, among the diagnoses stating a category, the confidence they state is
close to the fraction that are right. Figures:

- per labelled category: scenarios, category accuracy, resume-step accuracy;
- per stated category: diagnoses, mean stated confidence, measured accuracy, the gap;
- a reliability table (confidence bins: mean confidence vs accuracy) and the expected
  calibration error, ECE = sum over bins of (n_bin / N) x |accuracy - mean confidence|.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opentelemetry.trace import Tracer

from otel_diag.diagnosis.rules import diagnose_by_rules
from otel_diag.store.port import Storage
from tests.diagnosis.scenarios.catalog import SCENARIOS, Scenario
from tests.diagnosis.scenarios.spans import play

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Outcome:
    """What the rules said about one scenario."""

    scenario: Scenario
    category: str | None
    resume_step: str | None
    confidence: float

    @property
    def category_right(self) -> bool:
        return self.category == self.scenario.label.category

    @property
    def resume_right(self) -> bool:
        return self.resume_step == self.scenario.label.resume_step

    @property
    def right(self) -> bool:
        return self.category_right and self.resume_right


@dataclass(frozen=True)
class Group:
    """Figures of a group of outcomes."""

    name: str
    n: int
    category_accuracy: float
    resume_accuracy: float
    accuracy: float
    confidence: float

    @property
    def gap(self) -> float:
        return self.confidence - self.accuracy


def evaluate(
    storage: Storage, tracer: Tracer, scenarios: Sequence[Scenario] = SCENARIOS
) -> list[Outcome]:
    """Play every scenario through ``tracer`` (the real exporter into ``storage``), read its
    rows back through the storage port and diagnose them with the rules."""
    store = storage.tenant()
    outcomes = []
    for scenario in scenarios:
        run_key = str(uuid.uuid4())
        play(tracer, scenario.root, run_key)
        rid = store.resolve_run(run_key)
        run = store.run(rid) if rid else None
        assert rid is not None and run is not None, f"{scenario.name} was not stored"
        diagnosis = diagnose_by_rules(run, store.steps(rid), store.errors(rid))
        outcomes.append(
            Outcome(
                scenario,
                diagnosis.error_category,
                diagnosis.resume_step,
                diagnosis.confidence_score,
            )
        )
    return outcomes


def _group(name: str, items: Sequence[Outcome]) -> Group:
    n = len(items)
    return Group(
        name,
        n,
        sum(o.category_right for o in items) / n,
        sum(o.resume_right for o in items) / n,
        sum(o.right for o in items) / n,
        sum(o.confidence for o in items) / n,
    )


def grouped(outcomes: Iterable[Outcome], key: Callable[[Outcome], str]) -> list[Group]:
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(key(o), []).append(o)
    return [_group(name, items) for name, items in sorted(groups.items())]


def by_label(outcomes: Iterable[Outcome]) -> list[Group]:
    """Per true category: how often the rules get its scenarios right."""
    return grouped(outcomes, lambda o: o.scenario.label.category)


def by_stated(outcomes: Iterable[Outcome]) -> list[Group]:
    """Per category the rules state: is the confidence they state for it their accuracy?"""
    return grouped(outcomes, lambda o: o.category or "none")


def overall(outcomes: Sequence[Outcome]) -> Group:
    return _group("overall", outcomes)


def reliability(outcomes: Sequence[Outcome], bins: Sequence[float] = BINS) -> list[Group]:
    """Outcomes binned by stated confidence (the last bin includes 1.0); empty bins left out."""
    rows = []
    for low, high in itertools.pairwise(bins):
        inside = [
            o
            for o in outcomes
            if low <= o.confidence < high or (high == bins[-1] and o.confidence == high)
        ]
        if inside:
            rows.append(_group(f"{low:.1f}-{high:.1f}", inside))
    return rows


def expected_calibration_error(outcomes: Sequence[Outcome], bins: Sequence[float] = BINS) -> float:
    n = len(outcomes)
    return sum(g.n / n * abs(g.accuracy - g.confidence) for g in reliability(outcomes, bins))


def leave_one_out(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes with the confidence a table measured *without* each one would state:
    the accuracy of the other diagnoses stating the same category (the overall accuracy of
    the others when it is the only one). The stated table is measured on the same set it
    is checked on; this is how much that flatters it."""
    held_out = []
    for i, o in enumerate(outcomes):
        others = [x for j, x in enumerate(outcomes) if j != i]
        same = [x for x in others if x.category == o.category] or others
        confidence = min(0.9, sum(x.right for x in same) / len(same))
        held_out.append(Outcome(o.scenario, o.category, o.resume_step, confidence))
    return held_out


def report(outcomes: Sequence[Outcome]) -> str:
    """The tables, as ``python -m tests.bench diagnosis`` prints them."""
    lines = [f"rules diagnosis over {len(outcomes)} labelled scenarios"]
    lines.append("  per labelled category     n  category  resume step  both")
    for g in [*by_label(outcomes), overall(outcomes)]:
        lines.append(
            f"  {g.name:22s} {g.n:4d}  {g.category_accuracy:8.0%}  {g.resume_accuracy:11.0%}  "
            f"{g.accuracy:4.0%}"
        )
    lines.append("  calibration per stated category   n  confidence  accuracy   gap")
    for g in by_stated(outcomes):
        lines.append(
            f"  {g.name:30s} {g.n:4d}  {g.confidence:10.2f}  {g.accuracy:8.2f}  {g.gap:+5.2f}"
        )
    lines.append("  reliability (confidence bin)      n  confidence  accuracy   gap")
    for g in reliability(outcomes):
        lines.append(
            f"  {g.name:30s} {g.n:4d}  {g.confidence:10.2f}  {g.accuracy:8.2f}  {g.gap:+5.2f}"
        )
    lines.append(f"  expected calibration error (ECE): {expected_calibration_error(outcomes):.3f}")
    lines.append(
        "  ECE of a table measured leaving each scenario out (held-out estimate): "
        f"{expected_calibration_error(leave_one_out(outcomes)):.3f}"
    )
    for o in outcomes:
        if not o.right:
            lines.append(
                f"  miss: {o.scenario.name}: said {o.category}/{o.resume_step!r}, label "
                f"{o.scenario.label.category}/{o.scenario.label.resume_step!r}"
            )
    return "\n".join(lines)
