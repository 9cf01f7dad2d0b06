/**
 * The request path of `/mcp`, once, top to bottom:
 *
 *   origin → token → envelope → admission → operation → audit
 *
 * 1. Origin: a browser page from elsewhere is refused (DNS rebinding; `core/origin.ts`).
 * 2. Token: the bearer token is verified with jose (`core/auth.ts`, remembered per isolate by
 *    `state/token-cache.ts`); from here on the request has an identity and leaves audit records:
 *    one per message of its body (each of a batch its own), or one for the request.
 * 3. Envelope: the body is read (at most 4 MiB) and parsed once (`core/envelope.ts`); a body over
 *    the shape limits, or a method the token lacks the scope for, is refused after admission.
 * 4. Admission: one call to the agent's AgentGate decides its rate, each tool's rate, its
 *    concurrency slots and its stream leases (`state/admission.ts`); an agent over its rate
 *    learns nothing else, and a stream over the agent's cap opens nothing upstream.
 * 5. Operation: a plain tools/call or tools/list is answered by the hot path
 *    (`agent-side/hot-path.ts`), anything else by the SDK server (`agent-side/sdk-server.ts`); both
 *    serve the same operations (`operations/table.ts`).
 * 6. Audit: as the answer ends (its last bytes, or its abandonment), the records, made of the
 *    context's outcomes, are logged and queued for D1 (`state/audit-store.ts`), and slots are
 *    given back. The log line comes before the last bytes go out (`watchAnswer`). An agent that
 *    leaves before ends its calls at once: `agent-side/http.ts` keeps a silent answer stream
 *    tested with comments, so the runtime notices a closed connection, and aborts `ctx.signal`.
 *
 * Every refusal is a `GatewayError`, answered by the funnel in `errors.ts`.
 */
import type { McpHttpHandler } from "@modelcontextprotocol/server";
import { type FastHandler, hotRequest, serveFast } from "./agent-side/hot-path.ts";
import {
  readBody,
  SSE_HEADERS,
  sseMessage,
  streamWhenSlow,
  underSignal,
  watchAnswer,
  withHeader,
} from "./agent-side/http.ts";
import { createSdkHandler, SERVER_INFO, subscribableAt } from "./agent-side/sdk-server.ts";
import { MODERN_REVISION } from "./backend-side/direct.ts";
import { relayListChanges } from "./backend-side/listen.ts";
import { deliverAnswers } from "./backend-side/questions.ts";
import { relayServerStreams } from "./backend-side/server-stream.ts";
import { authInfoFor, type Outcome, RequestContext } from "./context.ts";
import { type Control, refusalOf } from "./control/document.ts";
import {
  type AgentAnswer,
  type Answerable,
  answerableOf,
  answersIn,
  inputCapabilitiesOf,
  sessionBinding,
  sessionOf,
  sessionText,
} from "./core/agent-session.ts";
import { type AgentIdentity, type AuthResult, extractBearer } from "./core/auth.ts";
import { type BackendSpec, type GatewayConfig, loadConfig } from "./core/config.ts";
import {
  callsOf,
  type Envelope,
  type Message,
  parseEnvelope,
  type RequestId,
} from "./core/envelope.ts";
import { isJsonObject } from "./core/json.ts";
import { log } from "./core/log.ts";
import { methodLabel } from "./core/methods.ts";
import { prefixToolName, splitToolName } from "./core/names.ts";
import type { OAuthSettings } from "./core/oauth-settings.ts";
import { originAllowed } from "./core/origin.ts";
import { missingScope } from "./core/scopes.ts";
import { open, seal } from "./core/seal.ts";
import {
  type Failure,
  fail,
  GatewayError,
  httpResponse,
  RESOURCE_METADATA_PATH,
  sessionNotFound,
} from "./errors.ts";
import { isClientToken, verifyClientToken } from "./oauth/client-credentials.ts";
import { isOAuthToken, verifyOAuthToken } from "./oauth/tokens.ts";
import { OPERATIONS } from "./operations/table.ts";
import { serveDoor } from "./relay/door.ts";
import { numberingFor, resumeGateway } from "./relay/resume.ts";
import { NumberedEvents, relaySse } from "./relay/sse.ts";
import { admit, RATE_WINDOW_MS, STREAM_LEASE_MS } from "./state/admission.ts";
import { type AuditRecord, beginRecord, NAME_LIMIT, writeRecord } from "./state/audit-store.ts";
import { ControlCache, seedHash } from "./state/control-cache.ts";
import type { Seed } from "./state/control-store.ts";
import { oncePerEnv } from "./state/gateways.ts";
import { cancelCall, cancellationsIn, trackCall } from "./state/in-flight.ts";
import { cachingVerifier } from "./state/token-cache.ts";

