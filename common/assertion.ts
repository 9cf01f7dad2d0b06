/**
 * The proxy's backend assertion: how a backend learns which agent is calling without ever seeing
 * the agent's token (docs/design.md, "Backend identity").
 *
 * For every backend call the proxy signs a short JWT with its own key: `iss` = the proxy,
 * `aud` = the backend's id, `sub` = the agent, a fresh `jti`, `exp` seconds away, and the agent
 * token's `battles` and `battle_role` claims when it has them (`battle-claims.ts`). A backend
 * verifies it against the proxy's public JWKS and takes the agent from `sub`; anything else, an
 * expired or replayed-elsewhere assertion included, is refused. Each assertion is good for one
 * request: a backend remembers its `jti` until `usableUntil` and refuses a second use
 * (`seen-assertions.ts`, `assertion-gate.ts`), so the proxy must sign one per HTTP request.
 * Ed25519 (EdDSA): signing costs tens of microseconds, which matters because the proxy signs
 * once per backend request; so the token is built without jose's general-purpose builder
 * (`AssertionBuilder`).
 *
 * Runs in workerd (the proxy signs, mcp1 verifies) and Node (mcp2/mcp3 verify): jose and web
 * crypto only.
 */
import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from "jose";
import { type BattleClaims, readBattleClaims } from "./battle-claims.ts";

/** The only algorithm assertions use; verification accepts nothing else. */
export const ASSERTION_ALG = "EdDSA";
/** `iss` of every assertion. */
export const ASSERTION_ISSUER = "mcpcp-proxy";
/** How long an assertion lives. Long enough for clock skew between hosts, short enough to be useless when stolen. */
export const ASSERTION_TTL_SECONDS = 60;
/** Clock skew a backend tolerates. */
export const ASSERTION_SKEW_SECONDS = 5;
/** Oldest assertion a backend accepts, by `iat`, whatever its `exp` says. */
export const ASSERTION_MAX_AGE_SECONDS = ASSERTION_TTL_SECONDS + ASSERTION_SKEW_SECONDS;
// The proxy's jti is a UUID (36 characters); a longer one is refused, which bounds what a
// backend's memory of used jtis costs per entry.
const MAX_JTI_LENGTH = 128;

/** Signs assertions with the proxy's current key. */
export interface AssertionSigner {
  kid: string;
  /** `claims`: the agent token's battle claims, carried only when the token has them. */
  sign(agent: string, backend: string, claims?: BattleClaims): Promise<string>;
}

/**
 * How an assertion is put together: `direct` builds the JWS itself (a fixed header, one
 * `JSON.stringify` of the claims, one Web Crypto signature), `jose` with jose's `SignJWT`. The
 * two give the same token, claim for claim and in the same order
 * (`test/unit/assertion-builders.test.ts` holds them to it); `direct` skips jose's builder,
 * its checks of what the proxy itself fills in, and its copies, on every backend request.
 */
export type AssertionBuilder = "direct" | "jose";

const HEADER_TYPE = "mcpcp-assertion+jwt";

/** Imports the proxy's private Ed25519 JWK (which must carry its `kid`) into a signer. */
export async function createAssertionSigner(
  privateJwk: JWK,
  builder: AssertionBuilder = "direct",
): Promise<AssertionSigner> {
  if (privateJwk.kty !== "OKP" || privateJwk.crv !== "Ed25519" || !privateJwk.d) {
    throw new Error("the proxy signing key must be a private Ed25519 JWK (kty OKP, crv Ed25519)");
  }
  const kid = privateJwk.kid;
  if (!kid) throw new Error("the proxy signing key has no kid");
  const key = (await importJWK(privateJwk, ASSERTION_ALG)) as CryptoKey;
  if (builder === "jose") {
    return {
      kid,
      sign(agent, backend, claims = {}) {
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ ...claims })
          .setProtectedHeader({ alg: ASSERTION_ALG, kid, typ: HEADER_TYPE })
          .setIssuer(ASSERTION_ISSUER)
          .setAudience(backend)
          .setSubject(agent)
          .setJti(crypto.randomUUID())
          .setIssuedAt(now)
          .setExpirationTime(now + ASSERTION_TTL_SECONDS)
          .sign(key);
      },
    };
  }
  // The header never changes for a key: encoded once.
  const header = base64url(
    encoder.encode(JSON.stringify({ alg: ASSERTION_ALG, kid, typ: HEADER_TYPE })),
  );
  return {
    kid,
    async sign(agent, backend, claims = {}) {
      const now = Math.floor(Date.now() / 1000);
      // The claims in the order jose's builder sets them: the battle claims, then the rest.
      const payload = JSON.stringify({
        ...claims,
        iss: ASSERTION_ISSUER,
        aud: backend,
        sub: agent,
        jti: crypto.randomUUID(),
        iat: now,
        exp: now + ASSERTION_TTL_SECONDS,
      });
      const input = `${header}.${base64url(encoder.encode(payload))}`;
      const signature = await crypto.subtle.sign("Ed25519", key, encoder.encode(input));
      return `${input}.${base64url(new Uint8Array(signature))}`;
    },
  };
}

