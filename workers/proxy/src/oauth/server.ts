/**
 * The gateway's OAuth authorization server (`@cloudflare/workers-oauth-provider`), one per origin
 * the gateway is reached at and per set of backends: its resources are that origin's `/mcp` and
 * every door `/servers/<id>/mcp` (RFC 8707), so a token is good at the one endpoint it was issued
 * for and refused at the others. The library serves the metadata (RFC 8414), the token endpoint
 * (authorization code with PKCE, refresh tokens that rotate), revocation and registration, and
 * keeps clients, grants and tokens in `OAUTH_KV`; the sign-in and consent pages are `routes.ts`.
 */
import { OAuthAuthorizationServer, OAuthError } from "@cloudflare/workers-oauth-provider";
import type { Control } from "../control/document.ts";
import { SCOPES } from "../core/auth.ts";
import { log } from "../core/log.ts";
import type { OAuthSettings } from "../core/oauth-settings.ts";
import { agentFor, type Person } from "./people.ts";

/** Where the library's endpoints are, on the gateway's origin. */
export const OAUTH_PATHS = {
  metadata: "/.well-known/oauth-authorization-server",
  authorize: "/authorize",
  token: "/oauth/token",
  register: "/oauth/register",
  callback: "/oauth/callback",
} as const;

/** What the gateway can grant: the two MCP scopes (docs/design.md); listing needs one, calling the other. */
export const OAUTH_SCOPES = [SCOPES.list, SCOPES.call];

/** The scopes a grant gets: the MCP scopes the client asked for, or both when it asked for none. */
export function grantedScopes(requested: readonly string[]): string[] {
  const asked = OAUTH_SCOPES.filter((scope) => requested.includes(scope));
  // A client that asks for no MCP scope gets both: the policy decides what it may use.
  return asked.length > 0 ? asked : [...OAUTH_SCOPES];
}

/** An access token lives an hour, like a minted agent token; the grant (refreshing) 30 days. */
const ACCESS_TOKEN_TTL = 3_600;
const REFRESH_TOKEN_TTL = 30 * 86_400;

/** Dynamic registration limits: a client describes itself in a few short fields, no more. */
const MAX_REDIRECT_URIS = 5;
const MAX_URI_LENGTH = 2_000;
const MAX_NAME_LENGTH = 100;

/** What an OAuth grant carries (encrypted by the library), read back on every request. */
export interface GrantProps {
  /** The policy identity the person acts as. */
  agent: string;
  person: Person;
  /** When the person consented (seconds): revocations by time compare it. */
  authorizedAt: number;
}

/** The canonical resources of `origin`: `/mcp` and each backend's door. */
export function resourcesOf(origin: string, servers: Iterable<string>): string[] {
  return [`${origin}/mcp`, ...[...servers].map((id) => `${origin}/servers/${id}/mcp`)];
}

const servers = new Map<string, OAuthAuthorizationServer<Env>>();

/**
 * The authorization server for `origin` over `backends`. Built once per origin and backend set;
 * the latest few are kept, so a gateway reached at a handful of names builds each once.
 */
export function authorizationServer(
  origin: string,
  backends: Iterable<string>,
  settings: OAuthSettings,
  controlOf: (env: Env) => Promise<Control>,
): OAuthAuthorizationServer<Env> {
  const resources = resourcesOf(origin, [...backends].sort());
  const key = JSON.stringify([resources, settings.registrationTtlSeconds]);
  let server = servers.get(key);
  if (server) return server;
  server = new OAuthAuthorizationServer<Env>({
    issuer: origin,
    resources,
    // A client that names no resource gets a token for /mcp, the gateway's main endpoint.
    defaultResource: `${origin}/mcp`,
    authorizeEndpoint: OAUTH_PATHS.authorize,
    tokenEndpoint: OAUTH_PATHS.token,
    clientRegistrationEndpoint: OAUTH_PATHS.register,
    clientIdMetadataDocumentEnabled: true,
    scopesSupported: OAUTH_SCOPES,
    accessTokenTTL: ACCESS_TOKEN_TTL,
    refreshTokenTTL: REFRESH_TOKEN_TTL,
    clientRegistrationTTL: settings.registrationTtlSeconds,
    clientRegistrationCallback: ({ clientMetadata }) => registrationRefusal(clientMetadata),
    // A refresh is refused once the person no longer maps to the grant's agent, or the agent
    // is disabled: the grant is revoked and the client must sign in again.
    tokenExchangeCallback: async ({ grantType, props, env }) => {
      if (grantType !== "refresh_token") return;
      const grant = props as GrantProps;
      const control = await controlOf(env);
      const mapping = agentFor(control.people, grant.person);
      if (!mapping.ok || mapping.agent !== grant.agent) {
        throw new OAuthError("invalid_grant", {
          description: "the person no longer maps to this agent",
        });
      }
      if (control.agents.get(grant.agent)?.enabled === false) {
        throw new OAuthError("invalid_grant", { description: "the agent is disabled" });
      }
      const before = control.revokedBefore.get(grant.agent);
      if (before !== undefined && grant.authorizedAt < before) {
        throw new OAuthError("invalid_grant", { description: "the agent's tokens were revoked" });
      }
    },
    onError: ({ code, status, internal }) => {
      log("warn", "oauth_refused", {
        code,
        status,
        category: internal.category,
        reason: internal.reason,
      });
    },
  });
  if (servers.size >= 16) servers.delete(servers.keys().next().value as string);
  servers.set(key, server);
  return server;
}

/** Why a dynamic registration is refused, or nothing: the limits above, checked before storing. */
function registrationRefusal(metadata: Record<string, unknown>) {
  const uris = metadata.redirect_uris;
  if (Array.isArray(uris) && uris.length > MAX_REDIRECT_URIS) {
    return { description: `at most ${MAX_REDIRECT_URIS} redirect_uris` };
  }
  if (Array.isArray(uris) && uris.some((u) => typeof u !== "string" || u.length > MAX_URI_LENGTH)) {
    return { description: `each redirect_uri is a string of at most ${MAX_URI_LENGTH} characters` };
  }
  const name = metadata.client_name;
  if (name !== undefined && (typeof name !== "string" || name.length > MAX_NAME_LENGTH)) {
    return { description: `client_name is a string of at most ${MAX_NAME_LENGTH} characters` };
  }
  for (const field of ["client_uri", "logo_uri", "policy_uri", "tos_uri", "jwks_uri"]) {
    const value = metadata[field];
    if (typeof value === "string" && value.length > MAX_URI_LENGTH) {
      return { description: `${field} is at most ${MAX_URI_LENGTH} characters` };
    }
  }
  return undefined;
}
