/**
 * An OAuth access token at an MCP endpoint: checked by the authorization server for that one
 * resource (RFC 8707; a token for `/mcp` is refused at a door and the other way round), then
 * turned into the identity of the agent its person maps to, so the token gets that agent's
 * policy, limits, audit and revocation. The mapping is asked again on every request: a person the
 * operator unmaps, or maps elsewhere, is refused at once.
 */
import type { Control } from "../control/document.ts";
import type { AuthResult } from "../core/auth.ts";
import type { OAuthSettings } from "../core/oauth-settings.ts";
import { agentFor } from "./people.ts";
import { authorizationServer, type GrantProps } from "./server.ts";

/**
 * Whether `token` has the shape of this gateway's OAuth tokens (`user:grant:secret`, the library's
 * format) rather than of a JWT (three dot-separated parts): which verifier it goes to.
 */
export function isOAuthToken(token: string): boolean {
  return !token.includes(".") && token.split(":").length === 3;
}

/** Verifies an OAuth access token for `resource` of `origin` and maps it to its agent. */
export async function verifyOAuthToken(
  env: Env,
  settings: OAuthSettings,
  control: Control,
  origin: string,
  resource: string,
  token: string,
  controlOf: (env: Env) => Promise<Control>,
): Promise<AuthResult> {
  const server = authorizationServer(origin, control.backends.keys(), settings, controlOf);
  const validated = await server.validateToken<GrantProps>(resource, token, env);
  if (!validated) {
    return { ok: false, code: "invalid_token", detail: `not an access token for ${resource}` };
  }
  const { agent, person, authorizedAt } = validated.props;
  const mapping = agentFor(control.people, person);
  if (!mapping.ok || mapping.agent !== agent) {
    const now = mapping.ok ? `now maps to ${mapping.agent}` : mapping.detail;
    return {
      ok: false,
      code: "invalid_token",
      detail: `person no longer maps to ${agent}: ${now}`,
    };
  }
  // The library's token is `user:grant:secret`: the grant names every token of one sign-in, so
  // revoking it by `jti` ends that sign-in, refreshed tokens included.
  const grant = token.split(":")[1];
  return {
    ok: true,
    identity: {
      agent,
      scopes: new Set(validated.scope),
      expiresAt: validated.expiresAt,
      tokenId: grant,
      issuedAt: authorizedAt,
      // What rule conditions see (docs/policy-conditions.md): the person, and the client.
      claims: {
        iss: person.issuer,
        sub: person.subject,
        ...(person.email ? { email: person.email } : {}),
        groups: person.groups,
        oauth_client: validated.clientId,
        scope: validated.scope.join(" "),
        exp: validated.expiresAt,
      },
      battleClaims: {},
    },
  };
}
