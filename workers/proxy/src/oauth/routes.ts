/**
 * The OAuth endpoints on the gateway's origin, present only when `OIDC_ISSUER` is set:
 *
 *   GET  /authorize        the client's authorization request: checked by the library (client,
 *                          exact redirect URI, resource), PKCE S256 required, then the person is
 *                          sent to sign in at the upstream OpenID Connect provider
 *   GET  /oauth/callback   the provider's answer: its ID token verified, the person mapped to an
 *                          agent (or refused with a page saying so), then the consent page
 *   POST /authorize        the consent form: Allow issues the code (with `iss`, RFC 9207), Deny
 *                          sends `access_denied`
 *   /.well-known/oauth-authorization-server, /oauth/token, /oauth/register: the library's
 *
 * Every refusal a person or client causes is a page or an OAuth error that says why; a 500 is
 * left for outages (KV) and bugs.
 */
import {
  AuthorizationError,
  authorizationErrorRedirect,
  CimdFetchError,
  type OAuthAuthorizationServer,
} from "@cloudflare/workers-oauth-provider";
import { type Context, Hono } from "hono";
import { effectiveFor } from "../admin/effects.ts";
import { log } from "../core/log.ts";
import type { OAuthSettings } from "../core/oauth-settings.ts";
import { fail } from "../errors.ts";
import { controlOf, type Gateway, gatewayFor } from "../pipeline.ts";
import { clientCredentials } from "./client-credentials.ts";
import { overLimit } from "./limits.ts";
import { consentPage, htmlResponse, refusalPage } from "./pages.ts";
import { agentFor, type Mapping, type Person } from "./people.ts";
import { authorizationServer, type GrantProps, grantedScopes, OAUTH_PATHS } from "./server.ts";
import { personFrom, signInUrl, UpstreamError, type UpstreamState } from "./upstream.ts";

type App = { Bindings: Env };
export const oauthRoutes = new Hono<App>();

/** A registration is a few short fields: a larger body is refused before it is parsed. */
const MAX_REGISTRATION_BYTES = 16 * 1024;
/** How long the consent page's record of who signed in is kept (the library's handle: 10 min). */
const CONSENT_TTL_SECONDS = 600;

interface Served {
  gateway: Gateway;
  settings: OAuthSettings;
  server: OAuthAuthorizationServer<Env>;
  origin: string;
}

/** The authorization server for this request's origin; a 404 while OAuth is off. */
async function served(c: Context<App>): Promise<Served> {
  const gateway = await gatewayFor(c.env, (work) => c.executionCtx.waitUntil(work));
  const settings = gateway.config.oauth;
  if (!settings) return fail({ kind: "no_route", method: c.req.method, path: c.req.path });
  const origin = new URL(c.req.url).origin;
  const server = authorizationServer(origin, gateway.control.backends.keys(), settings, controlOf);
  return { gateway, settings, server, origin };
}

oauthRoutes.all(OAUTH_PATHS.metadata, async (c) => {
  const { server } = await served(c);
  return server.fetch(c.req.raw, c.env, workerdContext(c));
});

oauthRoutes.all(OAUTH_PATHS.token, async (c) => {
  const { server, gateway, origin } = await served(c);
  const type = c.req.header("content-type") ?? "";
  if (c.req.method !== "POST" || !type.startsWith("application/x-www-form-urlencoded")) {
    return server.fetch(c.req.raw, c.env, workerdContext(c));
  }
  // The library implements every grant but client credentials: that one is the gateway's.
  const body = await c.req.raw.text();
  const form = new URLSearchParams(body);
  if (form.get("grant_type") === "client_credentials") {
    return clientCredentials(c.env, gateway.control, origin, c.req.raw, form);
  }
  return server.fetch(new Request(c.req.raw, { body }), c.env, workerdContext(c));
});

oauthRoutes.all(OAUTH_PATHS.register, async (c) => {
  const { server } = await served(c);
  if (c.req.method !== "POST") return server.fetch(c.req.raw, c.env, workerdContext(c));
  const retryAfter = await overLimit(c.env, "register", c.req.raw);
  if (retryAfter !== null) {
    return Response.json(
      {
        error: "temporarily_unavailable",
        error_description: "too many registrations from this address",
      },
      { status: 429, headers: { "retry-after": String(retryAfter) } },
    );
  }
  const body = await c.req.raw.text();
  if (new TextEncoder().encode(body).length > MAX_REGISTRATION_BYTES) {
    return Response.json(
      {
        error: "invalid_client_metadata",
        error_description: `at most ${MAX_REGISTRATION_BYTES} bytes`,
      },
      { status: 413 },
    );
  }
  return server.fetch(new Request(c.req.raw, { body }), c.env, workerdContext(c));
});

