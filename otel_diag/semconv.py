"""Attribute names, in one place, and the one alias table for other conventions.

otel-diag emits the OpenTelemetry GenAI semantic conventions plus a few ``otel_diag.*``
attributes. On ingest it accepts every common convention for the same meaning: older
``gen_ai.*`` names, OpenInference (``llm.*``, ``openinference.span.kind``), OpenLLMetry
(``traceloop.*``) and litellm's cost attributes. :data:`ALIASES` lists, for each meaning,
the attribute keys that carry it, first match wins; nothing else in the code base spells
a foreign attribute name.
"""

from __future__ import annotations

import re
from typing import Final

# --- GenAI semantic conventions (current names) -------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
LLM_OPERATIONS: Final = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_EMBEDDINGS, OP_GENERATE_CONTENT})

# exception event (OTel trace semantic conventions)
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# resource attributes
SERVICE_NAME: Final = "service.name"
RESOURCE_TENANT_ID: Final = "tenant.id"

# --- otel-diag's own attributes ------------------------------------------------------------
RUN_ID: Final = "otel_diag.run.id"
RUN_NAME: Final = "otel_diag.run.name"
TENANT_ID: Final = "otel_diag.tenant.id"
STEP_NAME: Final = "otel_diag.step.name"
STEP_ATTEMPT: Final = "otel_diag.step.attempt"
ERROR_SOURCE: Final = "otel_diag.error.source"
ERROR_CATEGORY: Final = "otel_diag.error.category"
ERROR_CONTEXT_PREFIX: Final = "otel_diag.error.context."
DIAGNOSIS_MARKER: Final = "otel_diag.diagnosis"
"""Set on otel-diag's own diagnosis spans so they are never stored or diagnosed."""
# Attributes of the diagnosis span ``diagnose {run name}`` (one per stored report).
DIAGNOSIS_REPORT_ID: Final = "otel_diag.diagnosis.report_id"
DIAGNOSIS_ROOT_CAUSE: Final = "otel_diag.diagnosis.root_cause"
DIAGNOSIS_RESUME_STEP: Final = "otel_diag.diagnosis.resume_step"
DIAGNOSIS_CONFIDENCE: Final = "otel_diag.diagnosis.confidence"
DIAGNOSIS_CATEGORY: Final = "otel_diag.diagnosis.category"
DIAGNOSIS_PROVIDER: Final = "otel_diag.diagnosis.provider"
DIAGNOSIS_REUSED_FROM: Final = "otel_diag.diagnosis.reused_from"
DIAGNOSIS_FALLBACK_REASON: Final = "otel_diag.diagnosis.fallback_reason"
INPUT_VALUE: Final = "otel_diag.input"
"""Arguments of an agent or step, recorded only when content capture is on."""
OUTPUT_VALUE: Final = "otel_diag.output"
"""Result of an agent or step, recorded only when content capture is on."""

# --- the alias table -----------------------------------------------------------------------
# meaning -> attribute keys that carry it, in order of preference.
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "operation": (GEN_AI_OPERATION_NAME, "llm.request.type"),
    "provider": (
        GEN_AI_PROVIDER_NAME,
        "gen_ai.system",
        "llm.provider",
        "llm.system",
    ),
    "request_model": (
        GEN_AI_REQUEST_MODEL,
        "llm.model_name",
        "llm.request.model",
        "embedding.model_name",
    ),
    "response_model": (GEN_AI_RESPONSE_MODEL, "llm.response.model"),
    "input_tokens": (
        GEN_AI_USAGE_INPUT_TOKENS,
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
    ),
    "output_tokens": (
        GEN_AI_USAGE_OUTPUT_TOKENS,
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    "cost": (
        GEN_AI_USAGE_COST,
        "gen_ai.cost.total_cost",
        "llm.cost.total",
        "gen_ai.cost.usd",
        "gen_ai.usage.total_cost",
    ),
    "input_cost": ("gen_ai.cost.input_cost", "llm.cost.prompt", "gen_ai.usage.input_cost"),
    "output_cost": ("gen_ai.cost.output_cost", "llm.cost.completion", "gen_ai.usage.output_cost"),
    "agent_name": (GEN_AI_AGENT_NAME, "agent.name"),
    # OpenLLMetry names every workflow, task, agent and tool span with this one attribute:
    # it is an agent's name only on an agent span (see spans.record.normalize).
    "traceloop_entity": ("traceloop.entity.name",),
    "tool_name": (GEN_AI_TOOL_NAME, "tool.name"),
    "step_name": (STEP_NAME,),
    "attempt": (STEP_ATTEMPT, "retry.attempt", "http.request.resend_count"),
    "run_id": (RUN_ID, "session.id", "traceloop.association.properties.run_id"),
    "tenant_id": (TENANT_ID, RESOURCE_TENANT_ID),
    "error_source": (ERROR_SOURCE,),
    "error_category": (ERROR_CATEGORY,),
    "error_type": (ERROR_TYPE,),
    "openinference_kind": ("openinference.span.kind",),
    "traceloop_kind": ("traceloop.span.kind",),
}

# Span-kind vocabularies of other conventions -> our step kinds.
OPENINFERENCE_KINDS: Final[dict[str, str]] = {
    "LLM": "llm",
    "EMBEDDING": "llm",
    "TOOL": "tool",
    "AGENT": "agent",
    "CHAIN": "activity",
    "RETRIEVER": "tool",
    "RERANKER": "tool",
}
# A workflow span is the run itself (the ``runs`` row), not one of its steps.
TRACELOOP_KINDS: Final[dict[str, str]] = {
    "task": "activity",
    "agent": "agent",
    "tool": "tool",
}
OPERATION_KINDS: Final[dict[str, str]] = {
    OP_CHAT: "llm",
    OP_TEXT_COMPLETION: "llm",
    OP_EMBEDDINGS: "llm",
    OP_GENERATE_CONTENT: "llm",
    OP_INVOKE_AGENT: "agent",
    OP_CREATE_AGENT: "agent",
    OP_EXECUTE_TOOL: "tool",
}

# Span names some instrumentations give every LLM call: the library and the operation
# (OpenLLMetry's ``openai.chat``, ``openai.embeddings``, ``anthropic.chat``), not what the
# call was. Such a step reads as the GenAI convention's span name, ``{operation} {model}``.
LIBRARY_SPAN_NAME: Final = re.compile(r"[A-Za-z][\w-]*(?:\.[\w-]+)+")

# litellm's provider names -> the GenAI conventions' gen_ai.provider.name values (the one
# table both ways: the litellm instrumentation names providers with it, the price lookup
# reads it backwards to find a model in litellm's price map).
LITELLM_PROVIDERS: Final[dict[str, str]] = {
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}
GENAI_PROVIDER_PREFIXES: Final[dict[str, str]] = {
    **{genai: litellm for litellm, genai in reversed(list(LITELLM_PROVIDERS.items()))},
    "gcp.gen_ai": "gemini",
}
"""gen_ai.provider.name -> litellm's provider prefix (the first litellm name wins)."""

STEP_KINDS: Final = ("agent", "tool", "llm", "activity")
ERROR_SOURCES: Final = ("llm", "tool", "validation", "storage", "activity", "api")