const encoder = new TextEncoder();

/** `Uint8Array.prototype.toBase64` (workerd has it; Node 22 does not). */
type ToBase64 = (options: { alphabet: "base64url"; omitPadding: boolean }) => string;
const toBase64 = (Uint8Array.prototype as { toBase64?: ToBase64 }).toBase64;

/** Unpadded base64url (RFC 7515, section 2) of `bytes`. */
function base64url(bytes: Uint8Array): string {
  if (toBase64) return toBase64.call(bytes, { alphabet: "base64url", omitPadding: true });
  let binary = "";
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let at = 0; at < bytes.length; at += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export type AssertionResult =
  | {
      ok: true;
      agent: string;
      /** The `jti`. */
      id: string;
      /** The Unix second from which `verifyAssertion` refuses this assertion anyway. */
      usableUntil: number;
      /** The battle claims the proxy copied from the agent's token (none: not bound). */
      claims: BattleClaims;
    }
  | { ok: false; code: "missing" | "expired" | "invalid"; detail: string };

/** Where a backend finds the proxy's public keys: inline, or a URL fetched and cached. */
export type ProxyKeys = { jwks: JSONWebKeySet } | { url: URL };

/**
 * Reads a `PROXY_JWKS` value: an http(s) URL, such as the proxy's `/.well-known/jwks.json`, or the
 * JWKS itself as JSON. A message naming the variable when it is neither.
 */
export function parseProxyKeys(
  raw: string | undefined,
): { ok: true; keys: ProxyKeys } | { ok: false; error: string } {
  const value = raw?.trim();
  if (!value) return { ok: false, error: "PROXY_JWKS is not set" };
  if (/^https?:\/\//.test(value)) {
    try {
      return { ok: true, keys: { url: new URL(value) } };
    } catch {
      return { ok: false, error: "PROXY_JWKS is not a valid URL" };
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { ok: false, error: "PROXY_JWKS must be a URL or a JWKS as JSON" };
  }
  // An empty list is a JWKS too: nothing verifies against it, which fails closed.
  if (!Array.isArray((parsed as { keys?: unknown } | null)?.keys)) {
    return { ok: false, error: 'PROXY_JWKS must be a JWKS: {"keys": [ … ]}' };
  }
  return { ok: true, keys: { jwks: parsed as JSONWebKeySet } };
}

/** Builds jose's key lookup: a URL is re-fetched on an unknown `kid`, at most every 30 s. */
export function proxyKeyLookup(keys: ProxyKeys): JWTVerifyGetKey {
  if ("jwks" in keys) return createLocalJWKSet(keys.jwks);
  return createRemoteJWKSet(keys.url, { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
}

/** Verifies an assertion meant for `backend`; never throws for a bad one. */
export async function verifyAssertion(
  token: string | undefined,
  keys: JWTVerifyGetKey,
  backend: string,
): Promise<AssertionResult> {
  if (!token) return { ok: false, code: "missing", detail: "no proxy assertion" };
  try {
    const { payload } = await jwtVerify(token, keys, {
      algorithms: [ASSERTION_ALG],
      issuer: ASSERTION_ISSUER,
      audience: backend,
      clockTolerance: ASSERTION_SKEW_SECONDS,
      requiredClaims: ["exp", "iat", "sub", "jti"],
      // A leaked assertion with a far-off exp is refused all the same.
      maxTokenAge: ASSERTION_MAX_AGE_SECONDS,
    });
    const id = payload.jti;
    if (typeof id !== "string" || id === "" || id.length > MAX_JTI_LENGTH) {
      const detail = `jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`;
      return { ok: false, code: "invalid", detail };
    }
    // jose refuses from exp + skew (exp <= now - skew), and from the first second past
    // iat + max age + skew: whichever comes first.
    const exp = payload.exp as number;
    const iat = payload.iat as number;
    const usableUntil = Math.min(
      Math.ceil(exp + ASSERTION_SKEW_SECONDS),
      Math.floor(iat + ASSERTION_MAX_AGE_SECONDS + ASSERTION_SKEW_SECONDS) + 1,
    );
    const battle = readBattleClaims(payload);
    if (!battle.ok) return { ok: false, code: "invalid", detail: battle.detail };
    return { ok: true, agent: payload.sub as string, id, usableUntil, claims: battle.claims };
  } catch (e) {
    if (e instanceof errors.JWTExpired) return { ok: false, code: "expired", detail: e.message };
    const detail = e instanceof errors.JOSEError ? `${e.code}: ${e.message}` : String(e);
    return { ok: false, code: "invalid", detail };
  }
}
