"""Connections: idle ones are closed, their number is capped, and the open-file limit is quiet."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx

from tests.receiver.otlp import agent_trace, to_protobuf
from tests.receiver.process import ServeProcess


def _closed_by_server(sock: socket.socket, trickle: bytes = b"", deadline_s: float = 15) -> bool:
    """Whether the server closes ``sock`` (sending ``trickle`` a byte at a time meanwhile)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + deadline_s
    sent = 0
    while time.monotonic() < deadline:
        if sent < len(trickle):
            with contextlib.suppress(OSError):
                sock.sendall(trickle[sent : sent + 1])
            sent += 1
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_silent_idle_and_slowly_talking_connections_are_closed_on_both_ports(
    tmp_path: Path,
) -> None:
    env = {"OTEL_DIAG_IDLE_TIMEOUT": "1"}
    with ServeProcess(f"sqlite:///{tmp_path / 'idle.db'}", env=env) as srv:
        slow_head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" + b"X-Padding: " + b"a" * 200
        cases = {
            "http silent": (srv.http_port, b""),
            "http head trickled a byte at a time": (srv.http_port, slow_head),
            "grpc silent (no HTTP/2 preface)": (srv.grpc_port, b""),
        }
        still_open = []
        for name, (port, trickle) in cases.items():
            with socket.create_connection(("127.0.0.1", port)) as sock:
                if not _closed_by_server(sock, trickle):
                    still_open.append(name)
        assert still_open == []
        assert httpx.get(f"{srv.http_url}/healthz").status_code == 200


def test_a_connection_flood_at_the_open_file_limit_neither_spins_nor_floods_the_log(
    tmp_path: Path,
) -> None:
    """Old behaviour: 81k log lines and a busy core in 6 s at the fd limit."""
    with ServeProcess(f"sqlite:///{tmp_path / 'fds.db'}", nofile=256) as srv:
        held: list[socket.socket] = []
        try:
            for port in (srv.http_port, srv.grpc_port):
                for _ in range(200):
                    sock = socket.socket()
                    sock.settimeout(2)
                    try:
                        sock.connect(("127.0.0.1", port))
                    except OSError:
                        sock.close()
                        continue
                    held.append(sock)
            time.sleep(2)  # the server faces the flood for a while (no assertion on time)
            log = srv.log()
        finally:
            for sock in held:
                sock.close()
        noisy = [line for line in log.splitlines() if "open files" in line or "accept" in line]
        assert len(noisy) <= 10, f"{len(noisy)} lines, e.g. {noisy[:3]}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{srv.http_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = to_protobuf(agent_trace("after-the-flood")).SerializeToString()
        reply = httpx.post(
            f"{srv.http_url}/v1/traces",
            content=body,
            headers={"content-type": "application/x-protobuf"},
            timeout=30,
        )
        assert reply.status_code == 200
