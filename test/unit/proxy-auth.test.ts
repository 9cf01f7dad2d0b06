import {
  base64url,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  SignJWT,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { extractBearer, verifyAgentToken } from "../../workers/proxy/src/core/auth.ts";

const ISSUER = "https://mcpcp";
const AUDIENCE = "mcpcp-server";
const NOW = 1_800_000_000;

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let live: KeyPair;
let second: KeyPair;
let stranger: KeyPair;
let jwks: JSONWebKeySet;
let liveJwk: JWK;

async function publicJwk(pair: KeyPair, kid: string): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" };
}

beforeAll(async () => {
  [live, second, stranger] = await Promise.all([
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("RS256", { extractable: true }),
  ]);
  liveJwk = await publicJwk(live, "live");
  jwks = { keys: [liveJwk, await publicJwk(second, "second")] };
});

interface MintOptions {
  key?: KeyPair;
  kid?: string;
  claims?: Record<string, unknown>;
  omit?: string[];
}

function mint({ key = live, kid = "live", claims = {}, omit = [] }: MintOptions = {}) {
  const payload: Record<string, unknown> = {
    sub: "agent_name1",
    iss: ISSUER,
    aud: AUDIENCE,
    iat: NOW,
    nbf: NOW,
    exp: NOW + 600,
    scope: "list_tools call_tools",
    ...claims,
  };
  for (const claim of omit) delete payload[claim];
  return new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid }).sign(key.privateKey);
}

function verify(token: string, now = NOW) {
  return verifyAgentToken(token, createLocalJWKSet(jwks), {
    issuer: ISSUER,
    audience: AUDIENCE,
    now,
  });
}

function unsigned(header: object, payload: object, signature = ""): string {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

describe("verifyAgentToken accepts", () => {
  it("a well-formed token and reads agent and scopes from it", async () => {
    const result = await verify(await mint());
    expect(result).toEqual({
      ok: true,
      identity: {
        agent: "agent_name1",
        scopes: new Set(["list_tools", "call_tools"]),
        expiresAt: NOW + 600,
        tokenId: undefined,
        issuedAt: NOW,
        claims: expect.objectContaining({ sub: "agent_name1", iat: NOW, exp: NOW + 600 }),
        battleClaims: {},
      },
    });
  });

  it("a battles and a battle_role claim, read into the identity for the assertion", async () => {
    const claims = { battles: ["b-1", "game:42", "b-1"], battle_role: "judge" };
    const result = await verify(await mint({ claims }));
    expect(result.ok && result.identity.battleClaims).toEqual({
      battles: ["b-1", "game:42"],
      battle_role: "judge",
    });
  });

  it("a token signed by any live key of the JWKS (rotation)", async () => {
    const result = await verify(await mint({ key: second, kid: "second" }));
    expect(result.ok).toBe(true);
  });

  it("client_id over sub, as the seed did", async () => {
    const result = await verify(await mint({ claims: { client_id: "agent_name2" } }));
    expect(result.ok && result.identity.agent).toBe("agent_name2");
  });

  it("an aud array that contains the audience", async () => {
    const result = await verify(await mint({ claims: { aud: ["other", AUDIENCE] } }));
    expect(result.ok).toBe(true);
  });

  it("expiry and not-before within the 60 s clock skew", async () => {
    expect((await verify(await mint({ claims: { exp: NOW - 59 } }))).ok).toBe(true);
    expect((await verify(await mint({ claims: { nbf: NOW + 59 } }))).ok).toBe(true);
  });
});

describe("verifyAgentToken refuses", () => {
  const refusals: [string, () => Promise<string>, string][] = [
    ["a bad signature", async () => `${(await mint()).slice(0, -6)}AAAAAA`, "invalid_token"],
    [
      "a token signed by an unknown key under a known kid",
      () => mint({ key: stranger }),
      "invalid_token",
    ],
    ["a kid the JWKS does not hold", () => mint({ key: stranger, kid: "nope" }), "invalid_token"],
    ["an expired token", () => mint({ claims: { exp: NOW - 61 } }), "expired"],
    ["a token not yet valid", () => mint({ claims: { nbf: NOW + 61 } }), "invalid_token"],
    ["a token issued in the future", () => mint({ claims: { iat: NOW + 120 } }), "invalid_token"],
    ["a wrong issuer", () => mint({ claims: { iss: "https://evil" } }), "invalid_token"],
    ["a wrong audience", () => mint({ claims: { aud: "someone-else" } }), "invalid_token"],
    ["a token without exp", () => mint({ omit: ["exp"] }), "invalid_token"],
    ["a token without iss", () => mint({ omit: ["iss"] }), "invalid_token"],
    ["a token without aud", () => mint({ omit: ["aud"] }), "invalid_token"],
    ["a token without sub or client_id", () => mint({ omit: ["sub"] }), "invalid_token"],
    [
      "a battles claim that is not an array",
      () => mint({ claims: { battles: "b-1" } }),
      "invalid_claims",
    ],
    [
      "a battles claim with an id mcp1 would refuse",
      () => mint({ claims: { battles: ["b 1"] } }),
      "invalid_claims",
    ],
    [
      "a battles claim of more than 100 ids",
      () => mint({ claims: { battles: Array.from({ length: 101 }, (_, i) => `b${i}`) } }),
      "invalid_claims",
    ],
    [
      "a battle_role that is not a string",
      () => mint({ claims: { battle_role: ["judge"] } }),
      "invalid_claims",
    ],
    [
      "alg none",
      async () =>
        unsigned(
          { alg: "none", kid: "live" },
          { sub: "agent_name1", iss: ISSUER, aud: AUDIENCE, exp: NOW + 600 },
        ),
      "invalid_token",
    ],
    [
      "HS256 keyed with the public key",
      async () => {
        const secret = new TextEncoder().encode(JSON.stringify(liveJwk));
        return new SignJWT({ sub: "agent_name1", iss: ISSUER, aud: AUDIENCE, exp: NOW + 600 })
          .setProtectedHeader({ alg: "HS256", kid: "live" })
          .sign(secret);
      },
      "invalid_token",
    ],
    ["garbage", async () => "not.a.jwt", "invalid_token"],
  ];

  it.each(refusals)("%s", async (_name, make, code) => {
    const result = await verify(await make());
    expect(result.ok).toBe(false);
    expect(!result.ok && result.code).toBe(code);
  });
});

describe("extractBearer", () => {
  const url = new URL("https://gw.example/mcp");

  it("takes the token from one Bearer header, scheme case-insensitive", () => {
    expect(extractBearer("Bearer abc.def-_~+/=", url)).toEqual({
      ok: true,
      token: "abc.def-_~+/=",
    });
    expect(extractBearer("bearer abc", url)).toEqual({ ok: true, token: "abc" });
  });

  it("reports a missing header", () => {
    expect(extractBearer(undefined, url)).toMatchObject({ ok: false, code: "missing_token" });
  });

  it("refuses other schemes and two joined headers", () => {
    expect(extractBearer("Basic dXNlcjpwYXNz", url)).toMatchObject({
      ok: false,
      code: "malformed_header",
    });
    expect(extractBearer("Bearer a, Bearer b", url)).toMatchObject({
      ok: false,
      code: "malformed_header",
    });
  });

  it("refuses a token in the query string even beside a good header", () => {
    const leaky = new URL("https://gw.example/mcp?access_token=abc");
    expect(extractBearer("Bearer abc", leaky)).toMatchObject({ ok: false, code: "token_in_query" });
  });
});
