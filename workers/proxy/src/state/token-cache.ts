/**
 * Verified agent tokens, remembered per isolate. An agent sends the same token with every request
 * for as long as it lives; checking its RS256 signature each time costs about as much as the rest
 * of the gateway's own work. A token that verified once is taken again, unchanged, until it expires
 * or for at most a minute, so a key retired from the JWKS stops being honoured within that minute.
 * Failures are never remembered: each bad token is checked (and logged) on its own.
 */
import type { JWTVerifyGetKey } from "jose";
import {
  type AgentIdentity,
  type AuthResult,
  type VerifyOptions,
  verifyAgentToken,
} from "../core/auth.ts";

/** How long a verified token is taken without checking it again. */
export const REVERIFY_AFTER_MS = 60_000;
/** Most tokens remembered per isolate; the oldest make room. */
const MAX_ENTRIES = 10_000;

type Entry = { identity: AgentIdentity; until: number };

/** A `verifyAgentToken` that remembers what it verified. */
export function cachingVerifier(keys: JWTVerifyGetKey, options: VerifyOptions) {
  const verified = new Map<string, Entry>();
  return async (token: string): Promise<AuthResult> => {
    const now = Date.now();
    const hit = verified.get(token);
    if (hit && hit.until > now) return { ok: true, identity: hit.identity };
    if (hit) verified.delete(token);
    const result = await verifyAgentToken(token, keys, options);
    if (result.ok) {
      if (verified.size >= MAX_ENTRIES) verified.delete(verified.keys().next().value as string);
      const until = Math.min(result.identity.expiresAt * 1000, now + REVERIFY_AFTER_MS);
      verified.set(token, { identity: result.identity, until });
    }
    return result;
  };
}
