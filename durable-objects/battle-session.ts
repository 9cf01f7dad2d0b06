/**
 * BattleSession: one Durable Object per battle (`env.BATTLE.idFromName(battle_id)`), holding the
 * battle's append-only event log and its status in SQLite. The storage layout is written down in
 * ./README.md.
 *
 * The Worker calls it over typed RPC. Refusals a caller can act on (bad input, battle already
 * ended) come back as `{ ok: false, error }` values, never as exceptions, so the tool layer can
 * turn them into `isError` tool results without guessing at error messages.
 *
 * Besides the log it does two things for inspection:
 * - it pushes its summary to the BattleIndex from its alarm, so battles can be listed;
 * - it serves the live feed: viewers' WebSockets are accepted with the Hibernation API, so an idle
 *   battle with open viewers costs nothing and may be evicted; every new event is sent to them.
 */
import { DurableObject } from "cloudflare:workers";
import type { WebhookVars } from "../common/battle-webhook.ts";
import { decideAccess } from "./battle-access.ts";
import { BattleDelivery } from "./battle-delivery.ts";
import { INDEX_NAME } from "./battle-index.ts";
import {
  type EndInput,
  type ProgressInput,
  validateEndInput,
  validateProgressInput,
  type Winner,
} from "./battle-input.ts";
import {
  type Battle,
  type BattleEvent,
  type BattleState,
  type BattleStatus,
  type BattleSummary,
  CLOSE_BATTLE_ENDED,
  CLOSE_TOKEN_EXPIRED,
  type DeliveryStatus,
  type EventKind,
  type JsonObject,
  type LiveMessage,
  SUMMARY_NAMES_MAX,
} from "./battle-types.ts";

export type {
  Battle,
  BattleEvent,
  BattleState,
  BattleStatus,
  BattleSummary,
  EventKind,
  JsonObject,
} from "./battle-types.ts";

export type BattleErrorCode =
  | "invalid_input"
  | "battle_ended"
  | "battle_id_mismatch"
  | "not_permitted"
  | "report_id_reused";

export interface BattleError {
  code: BattleErrorCode;
  message: string;
}

/** The outcome of appending an event: the stored event and the battle after it, or why not. */
export type AppendResult =
  | {
      ok: true;
      event: BattleEvent;
      battle: Battle;
      /** Set when a report_id already in the log answered with its stored event. */
      retried?: true;
    }
  | { ok: false; error: BattleError };

/** Most events one getState call returns, so a long battle never exceeds the RPC message size. */
export const EVENTS_PAGE_SIZE = 100;

/** Most viewers one battle serves at once; each event is sent to every one of them. */
export const MAX_VIEWERS = 256;

/**
 * The header on the Worker's live-feed request that says when the viewer's inspection token
 * expires (seconds since the epoch). Only the mcp1 Worker can reach this object, and it sets the
 * header after verifying the token.
 */
export const LIVE_EXPIRES_HEADER = "mcpcp-inspector-expires";

// Column types as SQLite hands them back; the CHECK constraints guarantee the narrower unions.
type EventRow = {
  seq: number;
  at: string;
  kind: string;
  message: string;
  reported_by: string;
  agent: string | null;
  detail: string | null;
  markdown_content: string | null;
  report_id: string | null;
};
type BattleRow = {
  id: string;
  status: string;
  winner: string | null;
  created_at: string;
  updated_at: string;
};

/** What a live socket remembers across hibernation. */
type LiveAttachment = { expiresAt: number };

