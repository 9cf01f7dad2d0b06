/** The inspection JSON API, called with the token as a bearer header (never in the URL). */
import type {
  BattlePage,
  BattleState,
  BattleStatus,
  DeliveryStatus,
} from "../../../durable-objects/battle-types.ts";

/** An answer other than 2xx, with the API's stable error code. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The token is missing, wrong, expired or lacks the scope: ask for another. */
  get needsToken(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

async function getJson<T>(path: string, token: string): Promise<T> {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string; message?: string };
    throw new ApiError(
      response.status,
      body.error ?? "http_error",
      body.message ?? `HTTP ${response.status}`,
    );
  }
  return (await response.json()) as T;
}

/** One page of battles, newest first. */
export function listBattles(
  token: string,
  query: { status?: BattleStatus | undefined; cursor?: string | undefined; limit?: number },
): Promise<BattlePage> {
  const params = new URLSearchParams();
  if (query.status) params.set("status", query.status);
  if (query.cursor) params.set("cursor", query.cursor);
  if (query.limit) params.set("limit", String(query.limit));
  const search = params.size > 0 ? `?${params}` : "";
  return getJson<BattlePage>(`/api/battles${search}`, token);
}

/** A battle, up to 100 of its events after `after`, and its delivery (null: webhooks off). */
export type BattleAnswer = BattleState & { delivery: DeliveryStatus | null };

/** A battle and up to 100 of its events after `after`. */
export function getBattle(token: string, id: string, after: number): Promise<BattleAnswer> {
  return getJson<BattleAnswer>(`/api/battles/${encodeURIComponent(id)}?after=${after}`, token);
}
