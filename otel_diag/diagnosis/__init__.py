"""Diagnosis: every completed failed run gets a structured report, by an LLM or the rules.

``DiagnosticsService`` diagnoses one run on request (the seed spec's ``analyze_failure`` /
``get_latest_diagnosis``); ``DiagnosisWorker`` is the batch processor that claims ready
runs from the database and diagnoses them unattended. Importing this package does not
import litellm: only :mod:`otel_diag.diagnosis.llm` does, on the first LLM request.

Words: *diagnosis* is the act and what it concludes (this package, the worker, the queue,
:class:`~otel_diag.diagnosis.schema.Diagnosis`, the ``diagnose`` span and command);
*diagnostic* survives only in the seed's names: the ``diagnostic_reports`` table, its API
model ``DiagnosticReport``, ``DiagnosticsService``, ``GET .../diagnostics`` and
``build_diagnostic_context`` (:mod:`otel_diag.diagnosis.context`).
"""

from otel_diag.diagnosis.service import (
    DiagnosisDisabledError,
    DiagnosticsService,
    NothingToDiagnoseError,
    RunNotFoundError,
)
from otel_diag.diagnosis.worker import DiagnosisWorker

__all__ = [
    "DiagnosisDisabledError",
    "DiagnosisWorker",
    "DiagnosticsService",
    "NothingToDiagnoseError",
    "RunNotFoundError",
]
