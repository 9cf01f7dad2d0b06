/**
 * Which scope each MCP message needs (docs/design.md, "Tokens"). Nothing a backend holds is
 * reached without an MCP scope:
 *
 * - listing (`tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`,
 *   `subscriptions/listen`) needs `list_tools`;
 * - everything that fetches or acts (`tools/call`, `resources/read`, `prompts/get`,
 *   `completion/complete`, `resources/subscribe`, `logging/setLevel`, and any request method the
 *   gateway does not know, which a door would pass to its backend) needs `call_tools`;
 * - the handshake (`initialize`, `ping`, `server/discover`) and an agent's answers to a backend's
 *   questions need either one: a token with no MCP scope (say, only `audit_read`) opens nothing.
 *
 * Notifications carry nothing back and need no scope.
 */
import { SCOPES } from "./auth.ts";
import type { Message, RequestId } from "./envelope.ts";

type Need = "list" | "call" | "either";

// A Map, not an object literal: a method named "toString" must not find Object.prototype's.
const NEEDS = new Map<string, Need>([
  ["tools/list", "list"],
  ["resources/list", "list"],
  ["resources/templates/list", "list"],
  ["prompts/list", "list"],
  ["subscriptions/listen", "list"],
  ["initialize", "either"],
  ["ping", "either"],
  ["server/discover", "either"],
]);

function needOf({ method, id }: Message): Need | undefined {
  if (method === undefined) return id === null ? undefined : "either";
  if (id === null) return undefined;
  return NEEDS.get(method) ?? "call";
}

/** The first message that needs a scope `granted` lacks, if any, and the scope to ask for. */
export function missingScope(
  messages: readonly Message[],
  granted: ReadonlySet<string>,
): { id: RequestId | null; scope: string } | undefined {
  for (const message of messages) {
    const need = needOf(message);
    if (need === undefined) continue;
    if (need === "list" && !granted.has(SCOPES.list)) return { id: message.id, scope: SCOPES.list };
    if (need === "call" && !granted.has(SCOPES.call)) return { id: message.id, scope: SCOPES.call };
    if (need === "either" && !granted.has(SCOPES.list) && !granted.has(SCOPES.call)) {
      return { id: message.id, scope: SCOPES.list };
    }
  }
  return undefined;
}
