/**
 * Per-agent admission: the agent's request rate, each rate-limited tool's rate for the agent, and
 * the cap on its concurrent `tools/call` requests, all decided in one call to the agent's
 * AgentGate Durable Object (`agent-gate.ts`). A refusal comes back as data, with a retry hint;
 * the pipeline turns it into the agent's answer.
 */
import type { Admission as AdmissionRequest, Admitted, AgentGate } from "./agent-gate.ts";

/** The rate limits' window: counts reset this often. */
export const RATE_WINDOW_MS = 60_000;

/** The gate's answer for one request; `release` gives its slots back once it is answered. */
export type Admission =
  | { ok: true; release: () => Promise<void> }
  | Exclude<Admitted, { ok: true }>;

/**
 * How long returned slots wait for a ride. Slots an isolate gives back ride along with its next
 * admission for the same agent (the gate applies them first), so under load a call costs the gate
 * one round trip instead of two; slots with no admission to ride on go back on their own after
 * this long. Either way the gate sees them before it admits anything else from this isolate.
 */
export const RELEASE_AFTER_MS = 50;

/** Leases given back but not yet delivered, per gate namespace and agent (per isolate). */
const returned = new WeakMap<object, Map<string, string[]>>();

function pendingFor(gates: object): Map<string, string[]> {
  let pending = returned.get(gates);
  if (!pending) {
    pending = new Map();
    returned.set(gates, pending);
  }
  return pending;
}

/** Asks `agent`'s gate to admit a request (its rate, its calls' tool rates and slots). */
export async function admit(
  gates: DurableObjectNamespace<AgentGate>,
  agent: string,
  request: AdmissionRequest,
): Promise<Admission> {
  const gate = gates.get(gates.idFromName(agent));
  const pending = pendingFor(gates);
  const riding = pending.get(agent) ?? [];
  pending.delete(agent);
  let admitted: Admitted;
  try {
    admitted = await gate.admit(request, riding);
  } catch (e) {
    if (riding.length > 0) giveBack(gates, agent, riding); // try those again later
    throw e;
  }
  if (!admitted.ok) return admitted;
  const { leases } = admitted;
  return { ok: true, release: () => giveBack(gates, agent, leases) };
}

/**
 * Queues `leases` to go back to `agent`'s gate. The first to queue for an agent holds the delivery
 * (its promise, for `waitUntil`, settles once it is done); later ones join it and return at once.
 */
function giveBack(
  gates: DurableObjectNamespace<AgentGate>,
  agent: string,
  leases: string[],
): Promise<void> {
  if (leases.length === 0) return Promise.resolve();
  const pending = pendingFor(gates);
  const waiting = pending.get(agent);
  if (waiting) {
    waiting.push(...leases);
    return Promise.resolve();
  }
  const batch = [...leases];
  pending.set(agent, batch);
  return new Promise((resolve) => setTimeout(resolve, RELEASE_AFTER_MS)).then(async () => {
    // Gone already if an admission took them along.
    if (pending.get(agent) !== batch) return;
    pending.delete(agent);
    await gates
      .get(gates.idFromName(agent))
      .release(batch)
      .catch(() => {
        // The gate expires leases it never hears back about.
      });
  });
}