/** What a request is served with: the configuration, one version of the run-time state, and tools. */
export interface Gateway {
  /** The environment's configuration, with the policy and backends of `control`'s version. */
  config: GatewayConfig;
  control: Control;
  /** Verifies agent tokens, remembering those that verified. */
  verify: (token: string) => Promise<AuthResult>;
  mcp: McpHttpHandler;
  /** The isolate's copy of the run-time state, for `/healthz` and the admin API. */
  cache: ControlCache;
}

type Base = Omit<Gateway, "config" | "control"> & { config: GatewayConfig; seed: Seed };

/** Per version of the run-time state, the gateway built on it (one per isolate and version). */
const views = new WeakMap<Control, Gateway>();

/**
 * The gateway for `env`, on the newest version of the run-time state this isolate holds, or a
 * `config_invalid` failure naming what is wrong. `defer` lets a background check of the state
 * outlive the request.
 */
export async function gatewayFor(
  env: Env,
  defer?: (work: Promise<unknown>) => void,
): Promise<Gateway> {
  const base = await baseFor(env);
  const control = await base.cache.get(defer);
  let gateway = views.get(control);
  if (!gateway) {
    const config = {
      ...base.config,
      policy: control.policy,
      policyDocument: control.document.policy,
      backends: control.backends,
    };
    gateway = { config, control, verify: base.verify, mcp: base.mcp, cache: base.cache };
    views.set(control, gateway);
  }
  return gateway;
}

/** What does not change while the isolate lives: the environment's configuration, and the seed. */
export async function baseFor(env: Env): Promise<Base> {
  const loaded = await oncePerEnv(env, async () => {
    const config = await loadConfig(env);
    if (!config.ok) return config;
    const { keys, issuer, audience } = config.value;
    const seed = await seedOf(config.value);
    return {
      ok: true as const,
      value: {
        config: config.value,
        seed,
        verify: cachingVerifier(keys, { issuer, audience }),
        mcp: createSdkHandler(),
        cache: new ControlCache(env.CONTROL, seed, config.value.policy, {
          direct: config.value.direct,
        }),
      },
    };
  });
  return loaded.ok ? loaded.value : fail({ kind: "config_invalid", detail: loaded.error });
}

/** The deployed policy and backends, as the store is seeded with them (`state/control-store.ts`). */
async function seedOf(config: GatewayConfig): Promise<Seed> {
  // As loadConfig read and validated it: not parsed again.
  const policy = config.policyDocument;
  const backends = [...config.backends.values()].map((b) => ({
    id: b.id,
    url: b.url.href,
    route: b.route,
    identity: b.identity,
  }));
  return { hash: await seedHash({ policy, backends }), policy, backends };
}

/**
 * Verifies the request's bearer token; who is calling, or an `unauthorized` failure. At an MCP
 * endpoint (`at`), an OAuth access token issued for that endpoint is accepted too (`oauth/`);
 * everywhere else, only agent JWTs. `url` is the request's, when the caller has parsed it already.
 */
export async function authenticate(
  request: Request,
  gateway: Gateway,
  at?: { env: Env; endpoint: Endpoint },
  url = new URL(request.url),
): Promise<AgentIdentity> {
  const bearer = extractBearer(request.headers.get("authorization"), url);
  if (!bearer.ok) return fail({ kind: "unauthorized", code: bearer.code });
  const oauth = gateway.config.oauth;
  const verified =
    oauth && at && isOAuthToken(bearer.token)
      ? await verifyOAuthAt(at, gateway, oauth, url.origin, bearer.token)
      : oauth && at && isClientToken(bearer.token)
        ? await verifyClientToken(
            at.env,
            gateway.control,
            resourceOf(at.endpoint, url.origin),
            bearer.token,
          )
        : await gateway.verify(bearer.token);
  if (!verified.ok) {
    log("warn", "auth_failed", { code: verified.code, detail: verified.detail });
    return fail({ kind: "unauthorized", code: verified.code });
  }
  // A valid token the operator has revoked, or of an agent they disabled (`control/document.ts`).
  const refusal = refusalOf(gateway.control, verified.identity);
  if (refusal) {
    log("warn", "auth_failed", {
      code: "invalid_token",
      detail: refusal,
      agent: verified.identity.agent,
    });
    return fail({ kind: "unauthorized", code: "invalid_token" });
  }
  return verified.identity;
}

