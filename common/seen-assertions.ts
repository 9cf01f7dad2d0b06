/**
 * The `jti`s of the proxy assertions a backend has accepted, each kept until the assertion would
 * be refused anyway (`usableUntil`, `common/assertion.ts`), so that a captured assertion cannot be
 * played again while it is still valid (docs/design.md, "Backend identity").
 *
 * In memory, per Node backend process, or per isolate in mcp1 (a Worker, which may run several):
 * a restart, or another isolate, does not know what this one has seen, so an assertion used just
 * before a restart can be used once more after it, within what is left of its lifetime (at most
 * about 70 s). Plain data and a clock: runs unchanged in Node and workerd.
 *
 * Bounded: entries leave once they are past `usableUntil`, so the set holds only the assertions of
 * the last ~70 s. At `maxEntries` it refuses assertions it has not seen rather than forget one
 * that is still valid (forgetting would reopen the replay it exists to close); the refusal says
 * when the oldest entry leaves. Only assertions with a valid proxy signature are ever added, so
 * only the proxy's own traffic can fill it.
 */

/**
 * The Node backends' cap (mcp1 sets its own, `workers/mcp1/src/caller.ts`). An entry lives
 * at most ~70 s (65 s for the proxy's assertions: `exp` + skew), so the cap is a rate: 250,000 is about 3,800 new assertions a second, sustained. The fastest thing a Node backend
 * does is `echo`, about 2,200 a second straight to mcp2 and 800 through the proxy on the
 * benchmark's two cores (BENCHMARKS.md); `run_docker` and `run_python_code` are far slower. Each
 * entry is a jti of at most 128 characters (the proxy's are 36) and a number: full, about 25 MB of
 * heap with the proxy's UUIDs, 45 MB with 128-character jtis (measured on Node 22).
 */
export const DEFAULT_MAX_SEEN_ASSERTIONS = 250_000;

export type Admission =
  | { ok: true }
  | { ok: false; code: "replayed" }
  /** At the cap with nothing expired: refused; `retryAfterSeconds` until the oldest entry leaves. */
  | { ok: false; code: "full"; retryAfterSeconds: number };

/** Used `jti`s until they expire; `admit` is synchronous, so two concurrent uses cannot both pass. */
export class SeenAssertions {
  // Insertion order is arrival order. An entry that arrived earlier but is usable for longer (its
  // `iat` a few seconds later, from clock skew) holds back the expired ones behind it by that
  // difference only: seconds, within the bound the cap is sized for.
  private readonly seen = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly nowSeconds: () => number;

  constructor(
    maxEntries: number = DEFAULT_MAX_SEEN_ASSERTIONS,
    nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new Error(`maxEntries must be a positive whole number, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    this.nowSeconds = nowSeconds;
  }

  /** How many jtis are remembered now (expired ones not yet swept included). */
  get size(): number {
    return this.seen.size;
  }

  /** Records the first use of `id`, usable until the Unix second `usableUntil`; refuses a second. */
  admit(id: string, usableUntil: number): Admission {
    const now = this.nowSeconds();
    this.evict(now);
    if (this.seen.has(id)) return { ok: false, code: "replayed" };
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.values().next().value ?? now + 1;
      return { ok: false, code: "full", retryAfterSeconds: Math.max(1, oldest - now) };
    }
    this.seen.set(id, usableUntil);
    return { ok: true };
  }

  private evict(now: number): void {
    for (const [id, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(id);
    }
  }
}
