/**
 * The shapes a battle takes on the wire: in RPC answers of the Durable Objects, in mcp1's JSON API,
 * in MCP resources and in the live WebSocket messages. Types only, with no imports, so the browser
 * page (workers/mcp1/page) can share them without pulling in workerd's modules.
 */

export type EventKind = "progress" | "result";
export type BattleStatus = "ongoing" | "ended";
export type Winner = "green" | "blue" | "red" | "draw";

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
  /**
   * Who reported it, verified: the calling agent the proxy vouched for (its assertion's `sub`);
   * null only in events stored before mcp1 required the assertion. Shown first, everywhere.
   */
  agent: string | null;
  /** Who the agent says reports it: a tool argument, its own claim, shown as such. */
  reported_by: string;
  message: string;
  detail: JsonObject | null;
  markdown_content: string | null;
  /** The caller's id for this report (tool argument `report_id`), or null when it sent none. */
  report_id: string | null;
}

/** The battle's current status; `winner` is set exactly when `status` is `ended`. */
export interface Battle {
  id: string;
  status: BattleStatus;
  winner: Winner | null;
  created_at: string;
  updated_at: string;
}

/** A page of a battle's state: `battle` is null until the first event arrives. */
export interface BattleState {
  battle: Battle | null;
  events: BattleEvent[];
  /** Pass as `after` to read the next page; null when `events` reached the end of the log. */
  next_after: number | null;
}

/** What the index knows about a battle: enough to list and filter without waking it. */
export interface BattleSummary extends Battle {
  /** Number of events; sequence numbers are gapless, so this is also the last `seq`. */
  event_count: number;
  /** Distinct calling agents, in order of first appearance (at most SUMMARY_NAMES_MAX). */
  agents: string[];
  /** Distinct `reported_by` values, in order of first appearance (at most SUMMARY_NAMES_MAX). */
  reporters: string[];
}

/** Most agents and reporters a summary carries; a battle may have more. */
export const SUMMARY_NAMES_MAX = 50;

/** One page of the battle list, newest first. */
export interface BattlePage {
  battles: BattleSummary[];
  /** Opaque; pass as `cursor` for the next (older) page. Null on the last page. */
  next_cursor: string | null;
}

/**
 * How far a battle's events have been delivered to the battle platform (BATTLE_WEBHOOK_URL), as
 * the JSON API and the page show it; absent (null) when webhooks are off.
 */
export interface DeliveryStatus {
  /** Every event up to this `seq` was acknowledged with a 2xx (0: none yet). */
  delivered_seq: number;
  /** The battle's last `seq`: delivery is caught up when the two are equal. */
  last_seq: number;
  /** Failed attempts in a row at the event after `delivered_seq`. */
  failures: number;
  /** Why the last attempt failed, and when; null once an attempt succeeds. */
  last_error: string | null;
  last_error_at: string | null;
  /** When the next attempt is due, while behind after a failure. */
  next_attempt_at: string | null;
}

/**
 * Messages the live WebSocket sends (server to browser only).
 * - `hello` right after the socket opens: the battle now (null before its first event) and its
 *   last `seq`, so a page that read the log over HTTP knows whether it missed anything.
 * - `event` for every event appended while the socket is open, with the battle after it.
 */
export type LiveMessage =
  | { type: "hello"; battle: Battle | null; last_seq: number }
  | { type: "event"; event: BattleEvent; battle: Battle };

/** The WebSocket subprotocol of the live feed; the server always selects it. */
export const LIVE_PROTOCOL = "mcpcp-inspect";
/**
 * Prefix of the subprotocol entry that carries the inspection token, because a browser cannot set
 * an Authorization header on a WebSocket: `new WebSocket(url, [LIVE_PROTOCOL, LIVE_TOKEN_PREFIX + jwt])`.
 * A JWT is base64url segments joined by ".", all RFC 7230 token characters, so it fits.
 */
export const LIVE_TOKEN_PREFIX = "mcpcp-bearer.";
/** Close code when the inspection token of an open socket has expired. */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** Close code after the battle's result event: nothing more will come. */
export const CLOSE_BATTLE_ENDED = 1000;
