/**
 * The hot path's two halves in isolation: which requests it takes (everything else must reach the
 * SDK), and how it frames answers for each era. `test/workers/proxy/fast-path.test.ts` compares
 * whole answers with the SDK path's inside workerd.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import { describe, expect, it } from "vitest";
import {
  type FastHandler,
  type FastRequest,
  fastRequest,
  serveFast,
} from "../../workers/proxy/src/agent-side/hot-path.ts";
import type { Relay } from "../../workers/proxy/src/backend-side/direct.ts";

const MODERN = "2026-07-28";
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};
const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };

function headers(extra: Record<string, string> = {}): Headers {
  return new Headers({
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    ...extra,
  });
}

const modernHeaders = (method: string, name?: string) =>
  headers({
    "mcp-protocol-version": MODERN,
    "mcp-method": method,
    ...(name ? { "mcp-name": name } : {}),
  });

const call = (params: Record<string, unknown>, id: unknown = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params,
});

describe("which requests take the hot path", () => {
  it("takes a 2025 tools/call and tools/list, with or without a version header", () => {
    expect(
      fastRequest(headers({ "mcp-protocol-version": "2025-06-18" }), call({ name: "a_b" })),
    ).toEqual({ era: "legacy", id: 1, method: "tools/call", name: "a_b" });
    expect(fastRequest(headers(), { jsonrpc: "2.0", id: "x", method: "tools/list" })).toEqual({
      era: "legacy",
      id: "x",
      method: "tools/list",
    });
  });

  it("takes a 2026-07-28 call whose headers match its body, keeping arguments and progress", () => {
    const body = call({
      name: "mcp1_echo",
      arguments: { message: "m" },
      _meta: { ...ENVELOPE, progressToken: 3 },
    });
    expect(fastRequest(modernHeaders("tools/call", "mcp1_echo"), body)).toEqual({
      era: "modern",
      id: 1,
      method: "tools/call",
      name: "mcp1_echo",
      arguments: { message: "m" },
      progressToken: 3,
    });
  });

  const leftToTheSdk: [string, Headers, unknown][] = [
    ["a batch", headers(), [call({ name: "a_b" })]],
    ["a notification", headers(), { jsonrpc: "2.0", method: "tools/list" }],
    ["initialize", headers(), { jsonrpc: "2.0", id: 1, method: "initialize", params: {} }],
    ["another method", headers(), { jsonrpc: "2.0", id: 1, method: "resources/list" }],
    ["a fractional id", headers(), call({ name: "a_b" }, 1.5)],
    ["a null id", headers(), call({ name: "a_b" }, null)],
    ["no jsonrpc", headers(), { id: 1, method: "tools/list" }],
    ["an extra member", headers(), { ...call({ name: "a_b" }), extra: 1 }],
    ["a name that is not a string", headers(), call({ name: 5 })],
    ["array arguments", headers(), call({ name: "a_b", arguments: [1] })],
    ["an unknown param", headers(), call({ name: "a_b", task: {} })],
    [
      "a listing cursor",
      headers(),
      { jsonrpc: "2.0", id: 1, method: "tools/list", params: { cursor: "c" } },
    ],
    ["an object progress token", headers(), call({ name: "a_b", _meta: { progressToken: {} } })],
    ["a session", headers({ "mcp-session-id": "s" }), call({ name: "a_b" })],
    ["a form body", headers({ "content-type": "text/plain" }), call({ name: "a_b" })],
    ["JSON-only Accept", headers({ accept: "application/json" }), call({ name: "a_b" })],
    [
      "an unsupported version",
      headers({ "mcp-protocol-version": "1999-01-01" }),
      call({ name: "a_b" }),
    ],
    [
      "a modern version header without the envelope",
      modernHeaders("tools/call", "a_b"),
      call({ name: "a_b" }),
    ],
    [
      "a Mcp-Method header that disagrees",
      modernHeaders("tools/list", "a_b"),
      call({ name: "a_b", _meta: ENVELOPE }),
    ],
    ["no Mcp-Name header", modernHeaders("tools/call"), call({ name: "a_b", _meta: ENVELOPE })],
    [
      "a malformed envelope",
      modernHeaders("tools/call", "a_b"),
      call({ name: "a_b", _meta: { ...ENVELOPE, "io.modelcontextprotocol/clientInfo": 5 } }),
    ],
    [
      "a log level, which the SDK filters by",
      modernHeaders("tools/call", "a_b"),
      call({ name: "a_b", _meta: { ...ENVELOPE, "io.modelcontextprotocol/logLevel": "info" } }),
    ],
  ];
  for (const [label, hdrs, body] of leftToTheSdk) {
    it(`leaves ${label} to the SDK`, () => {
      expect(fastRequest(hdrs, body)).toBeUndefined();
    });
  }
});

function request(era: "modern" | "legacy", extra: Partial<FastRequest> = {}): FastRequest {
  return { era, id: 9, method: "tools/call", name: "a_b", ...extra };
}

async function events(response: Response): Promise<unknown[]> {
  const text = await response.text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)));
}

/** Serves `fast` with `handle` for an agent that neither cancels nor goes away. */
function serve(fast: FastRequest, handle: FastHandler): Promise<Response> {
  return serveFast(fast, handle, SERVER_INFO, new AbortController().signal);
}

