/**
 * Rotation without a restart, on both trust edges: the proxy fetching agent keys from a JWKS URL,
 * and a backend fetching the proxy's assertion keys from the proxy's JWKS URL. A new kid is
 * picked up on first sight (after jose's 30 s refetch floor), a retired key stops verifying once
 * the cached set expires, and nothing is restarted.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createAssertionSigner, proxyKeyLookup, verifyAssertion } from "../../common/assertion.ts";
import { verifyAgentToken } from "../../workers/proxy/src/core/auth.ts";
import { agentKeyLookup } from "../../workers/proxy/src/core/jwks.ts";

let served: { keys: JWK[] } = { keys: [] };
let fetches = 0;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(served));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => vi.useRealTimers());

async function keyPair(alg: "RS256" | "EdDSA") {
  const pair = await generateKeyPair(
    alg,
    alg === "EdDSA" ? { crv: "Ed25519", extractable: true } : { extractable: true },
  );
  const publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    privateKey: pair.privateKey,
    privateJwk: { ...(await exportJWK(pair.privateKey)), kid },
    publicJwk: { ...publicJwk, kid, alg },
  };
}

/** Moves the clock jose reads forward, without touching timers the HTTP server needs. */
function advance(seconds: number) {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + seconds * 1000);
}

describe("agent keys at a URL (AGENT_JWKS = https://…)", () => {
  it("accepts a new key after the refetch floor, and drops a retired one when the cache expires", async () => {
    const [k1, k2] = await Promise.all([keyPair("RS256"), keyPair("RS256")]);
    served = { keys: [k1.publicJwk] };
    const lookup = agentKeyLookup(url);
    if (!lookup.ok) throw new Error(lookup.error);
    const mint = (key: typeof k1) =>
      new SignJWT({ scope: "call_tools" })
        .setProtectedHeader({ alg: "RS256", kid: key.publicJwk.kid as string })
        .setSubject("agent_name1")
        .setIssuer("https://mcpcp")
        .setAudience("mcpcp-server")
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(k1 === key ? k1.privateKey : k2.privateKey);
    const verify = async (token: string) =>
      (
        await verifyAgentToken(token, lookup.value, {
          issuer: "https://mcpcp",
          audience: "mcpcp-server",
        })
      ).ok;

    expect(await verify(await mint(k1))).toBe(true);
    const before = fetches;

    // Step 1 of a rotation: publish the new key beside the old one; tokens minted with it follow.
    served = { keys: [k1.publicJwk, k2.publicJwk] };
    advance(31);
    expect(await verify(await mint(k2))).toBe(true);
    expect(fetches).toBe(before + 1);
    expect(await verify(await mint(k1))).toBe(true);

    // Step 2: retire the old key. Its tokens stop verifying once the cached set is refreshed.
    served = { keys: [k2.publicJwk] };
    advance(11 * 60);
    expect(await verify(await mint(k1))).toBe(false);
    expect(await verify(await mint(k2))).toBe(true);
  });

  it("refuses a flood of unknown kids without refetching more than once per 30 s", async () => {
    const [k1, stranger] = await Promise.all([keyPair("RS256"), keyPair("RS256")]);
    served = { keys: [k1.publicJwk] };
    const lookup = agentKeyLookup(url);
    if (!lookup.ok) throw new Error(lookup.error);
    const before = fetches;
    for (let i = 0; i < 20; i++) {
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: `forged-${i}` })
        .setSubject("x")
        .setIssuer("https://mcpcp")
        .setAudience("mcpcp-server")
        .setExpirationTime("1h")
        .sign(stranger.privateKey);
      const result = await verifyAgentToken(forged, lookup.value, {
        issuer: "https://mcpcp",
        audience: "mcpcp-server",
      });
      expect(result.ok).toBe(false);
    }
    expect(fetches - before).toBeLessThanOrEqual(1);
  });
});

describe("the proxy's assertion keys at a URL (PROXY_JWKS = https://…/.well-known/jwks.json)", () => {
  it("lets a backend accept the proxy's new key, then forget the retired one, without a restart", async () => {
    const [old, next] = await Promise.all([keyPair("EdDSA"), keyPair("EdDSA")]);
    served = { keys: [old.publicJwk] };
    const keys = proxyKeyLookup({ url: new URL(url) });
    const oldSigner = await createAssertionSigner(old.privateJwk);
    const nextSigner = await createAssertionSigner(next.privateJwk);

    expect((await verifyAssertion(await oldSigner.sign("a", "mcp2"), keys, "mcp2")).ok).toBe(true);
    served = { keys: [next.publicJwk, old.publicJwk] };
    advance(31);
    expect((await verifyAssertion(await nextSigner.sign("a", "mcp2"), keys, "mcp2")).ok).toBe(true);

    served = { keys: [next.publicJwk] };
    advance(11 * 60);
    expect((await verifyAssertion(await oldSigner.sign("a", "mcp2"), keys, "mcp2")).ok).toBe(false);
    expect((await verifyAssertion(await nextSigner.sign("a", "mcp2"), keys, "mcp2")).ok).toBe(true);
  });
});