/** An OAuth token at `at`'s endpoint; a door the gateway does not have is no resource of it. */
async function verifyOAuthAt(
  at: { env: Env; endpoint: Endpoint },
  gateway: Gateway,
  oauth: OAuthSettings,
  origin: string,
  token: string,
): Promise<AuthResult> {
  const { endpoint } = at;
  if (endpoint.kind === "door" && !gateway.control.backends.has(endpoint.server)) {
    return { ok: false, code: "invalid_token", detail: `no resource for door ${endpoint.server}` };
  }
  const resource = resourceOf(endpoint, origin);
  return verifyOAuthToken(at.env, oauth, gateway.control, origin, resource, token, controlOf);
}

/** The canonical resource (RFC 8707) of an MCP endpoint on `origin`. */
function resourceOf(endpoint: Endpoint, origin: string): string {
  return endpoint.kind === "door" ? `${origin}/servers/${endpoint.server}/mcp` : `${origin}/mcp`;
}

/** The newest run-time state this isolate holds, for the OAuth server's checks on refresh. */
export async function controlOf(env: Env): Promise<Control> {
  return (await gatewayFor(env)).control;
}

/**
 * Which MCP endpoint a request reached: `/mcp`, every granted server under prefixed names, or a
 * per-server door `/servers/<id>/mcp`, one backend under its own names (`relay/door.ts`).
 */
export type Endpoint = { kind: "gateway" } | { kind: "door"; server: string };

/** Where the RFC 9728 metadata of `endpoint` lives, relative to the gateway's origin. */
export function metadataPath(endpoint: Endpoint): string {
  return endpoint.kind === "gateway"
    ? RESOURCE_METADATA_PATH
    : `${RESOURCE_METADATA_PATH}/servers/${endpoint.server}/mcp`;
}

/** Serves one request to an MCP endpoint: `/mcp`, or a door. */
export async function serveMcp(
  request: Request,
  env: Env,
  exec: { waitUntil: (work: Promise<unknown>) => void },
  endpoint: Endpoint = { kind: "gateway" },
): Promise<Response> {
  const began = performance.now();
  // Parsed once: the origin check and the token's reading both need it.
  const url = new URL(request.url);
  const origin = url.origin;
  const metadata = metadataPath(endpoint);
  let gateway: Gateway;
  let identity: AgentIdentity;
  let door: BackendSpec | undefined;
  try {
    gateway = await gatewayFor(env, (work) => exec.waitUntil(work));
    const allowed = gateway.config.allowedOrigins;
    if (!originAllowed(request.headers.get("origin"), url, allowed)) {
      fail({ kind: "origin_refused" });
    }
    identity = await authenticate(request, gateway, { env, endpoint }, url);
    if (endpoint.kind === "door") door = doorFor(gateway.config, identity.agent, request);
  } catch (e) {
    return httpResponse(e, origin, metadata);
  }

  // From here on the request is authenticated: it leaves a record per message, or one.
  const defer = (work: Promise<unknown>) => exec.waitUntil(work);
  // The agent is gone when the runtime says so (request.signal, which workerd aborts only once a
  // write to the agent has failed) or when the answer's stream is cancelled: either aborts the
  // work, on every path (the operations', the SDK's, a door's), and ends the answer; but a 2025
  // agent's stream with events, which it may resume, is kept a while (`keptForResume`).
  const left = new AbortController();
  const signal = left.signal;
  // The runtime's word goes through `leave`, which such a stream replaces.
  let leave = (reason: unknown) => left.abort(reason);
  if (request.signal.aborted) left.abort(request.signal.reason);
  else request.signal.addEventListener("abort", () => leave(request.signal.reason), { once: true });
  const ctx = new RequestContext(gateway.config, env, identity, signal, defer);
  if (door) ctx.outcome.server = door.id;
  const record = beginRecord(
    identity.agent,
    crypto.randomUUID(),
    Number(request.headers.get("content-length") ?? 0),
  );
  const releases: (() => Promise<void>)[] = [];
  /** The events of the stream the hot path writes, numbered as it writes them. */
  let written: NumberedEvents | undefined;
  const numbered = () => {
    written = new NumberedEvents(gatewayNumbering(ctx, left));
    return written;
  };
  let response: Response;
  try {
    response = door
      ? await operateDoor(request, ctx, door, record, releases)
      : await operate(request, ctx, gateway, record, releases, numbered);
  } catch (e) {
    if (e instanceof GatewayError) ctx.refused(...decisionOf(e.failure));
    response = httpResponse(e, origin, metadata);
  }

  const finish = async (bytesOut: number) => {
    record.status = response.status;
    record.bytes_out = bytesOut;
    record.duration_ms = Math.round((performance.now() - began) * 1000) / 1000;
    // Before anything is awaited: `done` runs before the answer's last bytes go out, so each
    // record's log line is written before the agent can have its answer, and its D1 batch leaves
    // within FLUSH_AFTER_MS of now (what a crash can lose: docs/design.md, "Audit").
    const stored = recordsOf(ctx, record).map((each) => writeRecord(env.AUDIT_DB, each));
    // Last taken, first given back: a stream's upstream listens close before its lease goes.
    for (const release of releases.reverse()) await release().catch(() => {});
    await Promise.all(stored);
  };
  response = withHeader(response, "mcpcp-request-id", record.request_id);
  const watched = watchAnswer(response, {
    signal,
    gone: (reason) => left.abort(reason),
    done: (bytes) => defer(finish(bytes)),
  });
  if (endpoint.kind !== "gateway" || !watched.body || !isEventStream(watched)) return watched;
  let kept: { response: Response; leave: (reason: unknown) => void };
  if (written) kept = keptAsWritten(watched, written, ctx);
  else if (resumable(request, ctx)) kept = keptForResume(watched, ctx, left);
  else return watched;
  leave = kept.leave;
  return kept.response;
}

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

