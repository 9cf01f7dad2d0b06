/**
 * Per-agent admission: rate limits (Workers rate limiting bindings, shared by every isolate in a
 * location, simulated by wrangler dev) and the cap on concurrent `tools/call` requests (one
 * AgentGate Durable Object per agent). Refusals carry a retry hint.
 */
import type { AgentGate } from "./agent-gate.ts";
import { rpcFailure } from "./errors.ts";

/** The bindings' window: the longest an agent over its limit waits for its count to reset. */
export const RATE_WINDOW_SECONDS = 60;

/** JSON-RPC code for "too many requests", in the implementation-defined server error range. */
export const TOO_MANY_REQUESTS = -32029;

/** HTTP 429 with Retry-After and a JSON-RPC error that says when to come back. */
export function tooManyRequests(
  id: string | number | null,
  message: string,
  retryAfterSeconds: number,
): Response {
  const response = rpcFailure(
    429,
    TOO_MANY_REQUESTS,
    `${message}; retry after ${retryAfterSeconds} s`,
    id,
  );
  response.headers.set("retry-after", String(retryAfterSeconds));
  return response;
}

/** Counts one request against `limiter` under `key`; true while under the limit. */
export async function underRateLimit(limiter: RateLimit, key: string): Promise<boolean> {
  return (await limiter.limit({ key })).success;
}

/** A held concurrency slot, or the count that kept the call out. */
export type Slot = { ok: true; release: () => Promise<void> } | { ok: false; inFlight: number };

/** Takes one of `max` concurrency slots for `agent`, held at most `ttlMs`. */
export async function acquireSlot(
  gates: DurableObjectNamespace<AgentGate>,
  agent: string,
  max: number,
  ttlMs: number,
): Promise<Slot> {
  const gate = gates.get(gates.idFromName(agent));
  const acquired = await gate.acquire(max, ttlMs);
  if (!acquired.ok) return { ok: false, inFlight: acquired.inFlight };
  return { ok: true, release: () => gate.release(acquired.lease) };
}
