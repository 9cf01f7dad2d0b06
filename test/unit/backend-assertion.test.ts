/**
 * A Node backend trusts only the proxy's assertion: the agent comes from a verified `sub`, and an
 * absent, expired, foreign-audience or foreign-key assertion gets 401 before any tool runs.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type AssertionSigner, createAssertionSigner } from "../../common/assertion.ts";
import { type RunningBackend, startBackend } from "../../local-backends/common/backend.ts";

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

beforeAll(async () => {
  const proxy = await proxyKey();
  trusted = proxy.privateJwk;
  signer = await createAssertionSigner(proxy.privateJwk);
  stranger = await createAssertionSigner((await proxyKey()).privateJwk);
  backend = await startBackend({
    name: "mcp2",
    port: 0,
    proxyKeys: { jwks: { keys: [proxy.publicJwk] } },
    register: (server, ctx) => {
      server.registerTool("whoami", { inputSchema: z.object({}) }, async () => ({
        content: [{ type: "text", text: `agent=${ctx.agent}` }],
      }));
    },
  });
});

afterAll(async () => {
  await backend.close();
});

async function whoami(authorization?: string): Promise<string> {
  const client = new Client({ name: "test", version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${backend.url}/mcp`), {
      requestInit: { headers: authorization ? { authorization } : {} },
    }),
  );
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    return (result.content as { text: string }[])[0]?.text ?? "";
  } finally {
    await client.close();
  }
}

async function status(authorization?: string): Promise<number> {
  const response = await fetch(`${backend.url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  await response.body?.cancel();
  return response.status;
}

describe("a backend behind the proxy", () => {
  it("takes the calling agent from a valid assertion", async () => {
    expect(await whoami(`Bearer ${await signer.sign("agent_name2", "mcp2")}`)).toBe(
      "agent=agent_name2",
    );
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
      "an expired assertion (a replay)",
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
          .setJti("replayed")
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
