/**
 * The MCPCP gateway Worker. A request to `/mcp` goes, top to bottom:
 * Origin check → token (jose) → body shape and scope for the method → admission by the agent's
 * AgentGate (its rate, each tool's rate, concurrency slots: one call) → the hot path for a plain
 * tools/call or tools/list (`fast-path.ts`), else a per-request MCP server (SDK) → backends →
 * audit record.
 */
import { type AuthInfo, createMcpHandler, type McpHttpHandler } from "@modelcontextprotocol/server";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  AUDIT_SCOPE,
  AuditQuery,
  type AuditRecord,
  beginRecord,
  queryRecords,
  writeRecord,
} from "./audit.ts";
import { type AgentIdentity, extractBearer, SCOPES } from "./auth.ts";
import { cancelCall, cancellationsIn, trackCall } from "./cancellation.ts";
import { type GatewayConfig, loadConfig } from "./config.ts";
import { insufficientScope, RESOURCE_METADATA_PATH, rpcFailure, unauthorized } from "./errors.ts";
import { fastRequest, serveFast } from "./fast-path.ts";
import { createFastHandler, createGatewayServer, SERVER_INFO } from "./gateway.ts";
import { admit, RATE_WINDOW_MS, tooManyRequests } from "./guards.ts";
import { shapeViolation } from "./limits.ts";
import { listensIn, relayListChanges } from "./list-changed.ts";
import { observeBody } from "./observe.ts";
import { originAllowed } from "./origin.ts";
import { missingScope } from "./scopes.ts";

// The entry module's named exports are what workerd binds: Durable Object classes only.
export { AgentGate } from "./agent-gate.ts";
export { UpstreamSessions } from "./upstream-sessions.ts";

/** The largest request body the gateway reads (the SDK's own default). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

type Gateway = { config: GatewayConfig; mcp: McpHttpHandler };
/** What the HTTP layer hands the per-request MCP server, through the SDK's `authInfo.extra`. */
type RequestExtra = {
  identity: AgentIdentity;
  record: AuditRecord;
  defer: (work: Promise<unknown>) => void;
  /** Per tools/call request id: aborted when the agent sends notifications/cancelled for it. */
  cancels: ReadonlyMap<string | number, AbortSignal>;
};

type Vars = {
  gateway: Gateway;
  identity: AgentIdentity;
  record: AuditRecord;
  /** Runs once the answer has been sent in full (or abandoned): releases, audit. */
  cleanups: (() => Promise<void>)[];
};
type Ctx = Context<{ Bindings: Env; Variables: Vars }>;

type GatewayResult = { ok: true; value: Gateway } | { ok: false; error: string };

// Bindings do not change within an isolate, so the configuration is validated once per env.
const gateways = new WeakMap<object, Promise<GatewayResult>>();

function gatewayFor(env: Env): Promise<GatewayResult> {
  let gateway = gateways.get(env);
  if (!gateway) {
    gateway = loadConfig(env).then(
      (config): GatewayResult =>
        config.ok
          ? {
              ok: true,
              value: { config: config.value, mcp: createMcpHandler(serverFor(config.value)) },
            }
          : config,
    );
    gateways.set(env, gateway);
  }
  return gateway;
}

// The MCP handler builds a server per request; the verified identity rides in `authInfo`.
function serverFor(config: GatewayConfig) {
  return ({ authInfo }: { authInfo?: AuthInfo }) => {
    const extra = authInfo?.extra as RequestExtra | undefined;
    if (!extra?.identity) throw new Error("MCP request reached the gateway without identity");
    return createGatewayServer(config, extra.identity, extra.record, {
      defer: extra.defer,
      cancels: extra.cancels,
    });
  };
}

const app = new Hono<{ Bindings: Env; Variables: Vars }>();

app.get("/healthz", (c) => c.json({ status: "ok", server: "proxy" }));

/** RFC 9728 protected resource metadata: what this resource is and which scopes it knows. */
app.on("GET", [RESOURCE_METADATA_PATH, `${RESOURCE_METADATA_PATH}/mcp`], (c) => {
  const origin = new URL(c.req.url).origin;
  return c.json({
    resource: `${origin}/mcp`,
    resource_name: "MCPCP gateway",
    bearer_methods_supported: ["header"],
    scopes_supported: [SCOPES.list, SCOPES.call],
  });
});

/** The proxy's public assertion keys: what mcp2 and mcp3 verify the proxy's assertions with. */
app.get("/.well-known/jwks.json", async (c) => {
  const gateway = await gatewayFor(c.env);
  if (!gateway.ok) return configFailure(gateway.error);
  return c.json(gateway.value.config.publicJwks);
});

/** Verifies the bearer token; answers 401 itself, or returns who is calling. */
async function authenticate(c: Ctx, config: GatewayConfig): Promise<AgentIdentity | Response> {
  const url = new URL(c.req.url);
  const bearer = extractBearer(c.req.header("authorization"), url);
  if (!bearer.ok) return unauthorized(url.origin, bearer.code);
  const verified = await config.verify(bearer.token);
  if (!verified.ok) {
    console.warn(
      JSON.stringify({ event: "auth_failed", code: verified.code, detail: verified.detail }),
    );
    return unauthorized(url.origin, verified.code);
  }
  return verified.identity;
}