const echoResult: FastHandler = async () => ({ content: [{ type: "text", text: "hi" }] });

describe("how the hot path frames answers", () => {
  it("answers 2026-07-28 with JSON, stamped as the SDK stamps results", async () => {
    const response = await serve(request("modern"), echoResult);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      jsonrpc: "2.0",
      id: 9,
      result: {
        content: [{ type: "text", text: "hi" }],
        resultType: "complete",
        _meta: { "io.modelcontextprotocol/serverInfo": SERVER_INFO },
      },
    });
  });

  it("gives 2026-07-28 listings cache hints and drops the tasks vocabulary", async () => {
    const list: FastHandler = async () => ({
      tools: [
        { name: "a", inputSchema: { type: "object" }, execution: { taskSupport: "forbidden" } },
      ],
    });
    const response = await serve(request("modern", { method: "tools/list" }), list);
    expect(((await response.json()) as { result: unknown }).result).toEqual({
      tools: [{ name: "a", inputSchema: { type: "object" } }],
      resultType: "complete",
      ttlMs: 0,
      cacheScope: "private",
      _meta: { "io.modelcontextprotocol/serverInfo": SERVER_INFO },
    });
  });

  it("streams 2026-07-28 once a notification comes before the result", async () => {
    const chatty: FastHandler = async (_request, relay: Relay) => {
      relay.progress?.({ progress: 1, total: 2 });
      relay.log({ level: "info", data: "working" });
      return { content: [] };
    };
    const response = await serve(request("modern", { progressToken: "p" }), chatty);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(await events(response)).toEqual([
      {
        jsonrpc: "2.0",
        method: "notifications/progress",
        params: { progress: 1, total: 2, progressToken: "p" },
      },
      {
        jsonrpc: "2.0",
        method: "notifications/message",
        params: { level: "info", data: "working" },
      },
      {
        jsonrpc: "2.0",
        id: 9,
        result: {
          content: [],
          resultType: "complete",
          _meta: { "io.modelcontextprotocol/serverInfo": SERVER_INFO },
        },
      },
    ]);
  });

  it("sends no progress to an agent that did not ask for it", async () => {
    const chatty: FastHandler = async (_request, relay: Relay) => {
      expect(relay.progress).toBeUndefined();
      return { content: [] };
    };
    const response = await serve(request("legacy"), chatty);
    expect(await events(response)).toEqual([{ jsonrpc: "2.0", id: 9, result: { content: [] } }]);
  });

  it("answers 2025 over SSE, unstamped, and errors as JSON-RPC errors", async () => {
    const failing: FastHandler = async () => {
      throw new ProtocolError(-32602, "Tool a_b not found");
    };
    const response = await serve(request("legacy"), failing);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(await events(response)).toEqual([
      { jsonrpc: "2.0", id: 9, error: { code: -32602, message: "Tool a_b not found" } },
    ]);
  });

  it("maps a -32002 to -32602 for 2026-07-28 only, and any other failure to -32603", async () => {
    const missing: FastHandler = async () => {
      throw new ProtocolError(-32002, "gone", { uri: "x" });
    };
    const modern = await serve(request("modern"), missing);
    expect(await modern.json()).toMatchObject({
      error: { code: -32602, message: "gone", data: { uri: "x" } },
    });
    const broken: FastHandler = async () => {
      throw new Error("boom");
    };
    const legacy = await serve(request("legacy"), broken);
    expect(await events(legacy)).toEqual([
      { jsonrpc: "2.0", id: 9, error: { code: -32603, message: "boom" } },
    ]);
  });

  it("aborts the work when the agent closes the stream, or its request ends", async () => {
    let seen: AbortSignal | undefined;
    const waiting: FastHandler = (_request, _relay, signal) => {
      seen = signal;
      return new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason)),
      );
    };
    const response = await serve(request("legacy"), waiting);
    expect(seen?.aborted).toBe(false);
    await response.body?.cancel();
    expect(seen?.aborted).toBe(true);

    const agent = new AbortController();
    const pending = serveFast(request("modern"), waiting, SERVER_INFO, agent.signal);
    expect(seen?.aborted).toBe(false);
    agent.abort(new Error("cancelled"));
    expect(seen?.aborted).toBe(true);
    expect(await (await pending).json()).toMatchObject({
      error: { code: -32603, message: "cancelled" },
    });
  });
});
