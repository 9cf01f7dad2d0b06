/**
 * BattleSession: one Durable Object per battle (`env.BATTLE.idFromName(battle_id)`), holding the
 * battle's append-only event log and its status in SQLite. The storage layout is written down in
 * ./README.md.
 *
 * The Worker calls it over typed RPC. Refusals a caller can act on (bad input, battle already
 * ended) come back as `{ ok: false, error }` values, never as exceptions, so the tool layer can
 * turn them into `isError` tool results without guessing at error messages.
 */
import { DurableObject } from "cloudflare:workers";
import {
  type EndInput,
  type ProgressInput,
  validateEndInput,
  validateProgressInput,
  type Winner,
} from "./battle-input.ts";

export type EventKind = "progress" | "result";
export type BattleStatus = "ongoing" | "ended";

/**
 * A parsed JSON object, typed one level deep. Not `unknown` values: workerd's RPC typing turns a
 * return type it cannot prove serialisable into `never`. Not a recursive JSON type either: that
 * makes the same typing recurse too deep for the compiler.
 */
export type JsonObject = { [key: string]: string | number | boolean | null | object };

/** One entry of a battle's event log. `seq` starts at 1 and increases by 1 per event. */
export interface BattleEvent {
  seq: number;
  at: string;
  kind: EventKind;
  message: string;
  reported_by: string;
  agent: string | null;
  detail: JsonObject | null;
  markdown_content: string | null;
}

/** The battle's current status; `winner` is set exactly when `status` is `ended`. */
export interface Battle {
  id: string;
  status: BattleStatus;
  winner: Winner | null;
  created_at: string;
  updated_at: string;
}

export type BattleErrorCode = "invalid_input" | "battle_ended" | "battle_id_mismatch";

export interface BattleError {
  code: BattleErrorCode;
  message: string;
}

/** The outcome of appending an event: the stored event and the battle after it, or why not. */
export type AppendResult =
  | { ok: true; event: BattleEvent; battle: Battle }
  | { ok: false; error: BattleError };

/** A page of a battle's state: `battle` is null until the first event arrives. */
export interface BattleState {
  battle: Battle | null;
  events: BattleEvent[];
  /** Pass as `after` to read the next page; null when `events` reached the end of the log. */
  next_after: number | null;
}

/** Most events one getState call returns, so a long battle never exceeds the RPC message size. */
export const EVENTS_PAGE_SIZE = 100;

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
};
type BattleRow = {
  id: string;
  status: string;
  winner: string | null;
  created_at: string;
  updated_at: string;
};

// `IF NOT EXISTS` makes this idempotent: it runs in every constructor, including after eviction.
// The battle table holds one row; the `one_row` key with its CHECK makes a second row impossible.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
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
);
`;

const EVENT_COLUMNS = "seq, at, kind, message, reported_by, agent, detail, markdown_content";
const BATTLE_COLUMNS = "id, status, winner, created_at, updated_at";

export class BattleSession extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // No RPC call may run before the tables exist.
    void ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
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

  private append(
    kind: EventKind,
    input: ProgressInput | EndInput,
    winner: Winner | null,
  ): AppendResult {
    // The check of the status and the writes must be one unit: either the event is stored and
    // the battle row updated, or nothing is.
    return this.ctx.storage.transactionSync((): AppendResult => {
      const existing = this.readBattle();
      if (existing && existing.id !== input.battle_id) {
        return refusal(
          "battle_id_mismatch",
          `This session belongs to battle "${existing.id}", not "${input.battle_id}".`,
        );
      }
      if (existing?.status === "ended") {
        return refusal("battle_ended", this.endedMessage(existing));
      }

      const at = new Date().toISOString();
      if (!existing) {
        this.sql.exec(
          `INSERT INTO battle (one_row, ${BATTLE_COLUMNS}) VALUES (1, ?, 'ongoing', NULL, ?, ?)`,
          input.battle_id,
          at,
          at,
        );
      }
      const row = this.sql
        .exec<EventRow>(
          `INSERT INTO events (at, kind, message, reported_by, agent, detail, markdown_content)
           VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${EVENT_COLUMNS}`,
          at,
          kind,
          input.message,
          input.reported_by,
          input.agent,
          input.detail === undefined ? null : JSON.stringify(input.detail),
          input.markdown_content ?? null,
        )
        .one();
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
  }

  private readBattle(): Battle | null {
    const row = this.sql.exec<BattleRow>(`SELECT ${BATTLE_COLUMNS} FROM battle`).toArray()[0];
    return row ? toBattle(row) : null;
  }

  // Tells the caller who ended the battle and when, so a model knows why its report bounced.
  private endedMessage(battle: Battle): string {
    const result = this.sql
      .exec<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE kind = 'result' ORDER BY seq DESC LIMIT 1`,
      )
      .toArray()[0];
    const by = result ? ` (result event #${result.seq}, reported by ${result.reported_by})` : "";
    return (
      `Battle "${battle.id}" already ended at ${battle.updated_at} with winner ${battle.winner}${by}. ` +
      "It accepts no further events; report a new battle under a new battle_id."
    );
  }
}

function refusal(code: BattleErrorCode, message: string): AppendResult {
  return { ok: false, error: { code, message } };
}

function toEvent(row: EventRow): BattleEvent {
  return {
    seq: row.seq,
    at: row.at,
    kind: row.kind as EventKind,
    message: row.message,
    reported_by: row.reported_by,
    agent: row.agent,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as JsonObject),
    markdown_content: row.markdown_content,
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
