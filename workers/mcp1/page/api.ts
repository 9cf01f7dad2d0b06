/** The inspection JSON API, called with the token as a bearer header (never in the URL). */

import { callApi } from "../../../common/page/api.ts";
import type {
  BattlePage,
  BattleState,
  BattleStatus,
  DeliveryStatus,
} from "../../../durable-objects/battle-types.ts";

export { ApiError } from "../../../common/page/api.ts";

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
  return callApi<BattlePage>(`/api/battles${search}`, token);
}

/** A battle, up to 100 of its events after `after`, and its delivery (null: webhooks off). */
export type BattleAnswer = BattleState & { delivery: DeliveryStatus | null };

/** A battle and up to 100 of its events after `after`. */
export function getBattle(token: string, id: string, after: number): Promise<BattleAnswer> {
  return callApi<BattleAnswer>(`/api/battles/${encodeURIComponent(id)}?after=${after}`, token);
}
