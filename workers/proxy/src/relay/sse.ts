/**
 * A backend's SSE stream, passed on to the agent event by event.
 *
 * The stream is read with eventsource-parser and written back out with the same event ids, the
 * same `retry` and its comments (heartbeats among them), so an agent resumes through the gateway
 * exactly as it would with the backend (`Last-Event-ID` travels upstream unchanged). Each event's
 * data, when it is a JSON-RPC message, goes through `onMessage`, which may replace it; an event it
 * leaves alone is written as it came.
 *
 * The SDK server's answers to a 2025 agent on `/mcp` pass through here too, to be numbered
 * (`pipeline.ts`, `keptForResume`).
 *
 * A backend that does not number its events can have the gateway number them (`numbering`): each
 * gets an id, is handed to the numbering's log, and the backend is read to the end even after the
 * agent has gone, so the agent can come back for the rest (`state/stream-log.ts`). A stream the
 * gateway writes itself (the hot path's) numbers its events as it writes them, with the same
 * `NumberedEvents`, and is never parsed at all.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** How the gateway numbers the events of a stream the backend did not number. */
export interface Numbering {
  /** The id of the event numbered `seq`. */
  idFor: (seq: number) => string;
  /** Keeps numbered events (in order); `closed` once the stream has ended. */
  log: (events: { seq: number; data: string }[], closed: boolean) => Promise<void>;
  /** Keeps the backend being read after the agent left (`ctx.waitUntil`). */
  defer: (work: Promise<unknown>) => void;
  /** The reconnection delay the agent is told, in milliseconds. */
  retryMs: number;
  /** The agent left while the stream was still numbered and kept: the rest goes to the log. */
  left?: () => void;
}

/**
 * The events of one stream the gateway numbers, as it writes them out. While the agent reads they
 * wait in memory: a stream it reads to the end never needs its log. Once the agent has gone
 * (`leave`; it waits `retryMs` before it comes back), or once they grow past `HELD_BYTES`, they go
 * to the numbering's log, in order, each `flush` after the one before it.
 */
export class NumberedEvents {
  readonly numbering: Numbering;
  private seq = 0;
  private unlogged: { seq: number; data: string }[] = [];
  private unloggedBytes = 0;
  private logging = false;
  /** Whether the stream has ended, and whether the log has been told so. */
  private ended = false;
  private logClosed = false;
  private logged: Promise<void> = Promise.resolve();

  constructor(numbering: Numbering) {
    this.numbering = numbering;
  }

  /** Whether an event has been written: only then has the agent an id to come back with. */
  get started(): boolean {
    return this.seq > 0;
  }

  /** One event, numbered and held; the first carries the reconnection delay before it. */
  event(data: string, event?: string): string {
    this.seq += 1;
    this.unlogged.push({ seq: this.seq, data });
    this.unloggedBytes += data.length;
    if (this.unloggedBytes > HELD_BYTES) this.logging = true;
    const prefix = this.seq === 1 ? `retry: ${this.numbering.retryMs}\n\n` : "";
    return prefix + sseEvent(data, this.numbering.idFor(this.seq), event);
  }

  /**
   * Sends what is held to the log, if events go there by now; `closed` once the stream has
   * ended (remembered, so that an agent leaving after the end finds the log closed). Undefined
   * when there is nothing to send, so that a stream read to the end costs no promise per event.
   */
  flush(closed: boolean): Promise<void> | undefined {
    if (closed) this.ended = true;
    if (!this.logging || this.logClosed || (this.unlogged.length === 0 && !this.ended)) {
      return undefined;
    }
    const events = this.unlogged;
    const ended = this.ended;
    this.unlogged = [];
    this.unloggedBytes = 0;
    if (ended) this.logClosed = true;
    const sent = this.logged.then(() => this.numbering.log(events, ended));
    this.logged = sent.catch(() => {});
    return sent;
  }

  /** The agent left: what it was sent goes to the log, and so does everything from now on. */
  leave(): Promise<void> {
    this.logging = true;
    this.numbering.left?.();
    return this.flush(this.ended) ?? this.logged;
  }
}

export interface SseRelay {
  /**
   * Called for each JSON-RPC message, with its event id if the backend gave one; returns its
   * replacement, or undefined to keep it.
   */
  onMessage: (message: unknown, eventId: string | undefined) => Promise<unknown> | unknown;
  /**
   * How long the backend may stay silent before `onSilence` decides (undefined: no limit). Asked
   * before each read, so a stream with nothing left to answer can wait as long as it likes.
   */
  silenceMs: () => number | undefined;
  /** The backend was silent too long: the messages that end the stream. */
  onSilence: () => Promise<unknown[]>;
  /**
   * Whether every request the stream answers has had its answer. The stream then ends with the
   * event that carried the last one, as the backend should end it (2025-11-25 transports, "Sending
   * Messages to the Server": after the response the server SHOULD close the stream): in the same
   * turn, so that the agent's answer is over when its last answer goes on, whenever the backend
   * itself closes. Unset: the stream lasts as long as the backend's.
   */
  answered?: () => boolean;
  /** The stream ended (the backend closed it, it failed, or the agent went away). */
  onEnd: (how: "closed" | "failed" | "cancelled" | "silent") => void;
  numbering?: Numbering;
}

const encoder = new TextEncoder();

/** How much of a numbered stream waits in memory before it goes to the log anyway. */
const HELD_BYTES = 1024 * 1024;

