/**
 * Resumable streams for 2025-era agents, where the backend does not offer them itself: the door
 * numbers the events of such a stream (`sse.ts`, `Numbering`) and keeps them in that stream's
 * `StreamLog` (`state/stream-log.ts`); a `GET` with one of those ids as `Last-Event-ID`, on any
 * isolate, replays what came after it and follows the log until the backend's stream has ended.
 *
 * `/mcp` numbers a 2025 agent's own streams the same way (its call streams, with a session or
 * without, and a session's GET stream, `pipeline.ts`), with one difference: the work behind a dropped stream is the gateway's, so it
 * is kept only for an agent that comes back. Once the agent has left, the stream's owner asks
 * the log every `RESUME_GRACE_MS` whether the agent is reading it (`StreamLog.attended`), and
 * abandons the work (a call is cancelled upstream, as on any disconnect) the first time it is not.
 */
import type { RequestContext } from "../context.ts";
import { READ_WAIT_MS } from "../state/stream-log.ts";
import type { Numbering } from "./sse.ts";
import { sseEvent } from "./sse.ts";

/** What the agent is told to wait before it reconnects. */
export const RETRY_MS = 1_000;

/**
 * How long a dropped `/mcp` stream waits for its agent to come back with `Last-Event-ID`: one
 * `RETRY_MS` (the agent's wait before it reconnects), plus a margin for the reconnection itself
 * (a new connection, the token checked, the log found), many times what that takes on one
 * machine and well within what a cross-region reconnect does.
 */
export const RESUME_GRACE_MS = RETRY_MS + 1_500;

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

/**
 * How the gateway numbers and keeps the events of one stream, for `ctx`'s agent. With `abandon`,
 * the work behind the stream is kept only while the agent comes back for it: once the agent has
 * left, `abandon` is called the first time the log has not been read for `RESUME_GRACE_MS`.
 * Without it (a door) the backend is read to the end of its stream whether or not the agent
 * returns.
 */
export function numberingFor(ctx: RequestContext, abandon?: () => void): Numbering {
  const key = streamKey();
  let opened: Promise<void> | undefined;
  let closed = false;
  const watch = async () => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RESUME_GRACE_MS));
      if (closed) return;
      // A log that cannot be asked is unattended: fail closed, the work stops.
      const attended = await logOf(ctx, key)
        .attended(RESUME_GRACE_MS)
        .catch(() => false);
      if (closed) return;
      if (!attended) return abandon?.();
    }
  };
  return {
    retryMs: RETRY_MS,
    idFor: (seq) => `${key}.${seq}`,
    defer: ctx.defer,
    log: async (events, ended) => {
      if (ended) closed = true;
      const log = logOf(ctx, key);
      opened ??= log.open(ctx.agent);
      await opened;
      await log.append(events, ended);
    },
    ...(abandon ? { left: () => ctx.defer(watch()) } : {}),
  };
}

/** The stream and position a `Last-Event-ID` names, when it is one the gateway numbered. */
export function parseLoggedId(id: string): { key: string; seq: number } | undefined {
  const match = LOGGED_ID.exec(id);
  return match ? { key: match[1] ?? "", seq: Number(match[2]) } : undefined;
}

/**
 * A `GET /mcp` with `Last-Event-ID`, with a session or without: the agent's stream it names,
 * resumed. An id the gateway
 * never numbers is 400 (`/mcp` has no backend to pass it to, as a door does); a well-formed one
 * that names no stream of this agent's is `resumeLogged`'s 404.
 */
export function resumeGateway(ctx: RequestContext, lastEventId: string): Promise<Response> {
  const from = parseLoggedId(lastEventId);
  if (!from) {
    return Promise.resolve(
      Response.json(
        {
          jsonrpc: "2.0",
          id: null,
          error: { code: -32600, message: "Last-Event-ID is not an event id of this gateway's" },
        },
        { status: 400 },
      ),
    );
  }
  return resumeLogged(ctx, from);
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
      if (read.closed && read.events.length === 0) {
        if (out !== "") controller.enqueue(encoder.encode(out));
        controller.close();
        return;
      }
      // Every pull writes something, or the stream would wait for a read nobody makes: a read that
      // waited in vain writes a comment, which also tests that the agent is still there (a write
      // to a closed connection fails, and the stream is cancelled).
      controller.enqueue(encoder.encode(out === "" ? ": waiting\n\n" : out));
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}
