/**
 * The client credentials grant (RFC 6749 §4.4) for agents the operator registers
 * (`POST /admin/oauth-clients`): a program with no person behind it authenticates at the token
 * endpoint with its secret (`client_secret_basic` or `client_secret_post`) or a signed assertion
 * (`private_key_jwt`, RFC 7523), and gets an access token for one resource that acts as its agent.
 * The library implements no such grant, so the gateway does, with the same rules: one resource
 * per token (RFC 8707), an hour, the MCP scopes. Tokens are random, kept in OAUTH_KV only as their
 * SHA-256, and are refused once the client is removed or its agent disabled or revoked.
 */
import { createLocalJWKSet, decodeJwt, errors, jwtVerify } from "jose";
import type { AgentClient, Control } from "../control/document.ts";
import type { AuthResult } from "../core/auth.ts";
import { grantedScopes, OAUTH_PATHS, OAUTH_SCOPES, resourcesOf } from "./server.ts";

/** What the grant's tokens start with: how the pipeline tells them from the others. */
export const CLIENT_TOKEN_PREFIX = "mcpcp-cc_";
const ACCESS_TOKEN_TTL = 3_600;
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** RFC 7523 §3: an assertion good for longer than this is refused. */
const MAX_ASSERTION_SECONDS = 3_600;

interface TokenRecord {
  client: string;
  agent: string;
  resource: string;
  scope: string[];
  issuedAt: number;
  expiresAt: number;
}

/** A token endpoint error (RFC 6749 §5.2). */
function tokenError(status: number, error: string, description: string, basic = false): Response {
  return Response.json(
    { error, error_description: description },
    {
      status,
      headers: {
        "cache-control": "no-store",
        ...(basic ? { "www-authenticate": 'Basic realm="mcpcp"' } : {}),
      },
    },
  );
}

/** Answers a `grant_type=client_credentials` token request. */
export async function clientCredentials(
  env: Env,
  control: Control,
  origin: string,
  request: Request,
  form: URLSearchParams,
): Promise<Response> {
  const client = await authenticateClient(env, control, origin, request, form);
  if (!client.ok) return tokenError(401, "invalid_client", client.detail, client.basic);
  const resources = resourcesOf(origin, control.backends.keys());
  const resource = form.get("resource") ?? `${origin}/mcp`;
  if (form.getAll("resource").length > 1 || !resources.includes(resource)) {
    return tokenError(400, "invalid_target", "resource is not one of this gateway's endpoints");
  }
  const asked = (form.get("scope") ?? "").split(" ").filter(Boolean);
  const unknown = asked.filter((s) => !(OAUTH_SCOPES as string[]).includes(s));
  if (unknown.length > 0) return tokenError(400, "invalid_scope", `unknown scope ${unknown[0]}`);
  const scope = grantedScopes(asked);
  const now = Math.floor(Date.now() / 1000);
  const token = CLIENT_TOKEN_PREFIX + randomToken();
  const record: TokenRecord = {
    client: client.id,
    agent: client.entry.agent,
    resource,
    scope,
    issuedAt: now,
    expiresAt: now + ACCESS_TOKEN_TTL,
  };
  await env.OAUTH_KV.put(await tokenKey(token), JSON.stringify(record), {
    expirationTtl: ACCESS_TOKEN_TTL,
  });
  return Response.json(
    {
      access_token: token,
      token_type: "Bearer",
      expires_in: ACCESS_TOKEN_TTL,
      scope: scope.join(" "),
      resource,
    },
    { headers: { "cache-control": "no-store" } },
  );
}

type Authenticated =
  | { ok: true; id: string; entry: AgentClient }
  | { ok: false; detail: string; basic: boolean };

async function authenticateClient(
  env: Env,
  control: Control,
  origin: string,
  request: Request,
  form: URLSearchParams,
): Promise<Authenticated> {
  const authorization = request.headers.get("authorization");
  const assertion = form.get("client_assertion");
  if (assertion !== null) {
    if (form.get("client_assertion_type") !== ASSERTION_TYPE) {
      return { ok: false, detail: "unknown client_assertion_type", basic: false };
    }
    return byAssertion(env, control, origin, assertion, form.get("client_id"));
  }
  let id: string | null = form.get("client_id");
  let secret: string | null = form.get("client_secret");
  const basic = authorization?.match(/^Basic +([A-Za-z0-9+/=]+)$/i)?.[1];
  if (basic) {
    const decoded = safeAtob(basic);
    const at = decoded?.indexOf(":") ?? -1;
    if (decoded === null || at < 0)
      return { ok: false, detail: "malformed Basic credentials", basic: true };
    try {
      id = decodeURIComponent(decoded.slice(0, at));
      secret = decodeURIComponent(decoded.slice(at + 1));
    } catch {
      return { ok: false, detail: "malformed Basic credentials", basic: true };
    }
  }
  const entry = id === null ? undefined : control.clients.get(id);
  if (id === null || entry === undefined || entry.secret_sha256 === undefined || secret === null) {
    return { ok: false, detail: "client authentication failed", basic: basic !== undefined };
  }
  // Equal digests of a high-entropy secret: comparing them leaks nothing about the secret.
  if ((await sha256(secret)) !== entry.secret_sha256) {
    return { ok: false, detail: "client authentication failed", basic: basic !== undefined };
  }
  return { ok: true, id, entry };
}

