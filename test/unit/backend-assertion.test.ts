/**
 * A Node backend trusts only the proxy's assertion: the agent comes from a verified `sub`, and an
 * absent, expired, foreign-audience, foreign-key or already used assertion gets 401 before any
 * tool runs. Real HTTP to a started backend.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import {
  type AssertionSigner,
  createAssertionSigner,
  parseProxyKeys,
} from "../../common/assertion.ts";
import { SeenAssertions } from "../../common/seen-assertions.ts";
import {
  type BackendOptions,
  type RunningBackend,
  startBackend,
} from "../../local-backends/common/backend.ts";

async function proxyKey(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    privateJwk: { ...(await exportJWK(pair.privateKey)), kid },
    publicJwk: { ...publicJwk, kid },
  };
}

let backend: RunningBackend;
let signer: AssertionSigner;
let stranger: AssertionSigner;
let trusted: JWK;
let publicJwk: JWK;

/** A backend that trusts the test proxy key and says who called. */
function startWhoami(extra: Partial<BackendOptions> = {}): Promise<RunningBackend> {
  return startBackend({
    name: "mcp2",
    port: 0,
    proxyKeys: { jwks: { keys: [publicJwk] } },
    register: (server, ctx) => {
      server.registerTool("whoami", { inputSchema: z.object({}) }, async () => ({
        content: [{ type: "text", text: `agent=${ctx.agent}` }],
      }));
    },
    ...extra,
  });
}

beforeAll(async () => {
  const proxy = await proxyKey();
  trusted = proxy.privateJwk;
  publicJwk = proxy.publicJwk;
  signer = await createAssertionSigner(proxy.privateJwk);
  stranger = await createAssertionSigner((await proxyKey()).privateJwk);
  backend = await startWhoami();
});

afterAll(async () => {
  await backend.close();
});

