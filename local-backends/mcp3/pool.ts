/**
 * Bounded concurrency: at most `concurrency` tasks run at once, at most `queueLimit` wait, and one
 * more is refused at once instead of piling up. Knows nothing about sandboxes.
 */

export type Admission<T> =
  | { ok: true; value: T }
  | { ok: false; reason: "queue_full" | "cancelled" };

export interface Pool {
  /** Runs `task` when a slot is free; refuses when the queue is full or `signal` aborts first. */
  submit<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<Admission<T>>;
  /** Tasks running now. */
  readonly running: number;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

/** A pool of `concurrency` slots with a queue of `queueLimit` waiting tasks. */
export function createPool(concurrency: number, queueLimit: number): Pool {
  let running = 0;
  // Each waiter is resumed with a slot already counted as its own.
  const waiters: (() => void)[] = [];

  const release = () => {
    const next = waiters.shift();
    if (next) next();
    else running -= 1;
  };

  const acquire = (signal?: AbortSignal): Promise<boolean> => {
    if (signal?.aborted) return Promise.resolve(false);
    if (running < concurrency) {
      running += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        const index = waiters.indexOf(resume);
        if (index >= 0) waiters.splice(index, 1);
        resolve(false);
      };
      const resume = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      waiters.push(resume);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  return {
    async submit<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<Admission<T>> {
      if (running >= concurrency && waiters.length >= queueLimit) {
        return { ok: false, reason: "queue_full" };
      }
      if (!(await acquire(signal))) return { ok: false, reason: "cancelled" };
      try {
        return { ok: true, value: await task() };
      } finally {
        release();
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiters.length;
    },
  };
}
