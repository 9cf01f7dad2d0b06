/**
 * The policy of a per-server door (`/servers/<id>/mcp`), message by message: which of an agent's
 * messages go on to the backend and which the gateway answers itself, and what each message the
 * backend sends back looks like once the agent's policy has been applied to it.
 *
 * The door shows one backend under its own names, so nothing is renamed. What the policy hides:
 * - tools the grant does not name: left out of `tools/list`, and a call to one is answered as
 *   the backend answers an unknown tool;
 * - resources, prompts and completions, unless the agent holds the server whole (as on `/mcp`):
 *   left out of the capabilities the backend declares, and their methods answered as a server
 *   without them answers (`-32601`).
 * And what the gateway seals (`core/seal.ts`): a 2026-07-28 backend's `requestState`, so that no
 * agent can present another's.
 *
 * Plain functions over parsed JSON, unit-tested in Node.
 */
import type { RequestId } from "../core/envelope.ts";
import { isJsonObject } from "../core/json.ts";
import { allows, decideRules, grantsAll, type Policy, rulesFor } from "../core/policy.ts";
import { FOREIGN_STATE_MESSAGE } from "../core/seal.ts";
import { ruleRefusedResult } from "../errors.ts";

/** Who is asking through which door. */
export interface Viewer {
  policy: Policy;
  agent: string;
  server: string;
  /** The verified token's claims, which the policy's rules may read. */
  claims: Readonly<Record<string, unknown>>;
}

/** Methods that reach what only a whole-server grant includes. */
const WHOLE_SERVER_METHODS = new Set([
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
]);

/** Capabilities that only a whole-server grant sees. */
const WHOLE_SERVER_CAPABILITIES = ["resources", "prompts", "completions"] as const;

/** Requests whose params may carry a 2026-07-28 `requestState` back to the backend. */
const RETRYABLE = new Set(["tools/call", "prompts/get", "resources/read"]);

export type JsonRpcError = { code: number; message: string };

/** What to do with one message an agent sent. */
export type Inbound =
  | { action: "forward"; message: unknown }
  | { action: "answer"; id: RequestId | null; error: JsonRpcError }
  /** A call a rule of the policy refused: answered with a tool error that names the rule. */
  | { action: "answer"; id: RequestId; result: ReturnType<typeof ruleRefusedResult> }
  /** A notification that is not one: nothing can answer it, and it does not go on. */
  | { action: "drop" }
  /** A request whose `requestState` must be opened before it goes on. */
  | { action: "open_state"; message: Record<string, unknown>; sealed: string };

/** A message's request id, if it is a request or a response. */
export function idOf(message: unknown): RequestId | undefined {
  if (!isJsonObject(message)) return undefined;
  const id = message.id;
  return typeof id === "string" || typeof id === "number" ? id : undefined;
}

/** A message's method, if it is a request or a notification. */
export function methodOf(message: unknown): string | undefined {
  return isJsonObject(message) && typeof message.method === "string" ? message.method : undefined;
}

/** Decides what happens to one message from the agent. */
export function screenInbound(viewer: Viewer, message: unknown): Inbound {
  const method = methodOf(message);
  const id = idOf(message);
  if (method !== undefined && isJsonObject(message)) {
    // A request whose id the gateway cannot read would pass unscreened: refused here, as JSON-RPC
    // asks. A "notification" naming a request method (a tools/call without an id) would reach a
    // backend that might act on it; only real notifications go on.
    if ("id" in message && id === undefined) {
      return {
        action: "answer",
        id: null,
        error: { code: -32600, message: "Invalid request: id must be a string or a number" },
      };
    }
    if (id === undefined && !method.startsWith("notifications/")) return { action: "drop" };
  }
  // Notifications and responses (the agent's answers to the backend's requests) go on as they
  // are: the upstream session they reach is this agent's own.
  if (method === undefined || id === undefined || !isJsonObject(message)) {
    return { action: "forward", message };
  }
  const { policy, agent, server } = viewer;
  if (WHOLE_SERVER_METHODS.has(method) && !grantsAll(policy, agent, server)) {
    return {
      action: "answer",
      id,
      error: { code: -32601, message: `Method not found: ${method}` },
    };
  }
  const params = isJsonObject(message.params) ? message.params : undefined;
  if (method === "tools/call") {
    const name = params?.name;
    if (typeof name !== "string") {
      return {
        action: "answer",
        id,
        error: { code: -32602, message: "Invalid params: tools/call needs a tool name" },
      };
    }
    if (!allows(policy, agent, server, name)) {
      return { action: "answer", id, error: { code: -32602, message: `Tool ${name} not found` } };
    }
    const rules = rulesFor(policy, agent, server, name);
    if (rules.length > 0) {
      // A door relays without asking the backend first, so it knows no annotations: a rule that
      // reads them decides on none, and refuses unless it allows without them.
      const args = isJsonObject(params?.arguments) ? params.arguments : {};
      const input = { claims: viewer.claims, agent, server, tool: name, args, annotations: {} };
      const decision = decideRules(rules, input);
      if (!decision.allowed)
        return { action: "answer", id, result: ruleRefusedResult(decision.reason) };
    }
  }
  if (RETRYABLE.has(method) && typeof params?.requestState === "string") {
    return { action: "open_state", message, sealed: params.requestState };
  }
  return { action: "forward", message };
}

/** `message` with its params' `requestState` replaced by `state`. */
export function withRequestState(
  message: Record<string, unknown>,
  state: string,
): Record<string, unknown> {
  const params = isJsonObject(message.params) ? message.params : {};
  return { ...message, params: { ...params, requestState: state } };
}

/** The error for a `requestState` that does not open for this agent and server. */
export const FOREIGN_STATE: JsonRpcError = { code: -32602, message: FOREIGN_STATE_MESSAGE };

/**
 * What the policy changes in one result the backend sent, for a request of `method` (undefined
 * when the gateway no longer knows it: a stream resumed with GET; then a tool list and an
 * initialize result are recognised by their shape). Returns undefined when nothing changes, so
 * the event goes on byte for byte.
 */
export function screenResult(
  viewer: Viewer,
  method: string | undefined,
  result: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const { policy, agent, server } = viewer;
  const isInitialize =
    method === "initialize" ||
    (method === undefined && isJsonObject(result.capabilities) && "serverInfo" in result);
  if (isInitialize && isJsonObject(result.capabilities) && !grantsAll(policy, agent, server)) {
    const capabilities = { ...result.capabilities };
    for (const key of WHOLE_SERVER_CAPABILITIES) delete capabilities[key];
    return { ...result, capabilities };
  }
  const isToolList =
    method === "tools/list" ||
    (method === undefined && Array.isArray(result.tools) && !("content" in result));
  if (isToolList && Array.isArray(result.tools) && !grantsAll(policy, agent, server)) {
    const tools = result.tools.filter(
      (tool) =>
        isJsonObject(tool) &&
        typeof tool.name === "string" &&
        allows(policy, agent, server, tool.name),
    );
    return { ...result, tools };
  }
  return undefined;
}
