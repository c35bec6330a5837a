// Emits one failing agent run with the Node.js OpenTelemetry SDK and sends it with an official
// OTLP exporter. Usage: node send.js grpc|http ENDPOINT RUN_ID
// Prints the export result as JSON; exits 0 only if the exporter reported SUCCESS.
"use strict";
const api = require("@opentelemetry/api");
const { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace");
const { resourceFromAttributes } = require("@opentelemetry/resources");

const [protocol, endpoint, runId] = process.argv.slice(2);
const { OTLPTraceExporter } =
  protocol === "grpc"
    ? require("@opentelemetry/exporter-trace-otlp-grpc")
    : require("@opentelemetry/exporter-trace-otlp-proto");

const memory = new InMemorySpanExporter();
const provider = new TracerProvider({
  resource: resourceFromAttributes({ "service.name": `node-agent-${protocol}` }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
});
const tracer = provider.getTracer("node-client");

const root = tracer.startSpan("invoke_workflow node-trip", {
  attributes: { "otel_diag.run.id": runId, "gen_ai.operation.name": "invoke_workflow" },
});
const rootCtx = api.trace.setSpan(api.context.active(), root);
const agent = tracer.startSpan(
  "invoke_agent planner",
  { attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner" } },
  rootCtx,
);
const agentCtx = api.trace.setSpan(rootCtx, agent);
const llm = tracer.startSpan(
  "chat gpt-4o-mini",
  {
    kind: api.SpanKind.CLIENT,
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o-mini",
      "gen_ai.usage.input_tokens": 420,
      "gen_ai.usage.output_tokens": 17,
    },
  },
  agentCtx,
);
llm.end();
const tool = tracer.startSpan(
  "execute_tool book_hotel",
  { attributes: { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "book_hotel" } },
  agentCtx,
);
const err = new TypeError("Cannot read properties of undefined (reading 'rooms')");
tool.recordException(err);
tool.setStatus({ code: api.SpanStatusCode.ERROR, message: err.message });
tool.end();
agent.end();
root.setStatus({ code: api.SpanStatusCode.ERROR, message: "booking failed" });
root.end();

async function main() {
  await provider.forceFlush(); // SimpleSpanProcessor hands spans over asynchronously
  const spans = memory.getFinishedSpans();
  const exporter = new OTLPTraceExporter({ url: endpoint, timeoutMillis: 20000 });
  const result = await new Promise((resolve) => exporter.export(spans, resolve));
  const ok = result.code === 0;
  console.log(JSON.stringify({ ok, spans: spans.length, error: result.error ? String(result.error) : null }));
  await exporter.shutdown();
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
