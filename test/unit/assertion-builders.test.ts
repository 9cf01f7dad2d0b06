/**
 * The proxy builds its backend assertions itself (`direct`) rather than with jose's `SignJWT`
 * (`jose`), which costs less on every backend request. The two must give the same token: the same
 * header, the same claims in the same order, each verified as a backend verifies it. Here for
 * generated agents, backends and battle claims, in Node; workerd runs the same code.
 */
import fc from "fast-check";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ASSERTION_TTL_SECONDS,
  type AssertionSigner,
  createAssertionSigner,
  proxyKeyLookup,
  verifyAssertion,
} from "../../common/assertion.ts";
import type { BattleClaims } from "../../common/battle-claims.ts";

let direct: AssertionSigner;
let jose: AssertionSigner;
let publicJwk: JWK;

beforeAll(async () => {
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  publicJwk = { ...publicJwk, kid };
  const privateJwk = { ...(await exportJWK(pair.privateKey)), kid };
  direct = await createAssertionSigner(privateJwk, "direct");
  jose = await createAssertionSigner(privateJwk, "jose");
});

/** A token's three parts: the header and the claims as JSON text, and the signature's bytes. */
function parts(token: string): { header: string; payload: string; signature: Buffer } {
  const [header = "", payload = "", signature = ""] = token.split(".");
  expect(token.split(".")).toHaveLength(3);
  // Unpadded base64url only, as RFC 7515 has it.
  for (const part of [header, payload, signature]) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
  return {
    header: Buffer.from(header, "base64url").toString("utf8"),
    payload: Buffer.from(payload, "base64url").toString("utf8"),
    signature: Buffer.from(signature, "base64url"),
  };
}

/** The claims' JSON with the jti (random by design) and the times (a second may pass) set aside. */
function comparable(payload: string): { text: string; jti: unknown; iat: unknown; exp: unknown } {
  const claims = JSON.parse(payload) as Record<string, unknown>;
  const { jti, iat, exp } = claims;
  return {
    text: JSON.stringify({ ...claims, jti: "-", iat: 0, exp: 0 }),
    jti,
    iat,
    exp,
  };
}

const name = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });
const claims: fc.Arbitrary<BattleClaims> = fc.record(
  {
    battles: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,16}$/), { maxLength: 5 }),
    battle_role: fc.constantFrom("judge", "player"),
  },
  { requiredKeys: [] },
);

describe("the assertion builders", () => {
  it("give the same header and claims, in the same order, and both verify", async () => {
    const keys = proxyKeyLookup({ jwks: { keys: [publicJwk] } });
    await fc.assert(
      fc.asyncProperty(name, name, claims, async (agent, backend, battle) => {
        const ours = await direct.sign(agent, backend, battle);
        const theirs = await jose.sign(agent, backend, battle);
        const a = parts(ours);
        const b = parts(theirs);
        expect(a.header).toBe(b.header);
        const x = comparable(a.payload);
        const y = comparable(b.payload);
        expect(x.text).toBe(y.text);
        expect(x.jti).not.toBe(y.jti);
        expect(x.jti).toMatch(/^[0-9a-f-]{36}$/);
        expect(x.exp).toBe((x.iat as number) + ASSERTION_TTL_SECONDS);
        expect(a.signature).toHaveLength(64);
        for (const token of [ours, theirs]) {
          const verified = await verifyAssertion(token, keys, backend);
          expect(verified).toMatchObject({ ok: true, agent });
          if (verified.ok) expect(verified.claims).toEqual(battle);
        }
        // Bound to its audience: another backend refuses it.
        expect((await verifyAssertion(ours, keys, `${backend}!`)).ok).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it("defaults to the direct builder", async () => {
    const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const privateJwk = { ...(await exportJWK(pair.privateKey)), kid: "k" };
    const signer = await createAssertionSigner(privateJwk);
    const token = await signer.sign("agent", "mcp2");
    expect(parts(token).header).toBe('{"alg":"EdDSA","kid":"k","typ":"mcpcp-assertion+jwt"}');
  });
});
