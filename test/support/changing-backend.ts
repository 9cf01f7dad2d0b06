/**
 * A 2026-07-28 MCP server whose tool list changes while it runs, for list_changed tests: built on
 * the SDK v2 `createMcpHandler`, it starts with `first` and gains a tool at each
 * `POST /__add?name=…`, announcing it to every open `subscriptions/listen` stream.
 */
import { createServer } from "node:http";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import { listenOnLoopback } from "./listen.ts";

export interface ChangingBackend {
  url: string;
  close: () => Promise<void>;
}

/** Starts the server on a free loopback port. */
export async function startChangingBackend(): Promise<ChangingBackend> {
  const tools = ["first"];
  const handler = createMcpHandler(() => {
    const server = new McpServer(
      { name: "changing", version: "1.0.0" },
      { capabilities: { tools: { listChanged: true } } },
    );
    for (const name of tools) {
      server.registerTool(name, { inputSchema: z.object({}) }, async () => ({
        content: [{ type: "text", text: name }],
      }));
    }
    return server;
  });
  const serve = toNodeHandler(handler);
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/__add") {
      tools.push(url.searchParams.get("name") ?? `tool${tools.length}`);
      handler.notify.toolsChanged();
      res.writeHead(204).end();
      return;
    }
    void serve(req, res);
  });
  return listenOnLoopback(http, () => handler.close());
}
