/**
 * The HTTP edges of an agent's exchange: its request body read within a limit, and its answer
 * watched to the end (so the audit record knows when the answer was sent in full, and the call
 * is cancelled when the agent goes away before).
 */
import { log } from "../core/log.ts";
import { fail } from "../errors.ts";

/** The largest request body the gateway reads (the SDK's own default). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * How often the gateway writes an SSE comment into an answer stream that has been silent: the
 * only way workerd (under `wrangler dev`, and workerd itself) notices that the agent closed its
 * connection is a write that fails. The agent's SSE parser ignores comments (WHATWG HTML,
 * "server-sent events", lines that start with a colon).
 */
export const HEARTBEAT_MS = 250;

/**
 * How long an answer may be pending before it becomes an SSE stream: a call still running after
 * this has an open stream that heartbeats keep testing, so that an agent that leaves is noticed.
 */
export const STREAM_AFTER_MS = 500;

/** The headers of an SSE answer, as the SDK sends them. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

const encoder = new TextEncoder();

/** One JSON-RPC message as the SSE event the gateway sends an agent (as the SDK frames it). */
function sseText(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/** `sseText`, encoded. */
export function sseMessage(message: unknown): Uint8Array {
  return encoder.encode(sseText(message));
}

const HEARTBEAT = encoder.encode(": keepalive\n\n");
const BEAT = Symbol("beat");

function isEventStream(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").includes("text/event-stream");
}

/** What the watcher of an answer is told, and whom it tells. */
export interface Watch {
  /** Aborted once the agent is known to be gone, by the runtime or by the gateway itself. */
  signal: AbortSignal;
  /** The agent went away before its answer ended: its stream was cancelled. Called at most once. */
  gone: (reason: unknown) => void;
  /** The answer is over: sent in full, failed, or abandoned. Called once, with the bytes sent. */
  done: (bytes: number) => void;
}

/**
 * Watches an answer to its end: counts the bytes as they pass, calls `done` once when the stream
 * finishes, fails, or the agent goes away, and `gone` when the agent went away first. An SSE
 * answer that has been silent for HEARTBEAT_MS between two events gets a comment, so that a closed
 * connection shows (the write fails and the runtime cancels the stream). SSE answers can last as
 * long as a tool runs, so "the request is done" means this, not "the handler returned".
 *
 * `done` comes before the answer's last bytes reach the runtime, so what it does synchronously
 * (the audit log line) happens before the agent can have its answer: each chunk is held until the
 * next read says whether the answer ends with it. A JSON body's chunk waits for that read; an SSE
 * event waits at most for the next macrotask, so that progress is not held back. Every answer the
 * gateway frames itself (the hot path's, the SDK server's, a slow answer's stream, a door's)
 * closes in the same turn as it writes its last event, so its end is always seen first.
 */
export function watchAnswer(response: Response, watch: Watch): Response {
  if (!response.body) {
    watch.done(0);
    return response;
  }
  // A body of known length is already whole (buffered answers): nothing to watch.
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isSafeInteger(length)) {
    watch.done(length);
    return response;
  }
  const reader = response.body.getReader();
  const beating = isEventStream(response.headers);
  let bytes = 0;
  /** The last bytes sent, to tell when an event has ended and a comment may go between. */
  let tail: number[] = [];
  let finished = false;
  let pending: ReturnType<typeof reader.read> | undefined;
  let forget = () => {};
  const finish = () => {
    if (finished) return;
    finished = true;
    forget();
    watch.done(bytes);
  };
  const leave = (reason: unknown) => {
    if (finished) return;
    watch.gone(reason);
    finish();
    reader.cancel(reason).catch(() => {});
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // The runtime's word that the agent left (request.signal) ends the answer even where
      // nobody reads it any more.
      const onAbort = () => {
        if (finished) return;
        leave(watch.signal.reason);
        controller.error(watch.signal.reason);
      };
      if (watch.signal.aborted) return onAbort();
      watch.signal.addEventListener("abort", onAbort, { once: true });
      forget = () => watch.signal.removeEventListener("abort", onAbort);
    },
    async pull(controller) {
      try {
        pending ??= reader.read();
        const next = beating && betweenEvents(bytes, tail) ? await beatOr(pending) : await pending;
        if (next === BEAT) {
          bytes += HEARTBEAT.byteLength;
          tail = [...HEARTBEAT.subarray(-4)];
          controller.enqueue(HEARTBEAT);
          return;
        }
        pending = undefined;
        if (next.done) {
          finish();
          controller.close();
          return;
        }
        bytes += next.value.byteLength;
        tail = [...tail, ...next.value.subarray(-4)].slice(-4);
        // One read ahead: whether the answer ends with this chunk, before the chunk goes on.
        pending = reader.read();
        if (await endsWith(pending, beating)) {
          pending = undefined;
          finish();
          controller.enqueue(next.value);
          controller.close();
          return;
        }
        controller.enqueue(next.value);
      } catch (e) {
        if (!finished) controller.error(e);
        finish();
      }
    },
    cancel(reason) {
      leave(reason ?? new Error("The agent closed the stream"));
    },
  });
  return new Response(body, response);
}

/**
 * Whether `read` says the stream has ended: awaited for a JSON body, which nobody can use before it
 * is whole; for an SSE stream only until the next macrotask, after which the event goes on and the
 * stream's end, should it come, is seen by the next pull.
 */