/**
 * The storage layout, one step per schema version (`meta.schema_version` counts the steps run).
 * Each step runs once, in a transaction with the version bump. Step 1 is the layout this object
 * had before versioning, with `IF NOT EXISTS` so objects created back then take it as a no-op.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('progress', 'result')),
     message TEXT NOT NULL,
     reported_by TEXT NOT NULL,
     agent TEXT,
     detail TEXT CHECK (detail IS NULL OR json_valid(detail)),
     markdown_content TEXT
   );
   CREATE TABLE IF NOT EXISTS battle (
     one_row INTEGER PRIMARY KEY CHECK (one_row = 1),
     id TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('ongoing', 'ended')),
     winner TEXT CHECK (winner IN ('green', 'blue', 'red', 'draw')),
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     CHECK ((status = 'ended') = (winner IS NOT NULL))
   );`,
  // Who took part, for the index, kept as events arrive so a summary never scans the log.
  `CREATE TABLE participants (
     role TEXT NOT NULL CHECK (role IN ('agent', 'reporter')),
     name TEXT NOT NULL,
     PRIMARY KEY (role, name)
   );
   INSERT OR IGNORE INTO participants (role, name)
     SELECT 'agent', agent FROM events WHERE agent IS NOT NULL ORDER BY seq;
   INSERT OR IGNORE INTO participants (role, name)
     SELECT 'reporter', reported_by FROM events ORDER BY seq;`,
  // Ownership: the agent of the first event. A battle whose first event names no agent (stored
  // before mcp1 required the proxy's assertion) has no owner: only bound agents may write to it.
  // Retries: a caller's report_id, unique per battle, stored with its event.
  `ALTER TABLE battle ADD COLUMN owner TEXT;
   UPDATE battle SET owner = (SELECT agent FROM events ORDER BY seq LIMIT 1);
   ALTER TABLE events ADD COLUMN report_id TEXT;
   CREATE UNIQUE INDEX events_by_report_id ON events (report_id) WHERE report_id IS NOT NULL;`,
];

const EVENT_COLUMNS =
  "seq, at, kind, message, reported_by, agent, detail, markdown_content, report_id";
const BATTLE_COLUMNS = "id, status, winner, created_at, updated_at";

export class BattleSession extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Whether an index push is already scheduled; lost on eviction, which only costs a spare push. */
  private indexPushArmed = false;
  /** Delivery to the battle platform (battle-delivery.ts); idle when BATTLE_WEBHOOK_URL is unset. */
  private readonly delivery: BattleDelivery;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.delivery = new BattleDelivery(ctx.storage, env as Env & WebhookVars, {
      battleId: () => this.readBattle()?.id ?? null,
      lastSeq: () => this.lastSeq(),
      eventAt: (seq) => this.eventAt(seq),
    });
    // Keep-alive pings from viewers are answered by the runtime without waking this object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    // No call may run before the tables exist.
    void ctx.blockConcurrencyWhile(async () => {
      this.migrate();
      // A push that failed all its retries, or a battle stored before the index existed, is
      // caught up on the next wake.
      if (this.lastSeq() > this.meta("indexed_seq") && (await ctx.storage.getAlarm()) === null) {
        await ctx.storage.setAlarm(Date.now());
        this.indexPushArmed = true;
      }
      // Deliveries still owed (a retry whose alarm was lost) resume on the next wake.
      await this.delivery.schedule();
    });
  }

  /** Appends a progress event; refused once the battle has ended. */
  appendProgress(input: ProgressInput): AppendResult {
    const valid = validateProgressInput(input);
    if (!valid.ok) return refusal("invalid_input", valid.message);
    return this.append("progress", valid.value, null);
  }

  /** Appends the result event and ends the battle with `winner`; refused if it already ended. */
  reportEnd(input: EndInput): AppendResult {
    const valid = validateEndInput(input);
    if (!valid.ok) return refusal("invalid_input", valid.message);
    return this.append("result", valid.value, valid.value.winner);
  }

  /** The battle and up to EVENTS_PAGE_SIZE events with `seq` greater than `after`, oldest first. */
  getState(after = 0): BattleState {
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new RangeError(`after must be a non-negative integer, got ${after}`);
    }
    // One row more than a page tells whether another page follows without a COUNT query.
    const rows = this.sql
      .exec<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
        after,
        EVENTS_PAGE_SIZE + 1,
      )
      .toArray();
    const events = rows.slice(0, EVENTS_PAGE_SIZE).map(toEvent);
    const more = rows.length > EVENTS_PAGE_SIZE;
    return {
      battle: this.readBattle(),
      events,
      next_after: more ? (events.at(-1)?.seq ?? null) : null,
    };
  }

  /**
   * The live feed. The mcp1 Worker forwards a viewer's WebSocket upgrade here after checking the
   * inspection token, with the token's expiry in LIVE_EXPIRES_HEADER. The socket gets a `hello`,
   * then every new event; it is closed after the result event, or once the token has expired.
   */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const expiresAt = Number(request.headers.get(LIVE_EXPIRES_HEADER));
    if (!Number.isFinite(expiresAt) || expiresAt <= 0) {
      return new Response(`missing ${LIVE_EXPIRES_HEADER}`, { status: 400 });
    }
    if (this.ctx.getWebSockets().length >= MAX_VIEWERS) {
      return new Response(`this battle already has ${MAX_VIEWERS} viewers`, { status: 503 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ expiresAt } satisfies LiveAttachment);
    const battle = this.readBattle();
    send(server, { type: "hello", battle, last_seq: this.lastSeq() });
    if (battle?.status === "ended") server.close(CLOSE_BATTLE_ENDED, "battle ended");
    return new Response(null, { status: 101, webSocket: client });
  }

  // The feed is one-way; anything a viewer sends other than the auto-answered ping is ignored.
  override webSocketMessage(): void {}

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // Complete the closing handshake; codes the peer may send but we may not (1005, 1006) throw.
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  /** How far delivery to the battle platform got; null when webhooks are off. */
  deliveryStatus(): DeliveryStatus | null {
    return this.delivery.status();
  }

  /**
   * One alarm serves both jobs: the index push, then delivery, which schedules its own retries.
   * Each event's alarm (armIndexPush) also wakes delivery; it keeps its backoff if not yet due.
   */
  override async alarm(): Promise<void> {
    try {
      await this.pushIndex();
    } finally {
      await this.delivery.run();
    }
  }

  /** Pushes this battle's summary to the index; re-armed by any event that arrives meanwhile. */
  private async pushIndex(): Promise<void> {
    this.indexPushArmed = false;
    const summary = this.summary();
    if (!summary || summary.event_count <= this.meta("indexed_seq")) return;
    // Typed as always bound, but a harness that builds the Worker by hand may leave it out.
    if (!this.env.BATTLE_INDEX)
      throw new Error("BATTLE_INDEX is not bound: cannot update the index");
    const index = this.env.BATTLE_INDEX.get(this.env.BATTLE_INDEX.idFromName(INDEX_NAME));
    // A failure throws, and the runtime retries the alarm with backoff.
    await index.record(summary);
    this.setMeta("indexed_seq", Math.max(summary.event_count, this.meta("indexed_seq")));
  }

  private append(
    kind: EventKind,
    input: ProgressInput | EndInput,
    winner: Winner | null,
  ): AppendResult {
    // The check of the status and the writes must be one unit: either the event is stored and
    // the battle row updated, or nothing is.
    const result = this.ctx.storage.transactionSync((): AppendResult => {
      const existing = this.readBattle();
      if (existing && existing.id !== input.battle_id) {
        return refusal(
          "battle_id_mismatch",
          `This session belongs to battle "${existing.id}", not "${input.battle_id}".`,
        );
      }
      const access = decideAccess({
        action: kind === "result" ? "end" : "progress",
        battleId: input.battle_id,
        agent: input.agent,
        claims: input.access ?? {},
        owner: existing ? this.owner() : undefined,
      });
      if (!access.ok) return refusal("not_permitted", access.message);
      // A retry is answered from the log, ended or not, before anything else can refuse it.
      if (existing && input.report_id !== undefined) {
        const stored = this.eventByReportId(input.report_id);
        if (stored) return retried(existing, stored, kind, input, winner);
      }
      if (existing?.status === "ended") {
        return refusal("battle_ended", this.endedMessage(existing));
      }

      const at = new Date().toISOString();
      if (!existing) {
        this.sql.exec(
          `INSERT INTO battle (one_row, ${BATTLE_COLUMNS}, owner)
           VALUES (1, ?, 'ongoing', NULL, ?, ?, ?)`,
          input.battle_id,
          at,
          at,
          input.agent,
        );
      }
      const row = this.sql
        .exec<EventRow>(
          `INSERT INTO events
             (at, kind, message, reported_by, agent, detail, markdown_content, report_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${EVENT_COLUMNS}`,
          at,
          kind,
          input.message,
          input.reported_by,
          input.agent,
          input.detail === undefined ? null : JSON.stringify(input.detail),
          input.markdown_content ?? null,
          input.report_id ?? null,
        )
        .one();
      this.sql.exec(
        "INSERT OR IGNORE INTO participants (role, name) VALUES ('reporter', ?)",
        input.reported_by,
      );
      if (input.agent !== null) {
        this.sql.exec(
          "INSERT OR IGNORE INTO participants (role, name) VALUES ('agent', ?)",
          input.agent,
        );
      }
      this.sql.exec(
        "UPDATE battle SET status = ?, winner = ?, updated_at = ?",
        winner === null ? "ongoing" : "ended",
        winner,
        at,
      );
      const battle = this.readBattle();
      if (!battle) throw new Error("battle row missing after insert");
      return { ok: true, event: toEvent(row), battle };
    });
    if (result.ok && !result.retried) {
      this.armIndexPush();
      this.broadcast(result.event, result.battle);
    }
    return result;
  }

  // An alarm at "now" runs as soon as this call's writes are stored. While a push is scheduled or
  // running, further events only wait for the next one: pushes per battle stay bounded by the
  // index's round trip, not by the event rate.
  private armIndexPush(): void {
    if (this.indexPushArmed) return;
    this.indexPushArmed = true;
    void this.ctx.storage.setAlarm(Date.now());
  }

  private broadcast(event: BattleEvent, battle: Battle): void {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const message = JSON.stringify({ type: "event", event, battle } satisfies LiveMessage);
    const now = Date.now() / 1000;
    for (const ws of sockets) {
      const attachment = ws.deserializeAttachment() as LiveAttachment | null;
      if (!attachment || attachment.expiresAt <= now) {
        closeQuietly(ws, CLOSE_TOKEN_EXPIRED, "inspection token expired");
        continue;
      }
      try {
        ws.send(message);
      } catch {
        continue; // the viewer went away; its close event cleans up
      }
      if (battle.status === "ended") closeQuietly(ws, CLOSE_BATTLE_ENDED, "battle ended");
    }
  }

  /** The battle as the index lists it, or null before its first event. */
  private summary(): BattleSummary | null {
    const battle = this.readBattle();
    if (!battle) return null;
    const names = (role: "agent" | "reporter") =>
      this.sql
        .exec<{ name: string }>(
          "SELECT name FROM participants WHERE role = ? ORDER BY rowid LIMIT ?",
          role,
          SUMMARY_NAMES_MAX,
        )
        .toArray()
        .map((row) => row.name);
    return {
      ...battle,
      event_count: this.lastSeq(),
      agents: names("agent"),
      reporters: names("reporter"),
    };
  }

  // Events are only inserted, in transactions that roll back whole, so seq has no gaps and the
  // last one is the count; MAX of the primary key is one b-tree lookup.
  private lastSeq(): number {
    return (
      this.sql.exec<{ last: number | null }>("SELECT MAX(seq) AS last FROM events").one().last ?? 0
    );
  }

  private eventAt(seq: number): { event: BattleEvent; winner: Winner | null } | null {
    const row = this.sql
      .exec<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq = ?`, seq)
      .toArray()[0];
    if (!row) return null;
    const winner = row.kind === "result" ? (this.readBattle()?.winner ?? null) : null;
    return { event: toEvent(row), winner };
  }

  private owner(): string | null {
    return this.sql.exec<{ owner: string | null }>("SELECT owner FROM battle").one().owner;
  }

  private eventByReportId(reportId: string): EventRow | undefined {
    return this.sql
      .exec<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE report_id = ?`, reportId)
      .toArray()[0];
  }

  private readBattle(): Battle | null {
    const row = this.sql.exec<BattleRow>(`SELECT ${BATTLE_COLUMNS} FROM battle`).toArray()[0];
    return row ? toBattle(row) : null;
  }

  private migrate(): void {
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    for (let version = this.meta("schema_version"); version < MIGRATIONS.length; version++) {
      const step = MIGRATIONS[version] as string;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(step);
        this.setMeta("schema_version", version + 1);
      });
    }
  }

  private meta(key: "schema_version" | "indexed_seq"): number {
    const row = this.sql
      .exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key)
      .toArray()[0];
    return row?.value ?? 0;
  }

  private setMeta(key: "schema_version" | "indexed_seq", value: number): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  // Tells the caller when the battle ended and how, so a model knows why its report bounced. It
  // names nobody: a reported_by is the reporter's own claim, and even the verified agent is not
  // this caller's to learn (the result event is there to read for those who may look).
  private endedMessage(battle: Battle): string {
    const result = this.sql
      .exec<{ seq: number }>(
        "SELECT seq FROM events WHERE kind = 'result' ORDER BY seq DESC LIMIT 1",
      )
      .toArray()[0];
    const by = result ? ` (result event #${result.seq})` : "";
    return (
      `Battle "${battle.id}" already ended at ${battle.updated_at} with winner ${battle.winner}${by}. ` +
      "It accepts no further events; report a new battle under a new battle_id."
    );
  }
}

