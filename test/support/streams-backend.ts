/**
 * A 2026-07-28 MCP server that counts the long-lived streams open on it, for the tests (and the
 * measurement in bench/streams.ts) of the gateway's cap on an agent's streams: built on the SDK v2
 * `createMcpHandler` (stateless), knowing nothing of MCPCP.
 *
 * It answers under any path ending in `/mcp`, and counts per path, so one server can stand behind
 * several of the gateway's backends (`/a/mcp`, `/b/mcp`) and tell them apart. What it counts:
 * - `listens`: `subscriptions/listen` requests whose stream is still open (the 2026-07-28 request
 *   carries its method in the `Mcp-Method` header), and `listensOpened`, how many ever opened;
 * - `gets`: standalone `GET` SSE streams still open (a door relays an agent's GET here), and
 *   `getsOpened`. The SDK's stateless handler has no GET stream, so this server holds one itself:
 *   an SSE comment every second, until the client goes away.
 *
 * `GET /__state` returns `{ [path]: { listens, listensOpened, gets, getsOpened } }`;
 * `POST /__changed` announces a tools/list_changed to every open listen stream.
 */
import { createServer, type ServerResponse } from "node:http";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import { answeredState, listenOnLoopback, type TestServer } from "./listen.ts";

export interface StreamCounts {
  listens: number;
  listensOpened: number;
  gets: number;
  getsOpened: number;
}

export type StreamsState = Record<string, StreamCounts>;

/** Starts the server on a free loopback port. */
export async function startStreamsBackend(): Promise<TestServer> {
  const state: StreamsState = {};
  const countsFor = (path: string) => {
    state[path] ??= { listens: 0, listensOpened: 0, gets: 0, getsOpened: 0 };
    return state[path];
  };
  const handler = createMcpHandler(
    () => {
      const server = new McpServer(
        { name: "streams", version: "1.0.0" },
        { capabilities: { tools: { listChanged: true } } },
      );
      server.registerTool("echo", { inputSchema: z.object({ message: z.string() }) }, (args) => ({
        content: [{ type: "text", text: `streams: ${args.message}` }],
      }));
      return server;
    },
    // More than any test or measurement opens: the gateway's cap is what is under test.
    { maxSubscriptions: 100_000 },
  );
  const serve = toNodeHandler(handler);
  /** Counts `res` as open in `open` until it closes, however it closes. */
  const holdOpen = (res: ServerResponse, counts: StreamCounts, kind: "listens" | "gets") => {
    counts[kind]++;
    counts[kind === "listens" ? "listensOpened" : "getsOpened"]++;
    res.once("close", () => counts[kind]--);
  };
  const http = createServer((req, res) => {
    if (answeredState(req, res, state)) return;
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/__changed") {
      handler.notify.toolsChanged();
      res.writeHead(204).end();
      return;
    }
    if (!url.pathname.endsWith("/mcp")) {
      res.writeHead(404).end();
      return;
    }
    const counts = countsFor(url.pathname);
    if (req.method === "GET") {
      holdOpen(res, counts, "gets");
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": open\n\n");
      const beat = setInterval(() => res.write(": keepalive\n\n"), 1_000);
      res.once("close", () => clearInterval(beat));
      return;
    }
    if (req.headers["mcp-method"] === "subscriptions/listen") holdOpen(res, counts, "listens");
    void serve(req, res);
  });
  return listenOnLoopback(http, () => handler.close());
}
