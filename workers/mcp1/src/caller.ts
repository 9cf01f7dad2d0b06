/**
 * Who is calling /mcp: the agent the proxy vouches for in its assertion, checked against the
 * proxy's public keys (`PROXY_JWKS`) exactly as mcp2 and mcp3 check it (`common/assertion-gate.ts`;
 * docs/design.md, "Backend identity"). Nothing else names an agent: no header, no tool argument.
 * A request without a valid, unused assertion for mcp1 is answered here, before the MCP SDK sees
 * it.
 */
import type { JWTVerifyGetKey } from "jose";
import { parseProxyKeys, proxyKeyLookup } from "../../../common/assertion.ts";
import { admitProxyRequest } from "../../../common/assertion-gate.ts";
import type { BattleClaims } from "../../../common/battle-claims.ts";
import { SeenAssertions } from "../../../common/seen-assertions.ts";
import { configFailure } from "./http-errors.ts";

/** mcp1's id: the `aud` the proxy signs its assertions for. */
const BACKEND_ID = "mcp1";

/**
 * Used assertions one isolate remembers at once: each for its ≤70 s, so about 1,400 new ones a
 * second, sustained, before new ones get 503 (never by forgetting one still usable). That is above
 * what one mcp1 isolate serves (`echo` straight to it, 1,216/s at 64 connections; through the
 * proxy, whose isolate calls it over the binding, about 600/s: BENCHMARKS.md), and at about 100
 * bytes an entry, some 10 MB of the isolate's 128 MB.
 */
export const MAX_SEEN_ASSERTIONS = 100_000;

// Per isolate, as everything in a Worker's module scope is: another isolate of mcp1, or this one
// after a restart, does not know these jtis. That leaves a replay possible only to someone who
// has seen an assertion for mcp1, and those travel only over the proxy's service binding (mcp1 has
// no public URL in production; locally, port 9004 hears only this machine).
const seen = new SeenAssertions(MAX_SEEN_ASSERTIONS);

// The key lookup for this isolate's PROXY_JWKS, built once: a URL's keys are cached inside it.
type Lookup = JWTVerifyGetKey | { error: string };
let lookup: { raw: string | undefined; keys: Lookup } | undefined;

function proxyKeys(raw: string | undefined): Lookup {
  if (lookup === undefined || lookup.raw !== raw) {
    const parsed = parseProxyKeys(raw);
    lookup = { raw, keys: parsed.ok ? proxyKeyLookup(parsed.keys) : { error: parsed.error } };
  }
  return lookup.keys;
}

/** The verified caller of one /mcp request. */
export interface VerifiedCaller {
  agent: string;
  assertionId: string;
  /** The agent token's `battles` and `battle_role`, from the assertion and nowhere else. */
  claims: BattleClaims;
}

export type Caller = ({ ok: true } & VerifiedCaller) | { ok: false; response: Response };

/** The agent `request` was sent for by the proxy, or the answer to send instead. */
export async function callerOf(request: Request, env: Env): Promise<Caller> {
  const keys = proxyKeys(env.PROXY_JWKS);
  if ("error" in keys) {
    return {
      ok: false,
      response: configFailure(keys.error, "mcp1 cannot check the proxy's assertions; see its log."),
    };
  }
  const authorization = request.headers.get("authorization");
  const admitted = await admitProxyRequest(authorization, keys, BACKEND_ID, seen);
  if (!admitted.ok) {
    const { status, headers, body, detail } = admitted.refusal;
    console.warn(JSON.stringify({ event: "mcp_refused", method: request.method, status, detail }));
    return { ok: false, response: Response.json(body, { status, headers }) };
  }
  return { ok: true, agent: admitted.agent, assertionId: admitted.id, claims: admitted.claims };
}
