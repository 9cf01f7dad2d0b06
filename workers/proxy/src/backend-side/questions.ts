/**
 * The agent's answers to backends' questions on `/mcp`, taken to the backend that asked.
 *
 * A question reached the agent under an id that seals where it came from
 * (`core/agent-session.ts`); the answer, on a POST of its own to any isolate, is opened here and
 * sent to that backend's session under the backend's own id, as a 2025 client sends a response.
 * An id that does not open for this agent, or names a server the agent no longer holds, goes
 * nowhere: the backend's question then runs into its own limits, or the call's deadline.
 */
import {
  type AgentAnswer,
  QUESTION_PREFIX,
  questionBinding,
  routeOf,
} from "../core/agent-session.ts";
import type { GatewayConfig } from "../core/config.ts";
import { log } from "../core/log.ts";
import { open } from "../core/seal.ts";
import { type BackendCaller, fetchFor } from "./caller.ts";

/** What became of one answer: delivered to `server`, or dropped, and why. */
export type Delivery =
  | { delivered: true; server: string }
  | { delivered: false; server: string | null; reason: string };

/** Sends each answer to the backend that asked; settles once each has been taken or dropped. */
export function deliverAnswers(
  config: GatewayConfig,
  caller: BackendCaller,
  answers: AgentAnswer[],
  signal: AbortSignal,
): Promise<Delivery[]> {
  return Promise.all(answers.map((answer) => deliver(config, caller, answer, signal)));
}

async function deliver(
  config: GatewayConfig,
  caller: BackendCaller,
  { id, answer }: AgentAnswer,
  signal: AbortSignal,
): Promise<Delivery> {
  const sealed = id.slice(QUESTION_PREFIX.length);
  const text = await open(config.sealKey, questionBinding(caller.agent), sealed);
  const route = text === undefined ? undefined : routeOf(text);
  if (!route) return dropped(caller.agent, null, "not a question this gateway asked this agent");
  const backend = config.backends.get(route.server);
  if (!backend || !config.policy.get(caller.agent)?.has(route.server)) {
    return dropped(caller.agent, route.server, "the agent holds no grant on the server");
  }
  try {
    const response = await fetchFor(backend, caller)(backend.url.href, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": route.session,
        "mcp-protocol-version": route.protocolVersion,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: route.id, ...answer }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(config.backendTimeoutMs)]),
    });
    await response.body?.cancel();
    if (!response.ok) {
      return dropped(caller.agent, route.server, `the backend answered HTTP ${response.status}`);
    }
    return { delivered: true, server: route.server };
  } catch (e) {
    const reason = `the backend could not be reached: ${e instanceof Error ? e.message : e}`;
    return dropped(caller.agent, route.server, reason);
  }
}

function dropped(agent: string, server: string | null, reason: string): Delivery {
  log("warn", "answer_dropped", { agent, server, reason });
  return { delivered: false, server, reason };
}
