// How a door passes a backend's SSE answer on (workers/proxy/src/relay/sse.ts): once every request
// has its answer, the agent's stream ends with the event that carried the last one, in the same
// turn, even while the backend keeps its own stream open; so the answer's watcher sees its end
// (and logs its audit record) before the last answer goes on.
import { describe, expect, it } from "vitest";
import { watchAnswer } from "../../workers/proxy/src/agent-side/http.ts";
import { relaySse, type SseRelay } from "../../workers/proxy/src/relay/sse.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A backend's SSE stream that the test writes, and whether the relay cancelled it. */
function backend() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const seen = { cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: () => {
      seen.cancelled = true;
    },
  });
  return { body, seen, event: (data: object) => controller.enqueue(sse(data)) };
}

const sse = (data: object) => encoder.encode(`event: message\ndata: ${JSON.stringify(data)}\n\n`);

/** A relay for a request with id 1 outstanding until its answer passes. */
function relayFor(outstanding: Set<number>, ends: string[]): SseRelay {
  return {
    onMessage: (message) => {
      const id = (message as { id?: number }).id;
      if (id !== undefined && !("method" in (message as object))) outstanding.delete(id);
      return undefined;
    },
    silenceMs: () => undefined,
    onSilence: async () => [],
    onEnd: (how) => ends.push(how),
    answered: () => outstanding.size === 0,
  };
}

describe("a door's SSE answer", () => {
  it("ends with the last answer while the backend's stream stays open", async () => {
    const upstream = backend();
    const ends: string[] = [];
    const reader = relaySse(upstream.body, relayFor(new Set([1]), ends)).getReader();
    upstream.event({ jsonrpc: "2.0", method: "notifications/progress", params: {} });
    expect(decoder.decode((await reader.read()).value)).toContain("notifications/progress");
    expect(ends).toEqual([]);
    upstream.event({ jsonrpc: "2.0", id: 1, result: {} });
    expect(decoder.decode((await reader.read()).value)).toContain('"id":1');
    expect((await reader.read()).done).toBe(true);
    expect(ends).toEqual(["closed"]);
    expect(upstream.seen.cancelled).toBe(true);
  });

  it("is over for its watcher before the last answer reaches the agent", async () => {
    const upstream = backend();
    const done: number[] = [];
    const answer = watchAnswer(
      new Response(relaySse(upstream.body, relayFor(new Set([1]), [])), {
        headers: { "content-type": "text/event-stream" },
      }),
      { signal: new AbortController().signal, gone: () => {}, done: (bytes) => done.push(bytes) },
    );
    const reader = answer.body?.getReader();
    upstream.event({ jsonrpc: "2.0", id: 1, result: {} });
    const last = await reader?.read();
    expect(decoder.decode(last?.value)).toContain('"id":1');
    expect(done).toEqual([last?.value?.byteLength]);
  });
});