/**
 * Whether `/mcp` numbers the events of an SSE answer so that the agent can resume it: a 2025
 * agent's answer to a POST (a call's stream), with a session or without, or a session's GET (the
 * session's stream), not a resumed one. A 2026-07-28 agent's answers are not: its era resumes
 * nothing.
 */
function resumable(request: Request, ctx: RequestContext): boolean {
  if (request.method === "GET") {
    return ctx.answerable !== undefined && !request.headers.has("last-event-id");
  }
  return (
    request.method === "POST" &&
    (ctx.answerable !== undefined ||
      request.headers.get("mcp-protocol-version") !== MODERN_REVISION)
  );
}

/** How `/mcp` numbers a stream of `ctx`'s: its work abandoned once the agent does not come back. */
function gatewayNumbering(ctx: RequestContext, left: AbortController) {
  return numberingFor(ctx, () =>
    left.abort(new Error("The agent did not come back for its stream")),
  );
}

/**
 * A stream the hot path numbered as it wrote it (`NumberedEvents`), kept as `keptForResume` keeps
 * one, without being parsed: passed on as written while the agent reads it; once the agent
 * leaves, the events it may have missed and all that follow go to the log, and the stream is read
 * to its end (so the audit record and the releases come when the call has ended). A stream left
 * before its first event is cancelled, as any answer is: the agent has no id to come back with.
 */
function keptAsWritten(
  watched: Response,
  events: NumberedEvents,
  ctx: RequestContext,
): { response: Response; leave: (reason: unknown) => void } {
  const reader = (watched.body as ReadableStream<Uint8Array>).getReader();
  let gone = false;
  const leave = (reason: unknown): Promise<void> => {
    if (gone) return Promise.resolve();
    gone = true;
    if (!events.started) return reader.cancel(reason).catch(() => {});
    const held = events.leave().catch(() => {});
    ctx.defer(
      (async () => {
        await held;
        try {
          while (!(await reader.read()).done);
        } catch {
          // Ended by the gateway: the agent did not come back.
        }
        await events.flush(true)?.catch(() => {});
      })(),
    );
    // What the agent was sent is in the log before the cancellation is over.
    return held;
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (gone) return;
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        if (!gone) controller.error(e);
      }
    },
    cancel: (reason) => leave(reason),
  });
  return {
    response: new Response(body, watched),
    leave: (reason) => void leave(reason),
  };
}

/**
 * A 2025 agent's stream, its events numbered and kept as a door keeps a backend's
 * (`relay/resume.ts`): while the agent reads it they wait in memory; once it leaves they go to
 * the stream's log, and the work behind it (the call, or the backends' GET streams) goes on
 * while the agent comes back for it, and is abandoned, as on any disconnect, once it does not
 * (`RESUME_GRACE_MS`). A stream the agent leaves before its first event has given it no id to
 * come back with: its work ends at once. `watched` stays inside, so the audit record and the
 * releases come when the work has really ended. `leave` is what the runtime's word that the
 * agent left does to it.
 */