app.use("/mcp", async (c, next) => {
  const began = performance.now();
  const gateway = await gatewayFor(c.env);
  if (!gateway.ok) return configFailure(gateway.error);
  c.set("gateway", gateway.value);
  const { config } = gateway.value;
  if (!originAllowed(c.req.header("origin"), new URL(c.req.url), config.allowedOrigins)) {
    return rpcFailure(403, -32600, "Origin not allowed");
  }
  const identity = await authenticate(c, config);
  if (identity instanceof Response) return identity;
  c.set("identity", identity);

  // From here on the request is authenticated, and it leaves exactly one audit record.
  const record = beginRecord(
    identity.agent,
    crypto.randomUUID(),
    Number(c.req.header("content-length") ?? 0),
  );
  const cleanups: (() => Promise<void>)[] = [];
  c.set("record", record);
  c.set("cleanups", cleanups);

  await next();

  const finish = async (bytesOut: number) => {
    record.status = c.res.status;
    record.bytes_out = bytesOut;
    record.duration_ms = Math.round((performance.now() - began) * 1000) / 1000;
    if (record.outcome === "ok" && c.res.status >= 400) record.outcome = `http_${c.res.status}`;
    await Promise.allSettled(cleanups.map((cleanup) => cleanup()));
    await writeRecord(c.env.AUDIT_DB, record);
  };
  c.res.headers.set("mcpcp-request-id", record.request_id);
  c.res = observeBody(c.res, (bytes) => c.executionCtx.waitUntil(finish(bytes)));
});

app.post(
  "/mcp",
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => rpcFailure(413, -32600, `Request body larger than ${MAX_BODY_BYTES} bytes`),
  }),
  async (c) => {
    const identity = c.get("identity");
    const record = c.get("record");
    const { mcp, config } = c.get("gateway");
    const text = await c.req.text();
    record.bytes_in = text.length;
    const cancels = new Map<string | number, AbortSignal>();
    const authInfo = authInfoFor(
      identity,
      record,
      (work) => c.executionCtx.waitUntil(work),
      cancels,
    );
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const overLimit = await admitRequest(c, config, []);
      if (overLimit) return overLimit;
      // Not JSON: the SDK answers with the JSON-RPC parse error the spec asks for.
      record.decision = "deny_input";
      return mcp.fetch(new Request(c.req.raw, { body: text }), { authInfo });
    }
    record.method = methodOf(body);

    const violation = shapeViolation(body);
    const missing = violation ? undefined : missingScope(body, identity.scopes);
    const calls = violation || missing ? [] : toolCalls(body);
    // Admission comes first: an agent over its rate learns nothing else. With a violation or a
    // missing scope there are no calls to admit, so only the agent's rate can refuse here.
    const refused = await admitRequest(c, config, calls);
    if (refused) return refused;
    if (violation) {
      record.decision = "deny_input";
      return rpcFailure(400, -32600, `Invalid request: ${violation}`, idOf(body));
    }
    if (missing) {
      record.decision = "deny_scope";
      return insufficientScope(new URL(c.req.url).origin, missing.id, missing.scope);
    }
    for (const call of calls) {
      if (call.id !== null) {
        const tracked = trackCall(identity.agent, call.id);
        cancels.set(call.id, tracked.signal);
        c.get("cleanups").push(async () => tracked.done());
      }
    }
    for (const cancellation of cancellationsIn(body)) {
      cancelCall(identity.agent, cancellation.id, cancellation.reason);
    }
    const fast = config.fastPath ? fastRequest(c.req.raw.headers, body) : undefined;
    if (fast) {
      // A plain tools/call or tools/list: the same handlers, without an SDK server around them.
      const cancelled = cancels.get(fast.id);
      const signal = cancelled ? AbortSignal.any([c.req.raw.signal, cancelled]) : c.req.raw.signal;
      const handler = createFastHandler(config, identity, record, {
        defer: (work) => c.executionCtx.waitUntil(work),
      });
      return serveFast(fast, handler, SERVER_INFO, signal);
    }
    for (const filter of listensIn(body)) {
      // Upstream listens live as long as the agent's listen stream: the cleanups end them.
      const listening = new AbortController();
      c.get("cleanups").push(async () => listening.abort());
      c.executionCtx.waitUntil(
        relayListChanges(config, identity.agent, filter, listening.signal, mcp.notify),
      );
    }
    return mcp.fetch(c.req.raw, { authInfo, parsedBody: body });
  },
);

type ToolCall = { id: string | number | null; name: string };

/** The `tools/call` messages in a body (one, or several in a 2025-03-26 batch). */
function toolCalls(body: unknown): ToolCall[] {
  const messages = Array.isArray(body) ? body : [body];
  return messages.flatMap((m) => {
    const message = m as { method?: unknown; id?: unknown; params?: { name?: unknown } };
    if (message?.method !== "tools/call" || typeof message.params?.name !== "string") return [];
    return [{ id: idOf(message), name: message.params.name }];
  });
}

