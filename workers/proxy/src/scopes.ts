/**
 * Which scope each MCP method needs (DESIGN.md, "Tokens"): listing needs `list_tools`, calling
 * needs `call_tools`. Everything else (initialize, ping, notifications) needs a valid token only.
 */
import { SCOPES } from "./auth.ts";

// A Map, not an object literal: a method named "toString" must not find Object.prototype's.
const REQUIRED = new Map<string, string>([
  ["tools/list", SCOPES.list],
  ["tools/call", SCOPES.call],
]);

/** The first message in `body` whose method needs a scope `granted` lacks, if any. */
export function missingScope(
  body: unknown,
  granted: ReadonlySet<string>,
): { id: string | number | null; scope: string } | undefined {
  const messages = Array.isArray(body) ? body : [body];
  for (const message of messages) {
    if (typeof message !== "object" || message === null) continue;
    const { method, id } = message as { method?: unknown; id?: unknown };
    if (typeof method !== "string") continue;
    const scope = REQUIRED.get(method);
    if (scope && !granted.has(scope)) {
      return { id: typeof id === "string" || typeof id === "number" ? id : null, scope };
    }
  }
  return undefined;
}