function keptForResume(
  watched: Response,
  ctx: RequestContext,
  left: AbortController,
): { response: Response; leave: (reason: unknown) => void } {
  const numbered = relaySse(watched.body as ReadableStream<Uint8Array>, {
    onMessage: () => undefined,
    silenceMs: () => undefined,
    onSilence: async () => [],
    // A stream left before its first event is cancelled inside, as any answer is (`watchAnswer`).
    onEnd: () => {},
    numbering: gatewayNumbering(ctx, left),
  });
  const reader = numbered.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return {
    response: new Response(body, watched),
    leave: (reason) => void reader.cancel(reason).catch(() => {}),
  };
}

/** What a request asks for, read before anything acts on it (step 3). */
type Asked =
  /** GET (the server stream) or DELETE (a session's end): the SDK answers them per spec. */
  | { kind: "stream" }
  /** A body that is not JSON: the SDK answers with the parse error the spec asks for. */
  | { kind: "not_json"; text: string }
  | { kind: "refused"; failure: Failure }
  | {
      kind: "messages";
      body: unknown;
      envelope: Extract<Envelope, { ok: true }>;
      calls: { id: RequestId | null; name: string }[];
    };

/** How a record names the tool of a call: the server it names, and the tool, as the agent asked. */
type Naming = (name: string) => { server: string | null; tool: string };

async function askedBy(
  request: Request,
  ctx: RequestContext,
  record: AuditRecord,
  naming: Naming,
): Promise<Asked> {
  if (request.method === "GET" || request.method === "DELETE") return { kind: "stream" };
  if (request.method !== "POST") {
    return fail({ kind: "no_route", method: request.method, path: new URL(request.url).pathname });
  }
  const text = await readBody(request);
  record.bytes_in = text.length;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { kind: "not_json", text };
  }
  const envelope = parseEnvelope(body);
  record.method = envelope.label;
  if (envelope.ok) noteMessages(ctx, envelope.messages, Array.isArray(body), naming);
  if (!envelope.ok) {
    const failure: Failure = {
      kind: "invalid_request",
      reason: envelope.violation,
      id: envelope.id,
    };
    return { kind: "refused", failure };
  }
  const missing = missingScope(envelope.messages, ctx.identity.scopes);
  if (missing) {
    const failure: Failure = { kind: "insufficient_scope", scope: missing.scope, id: missing.id };
    return { kind: "refused", failure };
  }
  return { kind: "messages", body, envelope, calls: callsOf(envelope.messages) };
}

