/**
 * The inspection JSON API, under /api, for the battle page and for people with curl. Every route
 * needs an inspection token (inspect-auth.ts).
 *
 *   GET /api/battles?status=ongoing|ended&limit=1..100&cursor=…   newest first, paginated
 *   GET /api/battles/:id?after=<seq>                              the battle, its events, delivery
 *   GET /api/battles/:id/live                                     WebSocket: the live feed
 */
import { Hono } from "hono";
import { reachesBattle } from "../../../common/battle-claims.ts";
import { LIVE_EXPIRES_HEADER } from "../../../durable-objects/battle-session.ts";
import { LIVE_PROTOCOL } from "../../../durable-objects/battle-types.ts";
import {
  battleIndex,
  battleSession,
  DEFAULT_LIST_LIMIT,
  describeIssues,
  isBattleId,
  listQuerySchema,
  stateQuerySchema,
} from "./battles.ts";
import { authFailure, configFailure, jsonError, NO_STORE } from "./http-errors.ts";
import {
  findToken,
  type InspectConfig,
  type Inspector,
  loadInspectConfig,
  verifyInspector,
} from "./inspect-auth.ts";

type ConfigResult = ReturnType<typeof loadInspectConfig>;

// Bindings do not change within an isolate: validate them once per env object.
const configs = new WeakMap<object, ConfigResult>();

function configFor(env: Env): ConfigResult {
  let config = configs.get(env);
  if (!config) {
    config = loadInspectConfig(env);
    configs.set(env, config);
  }
  return config;
}

/** Whether `inspector`'s token shows battle `id`: a token with a `battles` claim, only those. */
function inspects(inspector: Inspector, id: string): boolean {
  return reachesBattle(inspector, id);
}

function notReported(id: string): Response {
  return jsonError(404, "not_found", `No battle "${id}" has been reported.`);
}

export const inspectApi = new Hono<{ Bindings: Env; Variables: { inspector: Inspector } }>();

inspectApi.use("*", async (c, next) => {
  const config: ConfigResult = configFor(c.env);
  if (!config.ok) return configFailure(config.error);
  const token = findToken(c.req.raw);
  if (!token.ok) return authFailure(token.failure);
  const inspector = await verifyInspector(token.value, config.value satisfies InspectConfig);
  if (!inspector.ok) return authFailure(inspector.failure);
  c.set("inspector", inspector.value);
  await next();
});

inspectApi.get("/battles", async (c) => {
  const query = listQuerySchema.safeParse(c.req.query());
  if (!query.success) return jsonError(400, "invalid_request", describeIssues(query.error));
  const { status, limit = DEFAULT_LIST_LIMIT, cursor } = query.data;
  const ids = c.get("inspector").battles;
  const listed = await battleIndex(c.env).list({ status, limit, cursor, ids });
  if (!listed.ok) return jsonError(400, "invalid_request", `cursor: ${listed.error.message}`);
  return c.json(listed.page, 200, NO_STORE);
});

inspectApi.get("/battles/:id", async (c) => {
  const id = c.req.param("id");
  if (!isBattleId(id)) return jsonError(400, "invalid_request", "not a battle id");
  const query = stateQuerySchema.safeParse(c.req.query());
  if (!query.success) return jsonError(400, "invalid_request", describeIssues(query.error));
  // A battle the token does not list is answered as one never reported.
  if (!inspects(c.get("inspector"), id)) return notReported(id);
  const session = battleSession(c.env, id);
  const state = await session.getState(query.data.after ?? 0);
  if (!state.battle) return notReported(id);
  // How far the battle platform has it (null when webhooks are off): docs/design.md.
  const delivery = await session.deliveryStatus();
  return c.json({ ...state, delivery }, 200, NO_STORE);
});

inspectApi.get("/battles/:id/live", async (c) => {
  const id = c.req.param("id");
  if (!isBattleId(id)) return jsonError(400, "invalid_request", "not a battle id");
  if (!inspects(c.get("inspector"), id)) return notReported(id);
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    return jsonError(426, "upgrade_required", "This is a WebSocket endpoint.", {
      Upgrade: "websocket",
    });
  }
  // A token guards this socket, not a cookie, so a foreign page cannot ride a viewer's session;
  // refusing foreign origins anyway keeps the feed to the page that was meant to show it.
  const origin = c.req.header("Origin");
  if (origin !== undefined && origin !== new URL(c.req.url).origin) {
    return jsonError(403, "forbidden_origin", "This origin may not open the live feed.");
  }
  // Battles that have not started yet can be watched too: the first event arrives live.
  const upstream = await battleSession(c.env, id).fetch("https://battle-session/live", {
    headers: {
      Upgrade: "websocket",
      [LIVE_EXPIRES_HEADER]: String(c.get("inspector").expiresAt),
    },
  });
  if (upstream.status === 503) {
    return jsonError(503, "too_many_viewers", await upstream.text(), { "Retry-After": "30" });
  }
  if (upstream.status !== 101 || !upstream.webSocket) {
    console.error(JSON.stringify({ event: "live_upgrade_failed", status: upstream.status }));
    return jsonError(502, "live_unavailable", "The live feed could not be opened.");
  }
  // Select our subprotocol only if the client offered it (a browser did, with the token), and
  // never echo the token entry back.
  const offered =
    c.req
      .header("Sec-WebSocket-Protocol")
      ?.split(",")
      .map((p) => p.trim()) ?? [];
  const headers = new Headers();
  if (offered.includes(LIVE_PROTOCOL)) headers.set("Sec-WebSocket-Protocol", LIVE_PROTOCOL);
  return new Response(null, { status: 101, webSocket: upstream.webSocket, headers });
});
