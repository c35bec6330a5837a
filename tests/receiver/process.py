"""A real ``otel-diag serve`` in its own process, for attacks and faults a thread cannot stage.

Memory figures (peak and current RSS from ``/proc``), real signals (``kill -9``), an fd limit
of its own, and its log file: what the hardening tests and the flood benchmark need. Ports
are free ones; :meth:`ServeProcess.start` returns once ``/healthz`` answers.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (its ingest worker processes)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class ServeProcess:
    """``otel-diag serve`` as a child process, on loopback free ports."""

    def __init__(
        self,
        database_url: str,
        *,
        env: dict[str, str] | None = None,
        args: Sequence[str] = ("--no-background",),
        nofile: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.database_url = database_url
        self.log_level = log_level
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="otel-diag-serve-home-"))
        self.log_path = self.home / "serve.log"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_DIAG_")},
            "OTEL_DIAG_HOME": str(self.home),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            **(env or {}),
        }
        self._args = list(args)
        self._nofile = nofile
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _limits(self) -> None:
        if self._nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self._nofile, self._nofile))

    def start(self, timeout: float = 60.0) -> ServeProcess:
        cmd = [str(Path(sys.executable).with_name("otel-diag")), "serve", *self._args]
        cmd += ["--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port)]
        cmd += ["--database-url", self.database_url, "--log-level", self.log_level]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=self._env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._limits
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.http_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"serve did not answer /healthz in {timeout}s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def peak_rss_mib(self) -> float:
        """Peak RSS (VmHWM) since start or the last :meth:`reset_peak`, in MiB."""
        return _status_kib(self.pid, "VmHWM") / 1024

    def rss_mib(self) -> float:
        return _status_kib(self.pid, "VmRSS") / 1024

    def reset_peak(self) -> None:
        """Start a new peak-RSS measurement (Linux ``clear_refs`` 5)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (SIGKILL after ``timeout``), then remove the server's home directory."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                return self.proc.returncode if self.proc else None
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
