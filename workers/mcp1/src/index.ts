/**
 * mcp1, the battle-reporting MCP server (docs/design.md). The proxy reaches /mcp over a service
 * binding, with its signed assertion on every request; people inspect battles through the page
 * and the JSON API. It owns the BattleSession and BattleIndex Durable Objects, which it must
 * export from this entry module.
 *
 * Routes:
 *   GET  /healthz                 liveness
 *   *    /mcp                     Streamable HTTP, 2025-era and 2026-07-28 clients (the proxy's
 *                                 assertion required: caller.ts)
 *   GET  /battles, /battles/:id   the battle page (static HTML, no data; needs no token)
 *   GET  /battles/assets/*        its script and stylesheet
 *   GET  /api/…                   inspection JSON API and live feed (inspection token)
 *   GET  /.well-known/battle-webhook-jwks.json   public keys of the battle webhook's signatures
 */

import { env } from "cloudflare:workers";
import { createMcpHandler } from "agents/mcp/server";
import { Hono } from "hono";
import { WEBHOOK_JWKS_PATH } from "../../../common/battle-webhook.ts";
import { createBattleServer } from "./battle-server.ts";
import { callerOf, type VerifiedCaller } from "./caller.ts";
import { inspectApi } from "./inspect-api.ts";
import { assetResponse, pageResponse } from "./page.ts";
import { webhookJwksResponse } from "./webhook-jwks.ts";

export { BattleIndex } from "../../../durable-objects/battle-index.ts";
export { BattleSession } from "../../../durable-objects/battle-session.ts";

// The SDK calls the factory once per request, in both protocol eras, with the `authInfo` the
// route below passes: the agent and its battle claims from this request's verified assertion,
// bound into this request's tool calls and resources only. The SDK never derives `authInfo` from headers itself.
const mcp = createMcpHandler(
  ({ authInfo }) => {
    const caller = authInfo?.extra?.caller as VerifiedCaller | undefined;
    if (!caller) throw new Error("an /mcp request reached the MCP handler without its caller");
    return createBattleServer(env, caller);
  },
  // Only the proxy (server to server) talks to /mcp; browsers have no business there.
  { corsOptions: false },
);

const app = new Hono<{ Bindings: Env }>();

app.get("/healthz", (c) => c.json({ status: "ok", server: "mcp1" }));
app.all("/mcp", async (c) => {
  const caller = await callerOf(c.req.raw, c.env);
  if (!caller.ok) return caller.response;
  const { agent, assertionId, claims } = caller;
  return mcp.fetch(c.req.raw, {
    authInfo: {
      token: "",
      clientId: agent,
      scopes: [],
      extra: { caller: { agent, assertionId, claims } satisfies VerifiedCaller },
    },
  });
});

app.get("/battles/assets/*", (c) => assetResponse(c.env.ASSETS, c.req.raw));
app.get("/battles", () => pageResponse());
app.get("/battles/:id", () => pageResponse());
app.route("/api", inspectApi);
app.get(WEBHOOK_JWKS_PATH, (c) => webhookJwksResponse(c.env));

app.notFound((c) => c.json({ error: "not_found", path: c.req.path }, 404));

app.onError((err, c) => {
  console.error(JSON.stringify({ event: "unhandled_error", path: c.req.path, error: String(err) }));
  return c.json({ error: "internal_error", message: "Something went wrong in mcp1." }, 500);
});

export default app;
