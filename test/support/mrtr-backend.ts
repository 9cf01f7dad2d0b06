/**
 * A 2026-07-28 MCP server that asks its client for input the 2026 way, by multi-round-trip
 * (basic/patterns/mrtr): a tool answers `input_required` with the requests it needs fulfilled and
 * an opaque `requestState`, and completes when the client retries with `inputResponses` and that
 * state. Built on the SDK v2 `createMcpHandler` (stateless), as our Node backends are.
 *
 * - `confirm(action)`: asks for a form elicitation `{ confirm: boolean }`; done once confirmed.
 *   When the call carries a progress token it reports progress first, so its answer comes as SSE;
 * - `visit(label)`: asks for a URL-mode elicitation; done once the client accepts;
 * - `remember(size)`: asks for nothing but a retry with a state of `size` characters (a server
 *   may keep a whole conversation there), and says how much came back.
 *
 * Each state it issues is plain text a test can recognise (`mrtr:<tool>:<n>:<argument>`), and a
 * retry whose state it never issued is refused by the tool. `GET /__state` tells a test what it
 * issued and every `tools/call` it received, with the state each carried: what the gateway let
 * through, byte for byte.
 */
import { createServer } from "node:http";
import { toNodeHandler } from "@modelcontextprotocol/node";
import {
  createMcpHandler,
  inputRequired,
  inputResponse,
  McpServer,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { answeredState, listenOnLoopback } from "./listen.ts";

export interface MrtrState {
  /** Every requestState the server handed out, in order. */
  issued: string[];
  /** Every tools/call it received: the tool and the requestState the call carried, if any. */
  calls: { tool: string; requestState?: string }[];
}

export interface MrtrBackend {
  /** Base URL; the MCP endpoint is `${url}/mcp`. */
  url: string;
  close: () => Promise<void>;
}

const text = (value: string) => ({ type: "text" as const, text: value });

/** Starts the server on a free loopback port. */
export async function startMrtrBackend(): Promise<MrtrBackend> {
  const state: MrtrState = { issued: [], calls: [] };

  /** A fresh state for `tool`'s first round, remembered as issued. */
  const issue = (tool: string, argument: string) => {
    const minted = `mrtr:${tool}:${state.issued.length + 1}:${argument}`;
    state.issued.push(minted);
    return minted;
  };

  /** Records the call; the state it carried if this server issued it, else undefined. */
  const received = (tool: string, carried: string | undefined) => {
    state.calls.push(carried === undefined ? { tool } : { tool, requestState: carried });
    return carried !== undefined && state.issued.includes(carried) ? carried : undefined;
  };

  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: "mrtr", version: "1.0.0" });
    server.registerTool(
      "confirm",
      { inputSchema: z.object({ action: z.string() }) },
      async ({ action }, ctx) => {
        const carried = ctx.mcpReq.requestState<string>();
        const known = received("confirm", carried);
        if (carried !== undefined && known === undefined) {
          return {
            content: [text("refused: a requestState this server never issued")],
            isError: true,
          };
        }
        const answer = inputResponse(ctx.mcpReq.inputResponses, "confirm");
        if (known === undefined || answer.kind !== "elicit") {
          const progressToken = ctx.mcpReq._meta?.progressToken;
          if (progressToken !== undefined) {
            await ctx.mcpReq.notify({
              method: "notifications/progress",
              params: { progressToken, progress: 1, message: "asking" },
            });
          }
          return inputRequired({
            inputRequests: {
              confirm: inputRequired.elicit({
                message: `Really ${action}?`,
                requestedSchema: {
                  type: "object",
                  properties: { confirm: { type: "boolean" } },
                  required: ["confirm"],
                },
              }),
            },
            requestState: issue("confirm", action),
          });
        }
        const confirmed = answer.action === "accept" && answer.content?.confirm === true;
        return { content: [text(confirmed ? `${action}: confirmed` : `${action}: not confirmed`)] };
      },
    );
    server.registerTool(
      "visit",
      { inputSchema: z.object({ label: z.string() }) },
      async ({ label }, ctx) => {
        const known = received("visit", ctx.mcpReq.requestState<string>());
        const answer = inputResponse(ctx.mcpReq.inputResponses, "visit");
        if (known === undefined || answer.kind !== "elicit") {
          return inputRequired({
            inputRequests: {
              visit: inputRequired.elicitUrl({
                message: `Connect your account (${label})`,
                url: `https://auth.example.com/connect?label=${encodeURIComponent(label)}`,
              }),
            },
            requestState: issue("visit", label),
          });
        }
        return { content: [text(`${label}: ${answer.action}`)] };
      },
    );
    server.registerTool(
      "remember",
      { inputSchema: z.object({ size: z.number().int().min(1) }) },
      async ({ size }, ctx) => {
        const known = received("remember", ctx.mcpReq.requestState<string>());
        if (known === undefined) {
          return inputRequired({ requestState: issue("remember", "x".repeat(size)) });
        }
        return { content: [text(`remembered ${known.length} characters`)] };
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
