"""Slow uploaders, as an attacker with a valid key runs them: for fairness tests and benches.

An HTTP upload that announces a large body and then sends one byte every few seconds, and
a gRPC call that opens its stream and never sends its message. Each runs in a thread until
the server answers or cuts it, or until :meth:`SlowUploads.stop`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import grpc

from tests.receiver.harness import EXPORT


class SlowUploads:
    """``count`` slow HTTP uploads and ``count`` stalled gRPC calls with ``key``."""

    def __init__(
        self, host: str, http_port: int, grpc_port: int, key: str, count: int = 16
    ) -> None:
        self.host, self.http_port, self.grpc_port = host, http_port, grpc_port
        self.key = key
        self.count = count
        self.http_answers: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SlowUploads:
        for _ in range(self.count):
            for target in (self._http, self._grpc):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def _http(self) -> None:
        head = (
            f"POST /v1/traces HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Type: application/x-protobuf\r\n"
            "Content-Length: 1000000\r\n\r\n"
        ).encode()
        with socket.create_connection((self.host, self.http_port), timeout=60) as sock:
            sock.sendall(head)
            sock.settimeout(0.1)
            answer = b""
            while not self._stop.is_set() and not answer:
                with contextlib.suppress(OSError):
                    sock.sendall(b"\x0a")  # one byte, then a pause
                deadline = time.monotonic() + 5
                while not self._stop.is_set() and time.monotonic() < deadline:
                    try:
                        answer = sock.recv(64)
                        break
                    except TimeoutError:
                        continue
                    except OSError:
                        answer = b"reset"
                        break
            self.http_answers.append(answer.split(b"\r\n", 1)[0].decode(errors="replace"))

    def _stalled(self) -> Iterator[bytes]:
        self._stop.wait(60)
        return
        yield b""  # pragma: no cover - a generator that never yields before stop

    def _grpc(self) -> None:
        with grpc.insecure_channel(f"{self.host}:{self.grpc_port}") as channel:
            call = channel.stream_unary(EXPORT)
            with contextlib.suppress(grpc.RpcError):
                call(
                    self._stalled(), metadata=(("authorization", f"Bearer {self.key}"),), timeout=60
                )

    @property
    def cut(self) -> bool:
        """Whether the server has answered (cut) every slow HTTP upload."""
        return len(self.http_answers) >= self.count

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
