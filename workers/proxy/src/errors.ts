/**
 * The one funnel from gateway failures to HTTP responses. The detailed reason goes to the log;
 * the client gets a short, stable message.
 */
import type { AuthFailureCode } from "./auth.ts";

/** RFC 9728 §3: where the protected resource metadata lives, relative to the gateway's origin. */
export const RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

type JsonRpcId = string | number | null;

/** A JSON-RPC 2.0 error response body. */
export function jsonRpcError(id: JsonRpcId, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } });
}

const DESCRIPTIONS: Record<AuthFailureCode, string> = {
  missing_token: "Bearer token required",
  malformed_header: "Authorization must be a single Bearer token",
  token_in_query: "Tokens are accepted only in the Authorization header",
  expired: "The access token expired",
  invalid_token: "The access token is invalid",
};

function challenge(origin: string, fields: Record<string, string>): string {
  const params = Object.entries({
    ...fields,
    resource_metadata: `${origin}${RESOURCE_METADATA_PATH}`,
  }).map(([k, v]) => `${k}="${v.replace(/["\\]/g, "")}"`);
  return `Bearer ${params.join(", ")}`;
}

/**
 * 401 for a missing, malformed, expired or forged token (RFC 6750 §3, with RFC 9728 §5.1's
 * `resource_metadata` so a client can find out how to get a token).
 */
export function unauthorized(origin: string, code: AuthFailureCode): Response {
  const description = DESCRIPTIONS[code];
  return new Response(jsonRpcError(null, -32001, description), {
    status: 401,
    headers: {
      "content-type": "application/json",
      "www-authenticate": challenge(origin, {
        error:
          code === "malformed_header" || code === "token_in_query"
            ? "invalid_request"
            : "invalid_token",
        error_description: description,
      }),
    },
  });
}

/** 403 for a valid token without the scope the method needs (RFC 6750 §3.1). */
export function insufficientScope(origin: string, id: JsonRpcId, scope: string): Response {
  const description = `This request needs the ${scope} scope`;
  return new Response(jsonRpcError(id, -32001, description), {
    status: 403,
    headers: {
      "content-type": "application/json",
      "www-authenticate": challenge(origin, {
        error: "insufficient_scope",
        scope,
        error_description: description,
      }),
    },
  });
}

/** A JSON-RPC error with an HTTP status, for requests refused before they reach the MCP layer. */
export function rpcFailure(
  status: number,
  code: number,
  message: string,
  id: JsonRpcId = null,
): Response {
  return new Response(jsonRpcError(id, code, message), {
    status,
    headers: { "content-type": "application/json" },
  });
}
