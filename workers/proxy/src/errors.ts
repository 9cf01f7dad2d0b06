/**
 * The one funnel from gateway failures to what a client receives.
 *
 * Everything that refuses or fails a request throws a `GatewayError` carrying a tagged `Failure`;
 * this module alone turns one into an HTTP response (refusals before the MCP layer), a JSON-RPC
 * error (inside the MCP layer, for the SDK server and the hot path alike), or a tool result (a
 * backend that could not run a tool). The detailed reason goes to the log; the client gets a
 * short, stable message. Decisions branch on `kind` and on JSON-RPC codes, never on message text.
 */
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import type { AuthFailureCode } from "./core/auth.ts";
import type { RequestId } from "./core/envelope.ts";
import { log } from "./core/log.ts";
import { FOREIGN_STATE_MESSAGE } from "./core/seal.ts";

/** RFC 9728 §3: where the protected resource metadata lives, relative to the gateway's origin. */
export const RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

/** JSON-RPC code for "too many requests", in the implementation-defined server error range. */
export const TOO_MANY_REQUESTS = -32029;

/** Why a request was refused or failed. */
export type Failure =
  // Before the MCP layer: answered with an HTTP status.
  | { kind: "config_invalid"; detail: string }
  // The run-time state has never been loaded in this isolate: fail closed (`state/control-cache.ts`).
  | { kind: "control_unavailable"; detail: string }
  // An admin API request that cannot be carried out (`admin/routes.ts`): stale If-Match, bad document…
  | { kind: "admin_refused"; status: 400 | 404 | 409 | 412 | 422 | 428; message: string }
  | { kind: "origin_refused" }
  | { kind: "host_refused"; host: string }
  | { kind: "unauthorized"; code: AuthFailureCode }
  | { kind: "body_too_large"; limit: number }
  | { kind: "invalid_request"; reason: string; id: RequestId | null }
  | { kind: "insufficient_scope"; scope: string; id: RequestId | null }
  | {
      kind: "rate_limited";
      refusal: "rate" | "tool_rate" | "concurrency" | "streams";
      message: string;
      retryAfterSeconds: number;
      id: RequestId | null;
    }
  | { kind: "invalid_query"; message: string }
  | { kind: "no_route"; method: string; path: string }
  | { kind: "internal"; detail: string }
  // Inside the MCP layer: answered with a JSON-RPC error for the message.
  | { kind: "unknown_tool"; name: string }
  | { kind: "unknown_resource"; uri: string }
  | { kind: "unknown_prompt"; name: string }
  /** A 2026-07-28 retry's `requestState` that the gateway did not seal for this agent and server. */
  | { kind: "foreign_state" }
  | { kind: "backend_error"; code: number; message: string; data?: unknown }
  | { kind: "holder_unavailable"; server: string; detail: string }
  // A backend that did not answer within its deadline; the call was cancelled upstream.
  | { kind: "backend_timeout"; server: string; timeoutMs: number };

/** A failure on its way to the funnel. */
export class GatewayError extends Error {
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(failure.kind);
    this.name = "GatewayError";
    this.failure = failure;
  }
}

/** Shorthand for `throw new GatewayError(failure)` where an expression is wanted. */
export function fail(failure: Failure): never {
  throw new GatewayError(failure);
}

const AUTH_DESCRIPTIONS: Record<AuthFailureCode, string> = {
  missing_token: "Bearer token required",
  malformed_header: "Authorization must be a single Bearer token",
  token_in_query: "Tokens are accepted only in the Authorization header",
  expired: "The access token expired",
  invalid_token: "The access token is invalid",
  invalid_claims: "The access token's battles or battle_role claim is malformed",
};

const ADMIN_ERRORS = {
  400: "invalid_document",
  404: "not_found",
  409: "conflict",
  412: "version_mismatch",
  422: "backend_unhealthy",
  428: "if_match_required",
} as const;

function challenge(origin: string, metadata: string, fields: Record<string, string>): string {
  const params = Object.entries({
    ...fields,
    resource_metadata: `${origin}${metadata}`,
  }).map(([k, v]) => `${k}="${v.replace(/["\\]/g, "")}"`);
  return `Bearer ${params.join(", ")}`;
}

