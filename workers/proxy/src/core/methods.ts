/**
 * The MCP method names, for what the gateway writes down about a request (its audit records and
 * log lines). An agent's method string is its own free text: a record names the method only when
 * it is one MCP defines, and says `unknown` otherwise, so that what an operator reads and filters
 * on is never the agent's writing.
 */
import type { NotificationMethod, RequestMethod } from "@modelcontextprotocol/server";

/**
 * Every method of the eras the gateway serves (2025-03-26 to 2026-07-28). Typed as the SDK's
 * own unions, so the compiler says when the SDK learns a method this list lacks.
 */
const KNOWN: Record<RequestMethod | NotificationMethod, true> = {
  initialize: true,
  ping: true,
  "server/discover": true,
  "subscriptions/listen": true,
  "tools/list": true,
  "tools/call": true,
  "resources/list": true,
  "resources/templates/list": true,
  "resources/read": true,
  "resources/subscribe": true,
  "resources/unsubscribe": true,
  "prompts/list": true,
  "prompts/get": true,
  "completion/complete": true,
  "logging/setLevel": true,
  "sampling/createMessage": true,
  "elicitation/create": true,
  "roots/list": true,
  "notifications/initialized": true,
  "notifications/cancelled": true,
  "notifications/progress": true,
  "notifications/message": true,
  "notifications/roots/list_changed": true,
  "notifications/resources/updated": true,
  "notifications/resources/list_changed": true,
  "notifications/tools/list_changed": true,
  "notifications/prompts/list_changed": true,
  "notifications/elicitation/complete": true,
  "notifications/subscriptions/acknowledged": true,
};

// Tasks (2025-11-25), which the SDK keeps out of the unions above.
const TASKS = [
  "tasks/get",
  "tasks/result",
  "tasks/list",
  "tasks/cancel",
  "notifications/tasks/status",
];

// A Set, not the object: a method named "toString" must not find Object.prototype's.
const METHODS: ReadonlySet<string> = new Set([...Object.keys(KNOWN), ...TASKS]);

/**
 * What a record says a message's method is: the method when MCP defines it, `unknown` for any
 * other string, null for a message without one (an answer to a backend's request, or not a
 * JSON-RPC message at all).
 */
export function methodLabel(method: string | undefined): string | null {
  if (method === undefined) return null;
  return METHODS.has(method) ? method : "unknown";
}