/** One SSE event, written out. */
export function sseEvent(data: string, id?: string, event?: string): string {
  let out = "";
  if (event !== undefined) out += `event: ${event}\n`;
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * The agent's copy of `upstream`, with each message passed through `relay.onMessage`. `first`
 * are messages the gateway answered itself, sent before the backend's.
 */
export function relaySse(
  upstream: ReadableStream<Uint8Array>,
  relay: SseRelay,
  first: unknown[] = [],
): ReadableStream<Uint8Array> {
  const reader = upstream.pipeThrough(new TextDecoderStream()).getReader();
  const pending: (EventSourceMessage | { retry: number } | { comment: string })[] = [];
  const parser = createParser({
    onEvent: (event) => pending.push(event),
    onRetry: (retry) => pending.push({ retry }),
    // Comments go on: they are what tests the agent's connection while a stream is silent
    // (`agent-side/http.ts`, HEARTBEAT_MS).
    onComment: (comment) => pending.push({ comment }),
  });
  const numbering = relay.numbering;
  const numberedEvents = numbering && new NumberedEvents(numbering);
  /** Whether the gateway numbers this stream: decided by its first event. */
  let numbered: boolean | undefined;
  let ended = false;
  const end = (how: "closed" | "failed" | "cancelled" | "silent") => {
    if (ended) return;
    ended = true;
    relay.onEnd(how);
  };

  /** Writes one event, numbering it when the gateway numbers this stream. */
  const emit = (data: string, id: string | undefined, event?: string): string => {
    if (numbered === undefined) numbered = numberedEvents !== undefined && id === undefined;
    if (!numbered || !numberedEvents) return sseEvent(data, id, event);
    return numberedEvents.event(data, event);
  };

  const write = async (
    item: EventSourceMessage | { retry: number } | { comment: string },
  ): Promise<string> => {
    if ("retry" in item) return `retry: ${item.retry}\n\n`;
    if ("comment" in item) return `: ${item.comment}\n\n`;
    let message: unknown;
    try {
      message = item.data === "" ? undefined : JSON.parse(item.data);
    } catch {
      message = undefined;
    }
    // A priming event (an id and no data) says only where to resume: numbered ones need none.
    if (message === undefined) {
      return item.id === undefined && numbering ? "" : sseEvent(item.data, item.id, item.event);
    }
    const replaced = await relay.onMessage(message, item.id);
    const data = replaced === undefined ? item.data : JSON.stringify(replaced);
    return emit(data, item.id, item.event);
  };

  const flush = async (closed: boolean): Promise<void> => {
    if (numbered && numberedEvents) await numberedEvents.flush(closed);
  };

  /** The next chunk, or "silent" once the backend has said nothing for too long. */
  // Typed from the reader: the Node unit tests compile this module too, without the Workers types.
  const next = async (): Promise<Awaited<ReturnType<typeof reader.read>> | "silent"> => {
    const limit = relay.silenceMs();
    if (limit === undefined) return reader.read();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silence = new Promise<"silent">((resolve) => {
      timer = setTimeout(() => resolve("silent"), limit);
    });
    try {
      return await Promise.race([reader.read(), silence]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  };

  /** Reads until there is something to send; null once the stream is over. */
  const step = async (): Promise<string | null> => {
    for (;;) {
      const read = await next();
      if (read === "silent") {
        const out = (await relay.onSilence())
          .map((m) => emit(JSON.stringify(m), undefined))
          .join("");
        end("silent");
        await flush(true);
        await reader.cancel().catch(() => {});
        return out === "" ? null : out;
      }
      if (read.done) {
        end("closed");
        await flush(true);
        return null;
      }
      parser.feed(read.value);
      if (pending.length === 0) continue;
      let out = "";
      for (const item of pending.splice(0)) out += await write(item);
      if (out !== "" && relay.answered?.()) {
        end("closed");
        await flush(true);
        reader.cancel().catch(() => {});
        return out;
      }
      await flush(false);
      if (out !== "") return out;
    }
  };

  let finished = false;
  /** The agent left a numbered stream: what is read from now on is the log's. */
  let left = false;
  /** The read under way for the agent, which the log's reading must wait for (one reader, in order). */
  let reading: Promise<unknown> | undefined;
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const out = first.map((m) => emit(JSON.stringify(m), undefined)).join("");
      if (out !== "") controller.enqueue(encoder.encode(out));
      await flush(false);
    },
    async pull(controller) {
      try {
        const stepping = step();
        reading = stepping;
        const out = await stepping;
        // Its events are numbered and held already: they go to the log with the rest.
        if (left) return;
        if (out !== null) controller.enqueue(encoder.encode(out));
        if (ended) {
          finished = true;
          controller.close();
        }
      } catch (e) {
        if (left) return;
        end("failed");
        finished = true;
        controller.error(e);
      }
    },
    async cancel(reason) {
      if (finished) return;
      if (numbered && numberedEvents) {
        // The agent may come back with Last-Event-ID: log what it may have missed, and read the
        // rest into the log meanwhile.
        left = true;
        // What the agent was sent goes to the log before the cancellation is over, so that its
        // log is there however soon the agent comes back.
        const held = numberedEvents.leave();
        numberedEvents.numbering.defer(
          (async () => {
            try {
              await held;
              await reading?.catch(() => {});
              await flush(ended);
              while (!ended) await step();
            } catch {
              await flush(true).catch(() => {});
            }
          })(),
        );
        await held.catch(() => {});
        return;
      }
      end("cancelled");
      await reader.cancel(reason).catch(() => {});
    },
  });
}
