/**
 * Agent authentication: the bearer token an agent presents, checked with jose.
 *
 * Plain functions over plain data, so they are unit-tested in Node without workerd. Failures are
 * tagged results with a stable `code` for the client and a `detail` for the log; nothing here
 * throws for a bad token.
 */
import { errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { type BattleClaims, readBattleClaims } from "../../../../common/battle-claims.ts";

/** Who is calling, as established from a verified token. */
export interface AgentIdentity {
  /** `client_id` when present (the seed's claim), else `sub`. */
  agent: string;
  scopes: ReadonlySet<string>;
  /** Token expiry, seconds since the epoch. */
  expiresAt: number;
  tokenId: string | undefined;
  /** `iat`, seconds since the epoch, when the token carries one: revocations by time compare it. */
  issuedAt: number | undefined;
  /** The verified token's claims, as signed (rule conditions read them). */
  claims: JWTPayload;
  /** Its `battles` and `battle_role`, checked: the proxy's assertions carry them to backends. */
  battleClaims: BattleClaims;
}

/** The scopes docs/design.md defines: listing needs one, calling the other. */
export const SCOPES = { list: "list_tools", call: "call_tools" } as const;

/** Allowed clock skew for `exp`, `nbf` and `iat` (docs/design.md: at most 60 s). */
export const CLOCK_SKEW_SECONDS = 60;

/** Only RS256: never `none`, never an HMAC that could be keyed with the public key. */
export const ALGORITHMS = ["RS256"];

export type AuthFailureCode =
  | "missing_token"
  | "malformed_header"
  | "token_in_query"
  | "expired"
  | "invalid_token"
  | "invalid_claims";

export type AuthResult =
  | { ok: true; identity: AgentIdentity }
  | { ok: false; code: AuthFailureCode; detail: string };

export interface VerifyOptions {
  issuer: string;
  audience: string;
  /** Override "now" (seconds since the epoch), for tests. */
  now?: number;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", and
// ":", which the OAuth server's access tokens (`user:grant:secret`, oauth/tokens.ts) contain.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/:]+=*) *$/i;

/**
 * Takes the bearer token from the `Authorization` header. Two headers arrive joined by a comma and
 * fail the pattern; a token in the query string is refused outright (RFC 6750 §2.3 discourages it,
 * and it leaks into logs).
 */
export function extractBearer(
  authorization: string | null | undefined,
  url: URL,
): { ok: true; token: string } | { ok: false; code: AuthFailureCode; detail: string } {
  if (url.searchParams.has("access_token")) {
    return { ok: false, code: "token_in_query", detail: "access_token in the query string" };
  }
  if (!authorization)
    return { ok: false, code: "missing_token", detail: "no Authorization header" };
  const match = BEARER.exec(authorization);
  if (!match?.[1]) {
    return { ok: false, code: "malformed_header", detail: "Authorization is not one Bearer token" };
  }
  return { ok: true, token: match[1] };
}

/** Verifies an agent token against `keys` and turns its claims into an identity. */
export async function verifyAgentToken(
  token: string,
  keys: JWTVerifyGetKey,
  options: VerifyOptions,
): Promise<AuthResult> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      algorithms: ALGORITHMS,
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ["exp", "iss", "aud"],
      ...(options.now === undefined ? {} : { currentDate: new Date(options.now * 1000) }),
    }));
  } catch (e) {
    return describeJoseFailure(e);
  }
  const now = options.now ?? Math.floor(Date.now() / 1000);
  // jose checks `iat` only when asked for a maximum age; a token issued in the future is forged or
  // from a broken clock either way.
  if (typeof payload.iat === "number" && payload.iat > now + CLOCK_SKEW_SECONDS) {
    return { ok: false, code: "invalid_token", detail: "iat is in the future" };
  }
  const clientId = payload.client_id;
  const agent = typeof clientId === "string" && clientId !== "" ? clientId : payload.sub;
  if (!agent) return { ok: false, code: "invalid_token", detail: "no sub or client_id claim" };
  // A token whose battle claims cannot be read is refused whole: acting on it as if it were
  // unbound would widen what its issuer meant to grant.
  const battle = readBattleClaims(payload);
  if (!battle.ok) return { ok: false, code: "invalid_claims", detail: battle.detail };
  const scope = typeof payload.scope === "string" ? payload.scope : "";
  return {
    ok: true,
    identity: {
      agent,
      scopes: new Set(scope.split(" ").filter(Boolean)),
      expiresAt: payload.exp as number,
      tokenId: payload.jti,
      issuedAt: typeof payload.iat === "number" ? payload.iat : undefined,
      claims: payload,
      battleClaims: battle.claims,
    },
  };
}

/** Maps jose's failures to our codes by their stable `code`, never by message text. */
function describeJoseFailure(e: unknown): AuthResult {
  if (e instanceof errors.JWTExpired) {
    return { ok: false, code: "expired", detail: e.message };
  }
  if (e instanceof errors.JOSEError) {
    return { ok: false, code: "invalid_token", detail: `${e.code}: ${e.message}` };
  }
  return { ok: false, code: "invalid_token", detail: `unreadable token: ${String(e)}` };
}
