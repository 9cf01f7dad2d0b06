/**
 * Which scope each MCP method needs (docs/design.md, "Tokens"): listing needs `list_tools`,
 * calling needs `call_tools`. Everything else (initialize, ping, notifications) needs a valid
 * token only.
 */
import { SCOPES } from "./auth.ts";
import type { Message, RequestId } from "./envelope.ts";

// A Map, not an object literal: a method named "toString" must not find Object.prototype's.
const REQUIRED = new Map<string, string>([
  ["tools/list", SCOPES.list],
  ["tools/call", SCOPES.call],
]);

/** The first message whose method needs a scope `granted` lacks, if any. */
export function missingScope(
  messages: readonly Message[],
  granted: ReadonlySet<string>,
): { id: RequestId | null; scope: string } | undefined {
  for (const { method, id } of messages) {
    if (method === undefined) continue;
    const scope = REQUIRED.get(method);
    if (scope && !granted.has(scope)) return { id, scope };
  }
  return undefined;
}
