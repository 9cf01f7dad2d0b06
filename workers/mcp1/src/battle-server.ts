/**
 * The MCP server mcp1 serves: `echo`, the two battle tools of docs/design.md, and every battle as a
 * resource (resources.ts). One instance per HTTP request (the SDK's stateless serving), so the
 * calling agent can be bound into the handlers.
 */
import { McpServer } from "@modelcontextprotocol/server";
import { registerEcho } from "../../../common/echo.ts";
import { endArgsSchema, progressArgsSchema } from "../../../durable-objects/battle-input.ts";
import { battleSession } from "./battles.ts";
import type { VerifiedCaller } from "./caller.ts";
import { registerBattleResources } from "./resources.ts";
import { toToolResult } from "./tool-results.ts";

/**
 * Builds the mcp1 server for one request the proxy made on behalf of `caller`: its assertion's
 * `sub` and the agent token's battle claims it carried.
 */
export function createBattleServer(
  env: Pick<Env, "BATTLE" | "BATTLE_INDEX">,
  caller: Pick<VerifiedCaller, "agent" | "claims">,
): McpServer {
  const { agent, claims: access } = caller;
  const server = new McpServer({ name: "mcpcp-mcp1", version: "0.1.0" });
  registerEcho(server);

  // One Durable Object per battle: reports for the same battle_id serialise on one object.
  const battle = (battleId: string) => battleSession(env, battleId);

  server.registerTool(
    "update_battle_process",
    {
      title: "Report battle progress",
      description:
        "Append a progress event to a battle's log: what just happened, who reports it, and " +
        "optionally structured detail (a JSON object) and a Markdown write-up. The first report " +
        "for a battle_id starts that battle, and the calling agent owns it; others may report " +
        "on it only when their token names the battle. Returns the event's sequence number " +
        "and the battle's status. Give a report_id to make a retry safe: the same report_id " +
        "returns the stored event instead of adding one. A refusal is a tool error with a code: " +
        "battle_ended once the battle has ended, not_permitted for a battle the caller may " +
        "not report on, report_id_reused, invalid_input.",
      inputSchema: progressArgsSchema,
      // Idempotent only with a report_id; without one every call appends.
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    },
    async (args) =>
      toToolResult(await battle(args.battle_id).appendProgress({ ...args, agent, access })),
  );

  server.registerTool(
    "report_on_battle_end",
    {
      title: "Report battle result",
      description:
        "Record how a battle ended: append the result event with the winner ('green', 'blue', " +
        "'red' or 'draw') and close the battle, after which it accepts no further events. " +
        "Only the agent that opened the battle, or one whose token binds it to the battle as " +
        "judge, may. Call it once per battle; a second call fails with a tool error naming the " +
        "recorded winner. With a report_id, a retry (even after the end) returns the stored " +
        "result event.",
      inputSchema: endArgsSchema,
      // Idempotent only with a report_id; without one every call appends.
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    },
    async (args) =>
      toToolResult(await battle(args.battle_id).reportEnd({ ...args, agent, access })),
  );

  registerBattleResources(server, env, access);
  return server;
}
