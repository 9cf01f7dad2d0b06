/**
 * The one funnel from failures to HTTP answers for mcp1's inspection routes (and a configuration
 * mistake on /mcp): a short, stable `{ error, message }` body for the client, the detailed reason
 * for the log. /mcp's refusals of the proxy's assertion are the shared gate's, in the shape mcp2
 * and mcp3 answer (`common/assertion-gate.ts`).
 */
import type { AuthFailure } from "./inspect-auth.ts";
import { INSPECT_SCOPE } from "./inspect-auth.ts";

/** Inspection data is per person and changes every second: never cache it anywhere. */
export const NO_STORE = { "Cache-Control": "no-store" } as const;

/** A JSON error body with a stable code. */
export function jsonError(
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return Response.json({ error, message }, { status, headers: { ...NO_STORE, ...headers } });
}

const AUTH_MESSAGES: Record<AuthFailure["error"], string> = {
  invalid_request: "Send the inspection token as Authorization: Bearer <token>.",
  invalid_token: "The inspection token is missing, expired or not valid here.",
  insufficient_scope: `The token lacks the ${INSPECT_SCOPE} scope.`,
};

/** 401 or 403 with the RFC 6750 §3 challenge; the reason goes to the log, not the client. */
export function authFailure(failure: AuthFailure): Response {
  console.warn(JSON.stringify({ event: "inspect_auth_failed", ...failure }));
  const scope = failure.error === "insufficient_scope" ? `, scope="${INSPECT_SCOPE}"` : "";
  return jsonError(failure.status, failure.error, AUTH_MESSAGES[failure.error], {
    "WWW-Authenticate": `Bearer realm="mcpcp-inspect", error="${failure.error}"${scope}`,
  });
}

/** 500 for a configuration mistake; the variable is named in the log. */
export function configFailure(
  error: string,
  message = "Inspection is misconfigured; see mcp1's log.",
): Response {
  console.error(JSON.stringify({ event: "config_invalid", error }));
  return jsonError(500, "server_misconfigured", message);
}
