/**
 * mcp1's /mcp serves only what the proxy sent: a request must carry the proxy's assertion for
 * mcp1 (Ed25519, `aud` mcp1, fresh `jti`), and the agent is its `sub`. A forged `mcpcp-agent`
 * header, no assertion, an expired one, one for another backend, one by another key or one
 * already used is 401, in the shape mcp2 and mcp3 answer, and writes nothing.
 */
import { env, exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import { callerOf } from "../../../workers/mcp1/src/caller.ts";
import { get, inspectToken, proxyAuthorization, proxySigner, uniqueId } from "./helpers.ts";

/** One 2025-era tools/call of update_battle_process on `battleId`, with `headers` added. */
function report(battleId: string, headers: Record<string, string>) {
  return exports.default.fetch("http://mcp1/mcp", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": "2025-06-18",
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name: "update_battle_process",
        arguments: { battle_id: battleId, message: "Green crosses the river", reported_by: "x" },
      },
    }),
  });
}

/** The JSON-RPC answer in a response, whether a JSON body or one SSE `data:` frame. */
async function answerOf(response: Response) {
  const raw = await response.text();
  const json = raw.startsWith("{") ? raw : raw.split("\n").find((l) => l.startsWith("data: "));
  return JSON.parse(json?.replace(/^data: /, "") ?? "null");
}

/** How many events battle `id` holds, read over the inspection API (0 when never reported). */
async function eventCount(id: string): Promise<number> {
  const response = await get(`/api/battles/${id}`, await inspectToken());
  if (response.status === 404) return 0;
  expect(response.status).toBe(200);
  return ((await response.json()) as { events: unknown[] }).events.length;
}

/** An assertion as the proxy would sign one, with `claims` changed, signed by `key`. */
async function assertion(
  claims: Record<string, unknown>,
  key: JWK = JSON.parse(inject("proxySigningKey")) as JWK,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: "mcpcp-proxy",
    aud: "mcp1",
    sub: "agent_name1",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + 60,
    ...claims,
  })
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid as string, typ: "mcpcp-assertion+jwt" })
    .sign(await importJWK(key, "EdDSA"));
}

/** Expects the 401 mcp2 and mcp3 answer for `reason`, and that battle `id` is still unreported. */
async function expectRefused(response: Response, reason: string, id: string) {
  expect(response.status).toBe(401);
  expect(response.headers.get("www-authenticate")).toBe(
    `Bearer error="invalid_token", error_description="${reason} proxy assertion"`,
  );
  expect(await response.json()).toEqual({
    error: "invalid_token",
    reason,
    message: expect.any(String),
  });
  expect(await eventCount(id)).toBe(0);
}

describe("mcp1 /mcp requires the proxy's assertion", () => {
  it("refuses a forged mcpcp-agent header without a token with 401, and records nothing", async () => {
    const id = uniqueId("forged");
    await expectRefused(await report(id, { "mcpcp-agent": "agent_name1" }), "missing", id);
  });

  it("refuses a request that carries nothing with 401, and records nothing", async () => {
    const id = uniqueId("bare");
    await expectRefused(await report(id, {}), "missing", id);
  });

  it("refuses an agent token in place of the assertion", async () => {
    const id = uniqueId("agent-token");
    const token = await inspectToken({ scope: "list_tools call_tools", sub: "agent_name1" });
    await expectRefused(await report(id, { Authorization: `Bearer ${token}` }), "invalid", id);
  });

  it("records a report with a valid assertion, the agent taken from its sub, not a header", async () => {
    const id = uniqueId("asserted");
    const response = await report(id, {
      Authorization: await proxyAuthorization("agent_name1"),
      "mcpcp-agent": "someone_else",
    });
    expect(response.status).toBe(200);
    expect(await answerOf(response)).toMatchObject({
      result: { structuredContent: { event: { seq: 1, agent: "agent_name1" } } },
    });
    expect(await eventCount(id)).toBe(1);
  });

  it("refuses an assertion used once already, and records nothing the second time", async () => {
    const id = uniqueId("replayed");
    const authorization = await proxyAuthorization("agent_name1");
    expect((await report(id, { Authorization: authorization })).status).toBe(200);
    const again = await report(id, { Authorization: authorization });
    expect(again.status).toBe(401);
    expect(again.headers.get("www-authenticate")).toBe(
      'Bearer error="invalid_token", error_description="replayed proxy assertion"',
    );
    expect(await again.json()).toMatchObject({ error: "invalid_token", reason: "replayed" });
    expect(await eventCount(id)).toBe(1);
  });

  it("lets exactly one of two concurrent requests with one assertion through", async () => {
    const id = uniqueId("race");
    const authorization = await proxyAuthorization("agent_name1");
    const statuses = await Promise.all(
      [1, 2].map(async () => (await report(id, { Authorization: authorization })).status),
    );
    expect(statuses.sort()).toEqual([200, 401]);
    expect(await eventCount(id)).toBe(1);
  });

  it("refuses an assertion the proxy signed for another backend (aud mcp2)", async () => {
    const id = uniqueId("other-aud");
    const forMcp2 = await (await proxySigner()).sign("agent_name1", "mcp2");
    await expectRefused(await report(id, { Authorization: `Bearer ${forMcp2}` }), "invalid", id);
  });

  it("refuses an expired assertion", async () => {
    const id = uniqueId("expired");
    const past = Math.floor(Date.now() / 1000) - 300;
    const expired = await assertion({ iat: past, exp: past + 60 });
    await expectRefused(await report(id, { Authorization: `Bearer ${expired}` }), "expired", id);
  });

  it("refuses an assertion signed by a key PROXY_JWKS does not list", async () => {
    const id = uniqueId("stranger");
    const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const stranger = { ...(await exportJWK(pair.privateKey)), kid: "stranger" };
    const forged = await assertion({}, stranger);
    await expectRefused(await report(id, { Authorization: `Bearer ${forged}` }), "invalid", id);
  });

  it("refuses an assertion by another issuer", async () => {
    const id = uniqueId("issuer");
    const foreign = await assertion({ iss: "someone-else" });
    await expectRefused(await report(id, { Authorization: `Bearer ${foreign}` }), "invalid", id);
  });

  it.each(["", "not json", '{"kty":"OKP"}'])(
    "fails closed with 500 server_misconfigured when PROXY_JWKS is %j",
    async (value) => {
      const request = new Request("http://mcp1/mcp", {
        method: "POST",
        headers: { Authorization: await proxyAuthorization("agent_name1") },
      });
      const caller = await callerOf(request, { ...env, PROXY_JWKS: value });
      expect(caller.ok).toBe(false);
      const response = caller.ok ? undefined : caller.response;
      expect(response?.status).toBe(500);
      expect(await response?.json()).toMatchObject({ error: "server_misconfigured" });
    },
  );

  it("still answers /healthz without any credential", async () => {
    expect((await exports.default.fetch("http://mcp1/healthz")).status).toBe(200);
  });
});
