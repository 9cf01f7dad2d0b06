// How the gateway watches an agent's answer (workers/proxy/src/agent-side/http.ts): comments that
// keep a silent SSE answer tested, so a closed connection shows; the ends it reports; and an
// answer that takes long turned into a stream.
import { describe, expect, it } from "vitest";
import {
  HEARTBEAT_MS,
  STREAM_AFTER_MS,
  streamWhenSlow,
  watchAnswer,
} from "../../workers/proxy/src/agent-side/http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A body whose chunks the test writes, and what happened to it. */
function source() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const seen = { cancelled: undefined as unknown };
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: (reason) => {
      seen.cancelled = reason ?? "cancelled";
    },
  });
  return {
    body,
    seen,
    write: (text: string) => controller.enqueue(encoder.encode(text)),
    close: () => controller.close(),
  };
}

function watched(
  body: ReadableStream<Uint8Array>,
  type: string,
  signal = new AbortController().signal,
) {
  const ends = { gone: [] as unknown[], done: [] as number[] };
  const response = watchAnswer(new Response(body, { headers: { "content-type": type } }), {
    signal,
    gone: (reason) => ends.gone.push(reason),
    done: (bytes) => ends.done.push(bytes),
  });
  return { response, ends };
}

/** Reads `response` until it ends, noting when each chunk came. */
async function chunks(response: Response): Promise<string[]> {
  const out: string[] = [];
  const reader = response.body?.getReader();
  for (;;) {
    const next = await reader?.read();
    if (!next || next.done) return out;
    out.push(decoder.decode(next.value));
  }
}

describe("an SSE answer that is silent", () => {
  it("gets a comment every HEARTBEAT_MS for as long as it is silent, and only between events", async () => {
    const upstream = source();
    const { response, ends } = watched(upstream.body, "text/event-stream");
    const read = chunks(response);
    upstream.write("event: message\ndata: {");
    await sleep(HEARTBEAT_MS * 2); // mid-event: nothing may come between the halves
    upstream.write('"a":1}\n\n');
    await sleep(HEARTBEAT_MS * 3.5);
    upstream.close();
    const seen = await read;
    expect(seen.slice(0, 2)).toEqual(["event: message\ndata: {", '"a":1}\n\n']);
    expect(seen.slice(2).length).toBeGreaterThanOrEqual(3);
    expect(new Set(seen.slice(2))).toEqual(new Set([": keepalive\n\n"]));
    expect(ends.done).toEqual([seen.join("").length]);
    expect(ends.gone).toEqual([]);
  });

  it("is not what a JSON answer gets", async () => {
    const upstream = source();
    const { response } = watched(upstream.body, "application/json");
    const read = chunks(response);
    await sleep(HEARTBEAT_MS * 2);
    upstream.write("{}");
    upstream.close();
    expect(await read).toEqual(["{}"]);
  });
});

describe("the answer's end", () => {
  /** Reads `response` to its end, noting for each chunk how many times `done` had been called. */
  async function doneAtEachChunk(response: Response, ends: { done: number[] }) {
    const seen: { text: string; done: number }[] = [];
    const reader = response.body?.getReader();
    for (;;) {
      const next = await reader?.read();
      if (!next || next.done) return seen;
      seen.push({ text: decoder.decode(next.value), done: ends.done.length });
    }
  }

  it("is reported before the last chunk goes on, when the source ends in the same turn", async () => {
    for (const type of ["text/event-stream", "application/json"]) {
      const upstream = source();
      const { response, ends } = watched(upstream.body, type);
      const read = doneAtEachChunk(response, ends);
      upstream.write("event: message\ndata: {}\n\n");
      upstream.close();
      expect(await read).toEqual([{ text: "event: message\ndata: {}\n\n", done: 1 }]);
      expect(ends.done).toEqual([25]);
    }
  });

  it("waits for a JSON body's end before its last chunk goes on", async () => {
    const upstream = source();
    const { response, ends } = watched(upstream.body, "application/json");
    const read = doneAtEachChunk(response, ends);
    upstream.write('{"a":');
    upstream.write("1}");
    await sleep(50);
    upstream.close();
    expect(await read).toEqual([
      { text: '{"a":', done: 0 },
      { text: "1}", done: 1 },
    ]);
  });

  it("does not hold an SSE event back for it: the event goes on while the stream stays open", async () => {
    const upstream = source();
    const { response, ends } = watched(upstream.body, "text/event-stream");
    const reader = response.body?.getReader();
    upstream.write("event: message\ndata: {}\n\n");
    const first = await reader?.read();
    expect(decoder.decode(first?.value)).toBe("event: message\ndata: {}\n\n");
    expect(ends.done).toEqual([]);
    upstream.close();
    expect((await reader?.read())?.done).toBe(true);
    expect(ends.done).toEqual([25]);
  });
});

describe("an agent that goes away", () => {
  it("cancelling the stream: gone and done, once each, and the answer's source cancelled", async () => {
    const upstream = source();
    const { response, ends } = watched(upstream.body, "text/event-stream");
    await response.body?.cancel("left");
    expect(ends).toEqual({ gone: ["left"], done: [0] });
    await sleep(0);
    expect(upstream.seen.cancelled).toBe("left");
  });

  it("the runtime saying so: gone and done even if nobody reads the answer", async () => {
    const upstream = source();
    const agent = new AbortController();
    const { response, ends } = watched(upstream.body, "text/event-stream", agent.signal);
    agent.abort("socket closed");
    expect(ends).toEqual({ gone: ["socket closed"], done: [0] });
    await sleep(0);
    expect(upstream.seen.cancelled).toBe("socket closed");
    await expect(response.text()).rejects.toBe("socket closed");
  });

  it("not at all: an answer sent in full is done, and nobody is told it was gone", async () => {
    const upstream = source();
    const agent = new AbortController();
    const { response, ends } = watched(upstream.body, "text/event-stream", agent.signal);
    const event = "event: message\ndata: {}\n\n";
    upstream.write(event);
    upstream.close();
    await response.text();
    agent.abort();
    expect(ends).toEqual({ gone: [], done: [event.length] });
  });
});

describe("an answer that takes long", () => {
  const json = (value: unknown) => Response.json(value);

  it("is itself when it comes within STREAM_AFTER_MS", async () => {
    const answer = await streamWhenSlow(Promise.resolve(json({ id: 1 })));
    expect(answer.headers.get("content-type")).toBe("application/json");
  });

  it("is an SSE stream after that, carrying its messages as events", async () => {
    const later = sleep(STREAM_AFTER_MS + 200).then(() => json([{ id: 1 }, { id: 2 }]));
    const began = Date.now();
    const answer = await streamWhenSlow(later);
    expect(Date.now() - began).toBeLessThan(STREAM_AFTER_MS + 150);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("text/event-stream");
    expect(await answer.text()).toBe(
      'event: message\ndata: {"id":1}\n\nevent: message\ndata: {"id":2}\n\n',
    );
  });

  it("cancelled before it came: the answer, once there, is cancelled too", async () => {
    const upstream = source();
    const later = sleep(STREAM_AFTER_MS + 100).then(
      () => new Response(upstream.body, { headers: { "content-type": "text/event-stream" } }),
    );
    const answer = await streamWhenSlow(later);
    await answer.body?.cancel("left");
    await later;
    await sleep(0);
    expect(upstream.seen.cancelled).toBe("left");
  });
});
