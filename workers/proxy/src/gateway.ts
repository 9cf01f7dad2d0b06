/**
 * The MCP server an agent talks to: one per request, built for that agent. It offers the union of
 * what the agent's policy lets it reach: tools (`tools.ts`), resources and prompts
 * (`resources.ts`), each fanned out to the backends and prefixed with the server's id.
 */
import { Server } from "@modelcontextprotocol/server";
import type { AuditRecord } from "./audit.ts";
import type { AgentIdentity } from "./auth.ts";
import type { CallLimits } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";
import { registerPrompts, registerResources } from "./resources.ts";
import { callTool, listTools, relayTo } from "./tools.ts";

const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };

/** The longest a listing waits for any one backend: a slow one drops out, the others answer. */
const LIST_TIMEOUT_MS = 5_000;

/** Per-call limits for listings and for calls, both ending when the agent's request is cancelled. */
export interface Limits {
  list: (signal: AbortSignal) => CallLimits;
  call: (signal: AbortSignal) => CallLimits;
}

/** Builds the per-request MCP server for `identity`; what it decides goes into `record`. */
export function createGatewayServer(
  config: GatewayConfig,
  identity: AgentIdentity,
  record: AuditRecord,
  request: {
    /** `ctx.waitUntil`: work that must finish after the agent's request has ended. */
    defer?: (work: Promise<unknown>) => void;
    /** Aborted when the agent cancels the tools/call with that id (`cancellation.ts`). */
    cancels?: ReadonlyMap<string | number, AbortSignal>;
  } = {},
): Server {
  const { defer, cancels } = request;
  const server = new Server(SERVER_INFO, {
    // logging: backends' log messages are relayed to the agent while a call runs.
    // listChanged: backends' changes are relayed to agents that listen (`list-changed.ts`).
    capabilities: {
      tools: { listChanged: true },
      resources: { listChanged: true },
      prompts: { listChanged: true },
      logging: {},
    },
    instructions:
      "MCPCP gateway. Tools and prompts are named <server>_<name>, resource URIs <server>+<uri>; you see only what your policy allows.",
  });
  const { agent } = identity;
  const limits: Limits = {
    list: (signal) => ({
      timeoutMs: Math.min(config.backendTimeoutMs, LIST_TIMEOUT_MS),
      signal,
      ...(defer ? { defer } : {}),
    }),
    call: (signal) => ({ timeoutMs: config.backendTimeoutMs, signal, ...(defer ? { defer } : {}) }),
  };

  server.setRequestHandler("tools/list", async (_request, ctx) => ({
    tools: await listTools(config, agent, limits.list(ctx.mcpReq.signal)),
  }));
  server.setRequestHandler("tools/call", (request, ctx) => {
    const cancelled = cancels?.get(ctx.mcpReq.id);
    const signal = cancelled ? AbortSignal.any([ctx.mcpReq.signal, cancelled]) : ctx.mcpReq.signal;
    return callTool(config, agent, request.params.name, request.params.arguments, {
      limits: limits.call(signal),
      record,
      relay: relayTo(ctx.mcpReq.notify, request.params._meta?.progressToken),
    });
  });
  registerResources(server, config, agent, limits);
  registerPrompts(server, config, agent, limits);
  return server;
}