/** Steps 3 to 5, for an authenticated request. */
async function operate(
  request: Request,
  ctx: RequestContext,
  gateway: Gateway,
  record: AuditRecord,
  releases: (() => Promise<void>)[],
  numbered: () => NumberedEvents,
): Promise<Response> {
  const asked = await askedBy(request, ctx, record, (name) => requestedTool(ctx.config, name));
  // Admission comes first: an agent over its rate learns nothing else. Only messages carry calls
  // to admit, so anything else can be refused here only by the agent's rate.
  const listen = listenStream(asked);
  // A session's GET is its stream of what backends say outside calls, and a GET with
  // Last-Event-ID a stream resumed, with a session or without: each holds a stream lease.
  const resumeFrom = request.headers.get("last-event-id");
  const getStream =
    asked.kind === "stream" &&
    request.method === "GET" &&
    (request.headers.has("mcp-session-id") || resumeFrom !== null);
  await admitCalls(
    ctx,
    asked.kind === "messages" ? asked.calls : [],
    releases,
    listen ?? (getStream ? { id: null } : undefined),
  );
  if (asked.kind === "refused") return fail(asked.failure);
  const session = request.headers.get("mcp-session-id");
  if (session !== null) {
    const answerable = await openSession(ctx, session);
    // As a server answers a session it does not know: the agent starts a new one.
    if (!answerable) {
      ctx.refused("deny_input", "rpc_error");
      return sessionNotFound();
    }
    ctx.answerable = answerable;
  }
  const authInfo = authInfoFor(ctx);
  // Resumption is the agent's, not its session's (2025-03-26 transports, "Resumability and
  // Redelivery"): the log belongs to the agent of the token.
  if (getStream && resumeFrom !== null) return resumeGateway(ctx, resumeFrom);
  if (getStream && hasSession(ctx)) return serverStream(ctx, releases);
  if (asked.kind === "stream")
    return gateway.mcp.fetch(underSignal(request, ctx.signal), { authInfo });
  if (asked.kind === "not_json") {
    ctx.refused("deny_input");
    return gateway.mcp.fetch(underSignal(request, ctx.signal, asked.text), { authInfo });
  }

  const { body, envelope, calls } = asked;
  const answers = answersIn(body);
  if (answers) return answersDelivered(ctx, answers);
  const inputCapabilities = inputCapabilitiesOf(body);
  if (inputCapabilities) ctx.inputCapabilities = inputCapabilities;
  for (const call of calls) {
    if (call.id === null) continue;
    const tracked = trackCall(ctx.agent, call.id);
    ctx.cancellable(call.id, tracked.signal);
    releases.push(async () => tracked.done());
  }
  for (const cancellation of cancellationsIn(envelope.messages)) {
    cancelCall(ctx.agent, cancellation.id, cancellation.reason);
  }
  const plain = ctx.config.fastPath ? envelope.plain : undefined;
  const fast = plain && hotRequest(request.headers, plain);
  if (fast) {
    const signal = ctx.signalFor(fast.id, ctx.signal);
    // A 2025 agent's stream is numbered by the hot path's own writer, never parsed again.
    const events = fast.era === "legacy" ? numbered() : undefined;
    return streamWhenSlow(serveFast(fast, operationsHandler(ctx), SERVER_INFO, signal, events));
  }
  if (listen?.listen) {
    // Upstream listens (one per server) live as long as the agent's listen stream: its release
    // closes them, and waits until they have closed.
    const listening = new AbortController();
    const { notify } = gateway.mcp;
    const relayed = relayListChanges(ctx.config, ctx, listen.listen, listening.signal, notify);
    ctx.defer(relayed);
    releases.push(async () => {
      listening.abort();
      await relayed;
    });
  }
  const answering = Array.isArray(body) ? undefined : answerableOfInitialize(body);
  // The server it initializes with knows it will have a session (what it offers depends on it).
  if (answering) {
    ctx.answerable = answering;
    await subscribableAt(ctx);
  }
  const response = await streamWhenSlow(
    gateway.mcp.fetch(underSignal(request, ctx.signal), { authInfo, parsedBody: body }),
  );
  if (!answering || response.status !== 200) return response;
  // An agent that can answer backends' questions gets a session saying so (2025 only: a
  // 2026-07-28 agent sends no initialize).
  const sealed = await seal(ctx.config.sealKey, sessionBinding(ctx.agent), sessionText(answering));
  return withHeader(response, "mcp-session-id", sealed);
}

/**
 * A sessionful agent's GET stream: its backends' own GET streams relayed
 * (`backend-side/server-stream.ts`) for as long as the agent keeps it open; its release closes
 * them all and waits until they have closed.
 */
async function serverStream(
  ctx: RequestContext & { answerable: Answerable },
  releases: (() => Promise<void>)[],
): Promise<Response> {
  const upstream = new AbortController();
  const signal = AbortSignal.any([ctx.signal, upstream.signal]);
  let write: ((message: Record<string, unknown>) => void) | undefined;
  let close: (() => void) | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      close = () => controller.close();
      write = (message) => {
        try {
          controller.enqueue(sseMessage(message));
        } catch {
          // The agent has gone; its signal closes the upstream streams.
        }
      };
    },
    cancel: (reason) => upstream.abort(reason),
  });
  const relay = relayServerStreams(ctx.config, ctx, signal, (message) => write?.(message));
  // Once the gateway ends the stream (an agent that did not come back for it), it ends when the
  // backends' have: a kept stream's log is then closed.
  signal.addEventListener(
    "abort",
    () => {
      relay.done.then(() => {
        try {
          close?.();
        } catch {
          // Already closed or cancelled.
        }
      });
    },
    { once: true },
  );
  ctx.defer(relay.done);
  releases.push(async () => {
    upstream.abort();
    await relay.done;
  });
  // The agent has its stream once the backends' are open: what they say from then on reaches it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, ctx.config.backendTimeoutMs);
  });
  await Promise.race([relay.ready, late]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
  return new Response(body, { headers: SSE_HEADERS });
}

function hasSession(ctx: RequestContext): ctx is RequestContext & { answerable: Answerable } {
  return ctx.answerable !== undefined;
}

/** What an `initialize` request's params declare the agent can answer, if it is one. */
function answerableOfInitialize(body: unknown): Answerable | undefined {
  if (!isJsonObject(body) || body.method !== "initialize") return undefined;
  return answerableOf(body.params);
}

