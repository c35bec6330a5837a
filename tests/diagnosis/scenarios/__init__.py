"""The labelled failure scenarios (``catalog``) and the span player (``spans``)."""

from __future__ import annotations

import uuid

from opentelemetry.trace import Tracer

from tests.diagnosis.scenarios.catalog import SCENARIOS, Label, Scenario, long_run
from tests.diagnosis.scenarios.spans import Node, play

__all__ = ["SCENARIOS", "Label", "Scenario", "long_run", "play", "seed"]


def seed(tracer: Tracer, root: Node, run_id: str | None = None) -> str:
    """Play ``root`` through ``tracer`` (the real exporter behind it); the run id used."""
    run_id = run_id or str(uuid.uuid4())
    play(tracer, root, run_id)
    return run_id
