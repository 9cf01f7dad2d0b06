/**
 * The figures under load: throughput with wrk against direct and against a pass-through Worker,
 * and battle events per second. run.ts calls them after the request-by-request figures.
 */
import { battleRate } from "./battle.ts";
import type { Endpoint } from "./endpoint.ts";
import type { Plan } from "./plan.ts";
import { attempt, type Outcome, type Results } from "./results.ts";
import { callBody } from "./rpc.ts";
import type { System } from "./system.ts";
import { type LoadResult, runLoad } from "./wrk.ts";

type Log = (line: string) => void;

/**
 * wrk at 1, 16 and 64 connections: proxy, pass-through, mcp2's door and direct, into
 * results.throughput.
 */
export async function throughput(
  system: System,
  plan: Plan,
  results: Results,
  log: Log,
): Promise<void> {
  // [name, endpoint, tool, connection counts]; the pass-through Worker runs where the throughput
  // target is read (64): its share of direct is the ceiling for any Worker hop. mcp2's door runs
  // there too, beside /mcp to the same backend.
  const targets: [string, Endpoint, string, number[]][] = [
    ["proxy→mcp1", system.proxy, "mcp1_echo", plan.connections],
    ["pass-through→mcp1", system.passThrough.mcp1, "echo", [64]],
    ["mcp1", system.direct.mcp1, "echo", plan.connections],
    ["proxy→mcp2", system.proxy, "mcp2_echo", plan.connections],
    ["pass-through→mcp2", system.passThrough.mcp2, "echo", [64]],
    ["door→mcp2", system.door.mcp2, "echo", [64]],
    ["mcp2", system.direct.mcp2, "echo", plan.connections],
  ];
  // One unrecorded second per target first (the echo rounds have already warmed the JITs).
  for (const [, endpoint, tool] of plan.quick ? [] : targets) {
    await runLoad({
      endpoint,
      body: callBody(tool, { message: "bench" }),
      expect: "Echo: bench",
      connections: 16,
      seconds: 1,
    });
  }
  // Connection counts outermost, so proxy and direct points sit next to each other in time.
  for (const connections of plan.connections) {
    for (const [name, endpoint, tool, counts] of targets) {
      if (!counts.includes(connections)) continue;
      log(`load: ${name}, ${connections} connection(s), ${plan.loadSeconds} s`);
      results.throughput[name] ??= {};
      (results.throughput[name] as Record<number, Outcome<LoadResult>>)[connections] =
        await attempt(
          `load ${name} @${connections}`,
          () =>
            runLoad({
              endpoint,
              body: callBody(tool, { message: "bench" }),
              expect: "Echo: bench",
              connections,
              seconds: plan.loadSeconds,
            }),
          log,
        );
    }
  }
}

/** Battle events per second through the proxy, then straight to mcp1. */
export async function battles(system: System, plan: Plan, log: Log): Promise<Results["battle"]> {
  return {
    proxy: await attempt(
      "battle via proxy",
      () =>
        battleRate(
          system.proxy,
          "mcp1_update_battle_process",
          plan.battleEvents,
          plan.battleCallers,
        ),
      log,
    ),
    direct: await attempt(
      "battle direct",
      () =>
        battleRate(
          system.direct.mcp1,
          "update_battle_process",
          plan.battleEvents,
          plan.battleCallers,
        ),
      log,
    ),
  };
}
