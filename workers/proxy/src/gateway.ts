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
import type { FastHandler } from "./fast-path.ts";
import { registerPrompts, registerResources } from "./resources.ts";
import { callTool, listTools, relayTo } from "./tools.ts";

export const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };

/** The longest a listing waits for any one backend: a slow one drops out, the others answer. */
const LIST_TIMEOUT_MS = 5_000;

/** Per-call limits for listings and for calls, both ending when the agent's request is cancelled. */
export interface Limits {
  list: (signal: AbortSignal) => CallLimits;
  call: (signal: AbortSignal) => CallLimits;
}

/** What the HTTP layer hands the gateway along with a request. */
export interface RequestContext {
  /** `ctx.waitUntil`: work that must finish after the agent's request has ended. */
  defer?: (work: Promise<unknown>) => void;
  /** Aborted when the agent cancels the tools/call with that id (`cancellation.ts`). */
  cancels?: ReadonlyMap<string | number, AbortSignal>;
}

function limitsFor(config: GatewayConfig, defer?: (work: Promise<unknown>) => void): Limits {
  return {
    list: (signal) => ({
      timeoutMs: Math.min(config.backendTimeoutMs, LIST_TIMEOUT_MS),
      signal,
      ...(defer ? { defer } : {}),
    }),
    call: (signal) => ({ timeoutMs: config.backendTimeoutMs, signal, ...(defer ? { defer } : {}) }),
  };
}

/**
 * The hot path's handler (`fast-path.ts`): the same tools/list and tools/call as the server
 * below, for a request that needs no SDK server around it.
 */
export function createFastHandler(
  config: GatewayConfig,
  identity: AgentIdentity,
  record: AuditRecord,
  { defer }: RequestContext,
): FastHandler {
  const limits = limitsFor(config, defer);
  return async (request, relay, signal) => {
    if (request.method === "tools/list") {
      return { tools: await listTools(config, identity.agent, limits.list(signal)) };
    }
    return callTool(config, identity.agent, request.name ?? "", request.arguments, {
      limits: limits.call(signal),
      record,
      relay,
    });
  };
}

/** Builds the per-request MCP server for `identity`; what it decides goes into `record`. */
export function createGatewayServer(
  config: GatewayConfig,
  identity: AgentIdentity,
  record: AuditRecord,
  { defer, cancels }: RequestContext = {},
): Server {
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
  const limits = limitsFor(config, defer);

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
