/**
 * OAuth sign-in in workerd: the gateway's authorization server (@cloudflare/workers-oauth-provider
 * over the real OAUTH_KV), a real OpenID Connect provider people sign in at (oidc-provider, from
 * global-setup.ts), and the refusals: a wrong redirect URI, no PKCE or plain PKCE, a replayed
 * code, a token for another resource, an unknown client, a person nobody mapped.
 *
 * The Worker under test has OAuth off (its bindings set no OIDC_ISSUER); these tests hand the
 * same Worker an environment that turns it on, as an operator would, and reach it at an https
 * origin, since the authorization server accepts plain http only on loopback.
 */
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import app from "../../../workers/proxy/src/index.ts";
import { pkce, ScriptedBrowser, type Send, signInUpstream } from "../../support/oauth-browser.ts";
import { message, ORIGIN, rpc, token } from "./client.ts";

const GATEWAY = "https://proxy.test";
const CLIENT_CALLBACK = "http://127.0.0.1:33418/callback";

const oauthEnv = {
  ...env,
  OIDC_ISSUER: inject("oidcIssuer"),
  OIDC_CLIENT_ID: inject("oidcClientId"),
  OIDC_CLIENT_SECRET: inject("oidcClientSecret"),
} as Env;

/** The gateway's own URLs go to the Worker under test with OAuth on; the provider's over the network. */
const send: Send = async (request) =>
  new URL(request.url).origin === GATEWAY
    ? app.fetch(request, oauthEnv, createExecutionContext())
    : fetch(request);

async function gateway(path: string, init: RequestInit = {}) {
  return send(new Request(`${GATEWAY}${path}`, { redirect: "manual", ...init }));
}

