/**
 * Whether the gateway signs people in with OAuth, and through which OpenID Connect provider: read
 * from the Worker's variables once, as plain data. OAuth is off until the operator sets
 * `OIDC_ISSUER`, so nothing new is needed to start the gateway; once it is set, every other
 * variable it needs must be right, or the gateway refuses to start naming the variable.
 */
import type { ParseResult } from "./documents.ts";

/** How people sign in, when OAuth is on. */
export interface OAuthSettings {
  /** The upstream OpenID Connect issuer, exactly as its ID tokens' `iss` says it. */
  upstreamIssuer: string;
  /** The gateway's client at the upstream provider. */
  clientId: string;
  clientSecret: string;
  /** How long a dynamically registered client lives without being used (seconds). */
  registrationTtlSeconds: number;
}

/** The variables this module reads (a subset of the generated `Env`, plus the secret). */
export interface OAuthEnv {
  OIDC_ISSUER?: string;
  OIDC_CLIENT_ID?: string;
  OIDC_CLIENT_SECRET?: string;
  OAUTH_REGISTRATION_TTL_DAYS?: string;
}

/** The OAuth settings, null when OAuth is off, or what is wrong, naming the variable. */
export function readOAuthSettings(env: OAuthEnv): ParseResult<OAuthSettings | null> {
  const issuer = env.OIDC_ISSUER?.trim() ?? "";
  if (issuer === "") return { ok: true, value: null };
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return { ok: false, error: `OIDC_ISSUER is not a URL: ${issuer}` };
  }
  // OpenID Connect Discovery §3: an https issuer; plain http only on this machine (tests, dev).
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    return {
      ok: false,
      error: `OIDC_ISSUER must be an https URL (http only on loopback): ${issuer}`,
    };
  }
  if (url.search || url.hash) {
    return { ok: false, error: `OIDC_ISSUER must have no query or fragment: ${issuer}` };
  }
  const clientId = env.OIDC_CLIENT_ID?.trim() ?? "";
  if (clientId === "") return { ok: false, error: "OIDC_CLIENT_ID is not set (OIDC_ISSUER is)" };
  const clientSecret = env.OIDC_CLIENT_SECRET ?? "";
  if (clientSecret === "") {
    return {
      ok: false,
      error: "OIDC_CLIENT_SECRET is not set (OIDC_ISSUER is): a secret, never a var",
    };
  }
  const rawDays = env.OAUTH_REGISTRATION_TTL_DAYS ?? "";
  const days = rawDays === "" ? 30 : Number(rawDays);
  if (!Number.isInteger(days) || days < 1 || days > 365) {
    return {
      ok: false,
      error: `OAUTH_REGISTRATION_TTL_DAYS must be an integer in 1..365, got ${rawDays}`,
    };
  }
  return {
    ok: true,
    value: {
      upstreamIssuer: issuer,
      clientId,
      clientSecret,
      registrationTtlSeconds: days * 86_400,
    },
  };
}
