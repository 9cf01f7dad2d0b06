/**
 * What every operation is handed: the request context, the outcome and the abort signal of the
 * one message it serves, and where to relay what a backend says while it works. Both agent-side adapters (the SDK
 * server and the hot path) build one per message; the operations never see which did.
 */
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import { type Ask, type ListMethod, listAll } from "../backend-side/backends.ts";
import type { CallLimits } from "../backend-side/caller.ts";
import type { Relay } from "../backend-side/direct.ts";
import type { Outcome, RequestContext } from "../context.ts";

export interface OperationCall {
  ctx: RequestContext;
  /** Where the operation records what it did, for the audit record of its message. */
  outcome: Outcome;
  signal: AbortSignal;
  relay?: Relay;
}

/** The longest a listing waits for any one backend: a slow one drops out, the others answer. */
const LIST_TIMEOUT_MS = 5_000;

/** The limits of a listing's backend requests. */
export function listLimits({ ctx, signal }: OperationCall): CallLimits {
  return {
    timeoutMs: Math.min(ctx.config.backendTimeoutMs, LIST_TIMEOUT_MS),
    signal,
    defer: ctx.defer,
  };
}

/** The limits of a call, read or get. */
export function callLimits({ ctx, signal }: OperationCall): CallLimits {
  return {
    timeoutMs: ctx.config.backendTimeoutMs,
    answerTimeoutMs: ctx.config.agentAnswerTimeoutMs,
    signal,
    defer: ctx.defer,
  };
}

/**
 * Whether a backend's error is JSON-RPC -32602 (invalid params). For a read that names only a URI
 * this can only mean the URI; for a call or a get it may be the name or the arguments, which only
 * the backend's own listing tells apart. Servers checked: the TypeScript SDK's McpServer, v1 and
 * v2 (an unknown or disabled tool or prompt is -32602; v1 also sends -32602 for bad arguments,
 * v2 turns those into a tool result), and `agents`' createMcpHandler, which wraps it. Their
 * messages differ; the code does not.
 */
export function isInvalidParams(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError && e.code === ProtocolErrorCode.InvalidParams;
}

/**
 * Whether the backend's `method` listing holds an item named `name`: one more request, made only
 * after the backend refused a call or get with invalid params. A backend that cannot list is not
 * contradicted, and its own error stands.
 */
export async function listsName(
  ask: Ask,
  method: ListMethod,
  key: string,
  name: string,
): Promise<boolean> {
  const items = await listAll<{ name?: unknown }>(ask, method, key).catch(() => undefined);
  return items === undefined || items.some((item) => item.name === name);
}