/** A JSON-RPC error body with an HTTP status, for requests refused before the MCP layer. */
function rpcFailure(
  status: number,
  code: number,
  message: string,
  id: RequestId | null = null,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * The answer to a session id the gateway does not know (another agent's, a changed one), as a
 * server answers one it has forgotten: the agent's client starts a new session.
 */
export function sessionNotFound(): Response {
  return Response.json(
    { jsonrpc: "2.0", id: null, error: { code: -32_001, message: "Session not found" } },
    { status: 404 },
  );
}

/**
 * The HTTP answer for `e`. `origin` is the gateway's own and `metadata` the path of the resource's
 * metadata, for the `WWW-Authenticate` challenge (RFC 6750 §3, with RFC 9728 §5.1's
 * `resource_metadata` so a client can find how to get a token).
 * Anything that is not a `GatewayError` is a bug: logged, and answered with a bare 500.
 */
export function httpResponse(
  e: unknown,
  origin: string,
  metadata: string = RESOURCE_METADATA_PATH,
): Response {
  const failure = failureOf(e);
  switch (failure.kind) {
    case "config_invalid":
      log("error", "config_invalid", { error: failure.detail });
      return rpcFailure(500, -32603, "Gateway configuration error; see the gateway's log");
    case "control_unavailable":
      log("error", "control_unavailable", { error: failure.detail });
      return rpcFailure(503, -32603, "Gateway state unavailable; retry shortly", null, {
        "retry-after": "2",
      });
    case "admin_refused":
      return Response.json(
        { error: ADMIN_ERRORS[failure.status], message: failure.message },
        { status: failure.status },
      );
    case "origin_refused":
      return rpcFailure(403, -32600, "Origin not allowed");
    case "host_refused":
      log("warn", "host_refused", { host: failure.host.slice(0, 200) });
      return rpcFailure(
        403,
        -32600,
        "Host not allowed (DNS rebinding protection; see ALLOWED_HOSTS)",
      );
    case "unauthorized": {
      const description = AUTH_DESCRIPTIONS[failure.code];
      const error =
        failure.code === "malformed_header" || failure.code === "token_in_query"
          ? "invalid_request"
          : "invalid_token";
      return rpcFailure(401, -32001, description, null, {
        "www-authenticate": challenge(origin, metadata, { error, error_description: description }),
      });
    }
    case "body_too_large":
      return rpcFailure(413, -32600, `Request body larger than ${failure.limit} bytes`);
    case "invalid_request":
      return rpcFailure(400, -32600, `Invalid request: ${failure.reason}`, failure.id);
    case "insufficient_scope": {
      const description = `This request needs the ${failure.scope} scope`;
      return rpcFailure(403, -32001, description, failure.id, {
        "www-authenticate": challenge(origin, metadata, {
          error: "insufficient_scope",
          scope: failure.scope,
          error_description: description,
        }),
      });
    }
    case "rate_limited": {
      const wait = failure.retryAfterSeconds;
      return rpcFailure(
        429,
        TOO_MANY_REQUESTS,
        `${failure.message}; retry after ${wait} s`,
        failure.id,
        { "retry-after": String(wait) },
      );
    }
    case "invalid_query":
      return Response.json({ error: "invalid_query", message: failure.message }, { status: 400 });
    case "no_route":
      return Response.json(
        { error: "not_found", message: `No route for ${failure.method} ${failure.path}` },
        { status: 404 },
      );
    default:
      // A JSON-RPC failure that escaped the MCP layer, or a bug: never the client's doing.
      log("error", "unhandled_error", { error: describe(e) });
      return rpcFailure(500, -32603, "Internal gateway error");
  }
}

/** The JSON-RPC error the MCP layer sends for `e`, for the SDK server and the hot path alike. */
export function protocolError(e: unknown): ProtocolError {
  const failure = failureOf(e);
  switch (failure.kind) {
    case "unknown_tool":
      return new ProtocolError(ProtocolErrorCode.InvalidParams, `Tool ${failure.name} not found`);
    case "unknown_resource":
      return new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `Resource ${failure.uri} not found`,
      );
    case "unknown_prompt":
      return new ProtocolError(ProtocolErrorCode.InvalidParams, `Prompt ${failure.name} not found`);
    case "foreign_state":
      return new ProtocolError(ProtocolErrorCode.InvalidParams, FOREIGN_STATE_MESSAGE);
    case "backend_error":
      return new ProtocolError(failure.code, failure.message, failure.data);
    case "holder_unavailable":
      return new ProtocolError(
        ProtocolErrorCode.InternalError,
        "The server holding it is unavailable",
      );
    case "backend_timeout":
      return new ProtocolError(
        ProtocolErrorCode.InternalError,
        timedOut(failure.server, failure.timeoutMs),
      );
    default:
      if (e instanceof ProtocolError) return e;
      // As the SDK server answers a handler that threw: the error's own message.
      return new ProtocolError(
        ProtocolErrorCode.InternalError,
        e instanceof Error ? e.message : String(e),
      );
  }
}

/**
 * The tool result for a call whose backend could not be reached or failed to answer: a tool that
 * could not run is a result the model can act on, not a protocol error.
 */
export function unavailableResult(server: string, detail: string) {
  return {
    isError: true,
    content: [
      {
        type: "text" as const,
        text: `Server ${server} is unavailable (${detail}). Other servers are unaffected; try again later.`,
      },
    ],
  };
}

/**
 * The tool result for a call a rule of the policy refused: the tool exists for the agent, this
 * call of it does not pass (docs/policy-conditions.md). The reason names the rule.
 */
export function ruleRefusedResult(reason: string) {
  return {
    isError: true,
    content: [{ type: "text" as const, text: `Refused by policy: ${reason}` }],
  };
}

/**
 * The tool result for a call whose backend did not answer within its deadline: told apart from
 * an unavailable server, which did not answer at all.
 */
export function timedOutResult(server: string, timeoutMs: number) {
  return {
    isError: true,
    content: [
      {
        type: "text" as const,
        text: `${timedOut(server, timeoutMs)}; the call was cancelled. Other servers are unaffected.`,
      },
    ],
  };
}

/** What a request past its deadline is told: `Timed out after N s waiting for <server>`. */
export function timedOut(server: string, timeoutMs: number): string {
  return `Timed out after ${Math.round(timeoutMs / 100) / 10} s waiting for ${server}`;
}

function failureOf(e: unknown): Failure {
  return e instanceof GatewayError ? e.failure : { kind: "internal", detail: describe(e) };
}

/** A short, log-safe description of a failure. */
export function describe(e: unknown): string {
  if (e instanceof GatewayError) return e.failure.kind;
  return (e instanceof Error ? e.message : String(e)).slice(0, 300);
}