function send(ws: WebSocket, message: LiveMessage): void {
  ws.send(JSON.stringify(message));
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closing
  }
}

function refusal(code: BattleErrorCode, message: string): AppendResult {
  return { ok: false, error: { code, message } };
}

/**
 * The answer to a report whose report_id is already in the log: the stored event with the battle
 * as it was right after it (the first answer, exactly: events only append, each sets the battle's
 * updated_at to its own time, and only the result event ends it), or a refusal when the report
 * differs from the stored one in anything but its time.
 */
function retried(
  battle: Battle,
  row: EventRow,
  kind: EventKind,
  input: ProgressInput | EndInput,
  winner: Winner | null,
): AppendResult {
  const event = toEvent(row);
  const stored = event.kind === "result" ? battle.winner : null;
  const same =
    event.kind === kind &&
    stored === winner &&
    event.agent === input.agent &&
    event.message === input.message &&
    event.reported_by === input.reported_by &&
    event.markdown_content === (input.markdown_content ?? null) &&
    canonicalJson(event.detail) === canonicalJson(input.detail ?? null);
  if (!same) {
    return refusal(
      "report_id_reused",
      `report_id "${input.report_id}" was already used in battle "${battle.id}" for a different ` +
        "report (event #" +
        `${event.seq}). Use a new report_id for a new report; nothing was stored.`,
    );
  }
  const after: Battle = {
    ...battle,
    status: event.kind === "result" ? "ended" : "ongoing",
    winner: stored,
    updated_at: event.at,
  };
  return { ok: true, event, battle: after, retried: true };
}

/** JSON with object keys sorted, so equal values compare equal however their keys were ordered. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function toEvent(row: EventRow): BattleEvent {
  // The verified agent before what the agent says of itself: readers of the JSON see it first.
  return {
    seq: row.seq,
    at: row.at,
    kind: row.kind as EventKind,
    agent: row.agent,
    reported_by: row.reported_by,
    message: row.message,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as JsonObject),
    markdown_content: row.markdown_content,
    report_id: row.report_id,
  };
}

function toBattle(row: BattleRow): Battle {
  return {
    id: row.id,
    status: row.status as BattleStatus,
    winner: row.winner as Winner | null,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
