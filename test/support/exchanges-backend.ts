/**
 * A 2025-era MCP server for the door's server→client exchanges: the v1 SDK in stateful mode (one
 * transport per `Mcp-Session-Id`, as third-party-backend.ts), with the tools the reference server
 * (test/conformance/reference-server.ts) has no reason to carry:
 *
 * - `list_roots`: asks the client for its roots (`roots/list`) and lists their URIs;
 *   `list_roots_detached` asks the same outside the call (`server.listRoots()`), so the request
 *   travels on the session's standalone GET stream instead of the call's own;
 * - `ask(label)`: a form elicitation for a name, remembering the label's fate (waiting, answered
 *   with what, cancelled) so a test can tell what reached the server;
 * - `ask_url(label)`: a URL-mode elicitation (2025-11-25), then `notifications/elicitation/complete`;
 * - `ask_anyway(kind)`: sends `sampling/createMessage` or `elicitation/create` whatever the
 *   client declared, and reports the client's answer or error;
 * - a resource `note://board` clients may subscribe to (`resources/subscribe`), and
 *   `touch_board`, which changes it: each session subscribed to it then gets
 *   `notifications/resources/updated` on its standalone GET stream.
 *
 * Every request goes out with `extra.sendRequest`, so it travels on the tool call's own POST
 * stream, and with the call's signal, so a cancelled call stops waiting for its answer.
 * `GET /__state` tells a test what happened: each label's fate, the server's protocol errors (a
 * response for an id it is not waiting on lands there), and how many `roots/list_changed`
 * notifications clients sent.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ListRootsResultSchema,
  RootsListChangedNotificationSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { answeredState, listenOnLoopback } from "./listen.ts";

export interface ExchangesState {
  /** What became of each `ask`/`ask_url` call, by label. */
  labels: Record<string, string>;
  /** The messages of the errors the SDK server reported (`onerror`), in order. */
  errors: string[];
  /** `notifications/roots/list_changed` received, over all sessions. */
  rootsChanged: number;
}

export interface ExchangesBackend {
  /** Base URL; the MCP endpoint is `${url}/mcp`. */
  url: string;
  close: () => Promise<void>;
}

const text = (value: string) => ({ type: "text" as const, text: value });
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Starts the server on a free loopback port. */
export async function startExchangesBackend(): Promise<ExchangesBackend> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const state: ExchangesState = { labels: {}, errors: [], rootsChanged: 0 };
  /** Every session's way to tell its subscriber that a resource changed. */
  const boards = new Set<(uri: string) => void>();
  let touches = 0;

  function build(): McpServer {
    const server = new McpServer({ name: "exchanges", version: "1.0.0" });
    server.server.onerror = (error) => {
      state.errors.push(message(error));
    };
    server.server.setNotificationHandler(RootsListChangedNotificationSchema, () => {
      state.rootsChanged++;
    });

    // What trace context reached the backend with the call (the gateway carries it on).
    server.registerTool("trace", {}, async (extra) => ({
      content: [text(String(extra._meta?.traceparent ?? "none"))],
    }));

    server.registerTool("list_roots", {}, async (extra) => {
      try {
        const { roots } = await extra.sendRequest({ method: "roots/list" }, ListRootsResultSchema, {
          signal: extra.signal,
        });
        return { content: [text(`roots: ${roots.map((root) => root.uri).join(", ")}`)] };
      } catch (error) {
        return { content: [text(`roots/list failed: ${message(error)}`)], isError: true };
      }
    });

    server.registerTool("list_roots_detached", {}, async () => {
      try {
        const { roots } = await server.server.listRoots();
        return { content: [text(`roots: ${roots.map((root) => root.uri).join(", ")}`)] };
      } catch (error) {
        return { content: [text(`roots/list failed: ${message(error)}`)], isError: true };
      }
    });

    server.registerTool("ask", { inputSchema: { label: z.string() } }, async ({ label }, extra) => {
      state.labels[label] = "waiting";
      try {
        const answer = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              mode: "form",
              message: `Who is asking (${label})?`,
              requestedSchema: {
                type: "object",
                properties: { name: { type: "string" } },
                required: ["name"],
              },
            },
          },
          ElicitResultSchema,
          { signal: extra.signal, timeout: 60_000 },
        );
        const summary = `${answer.action} ${JSON.stringify(answer.content ?? {})}`;
        state.labels[label] = `answered: ${summary}`;
        return { content: [text(`${label}: ${summary}`)] };
      } catch (error) {
        state.labels[label] = extra.signal.aborted ? "cancelled" : `failed: ${message(error)}`;
        return { content: [text(`${label} failed: ${message(error)}`)], isError: true };
      }
    });

    server.registerTool(
      "ask_url",
      { inputSchema: { label: z.string() } },
      async ({ label }, extra) => {
        state.labels[label] = "waiting";
        try {
          const answer = await extra.sendRequest(
            {
              method: "elicitation/create",
              params: {
                mode: "url",
                message: `Connect your account (${label})`,
                url: `https://auth.example.com/connect?label=${encodeURIComponent(label)}`,
                elicitationId: label,
              },
            },
            ElicitResultSchema,
            { signal: extra.signal },
          );
          state.labels[label] = `answered: ${answer.action}`;
          if (answer.action === "accept") {
            await extra.sendNotification({
              method: "notifications/elicitation/complete",
              params: { elicitationId: label },
            });
          }
          return { content: [text(`${label}: ${answer.action}`)] };
        } catch (error) {
          state.labels[label] = `failed: ${message(error)}`;
          return { content: [text(`${label} failed: ${message(error)}`)], isError: true };
        }
      },
    );

    server.registerTool(
      "ask_anyway",
      { inputSchema: { kind: z.enum(["sampling", "elicitation"]) } },
      async ({ kind }, extra) => {
        try {
          if (kind === "sampling") {
            await extra.sendRequest(
              {
                method: "sampling/createMessage",
                params: { messages: [{ role: "user", content: text("hi") }], maxTokens: 10 },
              },
              CreateMessageResultSchema,
              { signal: extra.signal },
            );
          } else {
            await extra.sendRequest(
              {
                method: "elicitation/create",
                params: {
                  mode: "form",
                  message: "Name?",
                  requestedSchema: { type: "object", properties: { name: { type: "string" } } },
                },
              },
              ElicitResultSchema,
              { signal: extra.signal },
            );
          }
          return { content: [text(`${kind} answered`)] };
        } catch (error) {
          return { content: [text(`${kind} refused: ${message(error)}`)], isError: true };
        }
      },
    );
    // A resource to subscribe to: the session's own subscription, told of each touch_board.
    let subscribed = false;
    server.registerResource("board", "note://board", { mimeType: "text/plain" }, async () => ({
      contents: [{ uri: "note://board", text: `touched ${touches} times` }],
    }));
    server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
    server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
      if (request.params.uri === "note://board") subscribed = true;
      return {};
    });
    server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
      if (request.params.uri === "note://board") subscribed = false;
      return {};
    });
    boards.add((uri) => {
      if (subscribed) server.server.sendResourceUpdated({ uri }).catch(() => {});
    });
    server.registerTool("touch_board", {}, async () => {
      touches++;
      for (const tell of boards) tell("note://board");
      return { content: [text(`touched ${touches} times`)] };
    });
    return server;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (answeredState(req, res, state)) return;
    const id = req.headers["mcp-session-id"];
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
      await transport.handleRequest(req, res);
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => {
        transports.set(sessionId, transport);
      },
    });
    await build().connect(transport);
    await transport.handleRequest(req, res);
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
