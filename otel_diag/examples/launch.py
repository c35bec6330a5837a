"""What both demos need to start the sample agent under ``opentelemetry-instrument``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def opentelemetry_instrument() -> str | None:
    """The ``opentelemetry-instrument`` of this interpreter's environment (or PATH's)."""
    bindir = Path(sys.executable).parent
    return shutil.which("opentelemetry-instrument", path=str(bindir)) or shutil.which(
        "opentelemetry-instrument"
    )
