/**
 * Per-agent admission: the agent's request rate, each rate-limited tool's rate for the agent, and
 * the cap on its concurrent `tools/call` requests, all decided in one call to the agent's
 * AgentGate Durable Object (`agent-gate.ts`). Refusals carry a retry hint.
 */
import type { Admission as AdmissionRequest, Admitted, AgentGate } from "./agent-gate.ts";
import { rpcFailure } from "./errors.ts";

/** The rate limits' window: counts reset this often. */
export const RATE_WINDOW_MS = 60_000;

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

/** The gate's answer for one request; `release` gives its slots back once it is answered. */
export type Admission =
  | { ok: true; release: () => Promise<void> }
  | Exclude<Admitted, { ok: true }>;

/** Asks `agent`'s gate to admit a request (its rate, its calls' tool rates and slots). */
export async function admit(
  gates: DurableObjectNamespace<AgentGate>,
  agent: string,
  request: AdmissionRequest,
): Promise<Admission> {
  const gate = gates.get(gates.idFromName(agent));
  const admitted = await gate.admit(request);
  if (!admitted.ok) return admitted;
  const { leases } = admitted;
  return {
    ok: true,
    release: leases.length === 0 ? async () => {} : () => gate.release(leases),
  };
}
