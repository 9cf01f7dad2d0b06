/**
 * `notifications/cancelled` for a stateless gateway. A 2025-era client cancels a call by POSTing
 * a notification that names the call's request id; that POST is a request of its own, served by a
 * fresh MCP server that never saw the call. So the calls in flight are kept here, by agent and
 * request id, and a cancellation from the same agent aborts the matching one.
 *
 * Per isolate: a cancellation that lands on another isolate than its call finds nothing, and the
 * call runs to its end (or its timeout). The agent closing its stream still cancels everywhere.
 */

import type { Message, RequestId } from "../core/envelope.ts";

const inFlight = new Map<string, AbortController>();

const key = (agent: string, id: string | number) => `${agent}\u0000${typeof id}:${id}`;

/** Registers a call; returns its signal and the function that forgets it. */
export function trackCall(
  agent: string,
  id: string | number,
): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const k = key(agent, id);
  inFlight.set(k, controller);
  return {
    signal: controller.signal,
    done: () => {
      if (inFlight.get(k) === controller) inFlight.delete(k);
    },
  };
}

/** Aborts `agent`'s call with request id `id`, if this isolate runs it. Another agent's never. */
export function cancelCall(agent: string, id: string | number, reason: string): boolean {
  const controller = inFlight.get(key(agent, id));
  controller?.abort(new Error(`cancelled by the agent: ${reason}`));
  return controller !== undefined;
}

/** The cancellations among `messages`: `notifications/cancelled` with a request id. */
export function cancellationsIn(messages: readonly Message[]): { id: RequestId; reason: string }[] {
  return messages.flatMap((m) =>
    m.cancel ? [{ id: m.cancel.requestId, reason: m.cancel.reason }] : [],
  );
}
