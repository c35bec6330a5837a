"""A loopback OpenAI-compatible HTTP server for tests: the only thing we fake is the provider.

Tests script its answers (a queue of :class:`Reply`, or one default) and read back what it
received (``server.requests``). It speaks enough of the OpenAI API for litellm's
``openai/<model>`` route with ``api_base=server.url``: chat completions (plain and SSE
streaming) and embeddings, with any status code and an optional delay (timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``content`` is the assistant message (a str, or a dict -> JSON)."""

    content: str | dict[str, Any] = "ok"
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int = 11
    completion_tokens: int = 7
    error_message: str = "scripted error"
    error_type: str = "server_error"
    error_code: str | None = None
    model: str | None = None
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; ``server.url`` is the ``/v1`` base URL."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.replies: deque[Reply] = deque()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(Received(self.path, dict(self.headers), body))
                reply = server._next()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    if reply.status != 200:
                        self._error(reply)
                    elif self.path.endswith("/embeddings"):
                        self._embeddings(body, reply)
                    elif body.get("stream"):
                        self._stream(body, reply)
                    else:
                        self._chat(body, reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def _send_json(self, status: int, payload: dict[str, Any], reply: Reply) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, reply: Reply) -> None:
                error = {"message": reply.error_message, "type": reply.error_type}
                if reply.error_code:
                    error["code"] = reply.error_code
                self._send_json(reply.status, {"error": error}, reply)

            def _content(self, reply: Reply) -> str:
                c = reply.content
                return c if isinstance(c, str) else json.dumps(c)

            def _usage(self, reply: Reply) -> dict[str, int]:
                return {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                }

            def _chat(self, body: dict[str, Any], reply: Reply) -> None:
                self._send_json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": reply.model or body.get("model", "fake-model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": self._content(reply)},
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                        "usage": self._usage(reply),
                    },
                    reply,
                )

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                model = reply.model or body.get("model", "fake-model")
                text = self._content(reply)
                pieces = [text[i : i + 4] for i in range(0, len(text), 4)] or [""]
                for i, piece in enumerate(pieces):
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": piece}
                                if i == 0
                                else {"content": piece},
                                "finish_reason": None,
                            }
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                final = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}],
                    "usage": self._usage(reply),
                }
                self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _embeddings(self, body: dict[str, Any], reply: Reply) -> None:
                inputs = body.get("input") or [""]
                if isinstance(inputs, str):
                    inputs = [inputs]
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "model": reply.model or body.get("model", "fake-embed"),
                        "data": [
                            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                            for i in range(len(inputs))
                        ],
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "total_tokens": reply.prompt_tokens,
                        },
                    },
                    reply,
                )

        return Handler
