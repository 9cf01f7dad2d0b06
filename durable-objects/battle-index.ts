/**
 * BattleIndex: the list of every battle, which no single BattleSession can give. One instance,
 * named INDEX_NAME, holds one row per battle (a BattleSummary) in SQLite, so listing, filtering by
 * status and paging newest first are index range scans that never wake a battle.
 *
 * BattleSession is the source of truth and pushes its summary here from its alarm, coalesced: at
 * most one push in flight per battle, however fast its events arrive. The index is therefore
 * eventually consistent, behind by about one RPC round trip. Why a Durable Object and not D1:
 * ./README.md, "BattleIndex".
 */
import { DurableObject } from "cloudflare:workers";
import type { BattlePage, BattleStatus, BattleSummary, Winner } from "./battle-types.ts";

/** The name of the one index instance: `env.BATTLE_INDEX.idFromName(INDEX_NAME)`. */
export const INDEX_NAME = "all";
/** Largest page `list` returns. */
export const LIST_LIMIT_MAX = 100;

export interface ListQuery {
  status?: BattleStatus | undefined;
  /** 1 to LIST_LIMIT_MAX. */
  limit: number;
  /** `next_cursor` of the previous page; absent for the first (newest) page. */
  cursor?: string | undefined;
  /** Only these battles (a token's `battles` claim, at most 100); absent: all. */
  ids?: readonly string[] | undefined;
}

export type ListResult =
  | { ok: true; page: BattlePage }
  | { ok: false; error: { code: "invalid_cursor" | "invalid_limit"; message: string } };

type SummaryRow = {
  id: string;
  status: string;
  winner: string | null;
  event_count: number;
  created_at: string;
  updated_at: string;
  agents: string;
  reporters: string;
};

// Newest first is (created_at DESC, id DESC): created_at never changes, so a cursor taken from one
// page stays valid however the battles on it change. Both orders have an index behind them.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS battles (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('ongoing', 'ended')),
  winner TEXT CHECK (winner IN ('green', 'blue', 'red', 'draw')),
  event_count INTEGER NOT NULL CHECK (event_count > 0),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  agents TEXT NOT NULL CHECK (json_valid(agents)),
  reporters TEXT NOT NULL CHECK (json_valid(reporters)),
  CHECK ((status = 'ended') = (winner IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS battles_newest ON battles (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS battles_by_status ON battles (status, created_at DESC, id DESC);
`;

const COLUMNS = "id, status, winner, event_count, created_at, updated_at, agents, reporters";

export class BattleIndex extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
    });
  }

  /**
   * Stores a battle's summary. Idempotent and monotonic: a summary with no more events than the
   * stored one changes nothing, so a retried or late push can never move the index backwards.
   */
  record(summary: BattleSummary): void {
    this.sql.exec(
      `INSERT INTO battles (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         status = excluded.status, winner = excluded.winner, event_count = excluded.event_count,
         updated_at = excluded.updated_at, agents = excluded.agents, reporters = excluded.reporters
       WHERE excluded.event_count > battles.event_count`,
      summary.id,
      summary.status,
      summary.winner,
      summary.event_count,
      summary.created_at,
      summary.updated_at,
      JSON.stringify(summary.agents),
      JSON.stringify(summary.reporters),
    );
  }

  /** One page of battles, newest first, optionally only those with `status`. */
  list(query: ListQuery): ListResult {
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > LIST_LIMIT_MAX) {
      return {
        ok: false,
        error: { code: "invalid_limit", message: `limit must be 1 to ${LIST_LIMIT_MAX}` },
      };
    }
    const conditions: string[] = [];
    const params: string[] = [];
    if (query.status !== undefined) {
      conditions.push("status = ?");
      params.push(query.status);
    }
    if (query.ids !== undefined) {
      // One bound parameter however many ids: a JSON array, read back row by row.
      conditions.push("id IN (SELECT value FROM json_each(?))");
      params.push(JSON.stringify(query.ids));
    }
    if (query.cursor !== undefined) {
      const position = decodeCursor(query.cursor);
      if (!position) {
        return {
          ok: false,
          error: { code: "invalid_cursor", message: "cursor is not one this server issued" },
        };
      }
      conditions.push("(created_at, id) < (?, ?)");
      params.push(position.created_at, position.id);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";
    // One row more than the page tells whether an older page exists, without counting.
    const rows = this.sql
      .exec<SummaryRow>(
        `SELECT ${COLUMNS} FROM battles ${where} ORDER BY created_at DESC, id DESC LIMIT ?`,
        ...params,
        query.limit + 1,
      )
      .toArray();
    const battles = rows.slice(0, query.limit).map(toSummary);
    const last = battles.at(-1);
    return {
      ok: true,
      page: {
        battles,
        next_cursor: rows.length > query.limit && last ? encodeCursor(last) : null,
      },
    };
  }
}

/** The opaque cursor that continues a listing after `battle`: base64url of [created_at, id]. */
export function encodeCursor(battle: { created_at: string; id: string }): string {
  return btoa(JSON.stringify([battle.created_at, battle.id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The position a cursor names, or null when it is not one encodeCursor made. */
export function decodeCursor(cursor: string): { created_at: string; id: string } | null {
  if (cursor.length > 400 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  try {
    const parsed: unknown = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === "string" &&
      typeof parsed[1] === "string"
    ) {
      return { created_at: parsed[0], id: parsed[1] };
    }
  } catch {
    // not base64 or not JSON: fall through
  }
  return null;
}

function toSummary(row: SummaryRow): BattleSummary {
  return {
    id: row.id,
    status: row.status as BattleStatus,
    winner: row.winner as Winner | null,
    event_count: row.event_count,
    created_at: row.created_at,
    updated_at: row.updated_at,
    agents: JSON.parse(row.agents) as string[],
    reporters: JSON.parse(row.reporters) as string[],
  };
}
