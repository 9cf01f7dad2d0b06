/**
 * The hot path: one well-formed `tools/call` or `tools/list` from an agent, answered without
 * building an SDK server and transport for it.
 *
 * An agent's request is recognised here only when it is exactly what the SDK's `createMcpHandler`
 * would route and serve without complaint: a single JSON-RPC request, classified by the SDK's own
 * `classifyInboundRequest`, with the standard headers matching the body. Everything else (batches,
 * notifications, sessions, `initialize`, every malformed or unusual request) goes to the SDK,
 * which owns those answers. A recognised request runs the same operations as the SDK server
 * (`operations/table.ts`), and its answer is framed the way the SDK frames it for the agent's era:
 *
 * - 2026-07-28: a JSON body, or an SSE stream once the backend says something before its result;
 *   the result stamped with `resultType`, cache hints on listings, and the gateway's `serverInfo`.
 * - 2025 (stateless): an SSE stream, opened at once, closing after the response; its events
 *   numbered as they are written when the pipeline hands it a `NumberedEvents`, so that an agent
 *   whose connection drops can resume it (`relay/resume.ts`), without the stream being parsed.
 *
 * The savings are what `BENCHMARKS.md` measured for the SDK server per request: about 0.2–0.5 ms
 * of CPU and its garbage. `FAST_PATH=off` turns it off; `test/workers/proxy/fast-path.test.ts`
 * and `parity.test.ts` hold both paths to the same answers.
 */
import {
  classifyInboundRequest,
  isJsonContentType,
  ProtocolError,
  SERVER_INFO_META_KEY,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/server";
import { MODERN_REVISION, type Relay } from "../backend-side/direct.ts";
import { type PlainRequest, parseEnvelope } from "../core/envelope.ts";
import { isJsonObject } from "../core/json.ts";
import { log } from "../core/log.ts";
import { traceContextOf } from "../core/trace.ts";
import { GatewayError, protocolError } from "../errors.ts";
import type { NumberedEvents } from "../relay/sse.ts";
import { SSE_HEADERS, sseMessage } from "./http.ts";

/** One request the hot path serves. */
export interface FastRequest {
  era: "modern" | "legacy";
  id: string | number;
  method: "tools/call" | "tools/list";
  /** For `tools/call`: the tool's (prefixed) name and its arguments. */
  name?: string;
  arguments?: Record<string, unknown>;
  /** The agent's progress token, when it asked for progress. */
  /** The W3C trace context in the request's `_meta`, which goes on to the backend. */
  trace?: Record<string, string>;
  progressToken?: string | number;
}

/** What the gateway does for a request: its result, or a thrown `ProtocolError`. */
export type FastHandler = (
  request: FastRequest,
  relay: Relay,
  signal: AbortSignal,
) => Promise<Record<string, unknown>>;

/** The gateway's identity on every 2026-07-28 result, as the SDK server stamps it. */
export interface ServerInfo {
  name: string;
  version: string;
}

/**
 * Whether the hot path can serve the envelope's plain request, sent with `headers`; what it would
 * serve if so. The envelope (`core/envelope.ts`) has checked the body's shape; the headers and
 * the era are checked here, with the SDK's own classifier.
 */
export function hotRequest(headers: Headers, plain: PlainRequest): FastRequest | undefined {
  if (headers.has("mcp-session-id") || !isJsonContentType(headers.get("content-type"))) {
    return undefined;
  }
  const accept = headers.get("accept") ?? "";
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
    return undefined;
  }
  const request: FastRequest = { era: "legacy", id: plain.id, method: plain.method };
  if (plain.progressToken !== undefined) request.progressToken = plain.progressToken;
  if (plain.name !== undefined) request.name = plain.name;
  if (plain.arguments !== undefined) request.arguments = plain.arguments;
  const trace = traceContextOf(plain.meta);
  if (trace !== undefined) request.trace = trace;

  const version = headers.get("mcp-protocol-version") ?? undefined;
  const methodHeader = headers.get("mcp-method") ?? undefined;
  const nameHeader = headers.get("mcp-name") ?? undefined;
  const route = classifyInboundRequest({
    httpMethod: "POST",
    protocolVersionHeader: version,
    mcpMethodHeader: methodHeader,
    mcpNameHeader: nameHeader,
    body: plain.body,
  });
  if (route.kind === "modern") {
    const exact =
      route.messageKind === "request" &&
      route.classification.revision === MODERN_REVISION &&
      version === MODERN_REVISION &&
      methodHeader === plain.method &&
      (plain.method === "tools/list" || nameHeader === request.name) &&
      // A log threshold asks for filtering the SDK server does: leave it to the SDK.
      !plain.logLevel;
    if (!exact) return undefined;
    request.era = "modern";
    return request;
  }
  if (route.kind === "legacy" && (version === undefined || SUPPORTED_VERSIONS.has(version))) {
    return request;
  }
  return undefined;
}