async function admin(method: string, path: string, body?: unknown) {
  const response = await gateway(`/admin${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await token("ops", { scope: "admin" })}`,
      "content-type": "application/json",
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.json();
}

/** Registers a public client (RFC 7591) with the test callback. */
async function register(name = "Test Client", authMethod = "none"): Promise<string> {
  const response = await gateway("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [CLIENT_CALLBACK],
      token_endpoint_auth_method: authMethod,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { client_id: string }).client_id;
}

interface Asked {
  clientId: string;
  challenge?: string | null;
  method?: string;
  redirectUri?: string;
  resource?: string;
}

function authorizeUrl(asked: Asked): string {
  const url = new URL(`${GATEWAY}/authorize`);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", asked.clientId);
  url.searchParams.set("redirect_uri", asked.redirectUri ?? CLIENT_CALLBACK);
  url.searchParams.set("state", "state-123");
  url.searchParams.set("scope", "list_tools call_tools");
  url.searchParams.set("resource", asked.resource ?? `${GATEWAY}/mcp`);
  if (asked.challenge !== null && asked.challenge !== undefined) {
    url.searchParams.set("code_challenge", asked.challenge);
    url.searchParams.set("code_challenge_method", asked.method ?? "S256");
  }
  return url.href;
}

const atClient = (url: string) => url.startsWith(CLIENT_CALLBACK);

/** Runs the authorization as `account` up to the gateway's consent page (or a refusal). */
async function toConsent(browser: ScriptedBrowser, asked: Asked, account: string) {
  const login = await browser.go(authorizeUrl(asked), {}, atClient);
  expect(login.url.startsWith(inject("oidcIssuer")), login.body).toBe(true);
  return signInUpstream(browser, login, account, atClient);
}

/** The whole flow as alice, approved: the code and what came back with it. */
async function authorize(asked: Omit<Asked, "challenge"> & { verifier?: string }) {
  const { verifier, challenge } = await pkce();
  const browser = new ScriptedBrowser(send);
  const consent = await toConsent(browser, { ...asked, challenge }, "alice");
  expect(consent.response.status, consent.body).toBe(200);
  const back = await browser.submit(consent, { decision: "approve" }, atClient);
  const params = new URL(back.url).searchParams;
  return { params, verifier, consent };
}

async function exchange(form: Record<string, string>) {
  const response = await gateway("/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

interface Tokens {
  access_token?: string;
  refresh_token?: string;
  scope?: string;
  code: string;
  verifier: string;
}

async function tokensFor(clientId: string, resource = `${GATEWAY}/mcp`): Promise<Tokens> {
  const { params, verifier } = await authorize({ clientId, resource });
  const code = params.get("code") ?? "";
  const answer = await exchange({
    grant_type: "authorization_code",
    code,
    redirect_uri: CLIENT_CALLBACK,
    client_id: clientId,
    code_verifier: verifier,
    resource,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return { ...answer.body, code, verifier };
}

async function listAt(path: string, bearer: string) {
  return rpcAt(path, bearer, rpc("tools/list"));
}

async function rpcAt(path: string, bearer: string, body: unknown) {
  return gateway(path, {
    method: "POST",
    headers: {
      authorization: `Bearer ${bearer}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  // alice signs in as the narrow agent (mcp1's echo only); mallory is mapped to nothing.
  await admin("PUT", "/people", { email: "alice@example.test", agent: "narrow" });
});

describe("OAuth off (no OIDC_ISSUER)", () => {
  it("serves no authorization endpoints and names no authorization server", async () => {
    for (const path of ["/authorize", "/.well-known/oauth-authorization-server", "/oauth/token"]) {
      expect((await exports.default.fetch(`${ORIGIN}${path}`)).status).toBe(404);
    }
    const metadata = await (
      await exports.default.fetch(`${ORIGIN}/.well-known/oauth-protected-resource`)
    ).json();
    expect(metadata).not.toHaveProperty("authorization_servers");
  });
});

describe("OAuth on", () => {
  it("publishes authorization server metadata (RFC 8414) and names it in each resource's metadata", async () => {
    const as = (await (await gateway("/.well-known/oauth-authorization-server")).json()) as Record<
      string,
      unknown
    >;
    expect(as).toMatchObject({
      issuer: GATEWAY,
      authorization_endpoint: `${GATEWAY}/authorize`,
      token_endpoint: `${GATEWAY}/oauth/token`,
      registration_endpoint: `${GATEWAY}/oauth/register`,
      code_challenge_methods_supported: ["S256"],
      authorization_response_iss_parameter_supported: true,
      client_id_metadata_document_supported: true,
    });
    expect(as.scopes_supported).toEqual(expect.arrayContaining(["list_tools", "call_tools"]));
    for (const path of ["", "/servers/mcp1/mcp"]) {
      const prm = await (await gateway(`/.well-known/oauth-protected-resource${path}`)).json();
      expect(prm).toMatchObject({ authorization_servers: [GATEWAY] });
    }
  });

  it("signs a mapped person in: consent names them, the client and their tools; the token acts as their agent", async () => {
    const clientId = await register("Desk Client");
    const { params, consent } = await authorize({ clientId });
    expect(consent.body).toContain("alice@example.test");
    expect(consent.body).toContain("Desk Client");
    expect(consent.body).toContain("<code>mcp1_echo</code>");
    expect(consent.body).not.toContain("mcp3_");
    expect(consent.response.headers.get("x-frame-options")).toBe("DENY");
    // RFC 9207: the authorization response names its issuer.
    expect(params.get("iss")).toBe(GATEWAY);
    expect(params.get("state")).toBe("state-123");
    expect(params.get("code")).toBeTruthy();
  });

  it("lists and calls the mapped agent's tools with the access token, and refreshes with rotation", async () => {
    const clientId = await register();
    const tokens = await tokensFor(clientId);
    expect(tokens.scope).toBe("list_tools call_tools");
    const listed = await message(await listAt("/mcp", tokens.access_token ?? ""));
    expect(listed.result?.tools.map((t) => t.name)).toEqual(["mcp1_echo"]);
    const called = await message(
      await rpcAt(
        "/mcp",
        tokens.access_token ?? "",
        rpc("tools/call", { name: "mcp1_echo", arguments: { message: "hi" } }),
      ),
    );
    expect(called.result?.content[0]?.text).toContain("hi");

    const first = await exchange({
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token ?? "",
      client_id: clientId,
    });
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(tokens.refresh_token);
    const second = await exchange({
      grant_type: "refresh_token",
      refresh_token: first.body.refresh_token ?? "",
      client_id: clientId,
    });
    expect(second.status).toBe(200);
    // The original refresh token has been replaced twice: it is dead.
    const stale = await exchange({
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token ?? "",
      client_id: clientId,
    });
    expect(stale.status).toBe(400);
    expect(stale.body.error).toBe("invalid_grant");
    expect((await listAt("/mcp", second.body.access_token ?? "")).status).toBe(200);
  });

  it("refuses a replayed code", async () => {
    const clientId = await register();
    const tokens = await tokensFor(clientId);
    const again = await exchange({
      grant_type: "authorization_code",
      code: tokens.code,
      redirect_uri: CLIENT_CALLBACK,
      client_id: clientId,
      code_verifier: tokens.verifier,
    });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
  });

  it("refuses the token at another resource: a door, the admin API", async () => {
    const clientId = await register();
    const tokens = await tokensFor(clientId);
    const door = await listAt("/servers/mcp1/mcp", tokens.access_token ?? "");
    expect(door.status).toBe(401);
    expect(door.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const adminCall = await gateway("/admin/policy", {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(adminCall.status).toBe(401);

    // A token asked for the door works there, under the server's own names, and not at /mcp.
    const doorTokens = await tokensFor(clientId, `${GATEWAY}/servers/mcp1/mcp`);
    const atDoor = await message(await listAt("/servers/mcp1/mcp", doorTokens.access_token ?? ""));
    expect(atDoor.result?.tools.map((t) => t.name)).toEqual(["echo"]);
    expect((await listAt("/mcp", doorTokens.access_token ?? "")).status).toBe(401);
  });

  it("refuses a redirect URI the client did not register, on its own page", async () => {
    const clientId = await register();
    const { challenge } = await pkce();
    const response = await gateway(
      new URL(
        authorizeUrl({ clientId, challenge, redirectUri: "http://127.0.0.1:33418/elsewhere" }),
      ).pathname +
        new URL(
          authorizeUrl({ clientId, challenge, redirectUri: "http://127.0.0.1:33418/elsewhere" }),
        ).search,
    );
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
    expect(await response.text()).toContain("redirect");
  });

  it("refuses an authorization request without PKCE, and one with plain PKCE, from any client", async () => {
    const clientId = await register();
    // OAuth 2.1 lets a confidential client leave PKCE out; the gateway does not.
    const confidential = await register("Server Client", "client_secret_basic");
    for (const asked of [
      { clientId, challenge: null },
      { clientId, challenge: "a".repeat(43), method: "plain" },
      { clientId: confidential, challenge: null },
      { clientId: confidential, challenge: "a".repeat(43), method: "plain" },
    ]) {
      const url = new URL(authorizeUrl(asked));
      const response = await gateway(url.pathname + url.search);
      expect(response.status).toBe(302);
      const back = new URL(response.headers.get("location") ?? "");
      expect(back.href.startsWith(CLIENT_CALLBACK)).toBe(true);
      expect(back.searchParams.get("error")).toBe("invalid_request");
      expect(back.searchParams.get("iss")).toBe(GATEWAY);
    }
  });

  it("refuses an unknown client on its own page", async () => {
    const { challenge } = await pkce();
    const url = new URL(authorizeUrl({ clientId: "no-such-client", challenge }));
    const response = await gateway(url.pathname + url.search);
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
    expect(await response.text()).toMatch(/client/i);
  });

  it("refuses a Client ID Metadata Document it cannot fetch from the public internet, on its own page", async () => {
    // The document is fetched only over public https (SSRF guard: the Worker's fetch is
    // global_fetch_strictly_public), so a URL naming this machine, or http, never leaves the
    // gateway as a fetch, and the client is unknown: no redirect to its callback.
    const { challenge } = await pkce();
    for (const clientId of [
      "https://127.0.0.1:9/client.json",
      "https://localhost:9/oauth/client",
      "http://client.example/client.json",
    ]) {
      const url = new URL(authorizeUrl({ clientId, challenge }));
      const response = await gateway(url.pathname + url.search);
      expect(response.status, clientId).toBeGreaterThanOrEqual(400);
      expect(response.status, clientId).toBeLessThan(500);
      expect(response.headers.get("location"), clientId).toBeNull();
      expect(await response.text(), clientId).toMatch(/client/i);
    }
  });

  it("refuses a person nobody mapped with a page that says so, and issues nothing", async () => {
    const clientId = await register();
    const { challenge } = await pkce();
    const browser = new ScriptedBrowser(send);
    const stop = await toConsent(browser, { clientId, challenge }, "mallory");
    expect(stop.response.status).toBe(403);
    expect(stop.url.startsWith(`${GATEWAY}/oauth/callback`)).toBe(true);
    expect(stop.body).toContain("mallory@example.test is not mapped to any agent");
  });

  it("cuts a signed-in person off when their agent is disabled or their mapping removed", async () => {
    await admin("PUT", "/people", { group: "staff", agent: "narrow" });
    const clientId = await register();
    const tokens = await tokensFor(clientId);
    await admin("POST", "/agents/narrow/disable", { note: "test" });
    expect((await listAt("/mcp", tokens.access_token ?? "")).status).toBe(401);
    await admin("POST", "/agents/narrow/enable", {});
    expect((await listAt("/mcp", tokens.access_token ?? "")).status).toBe(200);
    // alice still maps by email; mapped by her group instead, then by neither, she is cut off.
    await admin("DELETE", "/people", { email: "alice@example.test" });
    expect((await listAt("/mcp", tokens.access_token ?? "")).status).toBe(200);
    await admin("DELETE", "/people", { group: "staff" });
    expect((await listAt("/mcp", tokens.access_token ?? "")).status).toBe(401);
    await admin("PUT", "/people", { email: "alice@example.test", agent: "narrow" });
  });

  it("answers forged or broken browser steps with a page that says why, never a 500", async () => {
    const cases: [string, RequestInit][] = [
      ["/oauth/callback", {}],
      ["/oauth/callback?state=forged&code=x", {}],
      [
        "/authorize",
        {
          method: "POST",
          body: "handle=forged&decision=approve",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        },
      ],
      [
        "/authorize",
        { method: "POST", body: "{}", headers: { "content-type": "application/json" } },
      ],
      ["/authorize", {}],
      [
        "/oauth/token",
        {
          method: "POST",
          body: "grant_type=authorization_code&code=a:b:c",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        },
      ],
    ];
    for (const [path, init] of cases) {
      const response = await gateway(path, init);
      expect(response.status, `${init.method ?? "GET"} ${path}`).toBeGreaterThanOrEqual(400);
      expect(response.status, `${init.method ?? "GET"} ${path}`).toBeLessThan(500);
    }
  });

  it("limits registrations per address: the 31st in a minute is 429 with Retry-After", async () => {
    const registerFrom = () =>
      gateway("/oauth/register", {
        method: "POST",
        headers: { "content-type": "application/json", "cf-connecting-ip": "203.0.113.9" },
        body: JSON.stringify({
          client_name: "burst",
          redirect_uris: [CLIENT_CALLBACK],
          token_endpoint_auth_method: "none",
        }),
      });
    for (let i = 0; i < 30; i++) expect((await registerFrom()).status).toBe(201);
    const refused = await registerFrom();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("refuses an oversized or over-limit registration", async () => {
    const tooMany = await gateway("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "x",
        redirect_uris: Array.from({ length: 6 }, (_, i) => `http://127.0.0.1:${4000 + i}/cb`),
        token_endpoint_auth_method: "none",
      }),
    });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: string }).error).toBe("invalid_client_metadata");
    const huge = await gateway("/oauth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_name: "x".repeat(20_000), redirect_uris: [CLIENT_CALLBACK] }),
    });
    expect(huge.status).toBe(413);
  });
});

