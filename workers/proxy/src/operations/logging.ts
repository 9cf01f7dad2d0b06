/**
 * `logging/setLevel` through `/mcp`: the gateway keeps no sessions towards agents, so the level
 * belongs to the backends. It goes to each server the agent may reach, where a backend with a
 * session for this agent keeps it; a backend without logging, or one that is down, drops out.
 * The SDK server still filters what it relays by the level a 2026-07-28 request carries itself.
 */

import { serversFor } from "../core/policy.ts";
import type { OperationCall } from "./call.ts";
import { fanOut } from "./fan-out.ts";

export async function setLevel(
  call: OperationCall,
  params: { level: string },
): Promise<Record<string, never>> {
  const { config, agent } = call.ctx;
  await fanOut(call, serversFor(config.policy, agent), "logging", async (ask) => {
    await ask("logging/setLevel", { level: params.level });
    return [];
  });
  return {};
}
