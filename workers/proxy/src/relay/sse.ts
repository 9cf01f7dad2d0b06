/**
 * A backend's SSE stream, passed on to the agent event by event.
 *
 * The stream is read with eventsource-parser and written back out with the same event ids and the
 * same `retry`, so an agent resumes through the gateway exactly as it would with the backend
 * (`Last-Event-ID` travels upstream unchanged). Each event's data, when it is a JSON-RPC message,
 * goes through `onMessage`, which may replace it; an event it leaves alone is written as it came.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

export interface SseRelay {
  /**
   * Called for each JSON-RPC message, with its event id if it has one (then the backend can replay
   * it); returns its replacement, or undefined to keep it.
   */
  onMessage: (message: unknown, eventId: string | undefined) => Promise<unknown> | unknown;
  /**
   * How long the backend may stay silent before `onSilence` decides (undefined: no limit). Asked
   * after each event, so a stream with nothing left to answer can wait as long as it likes.
   */
  silenceMs: () => number | undefined;
  /** The backend was silent too long: returns the events that end the stream. */
  onSilence: () => Promise<string>;
  /** The stream ended (the backend closed it, it failed, or the agent went away). */
  onEnd: (how: "closed" | "failed" | "cancelled" | "silent") => void;
}

const encoder = new TextEncoder();

/** One SSE event, written out. */
export function sseEvent(data: string, id?: string, event?: string): string {
  let out = "";
  if (event !== undefined) out += `event: ${event}\n`;
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** The agent's copy of `upstream`, with each message passed through `relay.onMessage`. */
export function relaySse(
  upstream: ReadableStream<Uint8Array>,
  relay: SseRelay,
  first = "",
): ReadableStream<Uint8Array> {
  const reader = upstream.pipeThrough(new TextDecoderStream()).getReader();
  const pending: (EventSourceMessage | { retry: number })[] = [];
  const parser = createParser({
    onEvent: (event) => pending.push(event),
    onRetry: (retry) => pending.push({ retry }),
  });
  let ended = false;
  const end = (how: "closed" | "failed" | "cancelled" | "silent") => {
    if (ended) return;
    ended = true;
    relay.onEnd(how);
  };

  const write = async (item: EventSourceMessage | { retry: number }): Promise<string> => {
    if ("retry" in item) return `retry: ${item.retry}\n\n`;
    let message: unknown;
    try {
      message = item.data === "" ? undefined : JSON.parse(item.data);
    } catch {
      message = undefined;
    }
    if (message === undefined) return sseEvent(item.data, item.id, item.event);
    const replaced = await relay.onMessage(message, item.id);
    const data = replaced === undefined ? item.data : JSON.stringify(replaced);
    return sseEvent(data, item.id, item.event);
  };

  /** The next chunk, or "silent" once the backend has said nothing for too long. */
  const next = async (): Promise<ReadableStreamReadResult<string> | "silent"> => {
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

  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (first) controller.enqueue(encoder.encode(first));
    },
    async pull(controller) {
      try {
        for (;;) {
          const read = await next();
          if (read === "silent") {
            controller.enqueue(encoder.encode(await relay.onSilence()));
            controller.close();
            end("silent");
            await reader.cancel().catch(() => {});
            return;
          }
          if (read.done) {
            controller.close();
            end("closed");
            return;
          }
          parser.feed(read.value);
          if (pending.length === 0) continue;
          let out = "";
          for (const item of pending.splice(0)) out += await write(item);
          controller.enqueue(encoder.encode(out));
          return;
        }
      } catch (e) {
        end("failed");
        controller.error(e);
      }
    },
    async cancel(reason) {
      end("cancelled");
      await reader.cancel(reason).catch(() => {});
    },
  });
}
