/**
 * AgentGate: one Durable Object per agent that counts its `tools/call` requests in flight, so
 * the per-agent concurrency limit holds whichever proxy isolate serves each call.
 *
 * Leases live in memory: a limiter that forgets its counts after an eviction errs towards
 * admitting calls, never towards locking an agent out. A lease whose release never arrived (the
 * isolate holding it died) expires after `ttlMs`.
 */
import { DurableObject } from "cloudflare:workers";

export type Acquired = { ok: true; lease: string } | { ok: false; inFlight: number };

export class AgentGate extends DurableObject {
  private readonly leases = new Map<string, number>();

  /** Takes one of `max` slots for `ttlMs`, or says how many are taken. */
  acquire(max: number, ttlMs: number): Acquired {
    const now = Date.now();
    for (const [lease, expires] of this.leases) if (expires <= now) this.leases.delete(lease);
    if (this.leases.size >= max) return { ok: false, inFlight: this.leases.size };
    const lease = crypto.randomUUID();
    this.leases.set(lease, now + ttlMs);
    return { ok: true, lease };
  }

  /** Gives a slot back. Releasing an unknown or expired lease is harmless. */
  release(lease: string): void {
    this.leases.delete(lease);
  }
}
