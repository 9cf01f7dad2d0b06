/**
 * Stream logs: the events of an SSE answer the gateway numbered, kept where any isolate finds
 * them, so a 2025-era agent whose connection dropped resumes with `GET` and `Last-Event-ID`.
 *
 * A backend that numbers its own events keeps them itself, and the door passes its ids through.
 * One that does not (a stateless server, like mcp1–mcp3) would lose an answer whose stream
 * dropped; for those, the door numbers the events as `<stream>.<seq>`, appends each to the
 * stream's own `StreamLog` Durable Object, and keeps reading the backend after the agent has
 * gone, so the answer is there when the agent comes back. The stream's key is random and the log
 * belongs to one agent: another agent's `Last-Event-ID` finds nothing.
 *
 * A log lives for `LOG_TTL_MS` after its last event, then its alarm deletes it.
 *
 * The log also says whether its agent is reading it (`attended`): on `/mcp` the call behind a
 * dropped stream keeps running only while the agent comes back for it (`relay/resume.ts`). That
 * is memory, not storage: a log nobody has read for a while may be evicted, and then it is
 * rightly unattended.
 */
import { DurableObject } from "cloudflare:workers";

/** How long a stream's events stay resumable after its last event. */
export const LOG_TTL_MS = 5 * 60_000;
/** How long one read waits for an event that has not arrived yet. */
export const READ_WAIT_MS = 25_000;

export interface LoggedEvent {
  seq: number;
  data: string;
}

export interface ReadResult {
  /** False when the log is not this agent's, or is gone. */
  found: boolean;
  events: LoggedEvent[];
  /** The backend's stream has ended: after these events there will be no more. */
  closed: boolean;
}

export class StreamLog extends DurableObject {
  /** Readers waiting for the next event. */
  private readonly waiting = new Set<() => void>();
  /** Reads of this agent's in progress, and when the last one ended (ms since the epoch). */
  private readers = 0;
  private lastRead: number | undefined;

  private get sql() {
    return this.ctx.storage.sql;
  }

  private ensure(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, data TEXT NOT NULL);" +
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    );
  }

  private meta(key: string): string | undefined {
    const row = this.sql
      .exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key)
      .toArray();
    return row[0]?.value;
  }

  private wake(): void {
    for (const resolve of this.waiting) resolve();
    this.waiting.clear();
  }

  /** Starts the log for `agent`. */
  async open(agent: string): Promise<void> {
    this.ensure();
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('agent', ?)", agent);
    await this.ctx.storage.setAlarm(Date.now() + LOG_TTL_MS);
  }

  /** Appends events (in order) and, when `closed`, marks the stream ended. */
  async append(events: LoggedEvent[], closed: boolean): Promise<void> {
    this.ensure();
    for (const event of events) {
      this.sql.exec(
        "INSERT OR IGNORE INTO events (seq, data) VALUES (?, ?)",
        event.seq,
        event.data,
      );
    }
    if (closed) this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('closed', '1')");
    await this.ctx.storage.setAlarm(Date.now() + LOG_TTL_MS);
    this.wake();
  }

  /** The events after `after`, waiting up to `waitMs` for one when there are none yet. */
  async read(agent: string, after: number, waitMs: number): Promise<ReadResult> {
    this.ensure();
    if (this.meta("agent") !== agent) return { found: false, events: [], closed: true };
    this.readers += 1;
    try {
      return await this.readOwn(after, waitMs);
    } finally {
      this.readers -= 1;
      this.lastRead = Date.now();
    }
  }

  /** Whether the agent is reading the log, or ended a read within the last `withinMs`. */
  async attended(withinMs: number): Promise<boolean> {
    if (this.readers > 0) return true;
    return this.lastRead !== undefined && Date.now() - this.lastRead <= withinMs;
  }

  private async readOwn(after: number, waitMs: number): Promise<ReadResult> {
    const select = () =>
      this.sql
        .exec<{ seq: number; data: string }>(
          "SELECT seq, data FROM events WHERE seq > ? ORDER BY seq",
          after,
        )
        .toArray()
        .map(({ seq, data }) => ({ seq, data }));
    let events = select();
    if (events.length === 0 && this.meta("closed") === undefined && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.waiting.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      events = select();
    }
    return { found: true, events, closed: this.meta("closed") !== undefined };
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
