"""The shipped examples (``otel_diag/examples``) run on otel-diag's runtime dependencies alone.

They are part of the wheel (``make demo`` runs them), so an import of a development-only
package (pytest, httpx, pyyaml...) would fail on an installed otel-diag.
"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

import otel_diag.examples

EXAMPLES = Path(otel_diag.examples.__file__).parent


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _runtime_distributions() -> set[str]:
    wanted = set()
    for line in requires("otel-diag") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            wanted.add(req.name.lower().replace("_", "-"))
    return wanted


def test_examples_import_only_the_standard_library_otel_diag_and_runtime_dependencies() -> None:
    runtime = _runtime_distributions()
    owners = packages_distributions()
    files = sorted(EXAMPLES.glob("*.py"))
    assert len(files) >= 4
    outside: dict[str, list[str]] = {}
    for path in files:
        for name in _imported_top_levels(path):
            if name in sys.stdlib_module_names or name in ("otel_diag", "__future__"):
                continue
            dists = {d.lower().replace("_", "-") for d in owners.get(name, [name])}
            if not dists & runtime:
                outside.setdefault(path.name, []).append(name)
    assert outside == {}
