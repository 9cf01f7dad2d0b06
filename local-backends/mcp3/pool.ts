/**
 * Bounded concurrency: at most `concurrency` tasks run at once, at most `queueLimit` wait, and one
 * more is refused at once instead of piling up. Each running task holds a numbered slot, from 0 to
 * `concurrency - 1`, that no other task holds meanwhile. Knows nothing about sandboxes.
 */

export type Admission<T> =
  | { ok: true; value: T }
  | { ok: false; reason: "queue_full" | "cancelled" };

export interface Pool {
  /**
   * Runs `task` with the number of the slot it holds, once one is free; refuses when the queue is
   * full or `signal` aborts first.
   */
  submit<T>(task: (slot: number) => Promise<T>, signal?: AbortSignal): Promise<Admission<T>>;
  /** Tasks running now. */
  readonly running: number;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

/** A pool of `concurrency` slots with a queue of `queueLimit` waiting tasks. */
export function createPool(concurrency: number, queueLimit: number): Pool {
  // Lowest first, so a lone caller always gets slot 0.
  const free = Array.from({ length: concurrency }, (_, slot) => slot);
  // Each waiter is resumed with a slot already taken for it.
  const waiters: ((slot: number) => void)[] = [];

  const release = (slot: number) => {
    const next = waiters.shift();
    if (next) next(slot);
    else {
      free.push(slot);
      free.sort((a, b) => a - b);
    }
  };

  const acquire = (signal?: AbortSignal): Promise<number | undefined> => {
    if (signal?.aborted) return Promise.resolve(undefined);
    const slot = free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve) => {
      const onAbort = () => {
        const index = waiters.indexOf(resume);
        if (index >= 0) waiters.splice(index, 1);
        resolve(undefined);
      };
      const resume = (slot: number) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(slot);
      };
      waiters.push(resume);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  return {
    async submit<T>(
      task: (slot: number) => Promise<T>,
      signal?: AbortSignal,
    ): Promise<Admission<T>> {
      if (free.length === 0 && waiters.length >= queueLimit) {
        return { ok: false, reason: "queue_full" };
      }
      const slot = await acquire(signal);
      if (slot === undefined) return { ok: false, reason: "cancelled" };
      try {
        return { ok: true, value: await task(slot) };
      } finally {
        release(slot);
      }
    },
    get running() {
      return concurrency - free.length;
    },
    get waiting() {
      return waiters.length;
    },
  };
}
