/**
 * A 2026-07-28 MCP server that takes its time, for deadline tests: built on the SDK v2
 * `createMcpHandler` (stateless), knowing nothing of MCPCP.
 *
 * Tools: `hang(label, speak?)` never answers by itself: it runs until its request is cancelled,
 * having first sent a log message when `speak` is set (so that its answer is an SSE stream rather
 * than a JSON body that has not begun). `pulse(label, beats, every_ms)` reports progress `beats`
 * times, `every_ms` apart, then answers: longer in all than a deadline that each beat restarts.
 * Reading the resource `stall://<label>` hangs like `hang`.
 * `GET /__state` tells a test each label's fate, and what each cancelled call was told.
 *
 * Over Streamable HTTP in the 2026-07-28 revision the client closing the request's stream is the
 * cancellation, and no `notifications/cancelled` is expected (spec, basic/patterns/cancellation,
 * "Transport-Specific Cancellation"); the SDK server aborts the handler's signal when it happens.
 */
import { createServer } from "node:http";
import { toNodeHandler } from "@modelcontextprotocol/node";
import {
  createMcpHandler,
  McpServer,
  ResourceTemplate,
  type ServerContext,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { answeredState, listenOnLoopback } from "./listen.ts";

export interface SlowState {
  labels: Record<string, "running" | "done" | "cancelled">;
  /** Per cancelled label: the JSON-RPC id of its request and why its signal aborted. */
  cancellations: Record<string, { requestId: string | number; reason: string }>;
}

export interface SlowBackend {
  url: string;
  close: () => Promise<void>;
}

/** Starts the server on a free loopback port. */
export async function startSlowBackend(): Promise<SlowBackend> {
  const state: SlowState = { labels: {}, cancellations: {} };

  /** Holds `label`'s request until it is cancelled, and notes that it was. */
  async function untilCancelled(label: string, ctx: ServerContext): Promise<void> {
    state.labels[label] = "running";
    const { signal } = ctx.mcpReq;
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    state.labels[label] = "cancelled";
    state.cancellations[label] = { requestId: ctx.mcpReq.id, reason: String(signal.reason) };
  }

  const handler = createMcpHandler(() => {
    const server = new McpServer(
      { name: "slow", version: "1.0.0" },
      { capabilities: { logging: {} } },
    );
    // What trace context reached the backend with the call (the gateway carries it on).
    server.registerTool("trace", {}, async (ctx) => ({
      content: [{ type: "text", text: String(ctx.mcpReq._meta?.traceparent ?? "none") }],
    }));
    server.registerTool(
      "hang",
      { inputSchema: z.object({ label: z.string(), speak: z.boolean().optional() }) },
      async ({ label, speak }, ctx) => {
        if (speak) {
          await ctx.mcpReq.notify({
            method: "notifications/message",
            params: { level: "info", data: `${label} is hanging` },
          });
        }
        await untilCancelled(label, ctx);
        return { content: [{ type: "text", text: "cancelled" }], isError: true };
      },
    );
    server.registerResource(
      "stall",
      new ResourceTemplate("stall://{label}", { list: undefined }),
      { mimeType: "text/plain" },
      async (uri, { label }, ctx) => {
        await untilCancelled(String(label), ctx);
        return { contents: [{ uri: uri.href, text: "cancelled" }] };
      },
    );
    server.registerTool(
      "pulse",
      {
        inputSchema: z.object({
          label: z.string(),
          beats: z.number().int().min(1).max(50),
          every_ms: z.number().int().min(1).max(10_000),
        }),
      },
      async ({ label, beats, every_ms }, ctx) => {
        state.labels[label] = "running";
        const token = ctx.mcpReq._meta?.progressToken;
        for (let beat = 1; beat <= beats; beat++) {
          await new Promise((resolve) => setTimeout(resolve, every_ms));
          if (ctx.mcpReq.signal.aborted) {
            state.labels[label] = "cancelled";
            return { content: [{ type: "text", text: "cancelled" }], isError: true };
          }
          if (token !== undefined) {
            await ctx.mcpReq.notify({
              method: "notifications/progress",
              params: { progressToken: token, progress: beat, total: beats },
            });
          }
        }
        state.labels[label] = "done";
        return { content: [{ type: "text", text: `${label} done` }] };
      },
    );
    return server;
  });
  const serve = toNodeHandler(handler);
  const http = createServer((req, res) => {
    if (answeredState(req, res, state)) return;
    void serve(req, res);
  });
  return listenOnLoopback(http, () => handler.close());
}
