/**
 * Schema migrations of a D1 database, applied by the Worker itself, the way
 * `wrangler d1 migrations apply` applies them: in order, each once, each recorded by its file name
 * in wrangler's own `d1_migrations` table. So wrangler dev and fresh databases need no manual step,
 * an operator may still apply them with wrangler (before or after a deploy), and neither applies a
 * migration the other has.
 *
 * Plain code over the part of D1's API it uses, so the unit tests run it on SQLite in Node.
 */

/** A migration: its file name (what wrangler records) and its SQL. */
export type Migration = readonly [name: string, sql: string];

/** The part of a D1 prepared statement migrations use. */
export interface Statement {
  bind(...values: unknown[]): Statement;
  run(): Promise<unknown>;
  all<T>(): Promise<{ results: T[] }>;
  first<T>(): Promise<T | null>;
}

/** The part of a D1 database migrations use (`D1Database` has it). */
export interface Database {
  prepare(sql: string): Statement;
  /** Runs the statements as one transaction: all of them, or none. */
  batch(statements: Statement[]): Promise<unknown>;
}

/** wrangler's own definition (`getCreateMigrationsTableQuery`), so that either may create it. */
const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "d1_migrations"(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT UNIQUE,
  applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)`;

/** The statements of a migration file: comments dropped, split at `;`. */
export function statementsOf(sql: string): string[] {
  return sql
    .replace(/--.*$/gm, "")
    .split(";")
    .map((statement) => statement.trim())
    .filter(Boolean);
}

/** Applies, in order, each of `migrations` that `db` has no record of, and records it. */
export async function applyMigrations(
  db: Database,
  migrations: readonly Migration[],
): Promise<void> {
  await db.prepare(MIGRATIONS_TABLE).run();
  const { results } = await db.prepare("SELECT name FROM d1_migrations").all<{ name: string }>();
  const applied = new Set(results.map((row) => row.name));
  for (const [name, sql] of migrations) {
    if (applied.has(name)) continue;
    const record = db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(name);
    try {
      // The migration and its record in one transaction: both, or neither.
      await db.batch([...statementsOf(sql).map((statement) => db.prepare(statement)), record]);
    } catch (e) {
      // Another isolate, or wrangler, may have applied it in the meantime: then it is recorded.
      const now = await db.prepare("SELECT 1 FROM d1_migrations WHERE name = ?").bind(name).first();
      if (now === null) throw e;
    }
  }
}
