/**
 * Tools through the gateway. `tools/list` fans out to the servers the agent's policy names and
 * merges what they offer under prefixed names; `tools/call` splits the name, checks the same
 * policy, and forwards the call, relaying progress and log messages while it runs. A backend that
 * is down fails its own calls with a tool error naming it, and so does one that runs past the
 * deadline (a different error: it was there, and the call has been cancelled); it never takes the
 * others down.
 */
import { type CallToolResult, ProtocolError, type Tool } from "@modelcontextprotocol/server";
import { type Ask, listAll, withBackend } from "../backend-side/backends.ts";
import type { RequestContext } from "../context.ts";
import { log } from "../core/log.ts";
import { mayBeMapped, prefixToolName, resolveMapped, splitToolName } from "../core/names.ts";
import { allows, decideRules, rulesFor, serversFor } from "../core/policy.ts";
import { open, seal, stateToSeal } from "../core/seal.ts";
import { traceContextOf } from "../core/trace.ts";
import {
  describe,
  fail,
  GatewayError,
  ruleRefusedResult,
  timedOutResult,
  unavailableResult,
} from "../errors.ts";
import { callLimits, isInvalidParams, listsName, type OperationCall } from "./call.ts";
import { fanOut } from "./fan-out.ts";

/** Every tool the agent may see, prefixed, in server order then each server's own order. */
export async function listTools(call: OperationCall): Promise<{ tools: Tool[] }> {
  const { config, agent } = call.ctx;
  const tools = await fanOut(call, serversFor(config.policy, agent), "tools", async (ask, id) =>
    (await backendTools(ask))
      .filter((tool) => allows(config.policy, agent, id, tool.name))
      .map((tool) => ({ ...tool, name: prefixToolName(id, tool.name) })),
  );
  return { tools };
}

function backendTools(ask: Ask): Promise<Tool[]> {
  return listAll<Tool>(ask, "tools/list", "tools");
}

/** What a tools/call carries that the gateway reads. */
export interface CallParams {
  name: string;
  arguments?: Record<string, unknown>;
  /** The agent's `_meta`: its trace context goes on to the backend (`core/trace.ts`). */
  _meta?: Record<string, unknown>;
  /** A 2026-07-28 retry: the answers to the backend's input requests, passed on as they are. */
  inputResponses?: Record<string, unknown>;
  /** A 2026-07-28 retry: the state the gateway sealed, opened before it goes on. */
  requestState?: unknown;
}

