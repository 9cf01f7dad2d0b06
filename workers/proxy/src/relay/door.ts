/**
 * A per-server door: `/servers/<id>/mcp` relays an agent's MCP exchange with one backend, under
 * the backend's own names, as transparently as the policy allows.
 *
 * Where `/mcp` is one MCP server built from many backends, a door is the backend itself seen
 * through the gateway: the same token, policy, limits and audit (the pipeline runs before this
 * module), and otherwise the backend's protocol as it speaks it. The agent's `initialize` reaches
 * the backend, so the backend knows the agent's capabilities and answers for them; the backend's
 * requests to the agent (sampling, elicitation, roots) and its notifications travel on the SSE
 * streams they came on; the agent's answers go back on the same upstream session whichever
 * isolate they reach, because the session travels with the agent, sealed (`core/seal.ts`); event
 * ids and `retry` pass through, so `Last-Event-ID` resumes a stream at the backend. What the
 * policy hides or seals, message by message, is `screen.ts`.
 *
 * The gateway's own part: a request the backend leaves unanswered for `backendTimeoutMs` (no
 * event at all in that time) is cancelled upstream with `notifications/cancelled` and answered
 * "timed out", and the backend's questions to the agent on that stream are withdrawn with
 * `notifications/cancelled` of their own; a backend that cannot be reached is "unavailable", per
 * request.
 */

import { fetchFor } from "../backend-side/caller.ts";
import { MODERN_REVISION } from "../backend-side/direct.ts";
import type { RequestContext } from "../context.ts";
import type { BackendSpec } from "../core/config.ts";
import type { RequestId } from "../core/envelope.ts";
import { isJsonObject } from "../core/json.ts";
import { open, seal, stateToSeal } from "../core/seal.ts";
import { sessionNotFound, timedOut, timedOutResult, unavailableResult } from "../errors.ts";
import { numberingFor, parseLoggedId, resumeLogged } from "./resume.ts";
import {
  FOREIGN_STATE,
  idOf,
  type JsonRpcError,
  methodOf,
  screenInbound,
  screenResult,
  type Viewer,
  withRequestState,
} from "./screen.ts";
import { relaySse } from "./sse.ts";

/**
 * Request headers the backend needs from the agent's request, passed on unchanged: besides these,
 * every `mcp-*` header (2026-07-28 repeats the method and name there) but the session's.
 */
const PASSED_UP = ["accept", "content-type", "last-event-id", "traceparent", "tracestate"];
/** Response headers the agent needs from the backend's response. */
const PASSED_DOWN = ["content-type", "cache-control", "mcp-protocol-version"];

const SESSION_HEADER = "mcp-session-id";

type Answer = { jsonrpc: "2.0"; id: RequestId | null } & (
  | { result: Record<string, unknown> }
  | { error: JsonRpcError }
);

/** One door's exchange: the request context, the backend, and what the agent asked for. */
class Exchange {
  readonly viewer: Viewer;
  /** The request id and method of each request forwarded and not yet answered. */
  readonly outstanding = new Map<RequestId, string>();
  /**
   * The ids of the backend's own requests to the agent (sampling, elicitation, roots) relayed on
   * this stream. Their answers come back on other POSTs, so the gateway never learns which are
   * still open; it only withdraws them all when it ends the stream itself.
   */
  readonly asked = new Set<RequestId>();
  /**
   * The backend's last message was a question to the agent: until it says more, the wait is the
   * agent's (`agentAnswerTimeoutMs`), not the backend's.
   */
  private awaitingAgent: string | undefined;
  /** Whether the backend numbered its events: then a dropped stream can be resumed. */
  resumable = false;
  private upstreamSession: string | undefined;
  readonly ctx: RequestContext;
  readonly backend: BackendSpec;

  constructor(ctx: RequestContext, backend: BackendSpec) {
    this.ctx = ctx;
    this.backend = backend;
    this.viewer = {
      policy: ctx.config.policy,
      agent: ctx.agent,
      server: backend.id,
      claims: ctx.identity.claims,
    };
  }

  get timeoutMs(): number {
    return this.ctx.config.backendTimeoutMs;
  }

  /** How long the stream may now be silent while requests are outstanding. */
  silenceMs(): number | undefined {
    if (this.outstanding.size === 0) return undefined;
    return this.awaitingAgent === undefined ? this.timeoutMs : this.ctx.config.agentAnswerTimeoutMs;
  }