/** What the agent's session id says it can answer; undefined when it is not one of its own. */
async function openSession(ctx: RequestContext, session: string): Promise<Answerable | undefined> {
  const text = await open(ctx.config.sealKey, sessionBinding(ctx.agent), session);
  return text === undefined ? undefined : sessionOf(text);
}

/**
 * A body of answers to backends' questions: each goes to the backend that asked
 * (`backend-side/questions.ts`), and the agent hears 202, as for any response it sends. Each
 * answer's record names the server it went to, or says it was dropped.
 */
async function answersDelivered(ctx: RequestContext, answers: AgentAnswer[]): Promise<Response> {
  const deliveries = await deliverAnswers(ctx.config, ctx, answers, ctx.signal);
  deliveries.forEach((delivery, index) => {
    const outcome = ctx.messages[index]?.outcome;
    if (!outcome) return;
    outcome.server = delivery.server;
    if (!delivery.delivered) outcome.ended("answer_dropped");
  });
  return new Response(null, { status: 202 });
}

/**
 * The backend behind a door, if the agent may see it at all: a server the agent holds no grant
 * on is answered as one that does not exist, after the token (so nobody learns either way
 * without one).
 */
function doorFor(config: GatewayConfig, agent: string, request: Request): BackendSpec {
  const server = new URL(request.url).pathname.split("/")[2] ?? "";
  const backend = config.backends.get(server);
  if (!backend || !config.policy.get(agent)?.has(server)) {
    return fail({ kind: "no_route", method: request.method, path: new URL(request.url).pathname });
  }
  return backend;
}

/** Steps 3 to 5 for a door: the same reading and admission, then the relay. */
async function operateDoor(
  request: Request,
  ctx: RequestContext,
  backend: BackendSpec,
  record: AuditRecord,
  releases: (() => Promise<void>)[],
): Promise<Response> {
  // A door's names are the backend's own.
  const naming = (name: string) => ({ server: backend.id, tool: name.slice(0, NAME_LIMIT) });
  const asked = await askedBy(request, ctx, record, naming);
  // Admission counts each call under the gateway-wide name its limits are written for.
  const calls =
    asked.kind === "messages"
      ? asked.calls.map((call) => ({ ...call, name: prefixToolName(backend.id, call.name) }))
      : [];
  // A GET is the backend's own stream, relayed for as long as it lasts; so is a listen.
  const stream =
    asked.kind === "stream" && request.method === "GET" ? { id: null } : listenStream(asked);
  await admitCalls(ctx, calls, releases, stream);
  if (asked.kind === "refused") return fail(asked.failure);
  if (asked.kind === "not_json") {
    ctx.refused("deny_input", "rpc_error");
    return Response.json(
      { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } },
      { status: 400 },
    );
  }
  // The door's own timers and upstream requests follow the agent's exchange (`ctx.signal`).
  const body = asked.kind === "messages" ? asked.body : undefined;
  return serveDoor(underSignal(request, ctx.signal), ctx, backend, body);
}

/** The handler that serves hot-path requests from the operations table, for `ctx`. */
export function operationsHandler(ctx: RequestContext): FastHandler {
  return (request, relay, signal) => {
    const outcome = ctx.outcomeFor(request.id);
    if (request.method === "tools/list") return OPERATIONS["tools/list"]({ ctx, outcome, signal });
    const params = {
      name: request.name ?? "",
      ...(request.arguments === undefined ? {} : { arguments: request.arguments }),
      ...(request.trace === undefined ? {} : { _meta: request.trace }),
    };
    return OPERATIONS["tools/call"]({ ctx, outcome, signal, relay }, params);
  };
}

/**
 * Notes each message of the body in `ctx`, so that each leaves its own record: its method, and
 * for a call the tool as the agent asked for it (kept when the call is refused; the operation
 * replaces it with the backend's tool when it routes the call).
 */
function noteMessages(
  ctx: RequestContext,
  messages: readonly Message[],
  batch: boolean,
  naming: Naming,
): void {
  ctx.batch = batch;
  for (const message of messages) {
    const outcome = ctx.noteMessage(methodLabel(message.method), message.id);
    if (message.call) {
      const { server, tool } = naming(message.call.name);
      outcome.server = server;
      outcome.tool = tool;
    }
  }
}

/**
 * A call's tool as the agent asked for it on /mcp: split into server and tool when the prefix
 * names a server the gateway has, else the whole name, with no server.
 */
