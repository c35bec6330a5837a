"""How tables fit: clipped on a terminal as before, ``COLUMNS`` wide and whole elsewhere."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from otel_diag.cli import render

LONG_STEP = "fetch_supplier_invoice_batch_from_erp_gateway"


def _table() -> render.CompleteTable:
    tbl = render.table(None, "step", "attempt", "message", right=("attempt",), text=("message",))
    tbl.add_row(render.clip(LONG_STEP, 32), "2", render.excerpt("connection reset " * 8, 40))
    return tbl


def test_on_a_terminal_long_values_are_clipped_with_an_ellipsis_as_before() -> None:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system=None, width=80).print(_table())

    assert LONG_STEP[:31] + "…" in out.getvalue()
    assert LONG_STEP not in out.getvalue()


@pytest.mark.parametrize(("columns", "width"), [("80", 80), ("52", 52), (None, 160), ("x", 160)])
def test_off_a_terminal_the_width_is_columns_exactly_or_160(
    monkeypatch: pytest.MonkeyPatch, columns: str | None, width: int
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    assert render.console().width == width


def test_off_a_terminal_a_table_too_wide_for_the_line_becomes_records() -> None:
    out = io.StringIO()
    Console(file=out, width=60).print(_table())
    lines = out.getvalue().splitlines()

    assert any(line.startswith("step") and LONG_STEP in line for line in lines)
    assert any(line.startswith("attempt") for line in lines)
    assert "connection reset connection reset" in out.getvalue()
    assert max(len(line.rstrip()) for line in lines) <= 60