  /** Opens the agent's session id; false when it is not one this gateway sealed for it here. */
  async openSession(header: string | null): Promise<boolean> {
    if (header === null) return true;
    const opened = await open(this.ctx.config.sealKey, this.binding("session"), header);
    this.upstreamSession = opened;
    return opened !== undefined;
  }

  binding(kind: "session" | "request_state") {
    return { agent: this.ctx.agent, server: this.backend.id, kind } as const;
  }

  /**
   * The headers of a request to the backend: the agent's protocol headers. Who is calling is
   * added per request by `fetchFor` (the proxy's assertion).
   */
  upstreamHeaders(from: Headers): Headers {
    const headers = new Headers();
    for (const [name, value] of from) {
      if (PASSED_UP.includes(name) || (name.startsWith("mcp-") && name !== SESSION_HEADER)) {
        headers.set(name, value);
      }
    }
    if (this.upstreamSession !== undefined) headers.set(SESSION_HEADER, this.upstreamSession);
    return headers;
  }

  /** The agent's copy of the backend's response headers, its session id sealed. */
  async downstreamHeaders(from: Headers): Promise<Headers> {
    const headers = new Headers();
    for (const name of PASSED_DOWN) {
      const value = from.get(name);
      if (value !== null) headers.set(name, value);
    }
    const session = from.get(SESSION_HEADER);
    if (session !== null) {
      headers.set(
        SESSION_HEADER,
        await seal(this.ctx.config.sealKey, this.binding("session"), session),
      );
    }
    return headers;
  }

  fetch(init: RequestInit): Promise<Response> {
    return fetchFor(this.backend, this.ctx)(this.backend.url.href, init);
  }

  /** A message from the backend, as the agent may see it; undefined when it goes on unchanged. */
  async screenOut(message: unknown): Promise<unknown> {
    if (!isJsonObject(message)) return undefined;
    const id = idOf(message);
    const asking = methodOf(message);
    this.awaitingAgent = id !== undefined ? asking : undefined;
    if (asking !== undefined) {
      if (id !== undefined) this.asked.add(id);
      return undefined;
    }
    const method = id === undefined ? undefined : this.outstanding.get(id);
    if (id !== undefined) this.outstanding.delete(id);
    if (!isJsonObject(message.result)) {
      if ("error" in message && method !== undefined) this.ctx.outcomeFor(id).ended("rpc_error");
      return undefined;
    }
    let result = message.result;
    if (method === "tools/call" && result.isError === true) {
      this.ctx.outcomeFor(id).ended("tool_error");
    }
    const screened = screenResult(this.viewer, method, result);
    if (screened) result = screened;
    const state = stateToSeal(result);
    if (state !== undefined) {
      result = {
        ...result,
        requestState: await seal(this.ctx.config.sealKey, this.binding("request_state"), state),
      };
    }
    return result === message.result ? undefined : { ...message, result };
  }

  /**
   * Answers for every request still outstanding, after a timeout or a failure to connect. A
   * timeout while the backend waited on the agent's answer says so: the agent was the silent one.
   */
  failOutstanding(how: "timeout" | "unavailable", detail: string): Answer[] {
    const server = this.backend.id;
    const question = how === "timeout" ? this.awaitingAgent : undefined;
    const result = how === "timeout" ? "backend_timeout" : "backend_unavailable";
    this.ctx.ended(result);
    return [...this.outstanding].map(([id, method]): Answer => {
      this.ctx.outcomeFor(id).ended(result);
      if (question !== undefined) {
        const seconds = Math.round(this.ctx.config.agentAnswerTimeoutMs / 100) / 10;
        const text = `No answer from the agent to ${server}'s ${question} after ${seconds} s; the call was cancelled.`;
        return method === "tools/call"
          ? { jsonrpc: "2.0", id, result: { isError: true, content: [{ type: "text", text }] } }
          : { jsonrpc: "2.0", id, error: { code: -32603, message: text } };
      }
      if (method === "tools/call") {
        const result =
          how === "timeout"
            ? timedOutResult(server, this.timeoutMs)
            : unavailableResult(server, detail);
        return { jsonrpc: "2.0", id, result };
      }
      const message =
        how === "timeout"
          ? timedOut(server, this.timeoutMs)
          : `Server ${server} is unavailable (${detail})`;
      return { jsonrpc: "2.0", id, error: { code: -32603, message } };
    });
  }