function requestedTool(
  config: GatewayConfig,
  name: string,
): { server: string | null; tool: string } {
  const target = splitToolName(name);
  if (target && config.backends.has(target.server)) {
    return { server: target.server, tool: target.tool.slice(0, NAME_LIMIT) };
  }
  return { server: null, tool: name.slice(0, NAME_LIMIT) };
}

/**
 * The request's audit records, made of the context's outcomes: one per message of the body (the
 * message's own outcome first, then the request's, for what holds for all of them), or one for a
 * request without messages.
 */
function recordsOf(ctx: RequestContext, request: AuditRecord): AuditRecord[] {
  const whole = ctx.outcome;
  const made = (outcome: Outcome): AuditRecord => {
    const result = outcome.result === "ok" ? whole.result : outcome.result;
    return {
      ...request,
      server: outcome.server ?? whole.server,
      tool: outcome.tool ?? whole.tool,
      decision: outcome.decision === "allow" ? whole.decision : outcome.decision,
      outcome: result === "ok" && request.status >= 400 ? `http_${request.status}` : result,
    };
  };
  if (ctx.messages.length === 0) return [made(whole)];
  return ctx.messages.map(({ method, outcome }, index) => ({
    ...made(outcome),
    method,
    message_index: ctx.batch ? index : null,
  }));
}

/**
 * The `subscriptions/listen` a request opens a long-lived stream with: a request of that one
 * message (a batch is answered at once, never with a listen stream).
 */
function listenStream(asked: Asked): Message | undefined {
  if (asked.kind !== "messages" || Array.isArray(asked.body)) return undefined;
  const [message] = asked.envelope.messages;
  return message?.method === "subscriptions/listen" ? message : undefined;
}

/**
 * Asks the agent's gate to admit the request: its rate, for each call the tool's rate and a
 * concurrency slot, and a stream lease when it opens a long-lived `stream`, all given back by the
 * releases once the answer has ended. Refusal throws.
 */
async function admitCalls(
  ctx: RequestContext,
  calls: { id: RequestId | null; name: string }[],
  releases: (() => Promise<void>)[],
  stream?: { id: RequestId | null },
): Promise<void> {
  const { config, agent } = ctx;
  const admitted = await admit(ctx.bindings.AGENT_GATE, agent, {
    rate: { limit: config.agentRatePerMinute, windowMs: RATE_WINDOW_MS },
    toolRate: { limit: config.toolRatePerMinute, windowMs: RATE_WINDOW_MS },
    calls: calls.map((call) =>
      config.rateLimitedTools.has(call.name) ? { limitedTool: call.name } : {},
    ),
    maxInFlight: config.maxConcurrentCalls,
    leaseMs: config.backendTimeoutMs + 5_000,
    streams: stream ? 1 : 0,
    maxStreams: config.maxStreams,
    streamLeaseMs: STREAM_LEASE_MS,
  });
  if (admitted.ok) {
    releases.push(admitted.release);
    return;
  }
  const { refusal, retryAfterSeconds } = admitted;
  const refused = { kind: "rate_limited", refusal, retryAfterSeconds } as const;
  if (refusal === "rate") {
    fail({ ...refused, message: `Agent ${agent} is over its request rate`, id: null });
  }
  if (refusal === "tool_rate") {
    const call = calls.find((candidate) => candidate.name === admitted.tool);
    fail({
      ...refused,
      message: `Agent ${agent} is over its rate for ${admitted.tool}`,
      id: call?.id ?? null,
    });
  }
  if (refusal === "streams") {
    fail({
      ...refused,
      message: `Agent ${agent} already has ${admitted.open} streams open (limit ${config.maxStreams})`,
      id: stream?.id ?? null,
    });
  }
  fail({
    ...refused,
    message: `Agent ${agent} already has ${admitted.inFlight} calls in flight (limit ${config.maxConcurrentCalls})`,
    id: calls.length === 1 ? (calls[0]?.id ?? null) : null,
  });
}

/** What the audit record says the gateway decided, for a refusal. */
function decisionOf(failure: Failure): Parameters<RequestContext["refused"]> {
  switch (failure.kind) {
    case "invalid_request":
    case "body_too_large":
      return ["deny_input"];
    case "insufficient_scope":
      return ["deny_scope"];
    case "rate_limited":
      return [
        failure.refusal === "concurrency" || failure.refusal === "streams"
          ? "deny_concurrency"
          : "deny_rate",
      ];
    default:
      return ["allow"];
  }
}
