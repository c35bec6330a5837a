"""SQLite writers of one process queue for the write lock, within the busy timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from otel_diag.config import load_settings
from otel_diag.store.sql.engine import TenantDBManager
from otel_diag.store.sql.failures import is_transient
from otel_diag.store.sql.transactions import write_transaction


def _engine(tmp_path: Path, timeout: float) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    manager = TenantDBManager(url, load_settings(database_url=url, db_timeout=timeout))
    yield manager.get_engine()
    manager.dispose()


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[Engine]:
    yield from _engine(tmp_path, 10.0)


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[Engine]:
    yield from _engine(tmp_path, 0.2)


def _hold(engine: Engine, holding: threading.Event, release: threading.Event) -> None:
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO trace_runs (id, run_id) VALUES ('a', 'b')")
        holding.set()
        release.wait(10)


def test_a_writer_waits_its_turn_and_writes_once_the_holder_commits(patient: Engine) -> None:
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(patient, holding, release))
    holder.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()

    with write_transaction(patient) as conn:  # queued behind the holder, then in
        conn.exec_driver_sql("INSERT INTO trace_runs (id, run_id) VALUES ('c', 'd')")
    holder.join(10)

    with patient.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id FROM trace_runs ORDER BY id").scalars().all()
    assert rows == ["a", "c"]


def test_a_writer_held_past_the_busy_timeout_gets_a_retryable_locked_error(
    impatient: Engine,
) -> None:
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(impatient, holding, release))
    holder.start()
    assert holding.wait(10)
    try:
        with (
            pytest.raises(Exception, match="database is locked") as caught,
            write_transaction(impatient),
        ):
            pass
        assert is_transient(caught.value)
    finally:
        release.set()
        holder.join(10)
