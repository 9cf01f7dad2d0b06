/**
 * Resumable streams for 2025-era agents, where the backend does not offer them itself: the door
 * numbers the events of such a stream (`sse.ts`, `Numbering`) and keeps them in that stream's
 * `StreamLog` (`state/stream-log.ts`); a `GET` with one of those ids as `Last-Event-ID`, on any
 * isolate, replays what came after it and follows the log until the backend's stream has ended.
 */
import type { RequestContext } from "../context.ts";
import { READ_WAIT_MS } from "../state/stream-log.ts";
import type { Numbering } from "./sse.ts";
import { sseEvent } from "./sse.ts";

/** What the agent is told to wait before it reconnects. */
export const RETRY_MS = 1_000;

const LOGGED_ID = /^([0-9a-f]{32})\.(\d{1,9})$/;

/** A fresh stream key: 128 random bits, so nobody guesses another agent's stream. */
function streamKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function logOf(ctx: RequestContext, key: string) {
  const namespace = ctx.bindings.STREAM_LOG;
  return namespace.get(namespace.idFromName(key));
}

/** How the door numbers and keeps the events of one stream, for `ctx`'s agent. */
export function numberingFor(ctx: RequestContext): Numbering {
  const key = streamKey();
  let opened: Promise<void> | undefined;
  return {
    retryMs: RETRY_MS,
    idFor: (seq) => `${key}.${seq}`,
    defer: ctx.defer,
    log: async (events, closed) => {
      const log = logOf(ctx, key);
      opened ??= log.open(ctx.agent);
      await opened;
      await log.append(events, closed);
    },
  };
}

/** The stream and position a `Last-Event-ID` names, when it is one the gateway numbered. */
export function parseLoggedId(id: string): { key: string; seq: number } | undefined {
  const match = LOGGED_ID.exec(id);
  return match ? { key: match[1] ?? "", seq: Number(match[2]) } : undefined;
}

/**
 * The agent's stream again, from just after `from`: what was logged, then what comes. A stream
 * that is not this agent's, or no longer kept, is 404, as a server answers a stream it cannot
 * resume.
 */
export async function resumeLogged(
  ctx: RequestContext,
  from: { key: string; seq: number },
): Promise<Response> {
  const log = logOf(ctx, from.key);
  const encoder = new TextEncoder();
  let after = from.seq;
  let read = await log.read(ctx.agent, after, 0);
  if (!read.found) {
    return Response.json(
      { jsonrpc: "2.0", id: null, error: { code: -32001, message: "No stream to resume" } },
      { status: 404 },
    );
  }
  let first = true;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!first) read = await log.read(ctx.agent, after, READ_WAIT_MS);
      let out = first ? `retry: ${RETRY_MS}\n\n` : "";
      first = false;
      for (const event of read.events) {
        out += sseEvent(event.data, `${from.key}.${event.seq}`);
        after = event.seq;
      }
      if (out !== "") controller.enqueue(encoder.encode(out));
      if (read.closed && read.events.length === 0) controller.close();
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}
