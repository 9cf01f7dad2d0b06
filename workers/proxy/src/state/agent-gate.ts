/**
 * AgentGate: one Durable Object per agent that admits its requests. It counts the agent's requests
 * per window (and its calls per window of each rate-limited tool), its `tools/call` requests in
 * flight, and its long-lived streams open (a `subscriptions/listen` stream, a door's GET stream),
 * so every limit holds whichever proxy isolate, in whichever location, serves the request. One
 * `admit` call decides all of them at once: one round trip per request, however many limits.
 *
 * Counts and leases live in memory: a gate that forgets them after an eviction (it is only evicted
 * when idle) errs towards admitting calls, never towards locking an agent out. A lease whose
 * release never arrived (the isolate holding it died) expires: a call's after its `leaseMs`, a
 * stream's after `streamLeaseMs` unless the isolate holding the stream renews it first (`renew`,
 * which also tells a gate that forgot its streams about them again).
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
  /** Long-lived streams the request opens, each taking a stream lease; none when absent. */
  streams?: number;
  /** Streams per agent; 0 (or absent) means no cap (no lease is taken). */
  maxStreams?: number;
  /** How long a stream lease lasts unless renewed. */
  streamLeaseMs?: number;
}

export type Admitted =
  | {
      ok: true;
      /** The calls' slots. */
      leases: string[];
      /** The streams' leases, to renew while they live (absent from a gate of before streams). */
      streamLeases?: string[];
    }
  | {
      ok: false;
      refusal: "rate" | "tool_rate" | "concurrency" | "streams";
      retryAfterSeconds: number;
      /** The rate-limited tool that was over its rate. */
      tool?: string;
      /** Calls in flight when a slot was refused. */
      inFlight?: number;
      /** Streams open when a stream was refused. */
      open?: number;
    };

type Window = { start: number; count: number };

export class AgentGate extends DurableObject {
  private readonly leases = new Map<string, number>();
  private readonly streams = new Map<string, number>();
  private readonly windows = new Map<string, Window>();

  /**
   * Counts the request and takes one slot per call and one lease per stream, all or nothing: a
   * refused request holds nothing. Refused requests still count against the agent's rate, as with
   * any rate limiter. `released` are leases the caller gives back first (they ride along to save a
   * round trip).
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
    const calls = admission.maxInFlight === 0 ? 0 : admission.calls.length;
    const streams = admission.maxStreams ? (admission.streams ?? 0) : 0;
    expire(this.leases, now);
    expire(this.streams, now);
    if (calls > 0 && this.leases.size + calls > admission.maxInFlight) {
      return {
        ok: false,
        refusal: "concurrency",
        retryAfterSeconds: 1,
        inFlight: this.leases.size,
      };
    }
    if (streams > 0 && this.streams.size + streams > (admission.maxStreams ?? 0)) {
      // A stream ends when its agent ends it, so there is no telling when one frees: a second.
      return { ok: false, refusal: "streams", retryAfterSeconds: 1, open: this.streams.size };
    }
    const leases = take(this.leases, calls, now + admission.leaseMs);
    const streamLeases = take(this.streams, streams, now + (admission.streamLeaseMs ?? 0));
    return { ok: true, leases, streamLeases };
  }

  /** Gives slots and stream leases back. Releasing an unknown or expired lease is harmless. */
  release(leases: string[]): void {
    for (const lease of leases) {
      this.leases.delete(lease);
      this.streams.delete(lease);
    }
  }

  /**
   * Keeps the streams of `leases` counted for another `ttlMs`: the isolate holding them renews
   * them while they live. A lease the gate does not know (it forgot its streams when it was
   * evicted) is counted again, so the gate relearns what is open.
   */
  renew(leases: string[], ttlMs: number): void {
    const expires = Date.now() + ttlMs;
    for (const lease of leases) this.streams.set(lease, expires);
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

/** Forgets the leases of `held` whose time is up. */
function expire(held: Map<string, number>, now: number): void {
  for (const [lease, expires] of held) if (expires <= now) held.delete(lease);
}

/** Takes `count` fresh leases in `held`, each good until `expires`. */
function take(held: Map<string, number>, count: number, expires: number): string[] {
  const leases = Array.from({ length: count }, () => crypto.randomUUID());
  for (const lease of leases) held.set(lease, expires);
  return leases;
}