/** `hotRequest` for a raw body: what the pipeline decides, for tests and the benchmark. */
export function fastRequest(headers: Headers, body: unknown): FastRequest | undefined {
  const envelope = parseEnvelope(body);
  return envelope.ok && envelope.plain ? hotRequest(headers, envelope.plain) : undefined;
}

const SUPPORTED_VERSIONS = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

/**
 * Serves `request` with `handle`. `signal` ends the work early: the agent cancelled, or went away.
 * With `events`, a stream's events are numbered by it (and logged once the agent has left it).
 */
export function serveFast(
  request: FastRequest,
  handle: FastHandler,
  serverInfo: ServerInfo,
  signal: AbortSignal,
  events?: NumberedEvents,
): Promise<Response> {
  const exchange = new Exchange(request, serverInfo, signal, events);
  // 2025: the SDK opens the stream at once, and so do we, so that closing it cancels the call.
  if (request.era === "legacy") exchange.openStream();
  handle(request, exchange.relay, exchange.signal).then(
    (result) =>
      exchange.finish({ jsonrpc: "2.0", id: request.id, result: exchange.encode(result) }),
    (e: unknown) =>
      exchange.finish({
        jsonrpc: "2.0",
        id: request.id,
        error: errorOf(e, request, exchange.signal.aborted),
      }),
  );
  return exchange.answer;
}

/** The JSON-RPC error for what a handler threw, as the SDK server would send it. */
function errorOf(e: unknown, request: FastRequest, cancelled: boolean): Record<string, unknown> {
  if (e instanceof GatewayError || e instanceof ProtocolError) {
    const error = protocolError(e);
    // 2026-07-28 has no -32002 on the wire: a missing resource is invalid params there.
    const code = request.era === "modern" && error.code === -32_002 ? -32_602 : error.code;
    return {
      code,
      message: error.message,
      ...(error.data === undefined ? {} : { data: error.data }),
    };
  }
  // Unless the agent cancelled, not an answer the gateway meant to give: say so in the log.
  const message = e instanceof Error ? e.message : String(e);
  if (!cancelled) log("error", "handler_failed", { method: request.method, error: message });
  return { code: -32_603, message };
}

const encoder = new TextEncoder();

/** One agent exchange: buffers the answer until it must stream, then streams. */
class Exchange {
  readonly relay: Relay;
  private readonly request: FastRequest;
  private readonly serverInfo: ServerInfo;
  private readonly controller = new AbortController();
  private readonly events: NumberedEvents | undefined;
  private stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  private final: Record<string, unknown> | undefined;
  private streamed = false;
  private answered: ((response: Response) => void) | undefined;
  /** Stops listening to the agent's signal, once there is nothing left to abort. */
  private forget: () => void = () => {};
  /** The HTTP answer: a stream as soon as one is open, else the buffered JSON at the end. */
  readonly answer: Promise<Response>;