/**
 * Asks the agent's gate to admit the request: its rate, and for each call the tool's rate and a
 * concurrency slot (given back by the cleanups once the answer is sent). A refusal is the answer.
 */
async function admitRequest(
  c: Ctx,
  config: GatewayConfig,
  calls: ToolCall[],
): Promise<Response | undefined> {
  const record = c.get("record");
  const { agent } = record;
  const admitted = await admit(c.env.AGENT_GATE, agent, {
    rate: { limit: config.agentRatePerMinute, windowMs: RATE_WINDOW_MS },
    toolRate: { limit: config.toolRatePerMinute, windowMs: RATE_WINDOW_MS },
    calls: calls.map((call) =>
      config.rateLimitedTools.has(call.name) ? { limitedTool: call.name } : {},
    ),
    maxInFlight: config.maxConcurrentCalls,
    leaseMs: config.backendTimeoutMs + 5_000,
  });
  if (admitted.ok) {
    c.get("cleanups").push(admitted.release);
    return undefined;
  }
  const { refusal, retryAfterSeconds: wait } = admitted;
  record.decision = refusal === "concurrency" ? "deny_concurrency" : "deny_rate";
  if (refusal === "rate")
    return tooManyRequests(null, `Agent ${agent} is over its request rate`, wait);
  if (refusal === "tool_rate") {
    const call = calls.find((candidate) => candidate.name === admitted.tool);
    return tooManyRequests(
      call?.id ?? null,
      `Agent ${agent} is over its rate for ${admitted.tool}`,
      wait,
    );
  }
  return tooManyRequests(
    calls.length === 1 ? (calls[0]?.id ?? null) : null,
    `Agent ${agent} already has ${admitted.inFlight} calls in flight (limit ${config.maxConcurrentCalls})`,
    wait,
  );
}

function methodOf(body: unknown): string | null {
  if (Array.isArray(body)) return "batch";
  const method = (body as { method?: unknown } | null)?.method;
  return typeof method === "string" ? method.slice(0, 100) : null;
}

function idOf(message: unknown): string | number | null {
  const id = (message as { id?: unknown } | null)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}

// GET (server stream) and DELETE (session end) belong to sessions; the SDK answers them per spec.
app.on(["GET", "DELETE"], "/mcp", async (c) => {
  const overLimit = await admitRequest(c, c.get("gateway").config, []);
  if (overLimit) return overLimit;
  return c.get("gateway").mcp.fetch(c.req.raw, {
    authInfo: authInfoFor(c.get("identity"), c.get("record"), (work) =>
      c.executionCtx.waitUntil(work),
    ),
  });
});

/** The audit log, newest first, filtered by agent, tool, server and time. Needs `audit_read`. */
app.get("/admin/audit", async (c) => {
  const gateway = await gatewayFor(c.env);
  if (!gateway.ok) return configFailure(gateway.error);
  const identity = await authenticate(c, gateway.value.config);
  if (identity instanceof Response) return identity;
  if (!identity.scopes.has(AUDIT_SCOPE)) {
    return insufficientScope(new URL(c.req.url).origin, null, AUDIT_SCOPE);
  }
  const query = AuditQuery.safeParse(c.req.query());
  if (!query.success) {
    const issue = query.error.issues[0];
    return c.json(
      { error: "invalid_query", message: `${issue?.path.join(".")}: ${issue?.message}` },
      400,
    );
  }
  return c.json({ records: await queryRecords(c.env.AUDIT_DB, query.data) });
});

// Battle inspection (page, JSON API, live WebSocket) lives on mcp1, which checks the inspection
// token itself. Deployed, mcp1 has no public route, so people reach it here. The raw request goes
// through unchanged: mcp1's WebSocket check compares Origin with the request's own URL.
for (const path of ["/battles", "/battles/*", "/api/battles", "/api/battles/*"]) {
  app.get(path, (c) => c.env.MCP1.fetch(c.req.raw));
}

app.notFound((c) =>
  c.json({ error: "not_found", message: `No route for ${c.req.method} ${c.req.path}` }, 404),
);

app.onError((err, c) => {
  console.error(JSON.stringify({ event: "unhandled_error", path: c.req.path, error: String(err) }));
  return rpcFailure(500, -32603, "Internal gateway error");
});

function configFailure(error: string): Response {
  console.error(JSON.stringify({ event: "config_invalid", error }));
  return rpcFailure(500, -32603, "Gateway configuration error; see the gateway's log");
}

function authInfoFor(
  identity: AgentIdentity,
  record: AuditRecord,
  defer: (work: Promise<unknown>) => void,
  cancels: ReadonlyMap<string | number, AbortSignal> = new Map(),
): AuthInfo {
  return {
    // The agent's token never travels further than this Worker, not even into the MCP layer.
    token: "",
    clientId: identity.agent,
    scopes: [...identity.scopes],
    expiresAt: identity.expiresAt,
    extra: { identity, record, defer, cancels } satisfies RequestExtra,
  };
}

export default app;