describe("client credentials for agents the operator registers", () => {
  async function tokenWith(form: Record<string, string>, headers: Record<string, string> = {}) {
    const response = await gateway("/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }
  const basic = (id: string, secret: string) => ({
    authorization: `Basic ${btoa(`${id}:${secret}`)}`,
  });

  it("issues a secret client's token for one resource, acting as its agent, until it is removed", async () => {
    const made = (await admin("POST", "/oauth-clients", { agent: "narrow" })) as Record<
      string,
      string
    >;
    const { client_id: id, client_secret: secret } = made as {
      client_id: string;
      client_secret: string;
    };
    expect(id).toMatch(/^agent-[0-9a-f]{32}$/);
    const issued = await tokenWith({ grant_type: "client_credentials" }, basic(id, secret));
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(issued.body).toMatchObject({
      token_type: "Bearer",
      scope: "list_tools call_tools",
      resource: `${GATEWAY}/mcp`,
    });
    const access = issued.body.access_token ?? "";
    const listed = await message(await listAt("/mcp", access));
    expect(listed.result?.tools.map((t) => t.name)).toEqual(["mcp1_echo"]);
    expect((await listAt("/servers/mcp1/mcp", access)).status).toBe(401);
    expect(
      (await gateway("/admin/policy", { headers: { authorization: `Bearer ${access}` } })).status,
    ).toBe(401);

    // The same in the body (client_secret_post), for a door.
    const door = await tokenWith({
      grant_type: "client_credentials",
      client_id: id,
      client_secret: secret,
      resource: `${GATEWAY}/servers/mcp1/mcp`,
    });
    expect(door.status).toBe(200);
    expect((await listAt("/servers/mcp1/mcp", door.body.access_token ?? "")).status).toBe(200);

    await admin("DELETE", `/oauth-clients/${id}`);
    expect((await listAt("/mcp", access)).status).toBe(401);
    expect((await tokenWith({ grant_type: "client_credentials" }, basic(id, secret))).status).toBe(
      401,
    );
  });

  it("refuses a wrong secret, an unknown client, another resource, an unknown scope", async () => {
    const made = (await admin("POST", "/oauth-clients", { agent: "narrow" })) as {
      client_id: string;
      client_secret: string;
    };
    const wrong = await tokenWith(
      { grant_type: "client_credentials" },
      basic(made.client_id, "not-it"),
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_client");
    const unknown = await tokenWith(
      { grant_type: "client_credentials" },
      basic("agent-00000000000000000000000000000000", "x"),
    );
    expect(unknown.status).toBe(401);
    const elsewhere = await tokenWith(
      { grant_type: "client_credentials", resource: "https://elsewhere.test/mcp" },
      basic(made.client_id, made.client_secret),
    );
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.error).toBe("invalid_target");
    const scope = await tokenWith(
      { grant_type: "client_credentials", scope: "admin" },
      basic(made.client_id, made.client_secret),
    );
    expect(scope.status).toBe(400);
    expect(scope.body.error).toBe("invalid_scope");
  });

  it("takes a private_key_jwt assertion once, for this gateway only", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
    const made = (await admin("POST", "/oauth-clients", {
      agent: "narrow",
      jwks: { keys: [jwk] },
    })) as {
      client_id: string;
      client_secret?: string;
    };
    expect(made.client_secret).toBeUndefined();
    const assertion = (aud: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(made.client_id)
        .setSubject(made.client_id)
        .setAudience(aud)
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .setExpirationTime("1m")
        .sign(privateKey);
    const form = (signed: string) => ({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: signed,
    });
    const signed = await assertion(`${GATEWAY}/oauth/token`);
    const issued = await tokenWith(form(signed));
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect((await listAt("/mcp", issued.body.access_token ?? "")).status).toBe(200);
    expect((await tokenWith(form(signed))).status).toBe(401);
    expect((await tokenWith(form(await assertion("https://elsewhere.test")))).status).toBe(401);
  });
});
