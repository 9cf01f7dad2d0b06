/**
 * The admin API (`/admin/*` on the gateway) as the page uses it. Every request carries the token
 * in the Authorization header and nowhere else; the answers' shapes are the API's
 * (workers/proxy/src/admin/routes.ts, docs/design.md "Audit").
 */

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

export interface AuditRecord {
  at: string;
  request_id: string;
  message_index: number | null;
  agent: string;
  method: string | null;
  server: string | null;
  tool: string | null;
  decision: string;
  outcome: string;
  status: number;
  duration_ms: number;
}

/** An answer other than 2xx, with the API's stable error code. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The token is missing, wrong, expired, revoked or lacks the scope: ask for another. */
  get needsToken(): boolean {
    return this.status === 401 || this.status === 403;
  }
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
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#token}`,
      Accept: "application/json",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
    const response = await fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    if (response.ok) return (await response.json()) as T;
    const error = await errorOf(response);
    if (error.needsToken) this.#onAuthError(error);
    throw error;
  }
}

/**
 * The refusal in an answer. The admin API answers `{error, message}`; the token check before it
 * answers a JSON-RPC error, as it does on /mcp.
 */
async function errorOf(response: Response): Promise<ApiError> {
  const body: unknown = await response.json().catch(() => null);
  const record = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const rpc = record.error;
  if (typeof rpc === "object" && rpc !== null && "message" in rpc) {
    const text = String((rpc as { message: unknown }).message);
    return new ApiError(response.status, `http_${response.status}`, text);
  }
  const code = typeof rpc === "string" ? rpc : `http_${response.status}`;
  const text = typeof record.message === "string" ? record.message : `HTTP ${response.status}`;
  return new ApiError(response.status, code, text);
}
