/**
 * Tools through the gateway. `tools/list` fans out to the servers the agent's policy names and
 * merges what they offer under prefixed names; `tools/call` splits the name, checks the same
 * policy, and forwards the call, relaying progress and log messages while it runs. A backend that
 * is down fails its own calls with a tool error naming it; it never takes the others down.
 */
import {
  type CallToolResult,
  ProtocolError,
  ProtocolErrorCode,
  type Tool,
} from "@modelcontextprotocol/server";
import type { AuditRecord } from "./audit.ts";
import { type Ask, type CallLimits, listAll, type Relay, withBackend } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";
import { describe, fanOut } from "./fan-out.ts";
import { allows, serversFor } from "./policy.ts";
import { mayBeMapped, prefixToolName, resolveMapped, splitToolName } from "./tool-names.ts";

/** Every tool `agent` may see, prefixed, in server order then each server's own order. */
export function listTools(
  config: GatewayConfig,
  agent: string,
  limits: CallLimits,
): Promise<Tool[]> {
  return fanOut(
    config,
    agent,
    serversFor(config.policy, agent),
    limits,
    "tools",
    async (client, id) =>
      (await backendTools(client))
        .filter((tool) => allows(config.policy, agent, id, tool.name))
        .map((tool) => ({ ...tool, name: prefixToolName(id, tool.name) })),
  );
}

function backendTools(ask: Ask): Promise<Tool[]> {
  return listAll<Tool>(ask, "tools/list", "tools");
}

/**
 * A relay that sends what a backend says while a call runs to the agent, as it happens: progress
 * (under the agent's own progress token, only if it asked for progress) and log messages.
 */
export function relayTo(
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

export interface CallOptions {
  limits: CallLimits;
  record?: AuditRecord;
  relay?: Relay;
}

/** Routes one `tools/call` to its backend, if the policy lets `agent` see the tool. */
export async function callTool(
  config: GatewayConfig,
  agent: string,
  name: string,
  args: Record<string, unknown> | undefined,
  { limits, record, relay }: CallOptions,
): Promise<CallToolResult> {
  const target = splitToolName(name);
  const backend = target && config.backends.get(target.server);
  if (target && backend && mayBeMapped(name)) {
    // Perhaps a name mapped for the model providers: map the backend's names again and match.
    const names = await withBackend(backend, agent, config.signer, limits, backendTools)
      .then((tools) => tools.map((t) => t.name))
      .catch(() => []);
    target.tool = resolveMapped(target.server, name, names) ?? target.tool;
  }
  // Deny by hiding: a tool the agent may not use is answered exactly like one that does not exist.
  if (!target || !backend || !allows(config.policy, agent, target.server, target.tool)) {
    if (record) Object.assign(record, { decision: "deny_policy", outcome: "rpc_error" });
    throw unknownTool(name);
  }
  if (record) Object.assign(record, { server: target.server, tool: target.tool });
  try {
    const params = { name: target.tool, ...(args === undefined ? {} : { arguments: args }) };
    const result = (await withBackend(backend, agent, config.signer, limits, (ask) =>
      ask("tools/call", params, relay),
    )) as CallToolResult;
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
