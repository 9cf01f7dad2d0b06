/**
 * The audit table's columns and the one query `GET /admin/audit` runs, as plain data with no
 * Worker imports: the store runs it on D1 (`audit-store.ts`), and the unit tests ask SQLite in
 * Node for its plan (`EXPLAIN QUERY PLAN`) over the schema the migrations make.
 */
import { z } from "zod";
import type { AuditRecord } from "./audit-record.ts";

/** The longest name a record keeps (the agent's text, as it asked): what the query filters on. */
export const NAME_LIMIT = 200;

/** The columns a record is written to and read from, in the order of `AuditRecord`. */
export const COLUMNS = [
  "at",
  "request_id",
  "message_index",
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

/** The filters `GET /admin/audit` accepts. */
export const AuditQuery = z.object({
  agent: z.string().min(1).max(200).optional(),
  request_id: z.string().min(1).max(200).optional(),
  tool: z.string().min(1).max(NAME_LIMIT).optional(),
  server: z.string().min(1).max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

/**
 * The SELECT for `query` and its values, newest first, a batch's records in the order of its
 * messages. Each filter is an equality or a range on an indexed column, so SQLite walks an index
 * from the newest record and stops at the page: (agent, at), (agent, server, at), (tool, at),
 * (request_id) or (at) (the migrations).
 */
export function auditSelect(query: AuditQuery): { sql: string; values: (string | number)[] } {
  const where: string[] = [];
  const values: (string | number)[] = [];
  const add = (sql: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    values.push(value);
  };
  add("agent = ?", query.agent);
  add("request_id = ?", query.request_id);
  add("tool = ?", query.tool);
  add("server = ?", query.server);
  add("at >= ?", query.since && new Date(query.since).toISOString());
  add("at <= ?", query.until && new Date(query.until).toISOString());
  const filter = where.length ? ` WHERE ${where.join(" AND ")}` : "";
  const sql = `SELECT ${COLUMNS.join(", ")} FROM audit${filter} ORDER BY at DESC, request_id, message_index, id LIMIT ?`;
  return { sql, values: [...values, query.limit] };
}
