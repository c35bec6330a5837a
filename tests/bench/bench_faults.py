"""Faults and attacks a load balancer or an operator meets, measured on a real ``serve``.

* **Database re-created** (failover to a fresh, empty PostgreSQL at the same address): a
  private cluster is stopped, wiped, ``initdb``-ed and started while ``serve`` runs; the
  figure is the seconds from "the new database accepts connections" to "a span is stored",
  with a client resending every 100 ms on UNAVAILABLE (any other answer counts as lost).
* **Slow uploads** by one tenant (``SLOW_UPLOADS`` HTTP bodies at 1 byte / 5 s and as many
  gRPC calls that never send their message, repeated for ``ATTACK_S`` seconds): the figure
  is the other tenant's success rate over the same time, HTTP and gRPC in turn.
* **Redaction**: how many of the secret formats of ``tests/test_redact.py`` are redacted.

``python -m tests.bench faults`` runs it alone. Figures only; nothing asserts on time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import grpc
import httpx

from otel_diag.redact import redact
from tests.receiver.harness import EXPORT
from tests.receiver.otlp import agent_trace, to_protobuf
from tests.receiver.process import ServeProcess
from tests.receiver.slow_clients import SlowUploads
from tests.receiver.test_database_down import ThrowawayPostgres
from tests.test_redact import FORMATS

ATTACK_S = float(os.environ.get("ATTACK_S", "30"))
SLOW_UPLOADS = int(os.environ.get("SLOW_UPLOADS", "16"))
KEYS = "alpha:key-alpha-0001,beta:key-beta-0002"


def _export(target: str, body: bytes, key: str | None = None) -> str:
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(EXPORT)(body, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc.code().name  # type: ignore[attr-defined, no-any-return]
    return "OK"


def database_recreated() -> None:
    if shutil.which("initdb") is None:
        print("database re-created: skipped (no initdb on PATH)")
        return
    pg = ThrowawayPostgres()
    pg.start()
    try:
        with ServeProcess(pg.url, env={"OTEL_DIAG_DB_TIMEOUT": "1"}) as srv:
            assert (
                _export(srv.grpc_target, to_protobuf(agent_trace("before")).SerializeToString())
                == "OK"
            )
            pg.stop()
            shutil.rmtree(pg.root / "data")
            pg.init()
            pg.start()
            recreated = time.monotonic()
            body = to_protobuf(agent_trace("after")).SerializeToString()
            answers: list[str] = []
            while time.monotonic() - recreated < 60:
                answers.append(_export(srv.grpc_target, body))
                if answers[-1] != "UNAVAILABLE":
                    break
                time.sleep(0.1)
            seconds = time.monotonic() - recreated
            ready = httpx.get(f"{srv.http_url}/readyz").status_code
    finally:
        pg.destroy()
    refused = sum(a == "UNAVAILABLE" for a in answers)
    outcome = "stored" if answers[-1] == "OK" else f"lost ({answers[-1]})"
    print(
        f"database re-created (fresh PostgreSQL, same address): span {outcome} "
        f"{seconds:.1f}s after the new database accepted connections, after {refused} "
        f"UNAVAILABLE answers; /readyz then {ready}",
        flush=True,
    )


def slow_upload_attack() -> None:
    scratch = tempfile.mkdtemp(prefix="otel-diag-bench-")
    url = f"sqlite:///{scratch}/slow.db"
    with ServeProcess(url, env={"OTEL_DIAG_API_KEYS": KEYS}) as srv:
        ok = tried = 0
        started = time.monotonic()
        attacks: list[SlowUploads] = []
        while time.monotonic() - started < ATTACK_S:
            if not attacks or attacks[-1].cut:  # the attacker comes back at once
                attack = SlowUploads(
                    "127.0.0.1", srv.http_port, srv.grpc_port, "key-alpha-0001", SLOW_UPLOADS
                )
                attacks.append(attack.start())
            body = to_protobuf(agent_trace(f"beta-{tried}")).SerializeToString()
            if tried % 2:
                ok += _export(srv.grpc_target, body, "key-beta-0002") == "OK"
            else:
                headers = {"content-type": "application/x-protobuf"}
                headers["authorization"] = "Bearer key-beta-0002"
                reply = httpx.post(f"{srv.http_url}/v1/traces", content=body, headers=headers)
                ok += reply.status_code == 200
            tried += 1
        for attack in attacks:
            attack.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"slow uploads ({SLOW_UPLOADS} HTTP at 1 byte/5 s + {SLOW_UPLOADS} stalled gRPC calls "
        f"by tenant alpha, renewed for {ATTACK_S:.0f}s): tenant beta stored {ok}/{tried} "
        f"exports ({ok / max(1, tried):.0%})",
        flush=True,
    )


def redaction() -> None:
    caught = sorted(name for name, (text, secret) in FORMATS.items() if secret not in redact(text))
    print(
        f"redaction: {len(caught)} of {len(FORMATS)} secret formats tried are redacted", flush=True
    )


def main() -> None:
    redaction()
    database_recreated()
    slow_upload_attack()


if __name__ == "__main__":
    main()
