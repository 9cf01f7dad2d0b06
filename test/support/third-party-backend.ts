/**
 * A third-party-style MCP server for tests: built on the v1 SDK in STATEFUL mode (it issues
 * `Mcp-Session-Id` and keeps one transport per session), knowing nothing of MCPCP.
 *
 * Tools: `echo`; `wait_for_release(label)`, which reports progress and a log message, then blocks
 * until the test releases it (`POST /__release?label=`) or the call is cancelled; and
 * `files.read/v2`, a name no model provider accepts. One resource, one template, one prompt.
 * `GET /__state` tells a test what happened: sessions opened, each label's fate and the session
 * and request id it ran under, and every `notifications/cancelled` received, as it came.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";
import { answeredState, listenOnLoopback } from "./listen.ts";

export interface ThirdPartyState {
  sessions: number;
  live: number;
  labels: Record<string, "running" | "released" | "cancelled">;
  /** Per label: the session and JSON-RPC request id of the call that waited for it. */
  calls: Record<string, { session: string | undefined; requestId: string | number }>;
  /** Every `notifications/cancelled` POSTed, with the session it named. */
  cancellations: { session: string | undefined; requestId: unknown; reason: unknown }[];
}

export interface ThirdPartyBackend {
  url: string;
  close: () => Promise<void>;
}

/** Runs `register` with console.warn silenced: for a warning the test provokes on purpose. */
function withoutWarnings(register: () => unknown): void {
  const warn = console.warn;
  console.warn = () => {};
  try {
    register();
  } finally {
    console.warn = warn;
  }
}

type Incoming = { method?: unknown; params?: { requestId?: unknown; reason?: unknown } } | null;

/** A POST's JSON body, read here so the cancellations in it can be noted; null if not JSON. */
async function parsedBody(req: IncomingMessage): Promise<Incoming | Incoming[] | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Incoming | Incoming[];
  } catch {
    return null;
  }
}

/** Starts the server on a free loopback port. */
export async function startThirdPartyBackend(): Promise<ThirdPartyBackend> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const state: ThirdPartyState = {
    sessions: 0,
    live: 0,
    labels: {},
    calls: {},
    cancellations: [],
  };
  const releases = new Map<string, () => void>();

  function build(): McpServer {
    const server = new McpServer(
      { name: "third-party", version: "1.0.0" },
      { capabilities: { logging: {} } },
    );
    server.registerTool("echo", { inputSchema: { message: z.string() } }, async ({ message }) => ({
      content: [{ type: "text", text: `3p: ${message}` }],
    }));
    server.registerTool(
      "wait_for_release",
      { inputSchema: { label: z.string() } },
      async ({ label }, extra) => {
        const token = extra._meta?.progressToken;
        state.labels[label] = "running";
        state.calls[label] = { session: extra.sessionId, requestId: extra.requestId };
        if (token !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress: 1, total: 2, message: `${label} started` },
          });
        }
        await extra.sendNotification({
          method: "notifications/message",
          params: { level: "info", data: `${label} is waiting` },
        });
        const released = new Promise<void>((resolve) => releases.set(label, resolve));
        const cancelled = new Promise<void>((resolve) =>
          extra.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        await Promise.race([released, cancelled]);
        if (extra.signal.aborted) {
          state.labels[label] = "cancelled";
          return { content: [{ type: "text", text: "cancelled" }], isError: true };
        }
        state.labels[label] = "released";
        if (token !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress: 2, total: 2 },
          });
        }
        return { content: [{ type: "text", text: `${label} done` }] };
      },
    );
    // The SDK warns (six lines, each session) about the very name this tool exists to carry.
    withoutWarnings(() =>
      server.registerTool(
        "files.read/v2",
        { inputSchema: { path: z.string() } },
        async ({ path }) => ({
          content: [{ type: "text", text: `read ${path}` }],
        }),
      ),
    );
    server.registerResource("hello", "notes://hello", { mimeType: "text/plain" }, async (uri) => ({
      contents: [{ uri: uri.href, text: "hello from notes" }],
    }));
    server.registerResource(
      "note",
      new ResourceTemplate("notes://{name}", { list: undefined }),
      { mimeType: "text/plain" },
      async (uri, { name }) => ({ contents: [{ uri: uri.href, text: `note ${String(name)}` }] }),
    );
    server.registerPrompt("greet", { argsSchema: { name: z.string() } }, ({ name }) => ({
      messages: [{ role: "user", content: { type: "text", text: `Say hello to ${name}` } }],
    }));
    return server;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (answeredState(req, res, state)) return;
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/__release") {
      releases.get(url.searchParams.get("label") ?? "")?.();
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/__forget") {
      // Like a restart: every session id it gave out is now unknown (404).
      for (const transport of transports.values()) await transport.close();
      transports.clear();
      state.live = 0;
      res.writeHead(204).end();
      return;
    }
    const id = req.headers["mcp-session-id"];
    const body = req.method === "POST" ? await parsedBody(req) : undefined;
    if (body === null) {
      res.writeHead(400).end();
      return;
    }
    for (const m of Array.isArray(body) ? body : [body]) {
      if (m?.method === "notifications/cancelled") {
        state.cancellations.push({
          session: typeof id === "string" ? id : undefined,
          requestId: m.params?.requestId,
          reason: m.params?.reason,
        });
      }
    }
    if (typeof id === "string") {
      const transport = transports.get(id);
      if (!transport) {
        res.writeHead(404, { "content-type": "application/json" }).end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: null,
            error: { code: -32001, message: "Session not found" },
          }),
        );
        return;
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => {
        transports.set(sessionId, transport);
        state.sessions++;
        state.live++;
      },
    });
    await build().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  return listenOnLoopback(http, async () => {
    for (const transport of transports.values()) await transport.close().catch(() => {});
  });
}
