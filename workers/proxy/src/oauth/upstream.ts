/**
 * The upstream OpenID Connect provider people sign in with: its discovery document, the redirect
 * to its authorization endpoint (code flow with PKCE S256 and a nonce), and the callback's code
 * exchange, whose ID token is verified with jose against the issuer's JWKS before anything in it
 * is believed (OpenID Connect Core §3.1.3.7).
 */
import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify } from "jose";
import { z } from "zod";
import type { OAuthSettings } from "../core/oauth-settings.ts";
import type { Person } from "./people.ts";

/** How long the upstream may take for discovery and the code exchange. */
const UPSTREAM_TIMEOUT_MS = 10_000;

/** An upstream failure the person is shown (never a 500): what went wrong, for the page and log. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
}

const Discovery = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
});

interface Provider {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  keys: JWTVerifyGetKey;
}

/** Per issuer, its discovery document once fetched and checked (a failed fetch is retried). */
const providers = new Map<string, Promise<Provider>>();

async function providerOf(settings: OAuthSettings): Promise<Provider> {
  const issuer = settings.upstreamIssuer;
  let found = providers.get(issuer);
  if (!found) {
    found = discover(issuer);
    providers.set(issuer, found);
    found.catch(() => providers.delete(issuer));
  }
  return found;
}

async function discover(issuer: string): Promise<Provider> {
  const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  let body: unknown;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    body = await response.json();
  } catch (e) {
    throw new UpstreamError(`the sign-in provider's discovery document failed: ${String(e)}`);
  }
  const parsed = Discovery.safeParse(body);
  if (!parsed.success) {
    throw new UpstreamError("the sign-in provider's discovery document is not OpenID Connect");
  }
  // Discovery §4.3: the document must name the issuer it was fetched for.
  if (parsed.data.issuer !== issuer) {
    throw new UpstreamError(
      `the sign-in provider calls itself ${parsed.data.issuer}, not ${issuer}`,
    );
  }
  return {
    authorizationEndpoint: parsed.data.authorization_endpoint,
    tokenEndpoint: parsed.data.token_endpoint,
    keys: createRemoteJWKSet(new URL(parsed.data.jwks_uri), {
      timeoutDuration: UPSTREAM_TIMEOUT_MS,
    }),
  };
}

/** What the callback needs to finish what `signInUrl` began; kept server-side by the library. */
export interface UpstreamState {
  verifier: string;
  nonce: string;
}

/** A fresh verifier and nonce, and the URL that sends the person to sign in upstream. */
export async function signInUrl(
  settings: OAuthSettings,
  callback: string,
  state: (data: UpstreamState) => Promise<string>,
): Promise<string> {
  const provider = await providerOf(settings);
  const data = { verifier: randomToken(), nonce: randomToken() };
  const url = new URL(provider.authorizationEndpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", settings.clientId);
  url.searchParams.set("redirect_uri", callback);
  url.searchParams.set("scope", "openid email profile");
  url.searchParams.set("state", await state(data));
  url.searchParams.set("nonce", data.nonce);
  url.searchParams.set("code_challenge", await s256(data.verifier));
  url.searchParams.set("code_challenge_method", "S256");
  return url.href;
}

const TokenAnswer = z.object({ id_token: z.string().min(1) });

/** Exchanges the callback's code and verifies the ID token: who signed in. */
export async function personFrom(
  settings: OAuthSettings,
  callback: string,
  code: string,
  data: UpstreamState,
): Promise<Person> {
  const provider = await providerOf(settings);
  let body: unknown;
  try {
    const response = await fetch(provider.tokenEndpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
        // RFC 6749 §2.3.1: client_secret_basic, each part form-encoded first.
        authorization: `Basic ${btoa(`${encodeURIComponent(settings.clientId)}:${encodeURIComponent(settings.clientSecret)}`)}`,
      },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: callback,
        code_verifier: data.verifier,
      }),
      signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
    });
    body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (body as { error?: unknown } | null)?.error;
      throw new Error(`HTTP ${response.status}${typeof error === "string" ? ` ${error}` : ""}`);
    }
  } catch (e) {
    throw new UpstreamError(`the sign-in provider refused the code: ${String(e)}`);
  }
  const answer = TokenAnswer.safeParse(body);
  if (!answer.success) throw new UpstreamError("the sign-in provider sent no ID token");
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(answer.data.id_token, provider.keys, {
      issuer: settings.upstreamIssuer,
      audience: settings.clientId,
      // Never `none`, never an HMAC keyed with something the provider published.
      algorithms: ["RS256", "PS256", "ES256", "EdDSA"],
      clockTolerance: 60,
      requiredClaims: ["sub", "exp", "iat"],
    }));
  } catch (e) {
    const why = e instanceof errors.JOSEError ? e.code : String(e);
    throw new UpstreamError(`the sign-in provider's ID token did not verify: ${why}`);
  }
  if (claims.nonce !== data.nonce) throw new UpstreamError("the ID token's nonce is not ours");
  const email = typeof claims.email === "string" ? claims.email.toLowerCase() : null;
  const groups = Array.isArray(claims.groups)
    ? claims.groups.filter((g): g is string => typeof g === "string")
    : [];
  return {
    issuer: settings.upstreamIssuer,
    subject: String(claims.sub),
    email,
    emailVerified: claims.email_verified === true,
    groups,
  };
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return base64url(bytes);
}

async function s256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}
