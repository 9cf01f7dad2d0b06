/**
 * mcp1, the battle-reporting MCP server (docs/design.md). The proxy reaches /mcp over a service
 * binding; people inspect battles through the page and the JSON API. It owns the BattleSession
 * and BattleIndex Durable Objects, which it must export from this entry module.
 *
 * Routes:
 *   GET  /healthz                 liveness
 *   *    /mcp                     Streamable HTTP, 2025-era and 2026-07-28 clients (the proxy)
 *   GET  /battles, /battles/:id   the battle page (static HTML, no data; needs no token)
 *   GET  /battles/assets/*        its script and stylesheet
 *   GET  /api/…                   inspection JSON API and live feed (inspection token)
 */

import { env } from "cloudflare:workers";
import { createMcpHandler } from "agents/mcp/server";
import { Hono } from "hono";
import { createBattleServer } from "./battle-server.ts";
import { agentOf } from "./caller.ts";
import { inspectApi } from "./inspect-api.ts";
import { assetResponse, pageResponse } from "./page.ts";

export { BattleIndex } from "../../../durable-objects/battle-index.ts";
export { BattleSession } from "../../../durable-objects/battle-session.ts";

// The SDK calls the factory once per request and hands it that request as `requestInfo`, in both
// protocol eras; reading the agent there binds it to this request's tool calls only.
const mcp = createMcpHandler(
  ({ requestInfo }) => createBattleServer(env, agentOf(requestInfo)),
  // Only the proxy (server to server) talks to /mcp; browsers have no business there.
  { corsOptions: false },
);

const app = new Hono<{ Bindings: Env }>();

app.get("/healthz", (c) => c.json({ status: "ok", server: "mcp1" }));
app.all("/mcp", (c) => mcp(c.req.raw, c.env, c.executionCtx as ExecutionContext));

app.get("/battles/assets/*", (c) => assetResponse(c.env.ASSETS, c.req.raw));
app.get("/battles", () => pageResponse());
app.get("/battles/:id", () => pageResponse());
app.route("/api", inspectApi);

app.notFound((c) => c.json({ error: "not_found", path: c.req.path }, 404));

app.onError((err, c) => {
  console.error(JSON.stringify({ event: "unhandled_error", path: c.req.path, error: String(err) }));
  return c.json({ error: "internal_error", message: "Something went wrong in mcp1." }, 500);
});

export default app;
