/**
 * One agent request as raw HTTP, and what an agent can observe of its answer: for the suites that
 * compare whole answers between the gateway's settings (`fast-path.test.ts`, `parity.test.ts`).
 */
import { LEGACY_VERSION, ORIGIN } from "./client.ts";

export const MODERN = "2026-07-28";
export type Era = "modern" | "legacy";

/** The JSON-RPC id of every request these suites send. */
export const ID = 41;

/** A POST to /mcp as an SDK client of `era` sends it, with the headers 2026-07-28 asks for. */
export function mcpRequest(
  era: Era,
  bearer: string,
  method: string,
  params: Record<string, unknown>,
): Request {
  const modern = era === "modern";
  const meta = modern
    ? {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": { name: "parity", version: "1" },
        "io.modelcontextprotocol/clientCapabilities": {},
      }
    : undefined;
  const merged = meta ? { ...params, _meta: { ...(params._meta as object), ...meta } } : params;
  const name = method === "resources/read" ? params.uri : params.name;
  return new Request(`${ORIGIN}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${bearer}`,
      "mcp-protocol-version": modern ? MODERN : LEGACY_VERSION,
      ...(modern ? { "mcp-method": method } : {}),
      ...(modern && typeof name === "string" ? { "mcp-name": name } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: ID, method, params: merged }),
  });
}

export type Message = {
  id?: unknown;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
};

/** What an agent can observe of an answer: status, media type, and every JSON-RPC message. */
export async function observed(response: Response) {
  const type = (response.headers.get("content-type") ?? "").split(";")[0];
  const text = await response.text();
  const messages: Message[] =
    type === "text/event-stream"
      ? text
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((line) => JSON.parse(line.slice(6)))
      : [JSON.parse(text)];
  return { status: response.status, type, messages };
}
