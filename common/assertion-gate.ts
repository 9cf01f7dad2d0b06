/**
 * The door every MCPCP backend keeps on its `/mcp`: a request passes only with the proxy's
 * assertion for this backend (`assertion.ts`), used for no request before (`seen-assertions.ts`),
 * and the agent is its `sub`. Anything else gets the refusal to send, the same from every backend
 * (docs/design.md, "Backend identity"): 401 with `WWW-Authenticate: Bearer error="invalid_token"`
 * and `{ error, reason, message }`, or 503 with `Retry-After` when the memory of used assertions is
 * full.
 *
 * Plain data in, a tagged result out: the Node backends (`local-backends/common/backend.ts`) and
 * mcp1 (`workers/mcp1/src/caller.ts`) each turn it into their runtime's response.
 */
import type { JWTVerifyGetKey } from "jose";
import { verifyAssertion } from "./assertion.ts";
import type { BattleClaims } from "./battle-claims.ts";
import type { SeenAssertions } from "./seen-assertions.ts";

/** A response a backend sends instead of serving the request. */
export interface Refusal {
  status: 401 | 503;
  headers: Record<string, string>;
  body: { error: string; reason?: string; message: string };
  /** Why, in detail: for the backend's log, never for the caller. */
  detail: string;
}

export type Admission =
  | {
      ok: true;
      /** The agent the proxy vouches for: the assertion's `sub`. */
      agent: string;
      /** The assertion's `jti`. */
      id: string;
      /** The agent token's battle claims, as the proxy signed them. */
      claims: BattleClaims;
    }
  | { ok: false; refusal: Refusal };

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/;

/**
 * Admits a request to `backend` by its `Authorization` header, or says how to refuse it. Each
 * assertion is admitted once: of two concurrent requests with one `jti`, exactly one passes,
 * because `seen.admit` checks and records in one synchronous step after the signature is checked.
 */
export async function admitProxyRequest(
  authorization: string | null | undefined,
  keys: JWTVerifyGetKey,
  backend: string,
  seen: SeenAssertions,
): Promise<Admission> {
  const bearer = BEARER.exec(authorization ?? "");
  const asserted = await verifyAssertion(bearer?.[1], keys, backend);
  if (!asserted.ok) {
    return refuse(asserted.code, "A valid MCPCP proxy assertion is required", asserted.detail);
  }
  const admitted = seen.admit(asserted.id, asserted.usableUntil);
  if (admitted.ok) {
    return { ok: true, agent: asserted.agent, id: asserted.id, claims: asserted.claims };
  }
  if (admitted.code === "replayed") {
    return refuse(
      "replayed",
      "This MCPCP proxy assertion was already used: each one is good for one request",
      `assertion ${asserted.id} replayed`,
    );
  }
  return {
    ok: false,
    refusal: {
      status: 503,
      headers: { "Retry-After": String(admitted.retryAfterSeconds) },
      body: {
        error: "assertion_memory_full",
        message: `Too many requests in the last minute; retry in ${admitted.retryAfterSeconds} s`,
      },
      detail: `${seen.size} assertions in use, the most remembered`,
    },
  };
}

/** 401 for an assertion refused for `reason` (missing, expired, invalid, replayed). */
function refuse(reason: string, message: string, detail: string): Admission {
  return {
    ok: false,
    refusal: {
      status: 401,
      headers: {
        "WWW-Authenticate": `Bearer error="invalid_token", error_description="${reason} proxy assertion"`,
      },
      body: { error: "invalid_token", reason, message },
      detail,
    },
  };
}