  /**
   * Withdraws the backend's requests to the agent on a stream the gateway ends: the backend, told
   * the call is cancelled, has given up on them, but its own `notifications/cancelled` would come
   * on the stream the gateway just closed. The agent can close the form it opened, or stop
   * sampling; one for a request it already answered is ignored (2025-11-25 basic/utilities/
   * cancellation: a cancellation for an unknown or finished request may be ignored).
   */
  withdrawAsked(reason: string): unknown[] {
    return [...this.asked].map((requestId) => ({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId, reason },
    }));
  }

  /** Tells the backend to stop working on what is outstanding (after the agent's request ends). */
  cancelOutstanding(reason: string, headers: Headers): void {
    const ids = [...this.outstanding.keys()];
    if (ids.length === 0) return;
    const up = new Headers(headers);
    up.set("content-type", "application/json");
    up.set("accept", "application/json, text/event-stream");
    up.delete("last-event-id");
    const cancel = async () => {
      for (const requestId of ids) {
        const body = JSON.stringify({
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId, reason },
        });
        const response = await this.fetch({ method: "POST", headers: up, body }).catch(() => null);
        await response?.body?.cancel().catch(() => {});
      }
    };
    this.ctx.defer(cancel());
  }
}

/** A JSON response with the JSON-RPC answers, one or a batch. */
function answer(answers: unknown[], batch: boolean, headers = new Headers()): Response {
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(batch ? answers : answers[0]), { status: 200, headers });
}

function httpError(status: number, message: string, code = -32600): Response {
  return Response.json({ jsonrpc: "2.0", id: null, error: { code, message } }, { status });
}

/**
 * Serves one request to a door. `body` is the parsed JSON of a POST (the pipeline has read and
 * checked it), undefined for GET and DELETE.
 */
