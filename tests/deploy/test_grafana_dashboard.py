"""The Grafana dashboard's SQL runs against otel-diag's real PostgreSQL schema.

Grafana (and Tempo) are AGPL and cannot be had here, so the dashboard is checked as far as
its file allows: every panel's query, with Grafana's two time macros expanded the way its
PostgreSQL data source expands them, is planned and executed by PostgreSQL on a database
migrated by otel-diag. A renamed column or table, or a type error, fails here, not on a
user's screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from otel_diag.config import load_settings
from otel_diag.store.sql.engine import TenantDBManager

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/otel-diag.json"


def expand_grafana_macros(sql: str) -> str:
    """``$__timeFilter(col)`` and ``$__timeGroupAlias(col, 'Nu')`` as Grafana writes them."""
    sql = re.sub(
        r"\$__timeFilter\(([\w.]+)\)",
        r"\1 BETWEEN now() - interval '6 hours' AND now()",
        sql,
    )
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def group(match: re.Match[str]) -> str:
        column, amount, unit = match.group(1), int(match.group(2)), match.group(3)
        seconds = amount * units[unit]
        return f'floor(extract(epoch from {column})/{seconds})*{seconds} AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\(([\w.]+),\s*'(\d+)([smhd])'\)", group, sql)
    assert "$__" not in sql, f"a Grafana macro this test does not expand: {sql}"
    return sql


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]


def test_every_dashboard_panel_query_runs_on_otel_diags_postgresql_schema(
    make_pg_database: Callable[[], str],
) -> None:
    url = make_pg_database()
    manager = TenantDBManager(url, load_settings(database_url=url))
    failures = []
    assert panel_queries(), "the dashboard has no queries"
    try:
        engine = manager.get_engine("default")
        for title, sql in panel_queries():
            with engine.connect() as conn:
                try:
                    conn.execute(text(expand_grafana_macros(sql))).fetchall()
                except DBAPIError as exc:
                    failures.append(f"{title}: {exc.orig}")
    finally:
        manager.dispose()
    assert not failures, "\n".join(failures)
