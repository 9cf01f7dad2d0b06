/**
 * A retried report_id across a crash: an agent reports through the proxy, the whole system is
 * killed (SIGKILL of the launcher's process group, so mcp1's workerd gets no chance to tidy up),
 * `npm start`'s launcher starts again on the same state, and the agent, which never saw whether
 * its report landed, sends it again. It gets the event stored before the kill, and the battle
 * holds it once (docs/design.md, "Battle state (mcp1)", "Safe retries").
 */
import { afterAll, describe, expect, it } from "vitest";
import { mintInspectionToken } from "../../keys/mint.ts";
import { alive, connectAgent, type Launched, launch } from "./launcher.ts";

let system: Launched | undefined;

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
}, 30_000);

const battle = `retry-crash-${Date.now()}`;
const progress = {
  battle_id: battle,
  message: "Green crosses the river",
  reported_by: "scout",
  detail: { sector: "B4" },
  report_id: "turn-1",
};
const ending = {
  battle_id: battle,
  message: "Green holds the bridge",
  reported_by: "umpire",
  winner: "green",
  report_id: "final",
};

async function callAll(proxyUrl: URL) {
  const agent = await connectAgent(proxyUrl, "agent_name1");
  try {
    const first = await agent.callTool({ name: "mcp1_update_battle_process", arguments: progress });
    const second = await agent.callTool({ name: "mcp1_report_on_battle_end", arguments: ending });
    return [first, second];
  } finally {
    await agent.close().catch(() => {});
  }
}

async function eventCount(launched: Launched): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${launched.ports.mcp1}/api/battles/${battle}`, {
    headers: { Authorization: `Bearer ${await mintInspectionToken()}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { events: unknown[] }).events.length;
}

/** Resolves once nothing answers on the proxy's port any more. */
async function portsClosed(launched: Launched): Promise<void> {
  await expect
    .poll(
      () =>
        fetch(`http://127.0.0.1:${launched.ports.proxy}/healthz`).then(
          () => "open",
          () => "closed",
        ),
      { timeout: 10_000, interval: 100 },
    )
    .toBe("closed");
}

describe("a retried report_id across a killed wrangler dev", () => {
  it("answers with the event stored before the kill, and stores it once", async () => {
    system = await launch({ detached: true });
    const [first, second] = await callAll(system.proxyUrl);
    expect(first?.isError).toBeFalsy();
    expect(second?.isError).toBeFalsy();
    expect(await eventCount(system)).toBe(2);

    const killed = system;
    process.kill(-(killed.child.pid as number), "SIGKILL");
    await portsClosed(killed);
    await expect
      .poll(() => Object.values(killed.pids).filter(alive), { timeout: 10_000, interval: 100 })
      .toEqual([]);

    system = await launch();
    const [again, endAgain] = await callAll(system.proxyUrl);
    expect(again?.structuredContent).toEqual(first?.structuredContent);
    expect(endAgain?.structuredContent).toEqual(second?.structuredContent);
    expect(again?.structuredContent).toMatchObject({ event: { seq: 1, report_id: "turn-1" } });
    expect(await eventCount(system)).toBe(2);

    // The same report_id with another report is still refused after the restart.
    const agent = await connectAgent(system.proxyUrl, "agent_name1");
    const changed = await agent.callTool({
      name: "mcp1_update_battle_process",
      arguments: { ...progress, message: "something else" },
    });
    await agent.close();
    expect(changed.isError).toBe(true);
    expect(changed.structuredContent).toMatchObject({ error: { code: "report_id_reused" } });
    expect(await eventCount(system)).toBe(2);
    await system.stop();
  }, 300_000);
});