export async function serveDoor(
  request: Request,
  ctx: RequestContext,
  backend: BackendSpec,
  body: unknown,
): Promise<Response> {
  const exchange = new Exchange(ctx, backend);
  if (!(await exchange.openSession(request.headers.get(SESSION_HEADER)))) {
    // As a server answers a session it does not know: the agent starts a new one.
    return sessionNotFound();
  }
  const headers = exchange.upstreamHeaders(request.headers);
  if (request.method !== "POST") return relayStream(exchange, request, headers);

  const batch = Array.isArray(body);
  const messages: unknown[] = batch ? body : [body];
  const forward: unknown[] = [];
  const answers: Answer[] = [];
  for (const message of messages) {
    const inbound = screenInbound(exchange.viewer, message);
    if (inbound.action === "drop") continue;
    if (inbound.action === "answer") {
      const answer = "result" in inbound ? { result: inbound.result } : { error: inbound.error };
      answers.push({ jsonrpc: "2.0", id: inbound.id, ...answer });
      if (methodOf(message) === "tools/call") {
        const outcome = ctx.outcomeFor(inbound.id ?? undefined);
        outcome.refused("deny_policy", "result" in inbound ? "tool_error" : "rpc_error");
      }
      continue;
    }
    let sent = inbound.message;
    if (inbound.action === "open_state") {
      const state = await open(
        ctx.config.sealKey,
        exchange.binding("request_state"),
        inbound.sealed,
      );
      if (state === undefined) {
        answers.push({ jsonrpc: "2.0", id: idOf(message) ?? null, error: FOREIGN_STATE });
        ctx.outcomeFor(idOf(message)).refused("deny_input", "rpc_error");
        continue;
      }
      sent = withRequestState(inbound.message, state);
    }
    const id = idOf(sent);
    const method = methodOf(sent);
    if (id !== undefined && method !== undefined) exchange.outstanding.set(id, method);
    forward.push(sent);
  }
  if (forward.length === 0) return answer(answers, batch);

  // The backend has `backendTimeoutMs` to start answering; then each event restarts the clock.
  const connecting = new AbortController();
  const timer = setTimeout(() => connecting.abort(), exchange.timeoutMs);
  const gone = () => connecting.abort();
  request.signal.addEventListener("abort", gone);
  let response: Response;
  try {
    response = await exchange.fetch({
      method: "POST",
      headers,
      body: JSON.stringify(batch ? forward : forward[0]),
      signal: connecting.signal,
    });
  } catch (e) {
    const timedOut = !request.signal.aborted && connecting.signal.aborted;
    if (timedOut) exchange.cancelOutstanding("timed out at the gateway", headers);
    const failed = exchange.failOutstanding(
      timedOut ? "timeout" : "unavailable",
      e instanceof Error ? e.message : String(e),
    );
    if (failed.length + answers.length === 0) {
      return httpError(502, `Server ${backend.id} is unavailable`, -32603);
    }
    return answer([...answers, ...failed], batch || failed.length + answers.length > 1);
  } finally {
    clearTimeout(timer);
    request.signal.removeEventListener("abort", gone);
  }

  const down = await exchange.downstreamHeaders(response.headers);
  const type = response.headers.get("content-type") ?? "";
  if (response.status >= 500 || response.status === 401 || response.status === 403) {
    await response.body?.cancel().catch(() => {});
    const failed = exchange.failOutstanding("unavailable", `HTTP ${response.status}`);
    if (failed.length + answers.length === 0) {
      return httpError(
        502,
        `Server ${backend.id} is unavailable (HTTP ${response.status})`,
        -32603,
      );
    }
    return answer([...answers, ...failed], batch || failed.length + answers.length > 1, down);
  }
  if (response.status === 202 || !response.body) {
    if (answers.length > 0) return answer(answers, batch, down);
    return new Response(null, { status: response.status, headers: down });
  }
  if (type.includes("text/event-stream")) {
    const legacy = request.headers.get("mcp-protocol-version") !== MODERN_REVISION;
    const asking = exchange.outstanding.size > 0;
    const stream = relaySse(
      response.body,
      {
        answered: () => asking && exchange.outstanding.size === 0,
        onMessage: (message, eventId) => {
          if (eventId !== undefined) exchange.resumable = true;
          return exchange.screenOut(message);
        },
        silenceMs: () => exchange.silenceMs(),
        onSilence: async () => {
          exchange.cancelOutstanding("timed out at the gateway", headers);
          const withdrawn = exchange.withdrawAsked("timed out at the gateway");
          return [...withdrawn, ...exchange.failOutstanding("timeout", "")];
        },
        onEnd: (how) => {
          // An agent that leaves a stream it cannot resume has abandoned its requests.
          if (how === "cancelled" && !exchange.resumable) {
            exchange.cancelOutstanding("the agent went away", headers);
          }
        },
        // 2025-era agents resume dropped streams; 2026-07-28 has no resumption to offer.
        ...(legacy ? { numbering: numberingFor(ctx) } : {}),
      },
      answers,
    );
    return new Response(stream, { status: response.status, headers: down });
  }
  if (response.status >= 400 || !type.includes("application/json")) {
    // The backend's own refusal of the request (a bad session, a malformed message): as it is.
    return new Response(response.body, { status: response.status, headers: down });
  }
  let parsed: unknown;
  try {
    parsed = await response.json();
  } catch {
    const failed = exchange.failOutstanding("unavailable", "an answer that is not JSON");
    return answer([...answers, ...failed], batch || failed.length + answers.length > 1, down);
  }
  const replies: unknown[] = [];
  for (const reply of Array.isArray(parsed) ? parsed : [parsed]) {
    replies.push((await exchange.screenOut(reply)) ?? reply);
  }
  return answer([...answers, ...replies], batch, down);
}

/** GET (the agent's stream of the backend's own messages) and DELETE (a session's end). */
async function relayStream(
  exchange: Exchange,
  request: Request,
  headers: Headers,
): Promise<Response> {
  const resumeFrom = request.method === "GET" ? request.headers.get("last-event-id") : null;
  const logged = resumeFrom === null ? undefined : parseLoggedId(resumeFrom);
  if (logged) return resumeLogged(exchange.ctx, logged);
  let response: Response;
  try {
    response = await exchange.fetch({ method: request.method, headers, signal: request.signal });
  } catch (e) {
    exchange.ctx.ended("backend_unavailable");
    return httpError(
      502,
      `Server ${exchange.backend.id} is unavailable (${e instanceof Error ? e.message : String(e)})`,
      -32603,
    );
  }
  const down = await exchange.downstreamHeaders(response.headers);
  const type = response.headers.get("content-type") ?? "";
  if (!response.body || !type.includes("text/event-stream")) {
    return new Response(response.body, { status: response.status, headers: down });
  }
  const stream = relaySse(response.body, {
    onMessage: (message) => exchange.screenOut(message),
    silenceMs: () => undefined,
    onSilence: async () => [],
    onEnd: () => {},
  });
  return new Response(stream, { status: response.status, headers: down });
}
