/**
 * Bounded concurrency, fair across agents: at most `concurrency` tasks run at once, each in a
 * numbered slot (0 to `concurrency - 1`) that no other running task holds, and at most
 * `queueLimit` wait; one more is refused at once instead of piling up. No agent may have more than
 * `perAgentRunning` tasks running or `perAgentWaiting` waiting, so one agent can neither hold every
 * slot nor fill the queue. A freed slot goes to the waiting agent (below its cap) whose last start
 * is the oldest, an agent that never started first: agents take turns whatever order their calls
 * arrived in, and each agent's own calls start in the order it sent them. Knows nothing about
 * sandboxes.
 */

export type Admission<T> =
  | { ok: true; value: T }
  | { ok: false; reason: "queue_full" | "agent_queue_full" | "cancelled" };

export interface PoolLimits {
  /** Tasks running at once, all agents together: the number of slots. */
  concurrency: number;
  /** Tasks waiting for a slot, all agents together. */
  queueLimit: number;
  /** Tasks one agent may have running at once. */
  perAgentRunning: number;
  /** Tasks one agent may have waiting. */
  perAgentWaiting: number;
}

export interface Pool {
  /**
   * Runs `task` for `agent` with the number of the slot it holds, once one is free and it is the
   * agent's turn; refuses when the queue, or the agent's share of it, is full, or when `signal`
   * aborts first.
   */
  submit<T>(
    agent: string,
    task: (slot: number) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<Admission<T>>;
  /** Tasks running now. */
  readonly running: number;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

interface AgentQueue {
  running: number;
  /** Resumed with a slot already taken for it, in the order the agent submitted them. */
  waiting: ((slot: number) => void)[];
}

/** A pool with `limits`. */
export function createPool(limits: PoolLimits): Pool {
  // Lowest first, so a lone caller always gets slot 0.
  const free = Array.from({ length: limits.concurrency }, (_, slot) => slot);
  // Agents with a task running or waiting; deleted once they have neither.
  const active = new Map<string, AgentQueue>();
  // When each agent last started a task (a count of starts, 0: never). Kept for agents gone idle
  // too, so an agent cannot jump the turns by going idle between calls; agents are the proxy's
  // verified callers, so this holds one number per agent the policy knows.
  const lastStart = new Map<string, number>();
  let starts = 0;
  let waiting = 0;

  const queueOf = (agent: string): AgentQueue => {
    let queue = active.get(agent);
    if (!queue) {
      queue = { running: 0, waiting: [] };
      active.set(agent, queue);
    }
    return queue;
  };

  const forgetIfIdle = (agent: string, queue: AgentQueue) => {
    if (queue.running === 0 && queue.waiting.length === 0) active.delete(agent);
  };

  const take = (agent: string, queue: AgentQueue): number => {
    const slot = free.shift() as number;
    queue.running += 1;
    starts += 1;
    lastStart.set(agent, starts);
    return slot;
  };

  /** Gives free slots to waiting agents below their cap, the least recently started first. */
  const dispatch = () => {
    while (free.length > 0) {
      let next: { agent: string; queue: AgentQueue; last: number } | undefined;
      // Map order is the order agents became active: it breaks ties between never-started ones.
      for (const [agent, queue] of active) {
        if (queue.waiting.length === 0 || queue.running >= limits.perAgentRunning) continue;
        const last = lastStart.get(agent) ?? 0;
        if (!next || last < next.last) next = { agent, queue, last };
      }
      if (!next) return;
      const resume = next.queue.waiting.shift() as (slot: number) => void;
      waiting -= 1;
      resume(take(next.agent, next.queue));
    }
  };

  const release = (agent: string, queue: AgentQueue, slot: number) => {
    free.push(slot);
    free.sort((a, b) => a - b);
    queue.running -= 1;
    forgetIfIdle(agent, queue);
    dispatch();
  };

  /** A slot for `agent`: at once, after waiting its turn, or undefined when refused. */
  const acquire = (
    agent: string,
    queue: AgentQueue,
    signal?: AbortSignal,
  ): Promise<number | "queue_full" | "agent_queue_full" | "cancelled"> => {
    if (signal?.aborted) return Promise.resolve("cancelled");
    // Free slots exist only while every waiting agent is at its cap, so this jumps no one.
    if (free.length > 0 && queue.running < limits.perAgentRunning) {
      return Promise.resolve(take(agent, queue));
    }
    if (waiting >= limits.queueLimit) return Promise.resolve("queue_full");
    if (queue.waiting.length >= limits.perAgentWaiting) return Promise.resolve("agent_queue_full");
    return new Promise((resolve) => {
      const onAbort = () => {
        const index = queue.waiting.indexOf(resume);
        if (index >= 0) {
          queue.waiting.splice(index, 1);
          waiting -= 1;
        }
        resolve("cancelled");
      };
      const resume = (slot: number) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(slot);
      };
      queue.waiting.push(resume);
      waiting += 1;
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };

  return {
    async submit<T>(
      agent: string,
      task: (slot: number) => Promise<T>,
      signal?: AbortSignal,
    ): Promise<Admission<T>> {
      const queue = queueOf(agent);
      const slot = await acquire(agent, queue, signal);
      if (typeof slot !== "number") {
        forgetIfIdle(agent, queue);
        return { ok: false, reason: slot };
      }
      try {
        return { ok: true, value: await task(slot) };
      } finally {
        release(agent, queue, slot);
      }
    },
    get running() {
      return limits.concurrency - free.length;
    },
    get waiting() {
      return waiting;
    },
  };
}