  constructor(
    request: FastRequest,
    serverInfo: ServerInfo,
    signal: AbortSignal,
    events: NumberedEvents | undefined,
  ) {
    this.request = request;
    this.serverInfo = serverInfo;
    this.events = events;
    if (signal.aborted) this.controller.abort(signal.reason);
    else {
      const onAbort = () => this.controller.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      this.forget = () => signal.removeEventListener("abort", onAbort);
    }
    this.answer = new Promise((resolve) => {
      this.answered = resolve;
    });
    const { progressToken } = request;
    this.relay = {
      ...(progressToken === undefined
        ? {}
        : {
            progress: (p) =>
              this.notify({ method: "notifications/progress", params: { ...p, progressToken } }),
          }),
      log: (params) => this.notify({ method: "notifications/message", params }),
    };
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The result as the agent's era has it on the wire. */
  encode(result: Record<string, unknown>): Record<string, unknown> {
    if (this.request.era === "legacy") return result;
    const stamped: Record<string, unknown> = { ...result };
    if (stamped.resultType === undefined) stamped.resultType = "complete";
    if (this.request.method === "tools/list") {
      // Tasks are not part of 2026-07-28: a tool's `execution` is dropped, as the SDK drops it.
      if (Array.isArray(stamped.tools)) {
        stamped.tools = stamped.tools.map((tool: unknown) => {
          if (!isJsonObject(tool) || !("execution" in tool)) return tool;
          const { execution: _, ...rest } = tool;
          return rest;
        });
      }
      if (!Number.isInteger(stamped.ttlMs) || (stamped.ttlMs as number) < 0) stamped.ttlMs = 0;
      if (stamped.cacheScope !== "private" && stamped.cacheScope !== "public") {
        stamped.cacheScope = "private";
      }
    }
    const meta = stamped._meta;
    if (meta === undefined) stamped._meta = { [SERVER_INFO_META_KEY]: this.serverInfo };
    else if (isJsonObject(meta) && meta[SERVER_INFO_META_KEY] === undefined) {
      stamped._meta = { ...meta, [SERVER_INFO_META_KEY]: this.serverInfo };
    }
    return stamped;
  }

  /** Sends a notification related to the request: streaming from now on. */
  private notify(message: { method: string; params: Record<string, unknown> }): void {
    if (this.final || this.controller.signal.aborted) return;
    // 2026-07-28: the first notification before the result turns the answer into a stream.
    const stream = this.stream ?? this.openStream();
    stream.enqueue(this.frame({ jsonrpc: "2.0", ...message }));
    this.keep(false);
  }

  /** One message as an SSE event, numbered when this stream is. */
  private frame(message: Record<string, unknown>): Uint8Array {
    if (!this.events) return sseMessage(message);
    return encoder.encode(this.events.event(JSON.stringify(message), "message"));
  }

  /** A numbered stream's events go to its log once the agent has left it (`NumberedEvents`). */
  private keep(closed: boolean): void {
    const flushed = this.events?.flush(closed);
    if (flushed) this.events?.numbering.defer(flushed.catch(() => {}));
  }

  /** Answers with a stream: whatever has been said so far, then the rest as it comes. */
  openStream(): ReadableStreamDefaultController<Uint8Array> {
    this.streamed = true;
    let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      // Called at once, by the constructor.
      start: (controller) => {
        stream = controller;
      },
      cancel: (reason) => {
        // The agent went away: the call's work stops, as with the SDK's transport.
        this.controller.abort(reason ?? new Error("The agent closed the stream"));
      },
    });
    if (!stream) throw new Error("ReadableStream did not start synchronously");
    this.stream = stream;
    this.answered?.(new Response(body, { headers: SSE_HEADERS }));
    return stream;
  }

  finish(message: Record<string, unknown>): void {
    this.final = message;
    this.forget();
    if (this.streamed) this.close();
    else {
      const body = encoder.encode(JSON.stringify(message));
      const headers = {
        "content-type": "application/json",
        "content-length": String(body.byteLength),
      };
      this.answered?.(new Response(body, { headers }));
    }
  }

  private close(): void {
    if (!this.stream || !this.final) return;
    try {
      this.stream.enqueue(this.frame(this.final));
      this.stream.close();
    } catch {
      // The agent already closed the stream.
    }
    this.keep(true);
    this.stream = undefined;
  }
}
