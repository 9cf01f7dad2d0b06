/**
 * mcp1, the battle-reporting MCP server (DESIGN.md). The proxy reaches it over a service binding;
 * it owns the BattleSession Durable Objects, which it must export from this entry module.
 *
 * Routes: `GET /healthz`, `/mcp` (Streamable HTTP, 2025-era and 2026-07-28 clients), else 404.
 */

import { env } from "cloudflare:workers";
import { createMcpHandler } from "agents/mcp/server";
import { createBattleServer } from "./battle-server.ts";
import { agentOf } from "./caller.ts";

export { BattleSession } from "../../../durable-objects/battle-session.ts";

// The SDK calls the factory once per request and hands it that request as `requestInfo`, in both
// protocol eras; reading the agent there binds it to this request's tool calls only.
const mcp = createMcpHandler(
  ({ requestInfo }) => createBattleServer(env.BATTLE, agentOf(requestInfo)),
  // Only the proxy (server to server) talks to mcp1; browsers have no business here.
  { corsOptions: false },
);

export default {
  async fetch(request, workerEnv, ctx): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz" && request.method === "GET") {
      return Response.json({ status: "ok", server: "mcp1" });
    }
    if (pathname === "/mcp") return mcp(request, workerEnv, ctx);
    return Response.json({ error: "not_found", path: pathname }, { status: 404 });
  },
} satisfies ExportedHandler<Env>;
