/**
 * Audit: one structured record per authenticated request, written as a JSON log line and into D1
 * where an operator can query it by agent, tool and time (`GET /admin/audit`).
 *
 * A record holds who asked for what, what the gateway decided, and how it went. It never holds a
 * token, tool arguments or results: those can carry secrets.
 */
import { z } from "zod";
import schema from "../migrations/0001_audit.sql";

/** The scope that may read the audit log at GET /admin/audit. */
export const AUDIT_SCOPE = "audit_read";

export type Decision =
  | "allow"
  | "deny_scope"
  | "deny_policy"
  | "deny_rate"
  | "deny_concurrency"
  | "deny_input";

/** The record of one request; the request path fills it in as it learns more. */
export interface AuditRecord {
  at: string;
  request_id: string;
  agent: string;
  method: string | null;
  server: string | null;
  tool: string | null;
  decision: Decision;
  outcome: string;
  status: number;
  duration_ms: number;
  bytes_in: number;
  bytes_out: number | null;
}

/** Starts the record of a request that has just been authenticated. */
export function beginRecord(agent: string, requestId: string, bytesIn: number): AuditRecord {
  return {
    at: new Date().toISOString(),
    request_id: requestId,
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

const COLUMNS = [
  "at",
  "request_id",
  "agent",
  "method",
  "server",
  "tool",
  "decision",
  "outcome",
  "status",
  "duration_ms",
  "bytes_in",
  "bytes_out",
] as const satisfies readonly (keyof AuditRecord)[];

// The schema applies itself once per isolate: wrangler dev and fresh databases need no manual step.
const ready = new WeakMap<D1Database, Promise<unknown>>();

function ensureSchema(db: D1Database): Promise<unknown> {
  let done = ready.get(db);
  if (!done) {
    const statements = schema
      .replace(/--.*$/gm, "")
      .split(";")
      .map((sql) => sql.trim())
      .filter(Boolean);
    done = db.batch(statements.map((sql) => db.prepare(sql)));
    ready.set(db, done);
    done.catch(() => ready.delete(db));
  }
  return done;
}

/** Logs the record as one JSON line and stores it. Never throws: auditing must not fail a request. */
export async function writeRecord(db: D1Database, record: AuditRecord): Promise<void> {
  console.log(JSON.stringify({ event: "audit", ...record }));
  try {
    await ensureSchema(db);
    await db
      .prepare(
        `INSERT INTO audit (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`,
      )
      .bind(...COLUMNS.map((column) => record[column]))
      .run();
  } catch (e) {
    console.error(
      JSON.stringify({
        event: "audit_store_failed",
        request_id: record.request_id,
        error: String(e),
      }),
    );
  }
}

/** The filters `GET /admin/audit` accepts. */
export const AuditQuery = z.object({
  agent: z.string().min(1).max(200).optional(),
  tool: z.string().min(1).max(200).optional(),
  server: z.string().min(1).max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Reads records matching `query`, newest first. */
export async function queryRecords(
  db: D1Database,
  query: z.infer<typeof AuditQuery>,
): Promise<AuditRecord[]> {
  await ensureSchema(db);
  const where: string[] = [];
  const values: (string | number)[] = [];
  const add = (sql: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    values.push(value);
  };
  add("agent = ?", query.agent);
  add("tool = ?", query.tool);
  add("server = ?", query.server);
  add("at >= ?", query.since && new Date(query.since).toISOString());
  add("at <= ?", query.until && new Date(query.until).toISOString());
  const sql = `SELECT ${COLUMNS.join(", ")} FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY at DESC, id DESC LIMIT ?`;
  const { results } = await db
    .prepare(sql)
    .bind(...values, query.limit)
    .all<AuditRecord>();
  return results;
}
