"""Streamed litellm responses: the call's span ends when the stream does.

``completion(stream=True)`` returns a ``CustomStreamWrapper`` at once; the answer, its
finish reason and its usage arrive chunk by chunk. :class:`TracedStream` is a transparent
proxy (``wrapt.ObjectProxy``, so ``isinstance`` checks and every attribute still work) that
watches the chunks go by and ends the span when the stream is exhausted, fails, is closed,
or is dropped unfinished. Sync and async iteration are both supported.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry.trace import Span

from otel_diag import semconv as sc
from otel_diag.instrumentation import tracing
from otel_diag.instrumentation.attempts import tracker
from otel_diag.instrumentation.content import CONTENT_CHARS
from otel_diag.redact import safe_text

if TYPE_CHECKING:
    from otel_diag.instrumentation.litellm_calls import LLMCall


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A litellm stream whose span ends with it."""

    def __init__(self, wrapped: Any, call: LLMCall, span: Span) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_span: Span | None = span
        self._self_model: str | None = None
        self._self_id: str | None = None
        self._self_reasons: list[str] = []
        self._self_usage: Any = None
        self._self_text: list[str] = []
        self._self_text_len = 0

    # --- sync ------------------------------------------------------------------------------
    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        self._self_observe(chunk)
        return chunk

    def close(self) -> None:
        """Stop early: the span ends now, with what was received so far."""
        self._self_end(None)
        close = getattr(self.__wrapped__, "close", None)
        if callable(close):
            close()

    # --- async -----------------------------------------------------------------------------
    def __aiter__(self) -> TracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        self._self_observe(chunk)
        return chunk

    async def aclose(self) -> None:
        self._self_end(None)
        aclose = getattr(self.__wrapped__, "aclose", None)
        if callable(aclose):
            await aclose()

    def __del__(self) -> None:
        if self._self_span is not None:
            self._self_end(None)

    # --- bookkeeping -----------------------------------------------------------------------
    def _self_observe(self, chunk: Any) -> None:
        try:
            if self._self_model is None and getattr(chunk, "model", None):
                self._self_model = str(chunk.model)
            if self._self_id is None and isinstance(getattr(chunk, "id", None), str):
                self._self_id = chunk.id
            for choice in getattr(chunk, "choices", None) or ():
                reason = getattr(choice, "finish_reason", None)
                if reason and str(reason) not in self._self_reasons:
                    self._self_reasons.append(str(reason))
                if self._self_call.capture and self._self_text_len < CONTENT_CHARS:
                    delta = getattr(choice, "delta", None)
                    text = getattr(delta, "content", None)
                    if isinstance(text, str) and text:
                        self._self_text.append(text)
                        self._self_text_len += len(text)
            usage = getattr(chunk, "usage", None)
            if usage is None:
                hidden = getattr(chunk, "_hidden_params", None)
                usage = hidden.get("usage") if isinstance(hidden, dict) else None
            if usage is not None:
                self._self_usage = usage
        except Exception:
            tracing.internal_error("reading a stream chunk")

    def _self_final_usage(self) -> Any:
        if self._self_usage is not None:
            return self._self_usage
        litellm = sys.modules.get("litellm")
        chunks = getattr(self.__wrapped__, "chunks", None)
        if litellm is None or not chunks:
            return None
        try:  # litellm rebuilds usage from the chunks (counting tokens if it must)
            built = litellm.stream_chunk_builder(
                chunks=list(chunks), messages=getattr(self.__wrapped__, "messages", None)
            )
        except Exception:
            return None
        return getattr(built, "usage", None)

    def _self_end(self, exc: BaseException | None) -> None:
        span, self._self_span = self._self_span, None
        if span is None:
            return
        call = self._self_call
        if isinstance(exc, Exception):
            call.fail_span(span, exc)
            return
        try:
            attributes: dict[str, Any] = {}
            if self._self_model:
                attributes[sc.GEN_AI_RESPONSE_MODEL] = self._self_model
            if self._self_id:
                attributes[sc.GEN_AI_RESPONSE_ID] = self._self_id
            if self._self_reasons:
                attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(self._self_reasons)
            usage = self._self_final_usage()
            input_tokens = getattr(usage, "prompt_tokens", None)
            output_tokens = getattr(usage, "completion_tokens", None)
            if isinstance(input_tokens, int):
                attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
            if isinstance(output_tokens, int):
                attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
            if isinstance(input_tokens, int) or isinstance(output_tokens, int):
                cost = call.stream_cost(self._self_model, input_tokens or 0, output_tokens or 0)
                if cost is not None:
                    attributes[sc.GEN_AI_USAGE_COST] = cost
            if call.capture:
                attributes[sc.GEN_AI_OUTPUT_MESSAGES] = output_messages_text(
                    "".join(self._self_text), self._self_reasons
                )
            span.set_attributes(attributes)
            tracker.succeeded(call.parent_id, call.key)
        except Exception:
            tracing.internal_error("finishing an LLM stream")
        finally:
            span.end()


def output_messages_text(text: str, finish_reasons: list[str]) -> str:
    """The streamed answer in the shape of ``gen_ai.output.messages``."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if finish_reasons:
        message["finish_reason"] = finish_reasons[0]
    return safe_text(json.dumps([message], ensure_ascii=False), CONTENT_CHARS)


def wrap_stream(stream: Any, call: LLMCall, span: Span) -> Any:
    """``stream`` wrapped so that ``span`` ends with it."""
    return TracedStream(stream, call, span)
