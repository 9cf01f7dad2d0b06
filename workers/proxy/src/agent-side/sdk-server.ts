/**
 * The SDK side of the agent's door: `createMcpHandler` builds one MCP server per request, and this
 * module builds it from the operations table, for the request context the pipeline put in its
 * `authInfo`. The SDK owns the protocol here: both eras, sessions refused, batches, notifications,
 * `initialize`, `server/discover`, validation of every request, and every malformed one's answer.
 */
import {
  createMcpHandler,
  type McpHttpHandler,
  Server,
  type ServerContext,
} from "@modelcontextprotocol/server";
import type { Relay } from "../backend-side/direct.ts";
import { hearFrom } from "../backend-side/sdk-client.ts";
import { contextOf, type RequestContext } from "../context.ts";
import { QUESTION_PREFIX, questionBinding, routeText } from "../core/agent-session.ts";
import type { BackendSpec } from "../core/config.ts";
import type { RequestId } from "../core/envelope.ts";
import { grantsAll, serversFor } from "../core/policy.ts";
import { seal } from "../core/seal.ts";
import { GatewayError, protocolError } from "../errors.ts";
import type { OperationCall } from "../operations/call.ts";
import { OPERATIONS } from "../operations/table.ts";
import { capabilitiesOf, eraVerdicts } from "../state/era-verdicts.ts";

export const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };

/** The SDK's handler for the agent-facing MCP endpoint: one per isolate and configuration. */
export function createSdkHandler(): McpHttpHandler {
  return createMcpHandler(({ authInfo }) => createSdkServer(contextOf(authInfo)));
}

/** Builds the per-request MCP server for `ctx`. */
export function createSdkServer(ctx: RequestContext): Server {
  // Resources, prompts and completion reach only whole-server grants: an agent without one is
  // shown none of them.
  const held = wholeServers(ctx);
  const whole = held.length > 0;
  // Updates of a subscribed resource come on a session's GET stream: sessions only, and only
  // where a server the agent holds whole says it has them (the pipeline has heard from each by
  // the session's `initialize`, `subscribableAt`). The methods are served to every session all
  // the same: a request on a cold isolate must not depend on what it has heard.
  const subscribe =
    ctx.answerable !== undefined &&
    held.some((id) => capabilitiesOf(eraVerdicts.get(id))?.resources?.subscribe === true);
  const server = new Server(SERVER_INFO, {
    // logging: backends' log messages are relayed to the agent while a call runs.
    // listChanged: backends' changes are relayed to agents that listen (`backend-side/listen.ts`).
    capabilities: {
      tools: { listChanged: true },
      ...(whole
        ? {
            resources: { listChanged: true, ...(subscribe ? { subscribe: true } : {}) },
            prompts: { listChanged: true },
            completions: {},
          }
        : {}),
      logging: {},
    },
    instructions:
      "MCPCP gateway. Tools and prompts are named <server>_<name>, resource URIs <server>+<uri>; you see only what your policy allows.",
  });
  // Each message's outcome, by its request id: a batch's records tell its messages apart.
  const call = (sdk: ServerContext, signal = sdk.mcpReq.signal): OperationCall => ({
    ctx,
    outcome: ctx.outcomeFor(sdk.mcpReq.id),
    signal,
  });

  server.setRequestHandler("tools/list", (_request, sdk) =>
    run(() => OPERATIONS["tools/list"](call(sdk))),
  );
  server.setRequestHandler("tools/call", (request, sdk) =>
    run(() =>
      OPERATIONS["tools/call"](
        {
          ...call(sdk, ctx.signalFor(sdk.mcpReq.id, sdk.mcpReq.signal)),
          relay: relayTo(
            sdk.mcpReq.notify,
            request.params._meta?.progressToken,
            ctx.answerable ? questionsTo(ctx, server, sdk.mcpReq.id) : undefined,
          ),
        },
        withRetry(request.params, sdk),
      ),
    ),
  );
  if (whole) {
    server.setRequestHandler("resources/list", (_request, sdk) =>
      run(() => OPERATIONS["resources/list"](call(sdk))),
    );
    server.setRequestHandler("resources/templates/list", (_request, sdk) =>
      run(() => OPERATIONS["resources/templates/list"](call(sdk))),
    );
    server.setRequestHandler("resources/read", (request, sdk) =>
      run(() => OPERATIONS["resources/read"](call(sdk), request.params)),
    );
    if (ctx.answerable) {
      server.setRequestHandler("resources/subscribe", (request, sdk) =>
        run(() => OPERATIONS["resources/subscribe"](call(sdk), request.params)),
      );
      server.setRequestHandler("resources/unsubscribe", (request, sdk) =>
        run(() => OPERATIONS["resources/unsubscribe"](call(sdk), request.params)),
      );
    }
    server.setRequestHandler("prompts/list", (_request, sdk) =>
      run(() => OPERATIONS["prompts/list"](call(sdk))),
    );
    server.setRequestHandler("prompts/get", (request, sdk) =>
      run(() => OPERATIONS["prompts/get"](call(sdk), request.params)),
    );
    server.setRequestHandler("completion/complete", (request, sdk) =>
      run(() => OPERATIONS["completion/complete"](call(sdk), request.params)),
    );
  }
  server.setRequestHandler("logging/setLevel", (request, sdk) =>
    run(() => OPERATIONS["logging/setLevel"](call(sdk), request.params)),
  );
  return server;
}

