"""The HTTP listening socket: connections accepted from it send small writes at once."""

from __future__ import annotations

import asyncio
import socket

from otel_diag.server.serve import _listen


def test_connections_accepted_on_the_http_socket_have_tcp_nodelay() -> None:
    """asyncio sets TCP_NODELAY only when the listening socket's proto says TCP; without it a
    response written in two parts (headers, body) on a kept-alive connection waits for the
    client's delayed ACK (~40 ms a request)."""
    sock = _listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        accepted = asyncio.Event()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            seen.append(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
            accepted.set()

        server = await asyncio.start_server(on_connect, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(accepted.wait(), 10)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
