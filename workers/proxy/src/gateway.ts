/**
 * The MCP server an agent talks to: one per request, built for that agent.
 *
 * `tools/list` fans out to the servers the agent's policy names and merges what they offer under
 * prefixed names; `tools/call` splits the name, checks the same policy, and forwards the call.
 * A backend that is down or slow drops out of listings and fails its own calls with a tool error
 * naming it; it never takes the others down.
 */
import type { Client } from "@modelcontextprotocol/client";
import {
  type CallToolResult,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type Tool,
} from "@modelcontextprotocol/server";
import type { AuditRecord } from "./audit.ts";
import type { AgentIdentity } from "./auth.ts";
import { type CallLimits, withBackend } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";
import { allows, serversFor } from "./policy.ts";
import { prefixToolName, splitToolName } from "./tool-names.ts";

const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };

/** The longest a listing waits for any one backend. */
const LIST_TIMEOUT_MS = 5_000;

// A backend that pages its tool list endlessly is cut off here.
const MAX_LIST_PAGES = 20;

/** Builds the per-request MCP server for `identity`; what it decides goes into `record`. */
export function createGatewayServer(
  config: GatewayConfig,
  identity: AgentIdentity,
  record: AuditRecord,
): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {} },
    instructions:
      "MCPCP gateway. Tools are named <server>_<tool>; you see only the servers and tools your policy allows.",
  });
  server.setRequestHandler("tools/list", async (_request, ctx) => ({
    tools: await listTools(config, identity.agent, {
      // A listing waits for no straggler: a slow backend drops out, the others answer.
      timeoutMs: Math.min(config.backendTimeoutMs, LIST_TIMEOUT_MS),
      signal: ctx.mcpReq.signal,
    }),
  }));
  server.setRequestHandler("tools/call", async (request, ctx) =>
    callTool(
      config,
      identity.agent,
      request.params.name,
      request.params.arguments,
      limitsFor(config, ctx.mcpReq.signal),
      record,
      relayTo(ctx.mcpReq.notify, request.params._meta?.progressToken),
    ),
  );
  return server;
}

/**
 * What a backend says while a call runs, passed on to the agent as it happens: progress (under
 * the agent's own progress token, only if it asked for progress) and log messages.
 */
export interface Relay {
  progress?: (progress: { progress: number; total?: number; message?: string }) => void;
  log: (params: Record<string, unknown>) => void;
}

function relayTo(
  notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>,
  progressToken: string | number | undefined,
): Relay {
  const send = (method: string, params: Record<string, unknown>) => {
    notify({ method, params }).catch(() => {
      // The agent went away; cancellation reaches the backend through the aborted signal.
    });
  };
  return {
    ...(progressToken === undefined
      ? {}
      : { progress: (p) => send("notifications/progress", { ...p, progressToken }) }),
    log: (params) => send("notifications/message", params),
  };
}

function limitsFor(config: GatewayConfig, signal: AbortSignal): CallLimits {
  return { timeoutMs: config.backendTimeoutMs, signal };
}

/** Every tool `agent` may see, prefixed, in server order then each server's own order. */
export async function listTools(
  config: GatewayConfig,
  agent: string,
  limits: CallLimits,
): Promise<Tool[]> {
  const servers = serversFor(config.policy, agent);
  const listed = await Promise.allSettled(
    servers.map(async (id) => {
      const backend = config.backends.get(id);
      if (!backend) return [];
      const tools = await withBackend(backend, agent, config.signer, limits, listAllPages);
      return tools
        .filter((tool) => allows(config.policy, agent, id, tool.name))
        .map((tool) => ({ ...tool, name: prefixToolName(id, tool.name) }));
    }),
  );
  return listed.flatMap((outcome, i) => {
    if (outcome.status === "fulfilled") return outcome.value;
    console.warn(
      JSON.stringify({
        event: "backend_list_failed",
        server: servers[i],
        agent,
        error: describe(outcome.reason),
      }),
    );
    return [];
  });
}

async function listAllPages(client: Client): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor });
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return tools;
}

/** Routes one `tools/call` to its backend, if the policy lets `agent` see the tool. */
export async function callTool(
  config: GatewayConfig,
  agent: string,
  name: string,
  args: Record<string, unknown> | undefined,
  limits: CallLimits,
  record?: AuditRecord,
  relay?: Relay,
): Promise<CallToolResult> {
  const target = splitToolName(name);
  const backend = target && config.backends.get(target.server);
  // Deny by hiding: a tool the agent may not use is answered exactly like one that does not exist.
  if (!target || !backend || !allows(config.policy, agent, target.server, target.tool)) {
    if (record) Object.assign(record, { decision: "deny_policy", outcome: "rpc_error" });
    throw unknownTool(name);
  }
  if (record) Object.assign(record, { server: target.server, tool: target.tool });
  try {
    const result = (await withBackend(backend, agent, config.signer, limits, (client) => {
      if (relay) {
        client.setNotificationHandler("notifications/message", (n) => relay.log(n.params));
      }
      return client.callTool(
        { name: target.tool, ...(args === undefined ? {} : { arguments: args }) },
        {
          timeout: limits.timeoutMs,
          ...(limits.signal ? { signal: limits.signal } : {}),
          // A backend that keeps reporting progress is working, not hung.
          ...(relay?.progress ? { onprogress: relay.progress, resetTimeoutOnProgress: true } : {}),
        },
      );
    })) as CallToolResult;
    if (record && result.isError) record.outcome = "tool_error";
    return result;
  } catch (e) {
    if (record) record.outcome = "rpc_error";
    if (e instanceof ProtocolError) {
      // The backend's own "no such tool" must read like ours, under the name the agent used.
      if (
        e.code === ProtocolErrorCode.InvalidParams &&
        e.message.includes(`Tool ${target.tool} not found`)
      ) {
        throw unknownTool(name);
      }
      throw new ProtocolError(e.code, e.message, e.data);
    }
    if (limits.signal?.aborted) throw e;
    if (record) record.outcome = "backend_unavailable";
    console.warn(
      JSON.stringify({
        event: "backend_call_failed",
        server: target.server,
        agent,
        tool: target.tool,
        error: describe(e),
      }),
    );
    return {
      isError: true,
      content: [
        {
          type: "text",
          text: `Server ${target.server} is unavailable (${describe(e)}). Other servers are unaffected; try again later.`,
        },
      ],
    };
  }
}

/** The JSON-RPC error for a tool that does not exist or is hidden from the agent. */
export function unknownTool(name: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidParams, `Tool ${name} not found`);
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message.slice(0, 300);
  return String(e).slice(0, 300);
}
