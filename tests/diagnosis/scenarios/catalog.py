"""The labelled quality set: failing agent runs and what truly went wrong in each.

Each label states the TRUE cause, its category (the vocabulary of
``otel_diag.classify.CATEGORIES``) and the step a person would resume the run
from once the cause is fixed. Labels describe the scenario, as an engineer reading the
trace would; they were written from the scenario, not from what the code answers.

Resume-step conventions used by the labels:
- a failed LLM or tool call inside a declared step (``step()``) resumes with that step;
  outside one, with the call itself;
- bad LLM output (unparseable, failing validation) or bad tool arguments resume with the
  LLM call (or its declared step) that produced them, since re-running the consumer with
  the same input fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.diagnosis.scenarios.spans import Err, Node, agent, llm, step, tool, workflow


@dataclass(frozen=True)
class Label:
    cause: str
    category: str
    resume_step: str | None


@dataclass(frozen=True)
class Scenario:
    name: str
    root: Node
    label: Label


RATE_LIMIT = Err(
    "litellm.exceptions.RateLimitError",
    "litellm.RateLimitError: OpenAIException - Rate limit reached for gpt-4o-mini in "
    "organization org-abc on tokens per min (TPM): Limit 200000, Used 199000, "
    "Requested 4100. Please try again in 1.2s.",
)
FLIGHTS_DOWN = Err(
    "ConnectionError", "flight search API unreachable: connect to flights.internal:443 refused"
)
STT_TIMEOUT = Err("TimeoutError", "speech_to_text deadline exceeded after 30s")

SCENARIOS: list[Scenario] = [
    Scenario(
        "llm_rate_limit_retries_exhausted",
        workflow(
            "research-assistant",
            [
                agent(
                    "researcher",
                    [
                        tool("web_search"),
                        step("plan", [llm(fail=RATE_LIMIT)], attempt=1, handled=True),
                        step("plan", [llm(fail=RATE_LIMIT)], attempt=2, handled=True),
                        step("plan", [llm(fail=RATE_LIMIT)], attempt=3),
                    ],
                )
            ],
        ),
        Label("TPM rate limit of gpt-4o-mini hit on all 3 attempts of plan", "rate_limit", "plan"),
    ),
    Scenario(
        "llm_timeout",
        workflow(
            "summarizer",
            [
                agent(
                    "summarizer",
                    [
                        tool("fetch_document"),
                        step(
                            "summarize",
                            [
                                llm(
                                    "gpt-4o",
                                    fail=Err(
                                        "litellm.exceptions.Timeout",
                                        "litellm.Timeout: APITimeoutError - Request timed out. "
                                        "Error_str: Request timed out after 60.0 seconds",
                                    ),
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("the gpt-4o call of summarize exceeded its 60 s timeout", "timeout", "summarize"),
    ),
    Scenario(
        "llm_bad_api_key",
        workflow(
            "support-bot",
            [
                agent(
                    "triage",
                    [
                        llm(
                            "gpt-4o",
                            fail=Err(
                                "litellm.exceptions.AuthenticationError",
                                "litellm.AuthenticationError: OpenAIException - Incorrect API key "
                                "provided: sk-proj-****abcd. You can find your API key at "
                                "https://platform.openai.com/account/api-keys.",
                            ),
                        )
                    ],
                )
            ],
        ),
        Label("the OpenAI API key is wrong", "auth", "chat gpt-4o"),
    ),
    Scenario(
        "llm_context_window_as_bad_request",
        workflow(
            "doc-qa",
            [
                agent(
                    "qa",
                    [
                        tool("retrieve_chunks"),
                        step(
                            "answer",
                            [
                                llm(
                                    fail=Err(
                                        "openai.BadRequestError",
                                        "Error code: 400 - This model's maximum context length is "
                                        "128000 tokens. However, your messages resulted in 131072 "
                                        "tokens. Please reduce the length of the messages.",
                                    )
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("retrieved chunks overflowed the 128k context", "context_length", "answer"),
    ),
    Scenario(
        "llm_invalid_parameter",
        workflow(
            "copywriter",
            [
                agent(
                    "writer",
                    [
                        step(
                            "draft",
                            [
                                llm(
                                    fail=Err(
                                        "litellm.exceptions.BadRequestError",
                                        "litellm.BadRequestError: OpenAIException - Invalid value "
                                        "for 'temperature': expected a value <= 2, but got 3.5.",
                                    )
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("draft sends temperature=3.5, out of range", "invalid_request", "draft"),
    ),
    Scenario(
        "tool_bug_key_error",
        workflow(
            "weather-agent",
            [
                agent(
                    "forecaster",
                    [llm(), tool("lookup_weather", fail=Err("KeyError", "forecast"))],
                )
            ],
        ),
        Label("lookup_weather reads a missing 'forecast' key", "tool_error", "lookup_weather"),
    ),
    Scenario(
        "tool_arguments_missing_field",
        workflow(
            "travel-booker",
            [
                agent(
                    "booker",
                    [
                        llm(),
                        tool(
                            "book_hotel",
                            fail=Err(
                                "pydantic_core._pydantic_core.ValidationError",
                                "1 validation error for BookHotelArgs\ncheck_in\n  Field "
                                "required [type=missing, input_value={'city': 'Lisbon', "
                                "'nights': 3}, input_type=dict]",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("the LLM called book_hotel without check_in", "validation", "chat gpt-4o-mini"),
    ),
    Scenario(
        "tool_arguments_type_error",
        workflow(
            "crm-assistant",
            [
                agent(
                    "crm",
                    [
                        step("decide", [llm("gpt-4o")]),
                        step(
                            "update",
                            [
                                tool(
                                    "update_contact",
                                    fail=Err(
                                        "TypeError",
                                        "update_contact() missing 1 required positional "
                                        "argument: 'contact_id'",
                                    ),
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("decide's LLM call omitted contact_id", "validation", "decide"),
    ),
    Scenario(
        "llm_output_not_json",
        workflow(
            "planner",
            [
                agent(
                    "planner",
                    [
                        step("plan", [llm()]),
                        step(
                            "parse_plan",
                            fail=Err("json.JSONDecodeError", "Sure! Here is the plan: 1. ..."),
                        ),
                    ],
                )
            ],
        ),
        Label("plan's LLM answered prose instead of JSON", "output_parse", "plan"),
    ),
    Scenario(
        "llm_output_fails_schema",
        workflow(
            "invoice-extractor",
            [
                agent(
                    "extractor",
                    [
                        step("extract", [llm()]),
                        step(
                            "validate_invoice",
                            fail=Err(
                                "pydantic_core._pydantic_core.ValidationError",
                                "2 validation errors for Invoice\ntotal\n  Input should be a "
                                "valid number, unable to parse string as a number "
                                "[type=float_parsing, input_value='twelve hundred', "
                                "input_type=str]\ndue_date\n  Field required [type=missing]",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("extract's LLM output does not match Invoice", "output_parse", "extract"),
    ),
    Scenario(
        "database_locked",
        workflow(
            "report-builder",
            [
                agent(
                    "analyst",
                    [
                        llm(),
                        tool("run_query"),
                        step(
                            "save_results",
                            fail=Err(
                                "sqlalchemy.exc.OperationalError",
                                "(sqlite3.OperationalError) database is locked\n[SQL: INSERT "
                                "INTO results (id, body) VALUES (?, ?)]",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("the results database was locked", "storage", "save_results"),
    ),
    Scenario(
        "database_duplicate_key",
        workflow(
            "order-agent",
            [
                agent(
                    "orders",
                    [
                        llm(),
                        tool(
                            "insert_order",
                            fail=Err(
                                "sqlalchemy.exc.IntegrityError",
                                "(psycopg.errors.UniqueViolation) duplicate key value violates "
                                'unique constraint "orders_pkey"\nDETAIL:  Key (id)=(1042) '
                                "already exists.",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("insert_order re-inserts an existing order id", "storage", "insert_order"),
    ),
    Scenario(
        "dependency_down_retries_exhausted",
        workflow(
            "trip-planner",
            [
                agent(
                    "planner",
                    [
                        llm(),
                        tool("search_flights", attempt=1, fail=FLIGHTS_DOWN, handled=True),
                        tool("search_flights", attempt=2, fail=FLIGHTS_DOWN, handled=True),
                        tool("search_flights", attempt=3, fail=FLIGHTS_DOWN),
                    ],
                )
            ],
        ),
        Label("the flight search API is down (3 attempts)", "dependency", "search_flights"),
    ),
    Scenario(
        "provider_overloaded",
        workflow(
            "ticket-router",
            [
                agent(
                    "router",
                    [
                        step(
                            "classify_ticket",
                            [
                                llm(
                                    "claude-3-5-sonnet",
                                    provider="anthropic",
                                    fail=Err(
                                        "litellm.exceptions.ServiceUnavailableError",
                                        "litellm.ServiceUnavailableError: AnthropicException - "
                                        "Overloaded. Received Model Group=claude-3-5-sonnet",
                                    ),
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("Anthropic was overloaded (503)", "dependency", "classify_ticket"),
    ),
    Scenario(
        "tool_http_read_timeout",
        workflow(
            "web-researcher",
            [
                agent(
                    "browser",
                    [
                        llm(),
                        tool(
                            "fetch_page",
                            fail=Err("httpx.ReadTimeout", "The read operation timed out"),
                        ),
                    ],
                )
            ],
        ),
        Label("the fetched site did not answer in time", "timeout", "fetch_page"),
    ),
    Scenario(
        "tool_permission_denied",
        workflow(
            "file-analyst",
            [
                agent(
                    "analyst",
                    [
                        llm(),
                        tool(
                            "read_file",
                            fail=Err(
                                "PermissionError",
                                "[Errno 13] Permission denied: '/data/reports/q3.csv'",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("the agent's user may not read q3.csv", "auth", "read_file"),
    ),
    Scenario(
        "llm_quota_exhausted",
        workflow(
            "newsletter",
            [
                agent(
                    "editor",
                    [
                        step(
                            "write_intro",
                            [
                                llm(
                                    "gpt-4o",
                                    fail=Err(
                                        "litellm.exceptions.RateLimitError",
                                        "litellm.RateLimitError: OpenAIException - You exceeded "
                                        "your current quota, please check your plan and billing "
                                        "details.",
                                    ),
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("the OpenAI account is out of quota", "rate_limit", "write_intro"),
    ),
    Scenario(
        "recovered_search_then_context_overflow",
        workflow(
            "doc-chat",
            [
                agent(
                    "chat",
                    [
                        tool(
                            "search_docs",
                            attempt=1,
                            fail=Err("ConnectionError", "search backend connection reset"),
                            handled=True,
                        ),
                        tool("search_docs", attempt=2),
                        step(
                            "answer",
                            [
                                llm(
                                    fail=Err(
                                        "litellm.exceptions.ContextWindowExceededError",
                                        "litellm.ContextWindowExceededError: This model's maximum "
                                        "context length is 128000 tokens; your messages resulted "
                                        "in 140211 tokens",
                                    )
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("answer's prompt overflowed (search recovered)", "context_length", "answer"),
    ),
    Scenario(
        "agent_wraps_unreachable_geocoder",
        workflow(
            "geo-agent",
            [
                agent(
                    "planner",
                    [
                        llm(),
                        tool(
                            "geocode",
                            fail=Err(
                                "ConnectionRefusedError",
                                "[Errno 111] Connection refused: geocoder.internal:8080",
                            ),
                        ),
                    ],
                    wrap=Err("RuntimeError", "planner failed: could not resolve the destination"),
                )
            ],
        ),
        Label("the geocoder service refused connections", "dependency", "geocode"),
    ),
    Scenario(
        "activity_division_by_zero",
        workflow(
            "aggregator",
            [
                agent(
                    "aggregator",
                    [
                        tool("fetch_prices"),
                        tool("fetch_volumes"),
                        step("merge_results", fail=Err("ZeroDivisionError", "division by zero")),
                    ],
                )
            ],
        ),
        Label("merge_results divides by an empty volume", "internal", "merge_results"),
    ),
    Scenario(
        "speech_timeout_retries_exhausted",
        workflow(
            "transcriber",
            [
                agent(
                    "transcriber",
                    [
                        step(
                            "transcribe",
                            [tool("speech_to_text", fail=STT_TIMEOUT)],
                            attempt=attempt,
                            handled=attempt < 3,
                        )
                        for attempt in (1, 2, 3)
                    ],
                )
            ],
        ),
        Label("speech_to_text timed out on all 3 attempts", "timeout", "transcribe"),
    ),
    Scenario(
        "llm_output_not_json_every_attempt",
        workflow(
            "planner-with-retries",
            [
                agent(
                    "planner",
                    [
                        node
                        for attempt in (1, 2, 3)
                        for node in (
                            step("plan", [llm()], attempt=attempt),
                            step(
                                "parse_plan",
                                attempt=attempt,
                                handled=attempt < 3,
                                fail=Err("json.JSONDecodeError", "Here you go: {plan: [...]}"),
                            ),
                        )
                    ],
                )
            ],
        ),
        Label("plan's LLM never answered valid JSON (3 tries)", "output_parse", "plan"),
    ),
    # Harder cases, where the cause is not what the exception type says.
    Scenario(
        "llm_called_unknown_tool",
        workflow(
            "assistant",
            [
                agent(
                    "assistant",
                    [step("think", [llm()])],
                    fail=Err(
                        "ValueError",
                        "Tool 'get_wether' is not in the tool registry "
                        "(available: get_weather, get_time)",
                    ),
                )
            ],
        ),
        Label("think's LLM asked for a tool that does not exist", "validation", "think"),
    ),
    Scenario(
        "database_password_rejected",
        workflow(
            "reporter",
            [
                agent(
                    "reporter",
                    [
                        llm(),
                        step(
                            "save_report",
                            fail=Err(
                                "sqlalchemy.exc.OperationalError",
                                "(psycopg.OperationalError) connection failed: FATAL:  password "
                                'authentication failed for user "agent"',
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("the database password of the agent is wrong", "auth", "save_report"),
    ),
]

# Modelled on published agent-failure taxonomies: MAST (Cemri et al. 2025: specification,
# inter-agent and verification failures), TRAIL (Deshpande et al. 2025: reasoning, planning
# and system execution errors in traces) and Who&When (Zhang et al. 2025: which agent, which
# step). Each kind the issue names has at least one case; some are hard for rules on
# purpose (the cause is not what the exception type says), so the measured accuracy, and
# the confidence the rules state, stay honest.
ORDER_TOOLS = "(available: get_order, refund_order)"
PARSE_PLAN = Err("json.JSONDecodeError", "Here is the plan you asked for:")

SCENARIOS += [
    # --- loops / recursion limits (MAST: step repetition, unaware of termination) ---------
    Scenario(
        "agent_recursion_limit",
        workflow(
            "deep-research",
            [
                agent(
                    "researcher",
                    [node for _ in range(4) for node in (llm(), tool("web_search"))],
                    fail=Err(
                        "langgraph.errors.GraphRecursionError",
                        "Recursion limit of 25 reached without hitting a stop condition. You "
                        "can increase the limit by setting the `recursion_limit` config key.",
                    ),
                )
            ],
        ),
        Label("the researcher loops search -> think without a stop condition", "internal", None),
    ),
    Scenario(
        "agent_max_iterations",
        workflow(
            "support-agent",
            [
                agent(
                    "support",
                    [node for _ in range(3) for node in (llm(), tool("lookup_faq"))],
                    fail=Err("ValueError", "Agent stopped due to iteration limit or time limit."),
                )
            ],
        ),
        Label("the agent repeats the same FAQ lookup until its iteration cap", "internal", None),
    ),
    # --- hallucinated tools (TRAIL: tool selection; MAST: disobey task specification) -----
    Scenario(
        "hallucinated_tool_in_agent_sdk",
        workflow(
            "order-desk",
            [
                agent(
                    "desk",
                    [step("decide", [llm()])],
                    fail=Err(
                        "agents.exceptions.ModelBehaviorError",
                        f"Tool cancel_order not found in agent desk {ORDER_TOOLS}",
                    ),
                )
            ],
        ),
        Label("decide's LLM called cancel_order, which does not exist", "validation", "decide"),
    ),
    # --- tool misuse (TRAIL: incorrect tool arguments) -----------------------------------
    Scenario(
        "tool_argument_wrong_type",
        workflow(
            "fx-assistant",
            [
                agent(
                    "fx",
                    [
                        step("plan", [llm()]),
                        tool(
                            "convert_currency",
                            fail=Err(
                                "pydantic_core._pydantic_core.ValidationError",
                                "1 validation error for ConvertArgs\namount\n  Input should be a "
                                "valid number, unable to parse string as a number "
                                "[type=float_parsing, input_value='fifty', input_type=str]",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("plan's LLM passed amount='fifty'", "validation", "plan"),
    ),
    Scenario(
        "llm_wrote_invalid_sql",
        workflow(
            "analytics-agent",
            [
                agent(
                    "analyst",
                    [
                        step("write_query", [llm("gpt-4o")]),
                        tool(
                            "run_sql",
                            fail=Err(
                                "sqlite3.OperationalError",
                                'near "SELEC": syntax error',
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("write_query's LLM produced SQL that does not parse", "validation", "write_query"),
    ),
    # --- structured-output parse failures (TRAIL: formatting errors) ----------------------
    Scenario(
        "output_parser_exception",
        workflow(
            "extractor",
            [
                agent(
                    "extractor",
                    [
                        step("extract", [llm()]),
                        step(
                            "parse_fields",
                            fail=Err(
                                "langchain_core.exceptions.OutputParserException",
                                "Could not parse LLM output: `I think the total is about 42`",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("extract's LLM answered prose, not the fields", "output_parse", "extract"),
    ),
    Scenario(
        "output_truncated_json",
        workflow(
            "report-writer",
            [
                agent(
                    "writer",
                    [
                        step("summarize", [llm(tokens=(3000, 800))]),
                        step(
                            "load_summary",
                            fail=Err("json.JSONDecodeError", '{"title": "Q3", "items": ['),
                        ),
                    ],
                )
            ],
        ),
        Label("summarize's answer was cut at max_tokens mid-JSON", "output_parse", "summarize"),
    ),
    # --- context overflow ------------------------------------------------------------------
    Scenario(
        "anthropic_prompt_too_long",
        workflow(
            "code-reviewer",
            [
                agent(
                    "reviewer",
                    [
                        tool("read_diff"),
                        step(
                            "review",
                            [
                                llm(
                                    "claude-3-5-sonnet",
                                    provider="anthropic",
                                    fail=Err(
                                        "anthropic.BadRequestError",
                                        "Error code: 400 - prompt is too long: 214388 tokens > "
                                        "200000 maximum",
                                    ),
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("the whole diff was put in the prompt", "context_length", "review"),
    ),
    Scenario(
        "context_overflow_after_long_conversation",
        workflow(
            "chat-agent",
            [
                agent(
                    "chat",
                    [
                        *(
                            node
                            for _ in range(3)
                            for node in (llm(tokens=(40000, 500)), tool("recall"))
                        ),
                        llm(
                            fail=Err(
                                "litellm.exceptions.ContextWindowExceededError",
                                "litellm.ContextWindowExceededError: This model's maximum "
                                "context length is 128000 tokens; your messages resulted in "
                                "131500 tokens",
                            )
                        ),
                    ],
                )
            ],
        ),
        Label(
            "the conversation history grew past the window", "context_length", "chat gpt-4o-mini"
        ),
    ),
    # --- provider errors ---------------------------------------------------------------------
    Scenario(
        "provider_internal_server_error",
        workflow(
            "qa-bot",
            [
                agent(
                    "qa",
                    [
                        step(
                            "answer",
                            [
                                llm(
                                    fail=Err(
                                        "openai.InternalServerError",
                                        "Error code: 500 - The server had an error while "
                                        "processing your request. Sorry about that!",
                                    )
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("OpenAI answered 500", "dependency", "answer"),
    ),
    Scenario(
        "provider_overloaded_529",
        workflow(
            "triage-bot",
            [
                agent(
                    "triage",
                    [
                        step(
                            "triage",
                            [
                                llm(
                                    "claude-3-5-haiku",
                                    provider="anthropic",
                                    fail=Err(
                                        "anthropic.APIStatusError",
                                        "Error code: 529 - {'type': 'error', 'error': {'type': "
                                        "'overloaded_error', 'message': 'Overloaded'}}",
                                    ),
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("Anthropic was overloaded (529)", "dependency", "triage"),
    ),
    # --- dependency outages -------------------------------------------------------------------
    Scenario(
        "vector_store_refused",
        workflow(
            "rag-agent",
            [
                agent(
                    "rag",
                    [
                        tool(
                            "retrieve",
                            fail=Err(
                                "qdrant_client.http.exceptions.ResponseHandlingException",
                                "[Errno 111] Connection refused",
                            ),
                        )
                    ],
                )
            ],
        ),
        Label("the vector store was down", "dependency", "retrieve"),
    ),
    Scenario(
        "rates_api_503",
        workflow(
            "pricing-agent",
            [
                agent(
                    "pricing",
                    [
                        llm(),
                        step(
                            "pricing",
                            [
                                tool(
                                    "get_exchange_rates",
                                    fail=Err(
                                        "requests.exceptions.HTTPError",
                                        "503 Server Error: Service Unavailable for url: "
                                        "https://api.rates.example/v1/latest",
                                    ),
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        Label("the exchange-rate API answered 503", "dependency", "pricing"),
    ),
    # --- guardrail refusals --------------------------------------------------------------------
    Scenario(
        "provider_content_filter",
        workflow(
            "reply-drafter",
            [
                agent(
                    "drafter",
                    [
                        step(
                            "draft_reply",
                            [
                                llm(
                                    fail=Err(
                                        "litellm.exceptions.ContentPolicyViolationError",
                                        "litellm.ContentPolicyViolationError: "
                                        "litellm.BadRequestError: AzureException - The response "
                                        "was filtered due to the prompt triggering Azure "
                                        "OpenAI's content management policy.",
                                    )
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
        Label("the provider's content filter refused the prompt", "invalid_request", "draft_reply"),
    ),
    Scenario(
        "output_guardrail_tripped",
        workflow(
            "support-writer",
            [
                agent(
                    "writer",
                    [
                        step("answer", [llm()]),
                        step(
                            "check_output",
                            fail=Err(
                                "agents.exceptions.OutputGuardrailTripwireTriggered",
                                "Guardrail pii_filter triggered tripwire: the answer contains "
                                "an e-mail address",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("answer's LLM output leaked PII and was blocked", "output_parse", "answer"),
    ),
    # --- a failure after a successful retry -------------------------------------------------
    Scenario(
        "retry_recovered_then_bug",
        workflow(
            "scoring-agent",
            [
                agent(
                    "scorer",
                    [
                        tool(
                            "fetch_profile",
                            attempt=1,
                            fail=Err("TimeoutError", "profile service timed out after 5s"),
                            handled=True,
                        ),
                        tool("fetch_profile", attempt=2),
                        step("score", fail=Err("ZeroDivisionError", "float division by zero")),
                    ],
                )
            ],
        ),
        Label("score divides by a zero weight (fetch recovered)", "internal", "score"),
    ),
    Scenario(
        "rate_limit_recovered_then_parse_failure",
        workflow(
            "planner-v2",
            [
                agent(
                    "planner",
                    [
                        step(
                            "plan",
                            [llm(attempt=1, fail=RATE_LIMIT, handled=True), llm(attempt=2)],
                        ),
                        step("parse_plan", fail=PARSE_PLAN),
                    ],
                )
            ],
        ),
        Label("plan's LLM answered prose (its 429 was retried)", "output_parse", "plan"),
    ),
    # --- sub-agent failures propagating to the parent (Who&When: which agent) ----------------
    Scenario(
        "subagent_dependency_failure",
        workflow(
            "literature-review",
            [
                agent(
                    "orchestrator",
                    [
                        llm(),
                        agent(
                            "researcher",
                            [
                                llm(),
                                tool(
                                    "search_papers",
                                    fail=Err(
                                        "ConnectionError", "arxiv.org: connection reset by peer"
                                    ),
                                ),
                            ],
                        ),
                    ],
                    wrap=Err("RuntimeError", "sub-agent researcher failed"),
                )
            ],
        ),
        Label("the paper search lost its connection", "dependency", "search_papers"),
    ),
    Scenario(
        "subagent_auth_failure",
        workflow(
            "newsroom",
            [
                agent(
                    "editor",
                    [
                        agent(
                            "publisher",
                            [
                                step(
                                    "publish",
                                    [
                                        tool(
                                            "post_to_cms",
                                            fail=Err(
                                                "httpx.HTTPStatusError",
                                                "Client error '401 Unauthorized' for url "
                                                "'https://cms.example/api/posts'",
                                            ),
                                        )
                                    ],
                                )
                            ],
                            wrap=Err("RuntimeError", "publisher agent failed"),
                        )
                    ],
                    wrap=Err("RuntimeError", "editor: a sub-agent failed"),
                )
            ],
        ),
        Label("the CMS token was rejected", "auth", "publish"),
    ),
    # --- generic exception types whose message holds the cause ---------------------------------
    Scenario(
        "generic_exception_429_message",
        workflow(
            "geo-batch",
            [
                agent(
                    "geo",
                    [
                        tool(
                            "geocode",
                            fail=Err(
                                "Exception", "upstream geocoder returned 429 Too Many Requests"
                            ),
                        )
                    ],
                )
            ],
        ),
        Label("the geocoder rate-limited the batch", "rate_limit", "geocode"),
    ),
    Scenario(
        "generic_runtime_error_expired_token",
        workflow(
            "calendar-agent",
            [
                agent(
                    "calendar",
                    [
                        llm(),
                        step(
                            "sync_calendar",
                            fail=Err(
                                "RuntimeError",
                                "Google Calendar API: invalid credentials (token expired)",
                            ),
                        ),
                    ],
                )
            ],
        ),
        Label("the calendar OAuth token expired", "auth", "sync_calendar"),
    ),
    Scenario(
        "generic_exception_business_rule",
        workflow(
            "shop-agent",
            [
                agent(
                    "shop",
                    [
                        llm(),
                        tool(
                            "reserve_item",
                            fail=Err("Exception", "sku 48213 out of stock in warehouse 7"),
                        ),
                    ],
                )
            ],
        ),
        Label("reserve_item raised on an out-of-stock item", "tool_error", "reserve_item"),
    ),
]


def long_run(n_steps: int = 50, secret: str | None = None) -> Node:
    """A run of about ``n_steps`` steps: many successful LLM and tool calls, then a failure."""
    children: list[Node] = []
    i = 0
    while len(children) < n_steps - 4:
        children.append(llm(tokens=(900 + i, 80)))
        children.append(tool(f"lookup_{i % 7}"))
        i += 1
    message = "inventory API unreachable: connect to inventory.internal:443 refused"
    if secret:
        message += f" (api_key={secret})"
    failing = [
        tool("check_inventory", attempt=a, fail=Err("ConnectionError", message), handled=a < 3)
        for a in (1, 2, 3)
    ]
    return workflow("long-agent", [agent("worker", [*children, *failing])])