/** Calls whoami through the SDK client, with a fresh assertion from `sign` on every HTTP request. */
async function whoami(sign: () => Promise<string>): Promise<string> {
  const asProxy: typeof fetch = async (url, init) => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", `Bearer ${await sign()}`);
    return fetch(url, { ...init, headers });
  };
  const client = new Client({ name: "test", version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${backend.url}/mcp`), { fetch: asProxy }),
  );
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    return (result.content as { text: string }[])[0]?.text ?? "";
  } finally {
    await client.close();
  }
}

/** One POST to `/mcp` (a 2025-era `ping`, answered statelessly) at `to`. */
async function post(
  authorization?: string,
  to: RunningBackend = backend,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(`${to.url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, body, headers: response.headers };
}

async function status(authorization?: string): Promise<number> {
  return (await post(authorization)).status;
}

/** A fresh assertion for mcp2, as the proxy signs one per request. */
async function fresh(agent = "agent_name2"): Promise<string> {
  return `Bearer ${await signer.sign(agent, "mcp2")}`;
}

describe("a backend behind the proxy", () => {
  it("takes the calling agent from a valid assertion", async () => {
    expect(await whoami(() => signer.sign("agent_name2", "mcp2"))).toBe("agent=agent_name2");
  });

  it("ignores an mcpcp-agent header: only the assertion names the agent", async () => {
    const response = await fetch(`${backend.url}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcpcp-agent": "agent_name2",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
  });

  it.each([
    ["no assertion", async () => undefined],
    [
      "an assertion for another backend",
      async () => `Bearer ${await signer.sign("agent_name2", "mcp3")}`,
    ],
    [
      "an assertion signed by another key",
      async () => `Bearer ${await stranger.sign("agent_name2", "mcp2")}`,
    ],
    [
      "an expired assertion",
      async () => {
        const { createPrivateKey } = await import("node:crypto");
        const key = createPrivateKey({
          key: trusted as import("node:crypto").JsonWebKey,
          format: "jwk",
        });
        const past = Math.floor(Date.now() / 1000) - 120;
        return `Bearer ${await new SignJWT({})
          .setProtectedHeader({ alg: "EdDSA", kid: trusted.kid as string })
          .setIssuer("mcpcp-proxy")
          .setAudience("mcp2")
          .setSubject("agent_name2")
          .setJti("expired")
          .setIssuedAt(past)
          .setExpirationTime(past + 60)
          .sign(key)}`;
      },
    ],
    [
      "the agent's own kind of token (not an assertion)",
      async () => "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    ],
  ])("refuses %s with 401", async (_name, authorization) => {
    expect(await status(await authorization())).toBe(401);
  });

  it("keeps /healthz open: health says nothing about any agent", async () => {
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
  });
});

describe("each assertion is good for one request", () => {
  it("refuses the same assertion a second and a third time with 401 and a JSON error", async () => {
    const once = await fresh();
    expect((await post(once)).status).toBe(200);
    for (let replay = 0; replay < 2; replay++) {
      const { status, body, headers } = await post(once);
      expect(status).toBe(401);
      expect(body).toEqual({
        error: "invalid_token",
        reason: "replayed",
        message: "This MCPCP proxy assertion was already used: each one is good for one request",
      });
      expect(headers.get("www-authenticate")).toBe(
        'Bearer error="invalid_token", error_description="replayed proxy assertion"',
      );
    }
  });

  it("accepts a new assertion (a different jti) for every request, as the proxy signs them", async () => {
    for (let i = 0; i < 5; i++) expect((await post(await fresh())).status).toBe(200);
    // The SDK client's handshake and call are three requests, each with its own assertion.
    expect(await whoami(() => signer.sign("agent_name2", "mcp2"))).toBe("agent=agent_name2");
  });

  it("lets exactly one of two concurrent requests with one assertion through", async () => {
    const once = await fresh();
    const statuses = await Promise.all([post(once), post(once)]).then((rs) =>
      rs.map((r) => r.status),
    );
    expect(statuses.sort()).toEqual([200, 401]);
  });

  it("refuses an SDK client that reuses one assertion for its whole session", async () => {
    const once = await fresh();
    // The handshake takes the assertion; the next request of the session is a replay.
    await expect(whoami(async () => once.slice("Bearer ".length))).rejects.toThrow(
      /"reason":"replayed"/,
    );
  });

  it("says why in the JSON error for the other refusals too", async () => {
    const { body } = await post("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    expect(body).toMatchObject({ error: "invalid_token", reason: "invalid" });
  });
});

describe("the memory of used assertions is bounded", () => {
  let small: RunningBackend;

  beforeAll(async () => {
    small = await startWhoami({ maxSeenAssertions: 2 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await small.close();
  });

  it("at the cap refuses unseen assertions with 503 rather than forget valid ones, until they expire", async () => {
    // Only the clock is fake: the sockets keep their real timers.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const first = await fresh();
    expect((await post(first, small)).status).toBe(200);
    expect((await post(await fresh(), small)).status).toBe(200);

    const full = await post(await fresh(), small);
    expect(full.status).toBe(503);
    expect(full.body).toEqual({
      error: "assertion_memory_full",
      message: expect.stringMatching(/^Too many requests in the last minute; retry in \d+ s$/),
    });
    const retryAfter = Number(full.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(60);
    expect(retryAfter).toBeLessThanOrEqual(70);
    // Still remembered at the cap: the replay is refused as a replay, not let through.
    expect((await post(first, small)).body).toMatchObject({ reason: "replayed" });

    // Once the remembered assertions are past their lifetime they leave, and room is made.
    vi.setSystemTime(Date.now() + retryAfter * 1000);
    expect((await post(await fresh(), small)).status).toBe(200);
    expect((await post(await fresh(), small)).status).toBe(200);
    // And the first one, forgotten now, is refused all the same: it has expired.
    expect((await post(first, small)).body).toMatchObject({ reason: "expired" });
  });
});

describe("SeenAssertions", () => {
  it("remembers a jti until its usable-until second, then forgets it", () => {
    let now = 1000;
    const seen = new SeenAssertions(10, () => now);
    expect(seen.admit("a", 1065)).toEqual({ ok: true });
    expect(seen.admit("a", 1065)).toEqual({ ok: false, code: "replayed" });
    now = 1064;
    expect(seen.admit("a", 1065)).toEqual({ ok: false, code: "replayed" });
    now = 1065;
    expect(seen.admit("b", 1130)).toEqual({ ok: true });
    expect(seen.size).toBe(1);
  });

  it("at the cap refuses new jtis, keeps the unexpired ones, and says when room is made", () => {
    let now = 1000;
    const seen = new SeenAssertions(2, () => now);
    seen.admit("a", 1065);
    now = 1010;
    seen.admit("b", 1075);
    expect(seen.admit("c", 1075)).toEqual({ ok: false, code: "full", retryAfterSeconds: 55 });
    expect(seen.admit("a", 1065)).toEqual({ ok: false, code: "replayed" });
    expect(seen.admit("b", 1075)).toEqual({ ok: false, code: "replayed" });
    expect(seen.size).toBe(2);
    now = 1065;
    expect(seen.admit("c", 1130)).toEqual({ ok: true });
    expect(seen.admit("b", 1075)).toEqual({ ok: false, code: "replayed" });
  });

  it("refuses a cap that is not a positive whole number", () => {
    expect(() => new SeenAssertions(0)).toThrow(/maxEntries must be a positive whole number/);
  });
});

describe("PROXY_JWKS, as the backends and mcp1 read it", () => {
  it("takes an http(s) URL as a URL and anything else as the JWKS itself", () => {
    expect(parseProxyKeys(" https://proxy.example/.well-known/jwks.json ")).toEqual({
      ok: true,
      keys: { url: new URL("https://proxy.example/.well-known/jwks.json") },
    });
    expect(parseProxyKeys('{"keys":[{"kty":"OKP"}]}')).toEqual({
      ok: true,
      keys: { jwks: { keys: [{ kty: "OKP" }] } },
    });
  });

  it.each([
    [undefined, /PROXY_JWKS is not set/],
    ["  ", /PROXY_JWKS is not set/],
    ["not json", /PROXY_JWKS must be a URL or a JWKS as JSON/],
    ['{"kty":"OKP"}', /PROXY_JWKS must be a JWKS/],
    ["null", /PROXY_JWKS must be a JWKS/],
  ])("refuses %j, naming the variable", (raw, error) => {
    const parsed = parseProxyKeys(raw);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.error).toMatch(error);
  });
});