oauthRoutes.get(OAUTH_PATHS.authorize, async (c) => {
  const { server, settings, origin } = await served(c);
  const api = server.getOAuthApi(c.env);
  const retryAfter = await overLimit(c.env, "authorize", c.req.raw);
  if (retryAfter !== null) {
    const headers = new Headers({ "retry-after": String(retryAfter) });
    return page(
      "Too many sign-ins",
      "Too many sign-ins from this address: wait a minute.",
      429,
      headers,
    );
  }
  try {
    const request = await api.parseAuthRequest(c.req.raw);
    // OAuth 2.1 and MCP: PKCE for every client, and only S256 (a plain challenge is the verifier).
    if (!request.codeChallenge || request.codeChallengeMethod !== "S256") {
      const to = authorizationErrorRedirect(
        request,
        "invalid_request",
        "PKCE with S256 is required",
      );
      return redirect(to);
    }
    let headers = new Headers();
    const location = await signInUrl(settings, `${origin}${OAUTH_PATHS.callback}`, async (data) => {
      const upstream = await api.beginUpstream(request, { data });
      headers = upstream.headers;
      return upstream.state;
    });
    headers.set("location", location);
    return new Response(null, { status: 302, headers });
  } catch (e) {
    return pageFor(e);
  }
});

oauthRoutes.get(OAUTH_PATHS.callback, async (c) => {
  const { gateway, settings, server, origin } = await served(c);
  const api = server.getOAuthApi(c.env);
  let resumed: Awaited<ReturnType<typeof api.finishUpstream<UpstreamState>>>;
  try {
    resumed = await api.finishUpstream<UpstreamState>(c.req.raw);
  } catch (e) {
    return pageFor(e);
  }
  const { request, data, headers } = resumed;
  const query = new URL(c.req.url).searchParams;
  if (query.get("error")) {
    log("warn", "oauth_upstream_error", { error: query.get("error") });
    headers.set(
      "location",
      authorizationErrorRedirect(request, "access_denied", "sign-in was declined"),
    );
    return new Response(null, { status: 302, headers });
  }
  // RFC 9207: an answer that names another issuer is a mix-up, whatever its code.
  const iss = query.get("iss");
  if (iss !== null && iss !== settings.upstreamIssuer) {
    return page("Sign-in refused", "The sign-in answer came from another provider.", 400, headers);
  }
  const code = query.get("code");
  if (!code) return page("Sign-in refused", "The sign-in provider sent no code.", 400, headers);
  let person: Person;
  try {
    person = await personFrom(settings, `${origin}${OAUTH_PATHS.callback}`, code, data);
  } catch (e) {
    return pageFor(e, headers);
  }
  const mapping = agentFor(gateway.control.people, person);
  const refused = refusalOf(gateway, person, mapping);
  if (refused) return refused(headers);
  const agent = (mapping as Extract<Mapping, { ok: true }>).agent;
  try {
    const details = await api.describeConsent(request);
    const consent = await api.beginConsent(request);
    await c.env.OAUTH_KV.put(await consentKey(consent.handle), JSON.stringify({ person, agent }), {
      expirationTtl: CONSENT_TTL_SECONDS,
    });
    const tools = await toolsAt(c, gateway, agent, request.resource ?? `${origin}/mcp`, origin);
    for (const cookie of consent.headers.getSetCookie()) headers.append("set-cookie", cookie);
    consent.headers.forEach((value, name) => {
      if (name !== "set-cookie") headers.set(name, value);
    });
    const html = consentPage({
      details,
      email: person.email ?? person.subject,
      agent,
      resource: request.resource ?? `${origin}/mcp`,
      tools,
      scopes: grantedScopes(request.scope),
      handle: consent.handle,
    });
    return htmlResponse(html, 200, headers);
  } catch (e) {
    return pageFor(e, headers);
  }
});

