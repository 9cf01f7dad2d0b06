// The audit table's migrations as the proxy applies them itself (workers/proxy/src/state/
// migrations.ts), on SQLite (what D1 is) through the part of D1's API they use: a fresh database,
// one the previous proxy made without any record, one wrangler migrated, and two isolates at once.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { AuditQuery, auditSelect } from "../../workers/proxy/src/state/audit-query.ts";
import {
  applyMigrations,
  type Database,
  type Migration,
  type Statement,
  statementsOf,
} from "../../workers/proxy/src/state/migrations.ts";

const DIR = join(import.meta.dirname, "..", "..", "workers", "proxy", "migrations");
/** The migration files in the order wrangler applies them. */
const MIGRATIONS: Migration[] = readdirSync(DIR)
  .filter((name) => name.endsWith(".sql"))
  .sort()
  .map((name) => [name, readFileSync(join(DIR, name), "utf8")]);

/** D1's API over an in-memory SQLite database, each call a turn of the event loop as D1's are. */
function d1(sqlite = new DatabaseSync(":memory:")): Database & { sqlite: DatabaseSync } {
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const statement = (sql: string, values: unknown[] = []): Statement & { exec: () => void } => {
    const prepared = () => sqlite.prepare(sql);
    const args = values as (string | number | null)[];
    return {
      bind: (...more) => statement(sql, more),
      run: async () => {
        await tick();
        return prepared().run(...args);
      },
      all: async <T>() => {
        await tick();
        return { results: prepared().all(...args) as T[] };
      },
      first: async <T>() => {
        await tick();
        return (prepared().get(...args) as T | undefined) ?? null;
      },
      exec: () => prepared().run(...args),
    };
  };
  return {
    sqlite,
    prepare: (sql) => statement(sql),
    batch: async (statements) => {
      await tick();
      sqlite.exec("BEGIN");
      try {
        for (const each of statements) (each as ReturnType<typeof statement>).exec();
        sqlite.exec("COMMIT");
      } catch (e) {
        sqlite.exec("ROLLBACK");
        throw e;
      }
    },
  };
}

const recorded = (db: ReturnType<typeof d1>) =>
  db.sqlite
    .prepare("SELECT name FROM d1_migrations ORDER BY id")
    .all()
    .map((row) => row.name);
const columns = (db: ReturnType<typeof d1>) =>
  db.sqlite
    .prepare("SELECT name FROM pragma_table_info('audit')")
    .all()
    .map((row) => row.name);

describe("the audit table's migrations", () => {
  it("build a fresh database and record each under its file name, as wrangler does", async () => {
    const db = d1();
    await applyMigrations(db, MIGRATIONS);
    expect(recorded(db)).toEqual([
      "0001_audit.sql",
      "0002_audit_messages.sql",
      "0003_audit_agent_server.sql",
    ]);
    expect(columns(db)).toContain("message_index");
  });

  it("bring a database the previous proxy made, without records, up to date, rows kept", async () => {
    const db = d1();
    for (const sql of statementsOf(MIGRATIONS[0]?.[1] ?? "")) db.sqlite.exec(sql);
    db.sqlite.exec(
      "INSERT INTO audit (at, request_id, agent, decision, outcome, status, duration_ms, bytes_in) VALUES ('2026-01-01T00:00:00.000Z', 'r-1', 'a', 'allow', 'ok', 200, 1, 1)",
    );
    await applyMigrations(db, MIGRATIONS);
    expect(recorded(db)).toEqual([
      "0001_audit.sql",
      "0002_audit_messages.sql",
      "0003_audit_agent_server.sql",
    ]);
    expect(db.sqlite.prepare("SELECT request_id, message_index FROM audit").all()).toEqual([
      { request_id: "r-1", message_index: null },
    ]);
  });

  it("apply nothing wrangler has applied (a second ALTER TABLE would fail)", async () => {
    const db = d1();
    await applyMigrations(db, MIGRATIONS);
    await applyMigrations(d1(db.sqlite), MIGRATIONS);
    expect(recorded(db)).toEqual([
      "0001_audit.sql",
      "0002_audit_messages.sql",
      "0003_audit_agent_server.sql",
    ]);
  });

  it("survive two isolates applying them at once", async () => {
    const sqlite = new DatabaseSync(":memory:");
    await Promise.all([
      applyMigrations(d1(sqlite), MIGRATIONS),
      applyMigrations(d1(sqlite), MIGRATIONS),
    ]);
    expect(recorded(d1(sqlite))).toEqual([
      "0001_audit.sql",
      "0002_audit_messages.sql",
      "0003_audit_agent_server.sql",
    ]);
  });

  it("still fail on a migration that fails for any other reason", async () => {
    await expect(
      applyMigrations(d1(), [["0001_broken.sql", "CREATE TABLE audit (; "]]),
    ).rejects.toThrow();
  });
});

describe("the audit query over the migrated schema", () => {
  /** SQLite's plan for the query `GET /admin/audit?…` runs, one line per step. */
  async function planOf(filters: Record<string, string>): Promise<string[]> {
    const db = d1();
    await applyMigrations(db, MIGRATIONS);
    const { sql, values } = auditSelect(AuditQuery.parse(filters));
    return db.sqlite
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...values)
      .map((row) => String(row.detail));
  }

  it("finds an agent's records on one server through (agent, server, at), not by reading the agent's all", async () => {
    const plan = await planOf({ agent: "a", server: "mcp2" });
    expect(plan[0]).toMatch(
      /^SEARCH audit USING INDEX audit_agent_server_at \(agent=\? AND server=\?\)$/,
    );
  });

  it("keeps the agent's own index for a filter on the agent alone, and the tool's for agent + tool", async () => {
    expect((await planOf({ agent: "a" }))[0]).toMatch(/USING INDEX audit_agent_at \(agent=\?\)/);
    expect((await planOf({ agent: "a", tool: "echo" }))[0]).toMatch(/USING INDEX audit_/);
  });
});
