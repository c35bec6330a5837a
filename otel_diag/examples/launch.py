"""What both demos share: starting the sample agent, and showing its error rows."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table

from otel_diag.cli import render


def opentelemetry_instrument() -> str | None:
    """The ``opentelemetry-instrument`` of this interpreter's environment (or PATH's)."""
    bindir = Path(sys.executable).parent
    return shutil.which("opentelemetry-instrument", path=str(bindir)) or shutil.which(
        "opentelemetry-instrument"
    )


def error_table(title: str, errors: Iterable[dict[str, Any]]) -> Table:
    """The demo's view of error rows as JSON (the API's ``errors``, or ``to_json`` of the
    store's rows): where, what kind, and the (redacted) message.

    One row per failure occurrence (each retry attempt); the spans an exception propagated
    through are listed under ``propagated to``, not as rows of their own. The CLI's table
    style, so piped output (``make demo | tee``) is complete too.
    """
    table = render.table(
        title,
        *("step", "source", "category", "type", "attempt", "propagated to", "message"),
        right=("attempt",),
        whole=("step", "source", "category", "type", "attempt"),
        text=("propagated to", "message"),
    )
    for err in errors:
        table.add_row(
            err["step_name"],
            err["source"],
            err["error_category"],
            err["error_type"],
            str(err["attempt"]),
            " > ".join(err.get("propagated_to") or ()) or "-",
            err["error_message"],
        )
    return table
