/**
 * Audit: one structured record per message of each authenticated request (one for a request
 * without messages), written as a JSON log line and into D1 where an operator can query it by
 * agent, tool, server, request and time (`GET /admin/audit`).
 *
 * A record holds who asked for what, what the gateway decided, and how it went. It never holds a
 * token, tool arguments or results: those can carry secrets.
 */
import audit from "../../migrations/0001_audit.sql";
import messages from "../../migrations/0002_audit_messages.sql";
import agentServer from "../../migrations/0003_audit_agent_server.sql";
import { log } from "../core/log.ts";
import { type AuditQuery, auditSelect, COLUMNS } from "./audit-query.ts";
import type { AuditRecord } from "./audit-record.ts";
import { applyMigrations, type Migration } from "./migrations.ts";

export { AuditQuery, NAME_LIMIT } from "./audit-query.ts";
export type { AuditRecord, Decision } from "./audit-record.ts";

/** The scope that may read the audit log at GET /admin/audit. */
export const AUDIT_SCOPE = "audit_read";

/** Starts the record of a request that has just been authenticated. */
export function beginRecord(agent: string, requestId: string, bytesIn: number): AuditRecord {
  return {
    at: new Date().toISOString(),
    request_id: requestId,
    message_index: null,
    agent,
    method: null,
    server: null,
    tool: null,
    decision: "allow",
    outcome: "ok",
    status: 0,
    duration_ms: 0,
    bytes_in: bytesIn,
    bytes_out: null,
  };
}

/** The audit table's migrations, in order, under the names wrangler records them by. */
const MIGRATIONS: readonly Migration[] = [
  ["0001_audit.sql", audit],
  ["0002_audit_messages.sql", messages],
  ["0003_audit_agent_server.sql", agentServer],
];

// Once per isolate: wrangler dev and fresh databases need no manual step (`migrations.ts`).
const ready = new WeakMap<D1Database, Promise<unknown>>();

function ensureSchema(db: D1Database): Promise<unknown> {
  let done = ready.get(db);
  if (!done) {
    done = applyMigrations(db, MIGRATIONS);
    ready.set(db, done);
    done.catch(() => ready.delete(db));
  }
  return done;
}

const INSERT = `INSERT INTO audit (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`;

/**
 * How long records gather before one batch stores them all: the batch leaves this long after its
 * first record was logged, so each record leaves at most this long after its own. It is what a
 * crash can take from D1 (with the batch D1 is writing then); the log line has each record.
 */
export const FLUSH_AFTER_MS = 100;
/** The most records one batch stores; a record that finds it full opens the next batch. */
const MAX_BATCH = 100;

/** Records waiting for the next flush, per database binding (one per isolate in practice). */
const buffers = new WeakMap<D1Database, AuditRecord[]>();

/**
 * Logs the record as one JSON line, at once, and queues it for the store. The pipeline calls this
 * before the answer's last bytes go out, so the line is written before the agent can have its
 * answer. Records that arrive within FLUSH_AFTER_MS of each other go to D1 in one batch: one round
 * trip for many requests instead of one each, which was the largest single cost a proxied call
 * paid (BENCHMARKS.md). The request that opens a batch holds it: the returned promise (for
 * `waitUntil`) settles once it is stored; later records join it and return at once. Never throws:
 * auditing must not fail a request.
 */
export function writeRecord(db: D1Database, record: AuditRecord): Promise<void> {
  log("info", "audit", { ...record });
  const waiting = buffers.get(db);
  if (waiting && waiting.length < MAX_BATCH) {
    waiting.push(record);
    return Promise.resolve();
  }
  const batch = [record];
  buffers.set(db, batch);
  return new Promise<void>((resolve) => setTimeout(resolve, FLUSH_AFTER_MS)).then(() =>
    flush(db, batch),
  );
}

async function flush(db: D1Database, batch: AuditRecord[]): Promise<void> {
  if (buffers.get(db) === batch) buffers.delete(db);
  try {
    await ensureSchema(db);
    const insert = db.prepare(INSERT);
    await db.batch(batch.map((record) => insert.bind(...COLUMNS.map((column) => record[column]))));
  } catch (e) {
    log("error", "audit_store_failed", {
      request_ids: batch.map((record) => record.request_id),
      error: String(e),
    });
  }
}

/** Reads records matching `query`, newest first; a batch's records in the order of its messages. */
export async function queryRecords(db: D1Database, query: AuditQuery): Promise<AuditRecord[]> {
  await ensureSchema(db);
  const { sql, values } = auditSelect(query);
  const { results } = await db
    .prepare(sql)
    .bind(...values)
    .all<AuditRecord>();
  return results;
}

/** When each agent was last seen: the time of its newest record. */
export async function lastSeen(db: D1Database): Promise<Map<string, string>> {
  await ensureSchema(db);
  const { results } = await db
    .prepare("SELECT agent, MAX(at) AS at FROM audit GROUP BY agent")
    .all<{ agent: string; at: string }>();
  return new Map(results.map((row) => [row.agent, row.at]));
}