async function endsWith(read: Promise<{ done: boolean }>, sse: boolean): Promise<boolean> {
  const ended = read.then(
    (next) => next.done,
    // The next pull awaits the same read and reports its failure.
    () => false,
  );
  if (!sse) return ended;
  const now = await settledNow(ended);
  if (now !== LATER) return now;
  const [later, stop] = after(0, false);
  try {
    return await Promise.race([ended, later]);
  } finally {
    stop();
  }
}

/** Whether what has been sent ends between two SSE events (or nothing has been sent yet). */
function betweenEvents(bytes: number, tail: readonly number[]): boolean {
  if (bytes === 0) return true;
  const end = tail.slice(-2).join();
  return end === "10,10" || end === "13,13" || tail.join() === "13,10,13,10";
}

/** `read`'s result, or BEAT if it takes longer than HEARTBEAT_MS. */
async function beatOr<T>(read: Promise<T>): Promise<T | typeof BEAT> {
  const now = await settledNow(read);
  if (now !== LATER) return now;
  const [beat, stop] = after(HEARTBEAT_MS, BEAT);
  try {
    return await Promise.race([read, beat]);
  } finally {
    stop();
  }
}

const LATER = Symbol("later");
/** Microtask turns `settledNow` waits: enough for a read of a stream that has already closed. */
const TURNS = 8;

/**
 * `promise`'s outcome if it settles before this task's microtasks run out (within TURNS turns),
 * else LATER. A race against a timer gives the same answer for such a promise, since no timer
 * fires before the microtasks have run; asking first spares the timer, and timers are a cost of
 * every call (most answers are whole, or closed, by the time they are looked at).
 */
function settledNow<T>(promise: Promise<T>): Promise<T | typeof LATER> {
  let turns: Promise<typeof LATER> = Promise.resolve(LATER);
  for (let turn = 1; turn < TURNS; turn++) turns = turns.then(() => LATER);
  return Promise.race([promise, turns]);
}

/** A promise of `value` in `ms`, and what stops the timer. */
function after<T>(ms: number, value: T): [Promise<T>, () => void] {
  let stop = () => {};
  const promise = new Promise<T>((resolve) => {
    const timer = setTimeout(() => resolve(value), ms);
    stop = () => clearTimeout(timer);
  });
  return [promise, stop];
}

/**
 * The answer `pending` will be: itself if it comes within STREAM_AFTER_MS, else an SSE stream,
 * opened then, that carries the answer's messages as events once it comes (a JSON answer's
 * message, or each of a batch's; an SSE answer's bytes as they are). An answer that is a JSON
 * body until the end has nothing to write while the call runs, so nobody would notice an agent
 * that leaves; MCP lets a server answer any request with a stream instead (Streamable HTTP,
 * "Sending Messages to the Server"), as it does once a call reports progress.
 */
export async function streamWhenSlow(pending: Promise<Response>): Promise<Response> {
  const now = await settledNow(pending);
  if (now !== LATER) return now;
  const [slow, stop] = after(STREAM_AFTER_MS, undefined);
  const first = await Promise.race([pending, slow]).finally(stop);
  if (first !== undefined) return first;

  let inner: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let cancelled: { reason: unknown } | undefined;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!inner) {
        const events = await eventsOf(await pending);
        inner = events.getReader();
        if (cancelled) {
          await inner.cancel(cancelled.reason).catch(() => {});
          return;
        }
      }
      const { done, value } = await inner.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      cancelled = { reason };
      if (inner) await inner.cancel(reason).catch(() => {});
      else pending.then((answer) => answer.body?.cancel(reason)).catch(() => {});
    },
  });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}

/** An answer's messages as SSE events, for an agent that has been given a stream already. */
async function eventsOf(answer: Response): Promise<ReadableStream<Uint8Array>> {
  if (answer.body && isEventStream(answer.headers)) return answer.body;
  const text = await answer.text();
  let messages: unknown[] = [];
  try {
    const parsed: unknown = text === "" ? [] : JSON.parse(text);
    messages = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    log("error", "answer_not_json", { status: answer.status });
  }
  // The stream began as 200: a later status cannot be sent any more, only what it said.
  if (answer.status >= 400) log("warn", "answer_status_dropped", { status: answer.status });
  const frames = encoder.encode(messages.map(sseText).join(""));
  // Written and closed at once, so the stream's end follows its events in the same turn.
  return new ReadableStream({
    start(controller) {
      if (frames.byteLength > 0) controller.enqueue(frames);
      controller.close();
    },
  });
}

/** The request's body as text, refusing one over `MAX_BODY_BYTES` without reading it all. */
export async function readBody(request: Request): Promise<string> {
  const tooLarge = { kind: "body_too_large", limit: MAX_BODY_BYTES } as const;
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) fail(tooLarge);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      fail(tooLarge);
    }
    chunks.push(value);
  }
  const decoder = new TextDecoder();
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
}

/** `response` with one more header, copying it when its headers are immutable. */
export function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}

/**
 * The request as the MCP layer is handed it: the agent's method, URL and headers, under `signal`
 * (the agent's exchange, which the gateway can end itself), without the body the pipeline has
 * read already (it hands over the parsed body instead).
 */
export function underSignal(request: Request, signal: AbortSignal, body?: string): Request {
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal,
    ...(body === undefined ? {} : { body }),
  });
}
