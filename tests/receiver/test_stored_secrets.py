"""Secrets sent over OTLP reach no output: not the API, not CLI exports, not the database."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from otel_diag.cli import main
from tests.receiver.harness import Running
from tests.receiver.otlp import Span, to_protobuf
from tests.test_redact import FORMATS


def _failing_spans() -> list[Span]:
    """One run whose tool spans fail, each with one secret in its message and stack trace."""
    trace_id = os.urandom(16)
    root = Span("invoke_workflow leaky", trace_id=trace_id, attributes={"otel_diag.run.id": "leak"})
    spans = [root]
    for name, (message, _secret) in sorted(FORMATS.items()):
        spans.append(
            Span(
                f"execute_tool {name}",
                trace_id=trace_id,
                parent=root.span_id,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "exception.stacktrace": f'File "app.py", line 1\n  {message}',
                },
                error=message,
            )
        )
    return spans


def test_secrets_of_every_tried_format_are_absent_from_api_exports_and_database(
    serve: Callable[..., Running], db_url: str, tmp_path: Path
) -> None:
    srv = serve()
    srv.raw_export(to_protobuf(_failing_spans()).SerializeToString())
    run = srv.http.get("/api/runs").json()["runs"][0]
    outputs = {"api": srv.http.get(f"/api/runs/{run['id']}/errors?limit=1000").text}
    assert outputs["api"].count('"error_type"') == len(FORMATS)
    runner = CliRunner()
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"errors.{fmt}"
        args = ["export", "--format", fmt, "--output", str(out), "--database-url", db_url]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        outputs[fmt] = out.read_text()
    database = create_engine(db_url)  # every column of every stored row, read raw
    try:
        with database.connect() as conn:
            rows = conn.execute(text("SELECT * FROM error_logs")).all()
    finally:
        database.dispose()
    outputs["database"] = "\n".join(repr(tuple(row)) for row in rows)
    leaks = {
        (where, name)
        for where, body in outputs.items()
        for name, (_message, secret) in FORMATS.items()
        if secret in body
    }
    assert leaks == set()
