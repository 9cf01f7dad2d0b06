/**
 * Backend requests without an SDK client object.
 *
 * Once a backend has told the gateway, through the SDK's `server/discover`, that it serves the
 * 2026-07-28 revision, every request to it is one stateless POST of a fixed shape. This module
 * sends that POST as the SDK client would (the same headers, the same `_meta` envelope), reads
 * the answer (a JSON body, or an SSE stream whose notifications come first), and checks the result
 * against the SDK's own schema. What it saves is the client and transport built and dropped per
 * call: about 0.35 ms of CPU in Node, and their garbage (BENCHMARKS.md). `backends.ts` decides
 * when a request may go this way; anything unusual goes through the SDK client instead.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  isSpecType,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
} from "@modelcontextprotocol/server";
import type { QuestionRoute } from "../core/agent-session.ts";
import { isJsonObject } from "../core/json.ts";
import { GatewayError } from "../errors.ts";

/**
 * What a direct request needs of a backend (`BackendSpec` in `core/config.ts`, with its fetch,
 * which adds who is calling: `fetchFor`).
 */
export interface DirectBackend {
  id: string;
  url: URL;
  fetch: (input: URL, init: RequestInit) => Promise<Response>;
}

/** The revision a direct request speaks. */
export const MODERN_REVISION = "2026-07-28";

/** The JSON-RPC id of every direct request: each POST is its own exchange, as with the SDK. */
const REQUEST_ID = 0;

/** The JSON-RPC error a 2026-07-28 server answers when headers and body disagree. */
export const HEADER_MISMATCH = -32_020;

/** What a backend says while a call runs, passed on to the agent as it happens. */
export interface Relay {
  progress?: (progress: { progress: number; total?: number; message?: string }) => void;
  log: (params: Record<string, unknown>) => void;
  /**
   * Puts a backend's question (sampling, elicitation, roots) to the agent, on the call's stream;
   * the agent's answer comes back on another request, to `route` (`backend-side/questions.ts`).
   * Present only where the agent's session can answer (a 2025 session on `/mcp`).
   */
  ask?: (
    question: { method: string; params: Record<string, unknown> },
    route: QuestionRoute,
  ) => void;
}

export interface DirectOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  relay?: Relay;
  clientInfo: { name: string; version: string };
  /** What the agent can answer (a 2026-07-28 agent's own declaration), declared for it. */
  clientCapabilities?: Record<string, unknown>;
}

/** A backend answered with an HTTP error and no JSON-RPC error in its body. */
export class BackendHttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "BackendHttpError";
    this.status = status;
  }
}

// The SDK's schema checks for the results a direct request may carry; others are not sent directly.
const RESULT_CHECKS: Record<string, (value: unknown) => boolean> = {
  "tools/call": isSpecType.CallToolResult,
  "tools/list": isSpecType.ListToolsResult,
  "resources/list": isSpecType.ListResourcesResult,
  "resources/templates/list": isSpecType.ListResourceTemplatesResult,
  "resources/read": isSpecType.ReadResourceResult,
  "prompts/list": isSpecType.ListPromptsResult,
  "prompts/get": isSpecType.GetPromptResult,
};

// A header value the SDK sends as it is (anything else it Base64-encodes: left to the SDK).
const PLAIN_HEADER_VALUE = /^[A-Za-z0-9_.:/+~@-]{1,200}$/;

/** The `Mcp-Name` header a 2026-07-28 request carries for `method`, if it has one. */
function nameHeaderOf(method: string, params: Record<string, unknown>): unknown {
  if (method === "tools/call" || method === "prompts/get") return params.name;
  if (method === "resources/read") return params.uri;
  return undefined;
}

/** Whether `method` with `params` can be sent directly (else the SDK client sends it). */
export function sendableDirectly(method: string, params: Record<string, unknown>): boolean {
  if (!Object.hasOwn(RESULT_CHECKS, method)) return false;
  const name = nameHeaderOf(method, params);
  return name === undefined || (typeof name === "string" && PLAIN_HEADER_VALUE.test(name));
}

/**
 * Sends one request to a 2026-07-28 backend and resolves with its result (without the wire's
 * `resultType`). A JSON-RPC error rejects as `ProtocolError`; the deadline passing as a
 * `backend_timeout` `GatewayError`, once the request has been cancelled (its stream closed); a
 * transport failure, an HTTP error or a malformed answer with an `Error` saying which.
 */
export async function directRequest(
  backend: DirectBackend,
  method: string,
  params: Record<string, unknown>,
  options: DirectOptions,
): Promise<Record<string, unknown>> {
  const { relay } = options;
  const meta: Record<string, unknown> = {
    ...(params._meta as Record<string, unknown> | undefined),
    ...(relay?.progress ? { progressToken: REQUEST_ID } : {}),
    [PROTOCOL_VERSION_META_KEY]: MODERN_REVISION,
    [CLIENT_INFO_META_KEY]: options.clientInfo,
    [CLIENT_CAPABILITIES_META_KEY]: options.clientCapabilities ?? {},
  };
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": MODERN_REVISION,
    "mcp-method": method,
  };
  const name = nameHeaderOf(method, params);
  if (typeof name === "string") headers["mcp-name"] = name;

  const deadline = new Deadline(backend.id, options.timeoutMs, options.signal);
  try {
    const response = await backend.fetch(backend.url, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: REQUEST_ID,
        method,
        params: { ...params, _meta: meta },
      }),
      signal: deadline.signal,
    });
    const message = await answerOf(backend, response, relay, deadline);
    return resultOf(method, message);
  } catch (e) {
    throw deadline.explain(e);
  } finally {
    deadline.clear();
  }
}