oauthRoutes.post(OAUTH_PATHS.authorize, async (c) => {
  const { gateway, server } = await served(c);
  const api = server.getOAuthApi(c.env);
  let form: FormData;
  try {
    form = await c.req.raw.formData();
  } catch {
    return page("Sign-in refused", "The consent form could not be read.", 400);
  }
  const handle = String(form.get("handle") ?? "");
  try {
    if (form.get("decision") !== "approve") {
      const denied = await api.denyConsent(c.req.raw, handle);
      return new Response(null, { status: 302, headers: denied.headers });
    }
    const approved = await api.approveConsent(c.req.raw, handle);
    const key = await consentKey(handle);
    const signedIn = await c.env.OAUTH_KV.get<{ person: Person; agent: string }>(key, "json");
    await c.env.OAUTH_KV.delete(key);
    if (!signedIn) {
      return page(
        "Sign-in expired",
        "Start signing in again from your app.",
        400,
        approved.headers,
      );
    }
    // The operator may have changed the mapping while the page was open: ask again.
    const mapping = agentFor(gateway.control.people, signedIn.person);
    const refused = refusalOf(gateway, signedIn.person, mapping);
    if (refused) return refused(approved.headers);
    if (!mapping.ok || mapping.agent !== signedIn.agent) {
      return page(
        "Sign-in refused",
        "Your access changed while this page was open: start again.",
        409,
        approved.headers,
      );
    }
    const scope = grantedScopes(approved.request.scope);
    const props: GrantProps = {
      agent: signedIn.agent,
      person: signedIn.person,
      authorizedAt: Math.floor(Date.now() / 1000),
    };
    const { redirectTo } = await api.completeAuthorization({
      request: approved.request,
      userId: await userIdOf(signedIn.person),
      metadata: { agent: signedIn.agent, email: signedIn.person.email },
      scope,
      props,
    });
    log("info", "oauth_authorized", {
      agent: signedIn.agent,
      client: approved.request.clientId,
      resource: approved.request.resource,
    });
    approved.headers.set("location", redirectTo);
    return new Response(null, { status: 302, headers: approved.headers });
  } catch (e) {
    return pageFor(e);
  }
});

/** The refusal page for a person who may not sign in, or null when they may. */
function refusalOf(gateway: Gateway, person: Person, mapping: Mapping) {
  const who = person.email ?? person.subject;
  if (!mapping.ok) {
    log("warn", "oauth_unmapped", { who, detail: mapping.detail });
    const why =
      mapping.reason === "ambiguous"
        ? `${who} belongs to groups that map to different agents, so no identity is chosen.`
        : `${who} is not mapped to any agent of this gateway.`;
    return (headers?: Headers) =>
      page(
        "Not allowed",
        `${why} Ask the gateway's operator to map you to an agent.`,
        403,
        headers,
      );
  }
  if (gateway.control.agents.get(mapping.agent)?.enabled === false) {
    return (headers?: Headers) =>
      page("Not allowed", `The agent ${mapping.agent} you sign in as is disabled.`, 403, headers);
  }
  return null;
}

/** The tools `agent` sees at `resource`: all its tools at /mcp, one server's own names at a door. */
async function toolsAt(
  c: Context<App>,
  gateway: Gateway,
  agent: string,
  resource: string,
  origin: string,
): Promise<string[]> {
  const defer = (work: Promise<unknown>) => c.executionCtx.waitUntil(work);
  const effective = await effectiveFor(
    gateway,
    c.env,
    gateway.control.policy,
    agent,
    c.req.raw.signal,
    defer,
  );
  const door = /^\/servers\/([^/]+)\/mcp$/.exec(resource.slice(origin.length))?.[1];
  if (door === undefined) return effective.tools;
  return effective.tools
    .filter((t) => t.startsWith(`${door}_`))
    .map((t) => t.slice(door.length + 1));
}

/** The grant's user id: stable per upstream person, and free of the `:` the library reserves. */
async function userIdOf(person: Person): Promise<string> {
  return `person-${(await sha256(`${person.issuer}\n${person.subject}`)).slice(0, 40)}`;
}

async function consentKey(handle: string): Promise<string> {
  return `mcpcp-consent:${await sha256(handle)}`;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The request's execution context as the library types it (hono declares a narrower one). */
function workerdContext(c: Context<App>): ExecutionContext {
  return c.executionCtx as unknown as ExecutionContext;
}

function redirect(location: string): Response {
  return new Response(null, { status: 302, headers: { location } });
}

function page(title: string, message: string, status: number, headers?: Headers): Response {
  return htmlResponse(refusalPage(title, message), status, headers);
}

/**
 * The answer to what the library or the upstream refused. An error the library says may go back
 * to the client goes back (with `state` and `iss`); anything else is shown here, never redirected.
 */
function pageFor(e: unknown, headers?: Headers): Response {
  if (e instanceof AuthorizationError) {
    log("warn", "oauth_refused", { code: e.code, description: e.description });
    if (e.redirectTo) return redirect(e.redirectTo);
    return page("Sign-in refused", `${e.description} (${e.code})`, 400, headers);
  }
  if (e instanceof CimdFetchError) {
    log("warn", "oauth_refused", { code: "cimd", detail: e.detail });
    return page(
      "Sign-in refused",
      "This app's client metadata document could not be fetched or is invalid.",
      400,
      headers,
    );
  }
  if (e instanceof UpstreamError) {
    log("warn", "oauth_upstream_failed", { detail: e.message });
    return page("Sign-in failed", `Signing in failed: ${e.message}.`, 502, headers);
  }
  throw e;
}
