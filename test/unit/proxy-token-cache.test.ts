import { createLocalJWKSet, exportJWK, generateKeyPair, type JWTVerifyGetKey, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cachingVerifier, REVERIFY_AFTER_MS } from "../../workers/proxy/src/state/token-cache.ts";

async function setup() {
  const pair = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k", alg: "RS256" };
  let lookups = 0;
  const local = createLocalJWKSet({ keys: [jwk] });
  const keys: JWTVerifyGetKey = (header, token) => {
    lookups++;
    return local(header, token);
  };
  const mint = (exp: string | number = "1h") =>
    new SignJWT({ scope: "call_tools" })
      .setProtectedHeader({ alg: "RS256", kid: "k" })
      .setSubject("agent_name1")
      .setIssuer("https://mcpcp")
      .setAudience("mcpcp-server")
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(pair.privateKey);
  const verify = cachingVerifier(keys, { issuer: "https://mcpcp", audience: "mcpcp-server" });
  return { verify, mint, lookups: () => lookups };
}

afterEach(() => vi.useRealTimers());

describe("the verified-token cache", () => {
  it("checks a token's signature once, then takes it as verified", async () => {
    const { verify, mint, lookups } = await setup();
    const token = await mint();
    for (let i = 0; i < 5; i++) expect((await verify(token)).ok).toBe(true);
    expect(lookups()).toBe(1);
  });

  it("checks again after a minute, so a retired key stops counting", async () => {
    const { verify, mint, lookups } = await setup();
    const token = await mint();
    await verify(token);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + REVERIFY_AFTER_MS + 1);
    await verify(token);
    expect(lookups()).toBe(2);
  });

  it("never outlives the token: an expired token is checked, and refused", async () => {
    const { verify, mint } = await setup();
    const token = await mint(Math.floor(Date.now() / 1000) + 2);
    expect((await verify(token)).ok).toBe(true);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 65_000);
    expect(await verify(token)).toMatchObject({ ok: false, code: "expired" });
  });

  it("remembers no failure: a forged token is checked every time", async () => {
    const { verify, mint, lookups } = await setup();
    const forged = `${(await mint()).slice(0, -4)}AAAA`;
    for (let i = 0; i < 3; i++) expect((await verify(forged)).ok).toBe(false);
    expect(lookups()).toBe(3);
  });
});
