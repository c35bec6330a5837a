"""Off a terminal (pipes, CI logs) the CLI prints every value whole.

``CliRunner`` output is not a terminal. The store holds one failed run whose names, error
type and category are longer than the terminal clipping limits (24 to 40 characters);
``runs``, ``errors RUN`` and ``monitor --once`` must show each of them complete, with
``COLUMNS=80`` (the table becomes records where it cannot fit) and without ``COLUMNS``
(160). No value or header is cut with an ellipsis; free text beyond the off-terminal bound
says how much was left out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from otel_diag.cli import main, render
from otel_diag.config import load_settings
from tests.cli.seed import MS, exporting_tracer

RUN_ID = str(uuid.uuid4())
WORKFLOW = "invoke_workflow reconcile-quarterly-supplier-invoices"
AGENT = "accounts-payable-reconciliation-agent-eu"
STEP = "fetch_supplier_invoice_batch_from_erp"
ERROR_TYPE = "SupplierInvoiceReconciliationMismatchError"
SOURCE_CATEGORY = "tool/context_length"
MESSAGE = (
    "invoice INV-2024-000123 does not match purchase order PO-77 after the early-payment "
    "discount and the regional VAT adjustments for Germany, France and the Netherlands "
    "were applied to the supplier batch (ref END-7731)"
)
HUGE_MESSAGE = "the supplier portal kept answering with the previous exchange rate table " * 20
COMPLETE = (RUN_ID[:8], WORKFLOW, AGENT, STEP, ERROR_TYPE, SOURCE_CATEGORY)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with one failed run: a tool failing twice, under an agent and a workflow."""
    home = tmp_path_factory.mktemp("long-names")
    url = f"sqlite:///{home / 'otel_diag.db'}"
    start = time.time_ns() - 60_000 * MS
    with exporting_tracer(url, load_settings(env={}, database_url=url, home=home)) as tracer:
        root = tracer.start_span(
            WORKFLOW, start_time=start, attributes={"otel_diag.run.id": RUN_ID}
        )
        agent = tracer.start_span(
            f"invoke_agent {AGENT}",
            context=trace.set_span_in_context(root),
            start_time=start + MS,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": AGENT},
        )
        for attempt, message in ((1, MESSAGE), (2, HUGE_MESSAGE)):
            at = start + (1 + attempt) * MS
            tool = tracer.start_span(
                f"execute_tool {STEP}",
                context=trace.set_span_in_context(agent),
                start_time=at,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": STEP,
                    "otel_diag.step.attempt": attempt,
                    "otel_diag.error.source": "tool",
                    "otel_diag.error.category": "context_length",
                },
            )
            tool.add_event(
                "exception",
                {"exception.type": ERROR_TYPE, "exception.message": message},
                timestamp=at + MS // 2,
            )
            tool.set_status(Status(StatusCode.ERROR, message))
            tool.end(end_time=at + MS)
        for span, at in ((agent, start + 9 * MS), (root, start + 10 * MS)):  # it propagates
            span.add_event(
                "exception",
                {"exception.type": ERROR_TYPE, "exception.message": HUGE_MESSAGE},
                timestamp=at - 1,
            )
            span.set_status(Status(StatusCode.ERROR, HUGE_MESSAGE))
            span.end(end_time=at)
    return url


@pytest.fixture(params=["80", None], ids=["COLUMNS=80", "COLUMNS-unset"])
def columns(request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield request.param


def _run(url: str, columns: str | None, *args: str) -> str:
    result: Result = CliRunner().invoke(
        main, [*args, "--database-url", url], env={"COLUMNS": columns}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _assert_nothing_cut(out: str) -> None:
    """Every ellipsis in ``out`` is the start of a marker that says how much was left out."""
    assert out.count("…") == out.count("…[truncated ")


def _assert_fits(out: str, columns: str | None) -> None:
    width = int(columns or render.OFF_TTY_WIDTH)
    assert max(len(line.rstrip()) for line in out.splitlines()) <= width


def test_runs_shows_the_whole_run_and_agent_names(url: str, columns: str | None) -> None:
    out = _run(url, columns, "runs")

    for value in (RUN_ID[:8], WORKFLOW, AGENT, "failed"):
        assert value in out
    for header in ("started (UTC)", "duration", "diagnosis"):
        assert header in out
    _assert_nothing_cut(out)
    _assert_fits(out, columns)


def test_errors_shows_whole_names_types_categories_and_messages(
    url: str, columns: str | None
) -> None:
    out = _run(url, columns, "errors", RUN_ID[:8])

    for value in COMPLETE:
        assert value in out
    assert f"{AGENT} >" in out  # where the exception propagated, under the step
    assert "(ref END-7731)" in out  # the message's last words: not cut
    bound = render.OFF_TTY_TEXT_LIMIT
    assert f"…[truncated {len(HUGE_MESSAGE.strip()) - bound} chars]" in out
    _assert_nothing_cut(out)
    _assert_fits(out, columns)


def test_monitor_once_shows_whole_steps_types_and_categories(url: str, columns: str | None) -> None:
    out = _run(url, columns, "monitor", "--once", "--window", "1h")

    for value in (RUN_ID[:8], STEP, ERROR_TYPE, SOURCE_CATEGORY, "pending diagnoses"):
        assert value in out
    assert "(ref END-7731)" in out
    _assert_nothing_cut(out)
    _assert_fits(out, columns)


def test_json_output_is_the_same_whatever_the_width(url: str) -> None:
    assert _run(url, "80", "errors", RUN_ID, "--json") == _run(
        url, None, "errors", RUN_ID, "--json"
    )
