/**
 * The agent-token JWKS, checked the way the proxy needs it. Pure (zod only), so the launcher runs
 * the same check in Node before it starts anything.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import { z } from "zod";
import { type ParseResult, parseDocument } from "./documents.ts";

// Public RSA keys only: a JWKS carrying private members is a leaked key, and refused.
const PublicRsaKey = z
  .object({
    kty: z.literal("RSA"),
    kid: z.string().min(1),
    n: z.string().min(1),
    e: z.string().min(1),
    alg: z.literal("RS256").optional(),
    use: z.literal("sig").optional(),
  })
  .loose()
  .refine((k) => !["d", "p", "q", "dp", "dq", "qi"].some((m) => m in k), {
    message: "holds private key material",
  });
const Jwks = z.object({ keys: z.array(PublicRsaKey).min(1) });

/** Parses and checks the agent-token JWKS. */
export function parseJwks(json: string): ParseResult<JSONWebKeySet> {
  const parsed = parseDocument("AGENT_JWKS", json, Jwks);
  if (!parsed.ok) return parsed;
  const kids = parsed.value.keys.map((k) => k.kid);
  if (new Set(kids).size !== kids.length) {
    return { ok: false, error: "AGENT_JWKS has two keys with the same kid" };
  }
  return { ok: true, value: parsed.value as JSONWebKeySet };
}

/**
 * The agent-token keys: `AGENT_JWKS` holds a JWKS document, or the https URL of one. A URL is
 * fetched on first use, cached for ten minutes, and fetched again when a token names a `kid` it
 * has not seen (a rotation), at most once every 30 s so a stream of forged kids cannot hammer it.
 */
export function agentKeyLookup(value: string): ParseResult<JWTVerifyGetKey> {
  if (/^https?:\/\//.test(value.trim())) {
    let url: URL;
    try {
      url = new URL(value.trim());
    } catch {
      return { ok: false, error: `AGENT_JWKS is neither a JWKS nor a URL: ${value.slice(0, 80)}` };
    }
    return {
      ok: true,
      value: createRemoteJWKSet(url, { cooldownDuration: 30_000, cacheMaxAge: 600_000 }),
    };
  }
  const jwks = parseJwks(value);
  return jwks.ok ? { ok: true, value: createLocalJWKSet(jwks.value) } : jwks;
}
