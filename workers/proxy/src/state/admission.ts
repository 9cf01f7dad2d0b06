/**
 * Per-agent admission: the agent's request rate, each rate-limited tool's rate for the agent, the
 * cap on its concurrent `tools/call` requests and the cap on its long-lived streams, all decided
 * in one call to the agent's AgentGate Durable Object (`agent-gate.ts`). A refusal comes back as
 * data, with a retry hint; the pipeline turns it into the agent's answer.
 *
 * A stream's lease is renewed while the stream lives, from the request that holds it: every
 * third of STREAM_LEASE_MS, so a renewal may fail twice before the lease expires. A stream whose
 * isolate died is forgotten by the gate within STREAM_LEASE_MS.
 */
import type { Admission as AdmissionRequest, Admitted, AgentGate } from "./agent-gate.ts";

/** The rate limits' window: counts reset this often. */
export const RATE_WINDOW_MS = 60_000;

/** How long a stream's lease lasts unless renewed; it is renewed every third of this. */
export const STREAM_LEASE_MS = 60_000;

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

/** Most agents whose gate id an isolate keeps; the oldest make room. */
const MAX_IDS = 10_000;

/** Each agent's gate id, per gate namespace (per isolate). */
const ids = new WeakMap<object, Map<string, DurableObjectId>>();

/**
 * `agent`'s gate. Its id, a hash of the name, is worked out once per isolate and agent. The stub
 * is made per request: workerd binds a stub to the request that made it ("Cannot perform I/O on
 * behalf of a different request").
 */
function gateOf(gates: DurableObjectNamespace<AgentGate>, agent: string) {
  let known = ids.get(gates);
  if (!known) {
    known = new Map();
    ids.set(gates, known);
  }
  let id = known.get(agent);
  if (!id) {
    if (known.size >= MAX_IDS) known.delete(known.keys().next().value as string);
    id = gates.idFromName(agent);
    known.set(agent, id);
  }
  return gates.get(id);
}

/** Asks `agent`'s gate to admit a request (its rate, its calls' tool rates and slots). */
export async function admit(
  gates: DurableObjectNamespace<AgentGate>,
  agent: string,
  request: AdmissionRequest,
): Promise<Admission> {
  const gate = gateOf(gates, agent);
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
  const streams = admitted.streamLeases ?? [];
  const leases = [...admitted.leases, ...streams];
  if (streams.length === 0) return { ok: true, release: () => giveBack(gates, agent, leases) };
  const ttlMs = request.streamLeaseMs ?? STREAM_LEASE_MS;
  let renewing: Promise<unknown> = Promise.resolve();
  const renewal = setInterval(() => {
    renewing = gate.renew(streams, ttlMs).catch(() => {
      // The next renewal tries again; the lease outlives two that fail.
    });
  }, ttlMs / 3);
  return {
    ok: true,
    release: async () => {
      clearInterval(renewal);
      // A renewal still on its way must not count the stream again after its release.
      await renewing;
      await giveBack(gates, agent, leases);
    },
  };
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
    await gateOf(gates, agent)
      .release(batch)
      .catch(() => {
        // The gate expires leases it never hears back about.
      });
  });
}