/** The servers `ctx`'s agent holds whole (a `"*"` grant). */
function wholeServers(ctx: RequestContext): string[] {
  const { policy } = ctx.config;
  return serversFor(policy, ctx.agent).filter((id) => grantsAll(policy, ctx.agent, id));
}

/**
 * Before a session's `initialize` is answered: hears from each server the agent holds whole that
 * this isolate has not heard from, so that `resources.subscribe` is offered exactly where one of
 * them declares it. It costs a cold isolate one connection per such server, which the session's
 * first call to it would have made anyway (its upstream session is kept).
 */
export async function subscribableAt(ctx: RequestContext): Promise<void> {
  const backends = wholeServers(ctx)
    .map((id) => ctx.config.backends.get(id))
    .filter((backend): backend is BackendSpec => backend !== undefined);
  await hearFrom(backends, ctx, { timeoutMs: ctx.config.backendTimeoutMs, signal: ctx.signal });
}

/**
 * A call's params with what the SDK lifted out of a 2026-07-28 retry put back: the agent's
 * `inputResponses` and its (sealed) `requestState`, which the operation opens.
 */
function withRetry<P extends object>(params: P, sdk: ServerContext) {
  const inputResponses = sdk.mcpReq.inputResponses;
  const requestState = sdk.mcpReq.requestState<unknown>();
  return {
    ...params,
    ...(inputResponses === undefined ? {} : { inputResponses }),
    ...(requestState === undefined ? {} : { requestState }),
  };
}

/** Runs an operation, turning the gateway's failures into the JSON-RPC errors the SDK sends. */
async function run<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (e) {
    throw e instanceof GatewayError ? protocolError(e) : e;
  }
}

/**
 * A relay that sends what a backend says while a call runs to the agent, as it happens: progress
 * (under the agent's own progress token, only if it asked for progress) and log messages.
 */
function relayTo(
  notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>,
  progressToken: string | number | undefined,
  ask: Relay["ask"],
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
    ...(ask ? { ask } : {}),
  };
}

/**
 * Puts a backend's question to the agent on the stream of its request `related`, under an id
 * that seals where the answer goes (`core/agent-session.ts`). The SDK's own `send` would wait for
 * an answer this server instance never sees (it serves one request), so the message goes to the
 * transport as it is; the SDK's framing carries it.
 */
function questionsTo(ctx: RequestContext, server: Server, related: RequestId): Relay["ask"] {
  return (question, route) => {
    const sending = seal(ctx.config.sealKey, questionBinding(ctx.agent), routeText(route)).then(
      (sealed) =>
        server.transport?.send(
          { jsonrpc: "2.0", id: `${QUESTION_PREFIX}${sealed}`, ...question },
          { relatedRequestId: related },
        ),
    );
    sending.catch(() => {
      // The agent went away; its call is cancelled through the aborted signal.
    });
  };
}
