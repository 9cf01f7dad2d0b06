/**
 * Battles as MCP resources (MCP spec, "Resources"): every battle is `battle://<battle_id>`, listed
 * newest first with cursor pagination, and the template `battle://{battle_id}` names any battle by
 * id. Reading one returns its state as JSON: the battle, up to 100 events, and where to read on.
 *
 * URIs follow RFC 6570 simple expansion: the id is percent-encoded, so `game:42` becomes
 * `battle://game%3A42` (ids never contain `/`, `?` or `#`). Reading accepts the id encoded or not,
 * and `?after=<seq>` for the next page of events. The proxy adds its own server prefix in front.
 *
 * Registered on the low-level server rather than with McpServer.registerResource, because
 * McpServer's `resources/list` does not page: one list call would have to return every battle.
 */
import {
  type McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type Resource,
  ResourceNotFoundError,
} from "@modelcontextprotocol/server";
import { type BattleClaims, reachesBattle } from "../../../common/battle-claims.ts";
import type { BattleSummary } from "../../../durable-objects/battle-types.ts";
import { battleIndex, battleSession, isBattleId } from "./battles.ts";

export const BATTLE_URI_PREFIX = "battle://";
/** The resource template every battle URI matches. */
export const BATTLE_URI_TEMPLATE = "battle://{battle_id}";
/** Battles per `resources/list` page. */
export const RESOURCES_PAGE_SIZE = 50;
const JSON_TYPE = "application/json";

/** The URI of battle `id`; with `after`, of its events after that sequence number. */
export function battleUri(id: string, after = 0): string {
  const base = `${BATTLE_URI_PREFIX}${encodeURIComponent(id)}`;
  return after > 0 ? `${base}?after=${after}` : base;
}

/** The battle and position a URI names, or null when it names no battle. */
export function parseBattleUri(uri: string): { id: string; after: number } | null {
  if (!uri.startsWith(BATTLE_URI_PREFIX)) return null;
  const [encoded = "", query, ...rest] = uri.slice(BATTLE_URI_PREFIX.length).split("?");
  if (rest.length > 0) return null;
  let id: string;
  try {
    id = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (!isBattleId(id)) return null;
  if (query === undefined) return { id, after: 0 };
  const after = /^after=(\d{1,15})$/.exec(query)?.[1];
  return after === undefined ? null : { id, after: Number(after) };
}

/**
 * Adds `resources/list`, `resources/templates/list` and `resources/read` for battles. An agent
 * whose token lists battles (`claims.battles`) sees only those; a battle outside the list is
 * answered as one that does not exist.
 */
export function registerBattleResources(
  server: McpServer,
  env: Pick<Env, "BATTLE" | "BATTLE_INDEX">,
  claims: BattleClaims = {},
): void {
  server.server.registerCapabilities({ resources: {} });

  server.server.setRequestHandler("resources/list", async (request) => {
    const listed = await battleIndex(env).list({
      limit: RESOURCES_PAGE_SIZE,
      cursor: request.params?.cursor,
      ids: claims.battles,
    });
    if (!listed.ok) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid cursor`);
    }
    const { battles, next_cursor } = listed.page;
    return {
      resources: battles.map(toResource),
      ...(next_cursor === null ? {} : { nextCursor: next_cursor }),
    };
  });

  server.server.setRequestHandler("resources/templates/list", async () => ({
    resourceTemplates: [
      {
        uriTemplate: BATTLE_URI_TEMPLATE,
        name: "battle",
        title: "Battle by id",
        description:
          "A battle's status, winner and event log as JSON: { battle, events, next_after, " +
          "next_uri }. Up to 100 events per read; read next_uri for the rest.",
        mimeType: JSON_TYPE,
      },
    ],
  }));

  server.server.setRequestHandler("resources/read", async (request) => {
    const { uri } = request.params;
    const target = parseBattleUri(uri);
    if (!target || !reachesBattle(claims, target.id)) throw new ResourceNotFoundError(uri);
    const state = await battleSession(env, target.id).getState(target.after);
    if (!state.battle) throw new ResourceNotFoundError(uri);
    const nextUri = state.next_after === null ? null : battleUri(target.id, state.next_after);
    return {
      contents: [
        { uri, mimeType: JSON_TYPE, text: JSON.stringify({ ...state, next_uri: nextUri }) },
      ],
    };
  });
}

function toResource(battle: BattleSummary): Resource {
  const outcome = battle.status === "ended" ? `ended, winner ${battle.winner}` : "ongoing";
  const events = battle.event_count === 1 ? "1 event" : `${battle.event_count} events`;
  return {
    uri: battleUri(battle.id),
    name: battle.id,
    title: `Battle ${battle.id}`,
    description: `${outcome}; ${events}; last update ${battle.updated_at}`,
    mimeType: JSON_TYPE,
    annotations: { lastModified: battle.updated_at },
  };
}