/** RFC 7523 §3: iss and sub the client, aud this server, exp within the hour, jti used once. */
async function byAssertion(
  env: Env,
  control: Control,
  origin: string,
  assertion: string,
  named: string | null,
): Promise<Authenticated> {
  const refused = (detail: string): Authenticated => ({ ok: false, detail, basic: false });
  let issuer: unknown;
  try {
    issuer = decodeJwt(assertion).iss;
  } catch {
    return refused("client_assertion is not a JWT");
  }
  if (typeof issuer !== "string" || (named !== null && named !== issuer)) {
    return refused("client authentication failed");
  }
  const entry = control.clients.get(issuer);
  if (!entry?.jwks) return refused("client authentication failed");
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(
      assertion,
      createLocalJWKSet(entry.jwks as Parameters<typeof createLocalJWKSet>[0]),
      {
        issuer,
        subject: issuer,
        audience: [origin, `${origin}${OAUTH_PATHS.token}`],
        algorithms: ["RS256", "ES256", "EdDSA"],
        clockTolerance: 60,
        requiredClaims: ["exp", "jti"],
      },
    ));
  } catch (e) {
    return refused(
      `client_assertion refused: ${e instanceof errors.JOSEError ? e.code : "invalid"}`,
    );
  }
  const now = Math.floor(Date.now() / 1000);
  const exp = claims.exp as number;
  if (exp - now > MAX_ASSERTION_SECONDS)
    return refused("client_assertion lives longer than an hour");
  const jti = String(claims.jti);
  const key = `mcpcp-cc-jti:${await sha256(`${issuer}\n${jti}`)}`;
  // KV cannot make this atomic: two requests at the same instant with one assertion could both
  // pass; anyone else's replay, later, cannot.
  if ((await env.OAUTH_KV.get(key)) !== null) return refused("client_assertion was already used");
  await env.OAUTH_KV.put(key, "1", { expirationTtl: Math.max(60, exp - now + 120) });
  return { ok: true, id: issuer, entry };
}

/** Whether `token` is one of this grant's. */
export function isClientToken(token: string): boolean {
  return token.startsWith(CLIENT_TOKEN_PREFIX);
}

/** A client credentials token at `resource`: its agent's identity, or why not. */
export async function verifyClientToken(
  env: Env,
  control: Control,
  resource: string,
  token: string,
): Promise<AuthResult> {
  const record = await env.OAUTH_KV.get<TokenRecord>(await tokenKey(token), "json");
  const now = Math.floor(Date.now() / 1000);
  if (!record || record.expiresAt <= now) {
    return { ok: false, code: "invalid_token", detail: "unknown or expired client token" };
  }
  if (record.resource !== resource) {
    return { ok: false, code: "invalid_token", detail: `client token is for ${record.resource}` };
  }
  if (control.clients.get(record.client)?.agent !== record.agent) {
    return { ok: false, code: "invalid_token", detail: `client ${record.client} was removed` };
  }
  return {
    ok: true,
    identity: {
      agent: record.agent,
      scopes: new Set(record.scope),
      expiresAt: record.expiresAt,
      tokenId: record.client,
      issuedAt: record.issuedAt,
      claims: { sub: record.client, oauth_client: record.client, scope: record.scope.join(" ") },
      battleClaims: {},
    },
  };
}

async function tokenKey(token: string): Promise<string> {
  return `mcpcp-cc-token:${await sha256(token)}`;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function safeAtob(value: string): string | null {
  try {
    return atob(value);
  } catch {
    return null;
  }
}

/**
 * A new client for `agent`: with `jwks`, it signs assertions; without, it gets a secret, shown
 * once and kept only as its SHA-256.
 */
export async function newClient(
  agent: string,
  jwks?: AgentClient["jwks"],
): Promise<{ id: string; secret?: string; entry: AgentClient }> {
  const id = `agent-${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  if (jwks) return { id, entry: { agent, jwks } };
  const secret = randomToken();
  return { id, secret, entry: { agent, secret_sha256: await sha256(secret) } };
}
