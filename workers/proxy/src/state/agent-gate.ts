/**
 * AgentGate: one Durable Object per agent that admits its requests. It counts the agent's requests
 * per window (and its calls per window of each rate-limited tool), and its `tools/call` requests in
 * flight, so every limit holds whichever proxy isolate, in whichever location, serves the request.
 * One `admit` call decides all of them at once: one round trip per request, however many limits.
 *
 * Counts and leases live in memory: a gate that forgets them after an eviction (it is only evicted
 * when idle) errs towards admitting calls, never towards locking an agent out. A lease whose
 * release never arrived (the isolate holding it died) expires after its `ttlMs`.
 */
import { DurableObject } from "cloudflare:workers";

/** A limit of `limit` requests per fixed window of `windowMs`. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** What one request asks of the gate. */
export interface Admission {
  /** The agent's own request rate: every request counts against it. */
  rate: RateLimit;
  /** The `tools/call` messages in the request, each taking a concurrency slot. */
  calls: {
    /** A rate-limited tool's name, counted against `toolRate` for this agent. */
    limitedTool?: string;
  }[];
  toolRate: RateLimit;
  /** Slots per agent; 0 means no cap (no slot is taken). */
  maxInFlight: number;
  /** How long a slot is held at most, should its release never arrive. */
  leaseMs: number;
}

export type Admitted =
  | { ok: true; leases: string[] }
  | {
      ok: false;
      refusal: "rate" | "tool_rate" | "concurrency";
      retryAfterSeconds: number;
      /** The rate-limited tool that was over its rate. */
      tool?: string;
      /** Calls in flight when a slot was refused. */
      inFlight?: number;
    };

type Window = { start: number; count: number };

export class AgentGate extends DurableObject {
  private readonly leases = new Map<string, number>();
  private readonly windows = new Map<string, Window>();

  /**
   * Counts the request and takes one slot per call, all or nothing: a refused request holds no
   * slot. Refused requests still count against the agent's rate, as with any rate limiter.
   * `released` are leases the caller gives back first (they ride along to save a round trip).
   */
  admit(admission: Admission, released: string[] = []): Admitted {
    this.release(released);
    const now = Date.now();
    const rate = this.count("agent", admission.rate, now);
    if (rate > 0) return { ok: false, refusal: "rate", retryAfterSeconds: rate };
    for (const call of admission.calls) {
      if (call.limitedTool === undefined) continue;
      const wait = this.count(`tool:${call.limitedTool}`, admission.toolRate, now);
      if (wait > 0) {
        return { ok: false, refusal: "tool_rate", retryAfterSeconds: wait, tool: call.limitedTool };
      }
    }
    if (admission.maxInFlight === 0 || admission.calls.length === 0)
      return { ok: true, leases: [] };
    for (const [lease, expires] of this.leases) if (expires <= now) this.leases.delete(lease);
    if (this.leases.size + admission.calls.length > admission.maxInFlight) {
      return {
        ok: false,
        refusal: "concurrency",
        retryAfterSeconds: 1,
        inFlight: this.leases.size,
      };
    }
    const leases = admission.calls.map(() => crypto.randomUUID());
    for (const lease of leases) this.leases.set(lease, now + admission.leaseMs);
    return { ok: true, leases };
  }

  /** Gives slots back. Releasing an unknown or expired lease is harmless. */
  release(leases: string[]): void {
    for (const lease of leases) this.leases.delete(lease);
  }

  /** Counts one request in `key`'s window: 0 if under the limit, else seconds until it resets. */
  private count(key: string, { limit, windowMs }: RateLimit, now: number): number {
    let window = this.windows.get(key);
    if (!window || now >= window.start + windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count++;
    if (window.count <= limit) return 0;
    return Math.max(1, Math.ceil((window.start + windowMs - now) / 1000));
  }
}
