"""The shape of a diagnosis, the JSON schema the LLM is asked for, and its validation.

An LLM answer is only as good as its checks: it must be one JSON object with a non-empty
root cause, one or more prioritized actions, a confidence between 0 and 1, and a resume
step that is a string or null. Anything else (not JSON, empty, wrong types) raises
:class:`InvalidAnswer` and the caller falls back to the rules.

One field is amended rather than rejected: a resume step that names no step of the run
(providers without strict JSON-schema enums make them up). The analysis and actions are
still the LLM's; :func:`parse_answer` returns the diagnosis with ``resume_step=None`` and
the made-up name in ``notes[UNKNOWN_STEP]``, and the caller puts the rules' choice there
(see :func:`otel_diag.diagnosis.service.DiagnosticsService`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_diag.classify import CATEGORIES
from otel_diag.redact import safe_text

MAX_ACTIONS = 8
UNKNOWN_STEP = "unknown_step"
"""``notes`` key (and ``fallback_reason``) of an answer whose resume step is not a step."""
ANALYSIS_CHARS = 4000
ACTION_CHARS = 600
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)


class InvalidAnswer(ValueError):
    """An LLM answer that cannot be used; ``reason`` is stored as the fallback reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Action:
    priority: int
    action: str
    rationale: str

    def as_dict(self) -> dict[str, Any]:
        return {"priority": self.priority, "action": self.action, "rationale": self.rationale}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What a report says, whoever wrote it (an LLM or the rules)."""

    root_cause_analysis: str
    recommended_actions: tuple[Action, ...]
    resume_step: str | None
    confidence_score: float
    error_category: str | None = None
    notes: dict[str, Any] = field(default_factory=dict, compare=False)


def round_confidence(value: float) -> float:
    return round(min(1.0, max(0.0, float(value))), 2)


def response_schema(step_names: Iterable[str], max_enum: int = 100) -> dict[str, Any]:
    """JSON schema of the answer (strict-mode compatible); resume_step limited to real steps."""
    names = list(dict.fromkeys(step_names))
    resume: dict[str, Any] = {"type": ["string", "null"]}
    if names and len(names) <= max_enum:
        resume["enum"] = [*names, None]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "root_cause_analysis",
            "error_category",
            "recommended_actions",
            "resume_step",
            "confidence_score",
        ],
        "properties": {
            "root_cause_analysis": {"type": "string"},
            "error_category": {"type": "string", "enum": list(CATEGORIES)},
            "recommended_actions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["priority", "action", "rationale"],
                    "properties": {
                        "priority": {"type": "integer"},
                        "action": {"type": "string"},
                        "rationale": {"type": "string"},
                    },
                },
            },
            "resume_step": resume,
            "confidence_score": {"type": "number"},
        },
    }


def _load(text: str) -> Any:
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidAnswer("invalid_json", f"answer is not JSON ({exc})") from None


def _text(value: Any, name: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidAnswer("invalid_answer", f"{name} must be a non-empty string")
    return safe_text(value.strip(), limit)


def _actions(value: Any) -> tuple[Action, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidAnswer("invalid_answer", "recommended_actions must be a non-empty list")
    parsed: list[tuple[int, int, str, str]] = []
    for index, item in enumerate(value[:MAX_ACTIONS]):
        if not isinstance(item, Mapping):
            raise InvalidAnswer("invalid_answer", "each recommended action must be an object")
        priority = item.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
            raise InvalidAnswer("invalid_answer", "action priority must be an integer >= 1")
        action = _text(item.get("action"), "action", ACTION_CHARS)
        rationale = _text(item.get("rationale", ""), "rationale", ACTION_CHARS, required=False)
        parsed.append((priority, index, action, rationale))
    parsed.sort()
    # Renumber 1..n in the model's order: priority 1 is what to do first.
    return tuple(Action(i + 1, a, r) for i, (_p, _n, a, r) in enumerate(parsed))


def resolve_step(value: Any, step_names: Iterable[str]) -> str | None:
    """The run's step called ``value`` (exact, else case-insensitive); raises if none."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")):
        return None
    if not isinstance(value, str):
        raise InvalidAnswer("invalid_answer", "resume_step must be a string or null")
    names = list(step_names)
    wanted = value.strip()
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InvalidAnswer(UNKNOWN_STEP, f"resume_step {safe_text(wanted, 120)!r} is not a step")


def parse_answer(text: str | None, step_names: Iterable[str]) -> Diagnosis:
    """Validate an LLM answer against the schema and the run's steps."""
    if not text or not text.strip():
        raise InvalidAnswer("invalid_json", "empty answer")
    data = _load(text)
    if not isinstance(data, Mapping):
        raise InvalidAnswer("invalid_answer", "answer is not a JSON object")
    analysis = _text(data.get("root_cause_analysis"), "root_cause_analysis", ANALYSIS_CHARS)
    actions = _actions(data.get("recommended_actions"))
    confidence = data.get("confidence_score")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidAnswer("invalid_answer", "confidence_score must be a number")
    if not 0.0 <= float(confidence) <= 1.0:
        raise InvalidAnswer("invalid_answer", "confidence_score must be between 0 and 1")
    if "resume_step" not in data:
        raise InvalidAnswer("invalid_answer", "resume_step is missing")
    notes: dict[str, Any] = {}
    try:
        resume = resolve_step(data.get("resume_step"), step_names)
    except InvalidAnswer as exc:
        if exc.reason != UNKNOWN_STEP:
            raise
        resume = None
        notes[UNKNOWN_STEP] = safe_text(str(data.get("resume_step")).strip(), 120)
    category = data.get("error_category")
    if not isinstance(category, str) or category not in CATEGORIES:
        category = None
    return Diagnosis(analysis, actions, resume, round_confidence(confidence), category, notes)
