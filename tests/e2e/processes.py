"""Child processes on loopback for the end-to-end tests: free ports, start, wait, stop.

Each process writes its output to a log file in the test's directory; :func:`wait_until`
polls a condition with a deadline (never a fixed sleep) and, when the deadline passes,
fails with what it was waiting for and the tail of the logs that explain why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    """A started child process with its log file."""

    name: str
    argv: Sequence[str]
    log: Path
    env: Mapping[str, str]
    popen: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        out.write(f"\n--- start: {' '.join(self.argv)}\n".encode())
        out.flush()
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(self.env),
            start_new_session=True,  # Ctrl-C in `make stack` reaches only the launcher
        )
        out.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait; escalate to SIGKILL after ``timeout``. Returns the exit code."""
        if self.alive:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return int(self.popen.returncode)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    procs: Iterable[Proc] = (),
    interval: float = 0.2,
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds.

    A process in ``procs`` that dies meanwhile fails the wait at once. The failure message
    names ``what`` and ends with each process's log tail.
    """
    procs = list(procs)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # e.g. connection refused while a server starts
            last_error = exc
        dead = [p for p in procs if not p.alive]
        if dead or time.monotonic() > deadline:
            reason = (
                f"{', '.join(p.name for p in dead)} exited" if dead else f"{timeout:.0f} s passed"
            )
            logs = "\n".join(f"--- {p.name} ({p.log}):\n{p.tail()}" for p in procs)
            raise AssertionError(
                f"waiting for {what}: {reason}"
                + (f" (last error: {last_error!r})" if last_error else "")
                + (f"\n{logs}" if logs else "")
            )
        time.sleep(interval)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: this one, minus otel-diag/OTel settings, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_DIAG_", "OTEL_EXPORTER_"))
    }
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def stop_all(procs: Iterable[Proc]) -> None:
    for proc in reversed(list(procs)):
        proc.stop()
