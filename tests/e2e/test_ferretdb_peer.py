"""The FerretDB peer (MongoDB wire protocol over SQLite) builds, starts and answers ``hello``.

Only the peer itself, ahead of the ``mongodb://`` storage backend that will be tested
against it: the pinned build (FerretDB's embeddable package, which never starts its
telemetry reporter) starts with its SQLite handler on a loopback port and answers a MongoDB
``hello`` command sent as a raw OP_MSG.
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.processes import Proc, child_env, free_port, listening, wait_until
from tests.peers import peer_binary

pytestmark = pytest.mark.timeout(1800)  # a cold build of the peer runs here

OP_MSG = 2013


def _bson(*elements: bytes) -> bytes:
    body = b"".join(elements) + b"\x00"
    return struct.pack("<i", len(body) + 4) + body


def hello_op_msg(request_id: int = 1) -> bytes:
    """``{hello: 1, $db: "admin"}`` as an OP_MSG with one body section."""
    doc = _bson(
        b"\x10hello\x00" + struct.pack("<i", 1),
        b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00",
    )
    payload = struct.pack("<I", 0) + b"\x00" + doc
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, OP_MSG) + payload


def send_hello(port: int) -> bytes:
    """The reply to ``hello``, whole."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(hello_op_msg())
        head = sock.recv(16, socket.MSG_WAITALL)
        (length,) = struct.unpack("<i", head[:4])
        return head + sock.recv(length - 16, socket.MSG_WAITALL)


def test_ferretdb_help_names_the_sqlite_handler() -> None:
    binary = peer_binary("ferretdb")
    proc = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    usage = proc.stdout + proc.stderr
    assert "-sqlite-url" in usage and "-handler" in usage


def test_ferretdb_with_the_sqlite_handler_answers_hello_over_the_wire_protocol(
    tmp_path: Path, started: list[Any]
) -> None:
    binary = peer_binary("ferretdb")
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    argv = [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--listen-addr=127.0.0.1:{port}",
    ]
    proc = Proc("ferretdb", argv, tmp_path / "ferretdb.log", child_env()).start()

    started.append(SimpleNamespace(proc=proc))
    wait_until(lambda: listening(port), timeout=60, what="FerretDB's port", procs=[proc])

    reply = send_hello(port)

    (_, _, response_to, op_code) = struct.unpack("<iiii", reply[:16])
    assert (response_to, op_code) == (1, OP_MSG)
    assert b"\x01ok\x00" + struct.pack("<d", 1.0) in reply  # {ok: 1.0}
    assert b"isWritablePrimary\x00" in reply
