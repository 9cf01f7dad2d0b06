/**
 * The admin API (`/admin/*` on the gateway) as the page uses it. Every request carries the token
 * in the Authorization header and nowhere else; the answers' shapes are the API's
 * (workers/proxy/src/admin/routes.ts, docs/design.md "Audit"); an audit record is the very type the
 * gateway writes (src/state/audit-record.ts, a type with no imports, so nothing of the Worker's
 * reaches the bundle).
 */
import { ApiError, callApi } from "../../../common/page/api.ts";
import type { AuditRecord } from "../src/state/audit-record.ts";

export type { AuditRecord };
export { ApiError };

/** `{ agent: { server: "*" | [tool, ...] } }` */
export type PolicyDoc = Record<string, Record<string, "*" | string[]>>;

/** One difference between two versions, as a history entry lists it. */
export interface Change {
  path: string;
  before?: unknown;
  after?: unknown;
}

/** What each agent would gain and lose, by the names it sees. */
export type Effects = Record<string, { gained: string[]; lost: string[] }>;

export interface PolicyAnswer {
  version: string;
  policy: PolicyDoc;
}

export interface HistoryEntry {
  version: string;
  policyVersion: string;
  at: string;
  actor: string;
  action: string;
  changes: Change[];
}

export interface Backend {
  id: string;
  url: string | null;
  route: "binding" | "network";
  identity: string;
  health: { ok: true; tools: number; ms: number } | { ok: false; error: string; ms: number };
}

export interface Agent {
  id: string;
  enabled: boolean;
  note: string;
  servers: string[];
  effective: { tools: string[]; resources: string[]; prompts: string[] };
  last_seen: string | null;
}

export interface Revocations {
  tokens: Record<string, number>;
  agents: Record<string, number>;
}

/** The admin API for one token; `onAuthError` is told when the gateway refuses the token. */
export class AdminApi {
  readonly #token: string;
  readonly #onAuthError: (error: ApiError) => void;

  constructor(token: string, onAuthError: (error: ApiError) => void) {
    this.#token = token;
    this.#onAuthError = onAuthError;
  }

  policy = () => this.#call<PolicyAnswer>("GET", "/admin/policy");
  /** What saving `policy` would change, per agent; nothing is changed. */
  dryRun = (policy: PolicyDoc) =>
    this.#call<{ version: string; changes: Effects }>("PUT", "/admin/policy?dry_run=1", {
      policy,
    });
  /** Saves `policy` if the policy is still at `version` (else 412). */
  savePolicy = (policy: PolicyDoc, version: string) =>
    this.#call<{ version: string; changes: Change[] }>("PUT", "/admin/policy", { policy }, version);
  /** The newest `limit` versions, or those before version `before`. */
  history = (limit: number, before?: string) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) query.set("before", before);
    return this.#call<{ versions: HistoryEntry[] }>("GET", `/admin/policy/history?${query}`);
  };
  policyAt = (version: string) =>
    this.#call<{ version: string; at: string; policy: PolicyDoc }>(
      "GET",
      `/admin/policy/versions/${encodeURIComponent(version)}`,
    );
  /** Makes version `to`'s policy current again, if the policy is still at `version`. */
  rollback = (to: string, version: string) =>
    this.#call<{ version: string }>("POST", "/admin/policy/rollback", { to }, version);
  backends = () => this.#call<{ backends: Backend[] }>("GET", "/admin/backends");
  addBackend = (entry: { id: string; url: string; identity: string }) =>
    this.#call<{ version: string }>("POST", "/admin/backends", entry);
  removeBackend = (id: string) =>
    this.#call<{ version: string }>("DELETE", `/admin/backends/${encodeURIComponent(id)}`);
  agents = () => this.#call<{ agents: Agent[] }>("GET", "/admin/agents");
  setEnabled = (id: string, enabled: boolean, note: string) =>
    this.#call<{ version: string }>(
      "POST",
      `/admin/agents/${encodeURIComponent(id)}/${enabled ? "enable" : "disable"}`,
      note ? { note } : {},
    );
  revocations = () => this.#call<Revocations>("GET", "/admin/revocations");
  revoke = (
    revocation: { jti: string; expires_at?: number } | { agent: string; before?: number },
  ) => this.#call<{ version: string }>("POST", "/admin/revocations", revocation);
  audit = (query: URLSearchParams) =>
    this.#call<{ records: AuditRecord[] }>("GET", `/admin/audit?${query}`);

  async #call<T>(method: string, path: string, body?: unknown, ifMatch?: string): Promise<T> {
    try {
      return await callApi<T>(path, this.#token, { method, body, ifMatch });
    } catch (error) {
      if (error instanceof ApiError && error.needsToken) this.#onAuthError(error);
      throw error;
    }
  }
}
