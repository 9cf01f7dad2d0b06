/**
 * The audit record's shape, on its own with no imports: the Worker writes it (audit-store.ts) and
 * the admin page's script (workers/proxy/page/api.ts) reads it from GET /admin/audit, so both
 * name one definition and the page's bundle takes nothing else of the Worker's.
 */

export type Decision =
  | "allow"
  | "deny_scope"
  | "deny_policy"
  | "deny_rate"
  | "deny_concurrency"
  | "deny_input";

/**
 * The record of one message, or of a request without messages; the request path fills it in as
 * it learns more. The records of a batch share `request_id` (and `at`, `status`, `duration_ms`,
 * `bytes_in`, `bytes_out`, which are the whole request's); `message_index` is each message's
 * place in the batch, from 0, and null for a request that is not a batch.
 */
export interface AuditRecord {
  at: string;
  request_id: string;
  message_index: number | null;
  agent: string;
  /**
   * An MCP method, `unknown` (`core/methods.ts`), `batch` for a batch refused whole, `admin` for a
   * change through the admin API (its action in `tool`), or null.
   */
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