/** The JSON-RPC response in a backend's HTTP answer, relaying the notifications before it. */
async function answerOf(
  backend: DirectBackend,
  response: Response,
  relay: Relay | undefined,
  deadline: Deadline,
): Promise<Record<string, unknown>> {
  const type = response.headers.get("content-type") ?? "";
  if (type.startsWith("text/event-stream") && response.ok && response.body) {
    return readEvents(response.body, relay, deadline);
  }
  if (type.startsWith("application/json")) {
    const text = await response.text();
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      message = undefined;
    }
    // A 4xx answer that carries a JSON-RPC error is the backend's answer, like a 200 one.
    if (isJsonObject(message) && (response.ok || isJsonObject(message.error))) return message;
  } else {
    await response.body?.cancel().catch(() => {});
  }
  throw new BackendHttpError(
    response.status,
    response.ok
      ? `Unexpected answer from ${backend.id}: HTTP ${response.status}, ${type || "no content type"}`
      : `HTTP ${response.status} from ${backend.id}`,
  );
}

/** Reads an SSE answer up to the response to our request; notifications go to `relay`. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  relay: Relay | undefined,
  deadline: Deadline,
): Promise<Record<string, unknown>> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error("The backend ended its answer without a response");
      buffer += value.includes("\r") ? value.replace(/\r\n?/g, "\n") : value;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const message = eventMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (!message) continue;
        if ("id" in message && ("result" in message || "error" in message)) {
          if (message.id === REQUEST_ID) return message;
          continue;
        }
        if (typeof message.method === "string" && isJsonObject(message.params)) {
          notify(message.method, message.params, relay, deadline);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** The JSON-RPC message in one SSE event, or undefined for comments, pings and junk. */
function eventMessage(event: string): Record<string, unknown> | undefined {
  let data = "";
  for (const line of event.split("\n")) {
    if (line.startsWith("data:")) {
      data += (data ? "\n" : "") + line.slice(line.startsWith("data: ") ? 6 : 5);
    }
  }
  if (!data) return undefined;
  try {
    const message: unknown = JSON.parse(data);
    return isJsonObject(message) ? message : undefined;
  } catch {
    return undefined;
  }
}

function notify(
  method: string,
  params: Record<string, unknown>,
  relay: Relay | undefined,
  deadline: Deadline,
): void {
  if (method === "notifications/progress" && params.progressToken === REQUEST_ID) {
    // A backend that keeps reporting progress is working, not hung.
    deadline.restart();
    if (relay?.progress && typeof params.progress === "number") {
      relay.progress({
        progress: params.progress,
        ...(typeof params.total === "number" ? { total: params.total } : {}),
        ...(typeof params.message === "string" ? { message: params.message } : {}),
      });
    }
  } else if (method === "notifications/message") {
    relay?.log(params);
  }
}

/** The result of a JSON-RPC response, checked as the SDK client checks a 2026-07-28 result. */
function resultOf(method: string, message: Record<string, unknown>): Record<string, unknown> {
  const { error } = message;
  if (isJsonObject(error)) {
    const code = typeof error.code === "number" ? error.code : -32_603;
    const text = typeof error.message === "string" ? error.message : "Backend error";
    throw new ProtocolError(code, text, error.data);
  }
  const raw = message.result;
  // A request for more input goes back as it is: the operation decides (`operations/tools.ts`).
  if (isJsonObject(raw) && raw.resultType === "input_required" && method === "tools/call") {
    return raw;
  }
  if (!isJsonObject(raw) || raw.resultType !== "complete") {
    throw new Error(`Invalid result for ${method}: not a complete 2026-07-28 result`);
  }
  const { resultType: _, ...result } = raw;
  if (!RESULT_CHECKS[method]?.(result)) {
    throw new Error(`Invalid result for ${method}: it does not match the MCP schema`);
  }
  return result;
}

/**
 * The request's time limit, restartable by progress, ending early when the caller aborts. Either
 * way the request's fetch is aborted, which closes its stream: in the 2026-07-28 revision that is
 * how a client over HTTP cancels a request, and no `notifications/cancelled` is sent (spec,
 * basic/patterns/cancellation, "Transport-Specific Cancellation"). Nor could one name it: every
 * direct request has the same id.
 */
class Deadline {
  private readonly controller = new AbortController();
  private readonly server: string;
  private readonly ms: number;
  private readonly caller: AbortSignal | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timedOut = false;
  private readonly onAbort = () => this.controller.abort(this.caller?.reason);

  constructor(server: string, ms: number, caller: AbortSignal | undefined) {
    this.server = server;
    this.ms = ms;
    this.caller = caller;
    if (caller?.aborted) this.controller.abort(caller.reason);
    else caller?.addEventListener("abort", this.onAbort, { once: true });
    this.restart();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  restart(): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(
        new GatewayError({ kind: "backend_timeout", server: this.server, timeoutMs: this.ms }),
      );
    }, this.ms);
  }

  clear(): void {
    this.stop();
    this.caller?.removeEventListener("abort", this.onAbort);
  }

  private stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** The error to report for `e`: the timeout or the caller's reason when one of them ended it. */
  explain(e: unknown): unknown {
    if (this.timedOut) return this.controller.signal.reason;
    if (this.caller?.aborted) return this.caller.reason ?? e;
    return e;
  }
}
