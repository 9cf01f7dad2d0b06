/**
 * Raw JSON-RPC over HTTP, the way a stateless 2025-11-25 client speaks Streamable HTTP: one POST
 * per request, no `initialize`, `MCP-Protocol-Version` on every request, keep-alive connections.
 * No MCP SDK here, so the client's own cost stays small and identical for proxy and backend.
 */
import { Agent, request } from "node:http";
import type { Endpoint } from "./endpoint.ts";

export const PROTOCOL_VERSION = "2025-11-25";
/** The stateless revision: an envelope in each request's `_meta`, method and name in headers. */
export const MODERN_VERSION = "2026-07-28";

/** The headers of every benchmark request besides the endpoint's own. */
export const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": PROTOCOL_VERSION,
};

/** A tools/call request body, as wrk POSTs it. */
export const callBody = (name: string, args: object) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name, arguments: args },
  });

export interface RpcReply {
  status: number;
  contentType: string;
  /** The JSON-RPC response, from a JSON body or the SSE event that carries it. */
  message: { id?: unknown; result?: unknown; error?: { code: number; message: string } };
  /** Wall time from writing the request to the end of the body, in milliseconds. */
  ms: number;
}

/** A keep-alive client for one endpoint; `connections` bounds its sockets. */
export class RpcClient {
  readonly endpoint: Endpoint;
  readonly #agent: Agent;
  #nextId = 1;

  readonly #modern: boolean;

  /** `era` "2026-07-28" speaks that revision (the default is 2025-11-25, stateless). */
  constructor(
    endpoint: Endpoint,
    connections = 1,
    era: "2025-11-25" | "2026-07-28" = "2025-11-25",
  ) {
    this.endpoint = endpoint;
    this.#agent = new Agent({ keepAlive: true, maxSockets: connections });
    this.#modern = era === MODERN_VERSION;
  }

  /** Sends one request and reads the whole answer. Never throws for an HTTP or JSON-RPC error. */
  async call(method: string, params: unknown): Promise<RpcReply> {
    // Renewed outside the timed part, before every request: a backend takes an assertion once.
    if (this.endpoint.refresh) await this.endpoint.refresh();
    const id = this.#nextId++;
    const sent = this.#modern ? withEnvelope(params) : params;
    const body = JSON.stringify({ jsonrpc: "2.0", id, method, params: sent });
    const { url } = this.endpoint;
    const name = (params as { name?: unknown } | undefined)?.name;
    const headers = this.#modern
      ? {
          ...this.endpoint.headers,
          "mcp-protocol-version": MODERN_VERSION,
          "mcp-method": method,
          ...(typeof name === "string" ? { "mcp-name": name } : {}),
        }
      : this.endpoint.headers;
    const started = process.hrtime.bigint();
    const { status, contentType, text } = await new Promise<{
      status: number;
      contentType: string;
      text: string;
    }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          agent: this.#agent,
          headers: { ...MCP_HEADERS, ...headers, "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers["content-type"] ?? ""),
              text: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    return { status, contentType, message: parseReply(contentType, text, id), ms };
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** `params` with the 2026-07-28 per-request envelope in its `_meta`. */
function withEnvelope(params: unknown): Record<string, unknown> {
  const given = (params ?? {}) as Record<string, unknown>;
  return {
    ...given,
    _meta: {
      ...(given._meta as object | undefined),
      "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
      "io.modelcontextprotocol/clientInfo": { name: "mcpcp-bench", version: "0.1.0" },
      "io.modelcontextprotocol/clientCapabilities": {},
    },
  };
}

/** The JSON-RPC response with `id` from a JSON body or an SSE stream. */
export function parseReply(contentType: string, text: string, id: unknown): RpcReply["message"] {
  if (contentType.startsWith("text/event-stream")) {
    // SSE: events separated by blank lines; the response is the `data:` of one of them.
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      const message = JSON.parse(data) as RpcReply["message"];
      if (message.id === id) return message;
    }
    throw new Error(`no response with id ${String(id)} in the SSE stream: ${text.slice(0, 200)}`);
  }
  try {
    return JSON.parse(text) as RpcReply["message"];
  } catch {
    throw new Error(`not a JSON-RPC answer (${contentType}): ${text.slice(0, 200)}`);
  }
}

/** The text of a tool result's first content item, or why there is none. */
export function toolText(reply: RpcReply): string {
  const result = reply.message.result as
    | { content?: { type: string; text?: string }[]; isError?: boolean }
    | undefined;
  if (reply.message.error)
    return `JSON-RPC error ${reply.message.error.code}: ${reply.message.error.message}`;
  return result?.content?.[0]?.text ?? `no text content (HTTP ${reply.status})`;
}

/** Throws unless `reply` is an HTTP 200 with a JSON-RPC result (tool errors included). */
export function expectResult(reply: RpcReply, what: string): unknown {
  if (reply.status !== 200 || reply.message.error || reply.message.result === undefined) {
    throw new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.message).slice(0, 300)}`);
  }
  return reply.message.result;
}