/** Routes one `tools/call` to its backend, if the policy lets the agent see the tool. */
export async function callTool(call: OperationCall, params: CallParams): Promise<CallToolResult> {
  const { ctx, outcome } = call;
  const { config, agent } = ctx;
  const { name } = params;
  const limits = callLimits(call);
  const target = splitToolName(name);
  const backend = target && config.backends.get(target.server);
  if (target && backend && mayBeMapped(name)) {
    // Perhaps a name mapped for the model providers: map the backend's names again and match.
    const names = await withBackend(backend, ctx, limits, backendTools)
      .then((tools) => tools.map((t) => t.name))
      .catch(() => []);
    target.tool = resolveMapped(target.server, name, names) ?? target.tool;
  }
  // Deny by hiding: a tool the agent may not use is answered exactly like one that does not exist.
  if (!target || !backend || !allows(config.policy, agent, target.server, target.tool)) {
    // The record keeps the name the agent asked for (noted with the message, `pipeline.ts`).
    outcome.refused("deny_policy", "rpc_error");
    return fail({ kind: "unknown_tool", name });
  }
  outcome.routed(target.server, target.tool);
  const rules = rulesFor(config.policy, agent, target.server, target.tool);
  if (rules.length > 0) {
    // Only a rule that reads the tool's annotations costs a listing of the backend's tools.
    const annotations = rules.some((rule) => rule.usesAnnotations)
      ? await withBackend(backend, ctx, limits, backendTools)
          .then((tools) => tools.find((t) => t.name === target.tool)?.annotations ?? {})
          .catch(() => ({}))
      : {};
    const decision = decideRules(rules, {
      claims: ctx.identity.claims,
      agent,
      server: target.server,
      tool: target.tool,
      args: params.arguments ?? {},
      annotations,
    });
    if (!decision.allowed) {
      outcome.refused("deny_policy", "tool_error");
      log("info", "call_refused_by_rule", { agent, server: target.server, tool: target.tool });
      return ruleRefusedResult(decision.reason);
    }
  }
  const trace = traceContextOf(params._meta);
  const state = await openedState(ctx, target.server, params.requestState);
  const forwarded = {
    name: target.tool,
    ...(params.arguments === undefined ? {} : { arguments: params.arguments }),
    ...(trace ? { _meta: trace } : {}),
    ...(params.inputResponses === undefined ? {} : { inputResponses: params.inputResponses }),
    ...(state === undefined ? {} : { requestState: state }),
  };
  try {
    const result = (await withBackend(backend, ctx, limits, async (ask) => {
      try {
        return await ask("tools/call", forwarded, call.relay);
      } catch (e) {
        // The backend's own "no such tool" must read like ours, under the name the agent used.
        if (isInvalidParams(e) && !(await listsName(ask, "tools/list", "tools", target.tool))) {
          fail({ kind: "unknown_tool", name });
        }
        throw e;
      }
    })) as CallToolResult;
    if (isInputRequired(result)) return await inputRequired(ctx, target.server, result as never);
    if (result.isError) outcome.ended("tool_error");
    return result;
  } catch (e) {
    outcome.ended("rpc_error");
    if (e instanceof GatewayError && e.failure.kind === "backend_timeout") {
      outcome.ended("backend_timeout");
      log("warn", "backend_call_timed_out", {
        server: target.server,
        agent,
        tool: target.tool,
        timeout_ms: e.failure.timeoutMs,
      });
      return timedOutResult(target.server, e.failure.timeoutMs);
    }
    if (e instanceof GatewayError) throw e;
    if (e instanceof ProtocolError) {
      return fail({ kind: "backend_error", code: e.code, message: e.message, data: e.data });
    }
    if (limits.signal?.aborted) throw e;
    outcome.ended("backend_unavailable");
    log("warn", "backend_call_failed", {
      server: target.server,
      agent,
      tool: target.tool,
      error: describe(e),
    });
    return unavailableResult(target.server, describe(e));
  }
}

/**
 * A 2026-07-28 backend's `input_required` for the agent: its `requestState` sealed for the agent
 * and the server (`core/seal.ts`), so that no other agent can present it. An agent that cannot
 * take one (a 2025 agent: its era has no such result) gets a tool error saying why, at once.
 */
async function inputRequired(
  ctx: RequestContext,
  server: string,
  result: Record<string, unknown>,
): Promise<CallToolResult> {
  if (!ctx.inputCapabilities) {
    return {
      isError: true,
      content: [
        {
          type: "text",
          text: `${server} asks for more input the 2026-07-28 way (input_required), which this 2025 session cannot answer on /mcp; use a 2026-07-28 client, or the server's door /servers/${server}/mcp.`,
        },
      ],
    };
  }
  const state = stateToSeal(result);
  if (state === undefined) return result as CallToolResult;
  const sealed = await seal(ctx.config.sealKey, stateBinding(ctx, server), state);
  return { ...result, requestState: sealed } as unknown as CallToolResult;
}

/** A retry's state, opened; undefined when there is none; a foreign or changed one is refused. */
async function openedState(
  ctx: RequestContext,
  server: string,
  state: unknown,
): Promise<string | undefined> {
  if (state === undefined) return undefined;
  const opened =
    typeof state === "string"
      ? await open(ctx.config.sealKey, stateBinding(ctx, server), state)
      : undefined;
  return opened ?? fail({ kind: "foreign_state" });
}

function stateBinding(ctx: RequestContext, server: string) {
  return { agent: ctx.agent, server, kind: "request_state" } as const;
}

function isInputRequired(result: Record<string, unknown>): boolean {
  return result.resultType === "input_required";
}
