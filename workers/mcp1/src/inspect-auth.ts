/**
 * Who may inspect battles: a person (or program) holding an inspection token. It is a JWT from the
 * same issuer and keys as agent tokens (docs/design.md, "Tokens" and "Inspection"), carrying the
 * scope `inspect_battles` that no agent token needs. mcp1 checks it itself, so the JSON API, the
 * live feed and the page's data are closed whether they are reached directly or through the proxy.
 *
 * Plain functions over plain data; failures are tagged results with a stable code for the client
 * and a detail for the log. Nothing here throws for a bad token.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { z } from "zod";
import { readBattleClaims } from "../../../common/battle-claims.ts";
import { LIVE_PROTOCOL, LIVE_TOKEN_PREFIX } from "../../../durable-objects/battle-types.ts";

/** The scope an inspection token must hold. */
export const INSPECT_SCOPE = "inspect_battles";
/** Only RS256: never `none`, never an HMAC that could be keyed with the public key. */
const ALGORITHMS = ["RS256"];
/** docs/design.md, "Tokens": `exp`, `nbf`, `iat` checked with at most 60 s of clock skew. */
const CLOCK_SKEW_SECONDS = 60;

/** A verified inspector. */
export interface Inspector {
  /** `client_id` when present, else `sub`: who is looking, for the log. */
  subject: string;
  /** Token expiry, seconds since the epoch; open live feeds close when it passes. */
  expiresAt: number;
  /** The token's `battles` claim: the only battles it shows. Absent: every battle. */
  battles?: readonly string[];
}

/** How inspection tokens are checked; built once per isolate from the bindings. */
export interface InspectConfig {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
}

export type AuthFailure = {
  status: 401 | 403;
  /** RFC 6750 §3.1 error code, sent in WWW-Authenticate. */
  error: "invalid_request" | "invalid_token" | "insufficient_scope";
  /** For the log only. */
  detail: string;
};

export type Checked<T> = { ok: true; value: T } | { ok: false; failure: AuthFailure };

const jwksSchema = z.object({
  keys: z
    .array(z.looseObject({ kty: z.string(), kid: z.string().min(1) }))
    .min(1, "must hold at least one key"),
});

/** The inspection configuration from mcp1's bindings, or an error naming the variable. */
export function loadInspectConfig(
  env: Pick<Env, "AGENT_JWKS" | "JWT_ISSUER" | "JWT_AUDIENCE">,
): { ok: true; value: InspectConfig } | { ok: false; error: string } {
  if (!env.JWT_ISSUER) return { ok: false, error: "JWT_ISSUER is not set" };
  if (!env.JWT_AUDIENCE) return { ok: false, error: "JWT_AUDIENCE is not set" };
  const raw = env.AGENT_JWKS?.trim();
  if (!raw) return { ok: false, error: "AGENT_JWKS is not set (run `npm run keys`)" };
  const common = { issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE };
  // As for the proxy: a JWKS document, or the https URL where one is published.
  if (/^https?:\/\//.test(raw)) {
    if (!URL.canParse(raw)) return { ok: false, error: "AGENT_JWKS is not a valid URL" };
    const keys = createRemoteJWKSet(new URL(raw), { cooldownDuration: 30_000 });
    return { ok: true, value: { keys, ...common } };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    return { ok: false, error: `AGENT_JWKS is not valid JSON: ${(e as Error).message}` };
  }
  const parsed = jwksSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      error: `AGENT_JWKS is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`,
    };
  }
  return {
    ok: true,
    value: { keys: createLocalJWKSet(parsed.data as JSONWebKeySet), ...common },
  };
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * Finds the inspection token of a request: the `Authorization: Bearer` header, or, for a WebSocket
 * upgrade only (a browser cannot set headers on one), the `Sec-WebSocket-Protocol` entry
 * `mcpcp-bearer.<jwt>` beside `mcpcp-inspect`. Never the query string, which ends up in logs.
 */
export function findToken(request: Request): Checked<string> {
  const url = new URL(request.url);
  if (url.searchParams.has("access_token") || url.searchParams.has("token")) {
    return fail(401, "invalid_request", "token in the query string");
  }
  const authorization = request.headers.get("Authorization");
  if (authorization) {
    const match = BEARER.exec(authorization);
    if (!match?.[1]) return fail(401, "invalid_request", "Authorization is not one Bearer token");
    return { ok: true, value: match[1] };
  }
  const protocols = request.headers.get("Sec-WebSocket-Protocol");
  if (protocols && request.headers.get("Upgrade")?.toLowerCase() === "websocket") {
    const offered = protocols.split(",").map((p) => p.trim());
    const tokens = offered.filter((p) => p.startsWith(LIVE_TOKEN_PREFIX));
    if (!offered.includes(LIVE_PROTOCOL) || tokens.length !== 1) {
      return fail(401, "invalid_request", `subprotocols must be ${LIVE_PROTOCOL} and one token`);
    }
    return { ok: true, value: (tokens[0] as string).slice(LIVE_TOKEN_PREFIX.length) };
  }
  return fail(401, "invalid_token", "no token");
}

/** Verifies an inspection token: signature, issuer, audience, times, and the inspection scope. */
export async function verifyInspector(
  token: string,
  config: InspectConfig,
  now?: number,
): Promise<Checked<Inspector>> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, config.keys, {
      algorithms: ALGORITHMS,
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ["exp", "iss", "aud"],
      ...(now === undefined ? {} : { currentDate: new Date(now * 1000) }),
    }));
  } catch (e) {
    // Branch on jose's error classes (stable codes), never on message text.
    if (e instanceof errors.JWTExpired) return fail(401, "invalid_token", "token expired");
    const detail = e instanceof errors.JOSEError ? `${e.code}: ${e.message}` : String(e);
    return fail(401, "invalid_token", detail);
  }
  const clock = now ?? Math.floor(Date.now() / 1000);
  if (typeof payload.iat === "number" && payload.iat > clock + CLOCK_SKEW_SECONDS) {
    return fail(401, "invalid_token", "iat is in the future");
  }
  const clientId = payload.client_id;
  const subject = typeof clientId === "string" && clientId !== "" ? clientId : payload.sub;
  if (!subject) return fail(401, "invalid_token", "no sub or client_id claim");
  const scopes = typeof payload.scope === "string" ? payload.scope.split(" ") : [];
  if (!scopes.includes(INSPECT_SCOPE)) {
    return fail(403, "insufficient_scope", `${subject} lacks ${INSPECT_SCOPE}`);
  }
  // A claim that cannot be read refuses the token: showing everything would widen what the
  // issuer meant to grant.
  const claims = readBattleClaims(payload);
  if (!claims.ok) return fail(401, "invalid_token", claims.detail);
  const inspector: Inspector = { subject, expiresAt: payload.exp as number };
  if (claims.claims.battles !== undefined) inspector.battles = claims.claims.battles;
  return { ok: true, value: inspector };
}

function fail(
  status: AuthFailure["status"],
  error: AuthFailure["error"],
  detail: string,
): { ok: false; failure: AuthFailure } {
  return { ok: false, failure: { status, error, detail } };
}
