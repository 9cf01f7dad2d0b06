/**
 * What BattleSession does for inspection besides keeping the log: pushing its summary to the
 * index (coalesced, monotonic, healed after a lost push), migrating older storage, and keeping
 * viewers' sockets across eviction (the Hibernation API).
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { LiveMessage } from "../../../durable-objects/battle-types.ts";
import { indexed, inspectToken, ORIGIN, report, session, uniqueId } from "./helpers.ts";

describe("BattleSession and the index", () => {
  it("records 300 concurrent reports gaplessly, and the index converges on all of them", async () => {
    const id = uniqueId("flood");
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        session(id).appendProgress({
          battle_id: id,
          message: `m${i}`,
          reported_by: `unit-${i % 3}`,
          agent: i % 2 ? "agent_name1" : "agent_name2",
          // Whichever comes first opens the battle; the other is bound to it by its token.
          access: { battles: [id] },
        }),
      ),
    );
    const seqs = answers.map((a) => (a.ok ? a.event.seq : -1)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    const entry = await indexed(id, (b) => b.event_count === 300);
    expect(entry.agents.sort()).toEqual(["agent_name1", "agent_name2"]);
    expect(entry.reporters.sort()).toEqual(["unit-0", "unit-1", "unit-2"]);
  });

  it("re-pushes a summary the index missed when the object next wakes", async () => {
    const id = uniqueId("heal");
    await report(id, 2);
    await indexed(id, (b) => b.event_count === 2);
    // Simulate a push that failed every retry: the object believes the index is behind.
    await runInDurableObject(session(id), async (_instance, state) => {
      await state.storage.deleteAlarm();
      state.storage.sql.exec("UPDATE meta SET value = 0 WHERE key = 'indexed_seq'");
    });
    await evictDurableObject(session(id));
    await session(id).getState(); // wakes it: the constructor schedules a push
    await runDurableObjectAlarm(session(id));
    expect(
      await runInDurableObject(
        session(id),
        (_instance, state) =>
          state.storage.sql.exec("SELECT value FROM meta WHERE key = 'indexed_seq'").one().value,
      ),
    ).toBe(2);
  });

  it("migrates storage from before versioning: participants are backfilled from the log", async () => {
    const id = uniqueId("legacy");
    await report(id, 1, "agent_name1", "scout");
    await report(id, 1, null, "lookout", { battles: [id] });
    // Back to the first layout: no meta, no participants, no owner, no report ids.
    await runInDurableObject(session(id), (_instance, state) => {
      state.storage.sql.exec(
        `DROP TABLE participants; DROP TABLE meta; DROP INDEX events_by_report_id;
         ALTER TABLE events DROP COLUMN report_id; ALTER TABLE battle DROP COLUMN owner;`,
      );
    });
    await evictDurableObject(session(id));
    // The agent of the first event owns the battle: a stranger is refused, the owner is not.
    const stranger = await session(id).appendProgress({
      battle_id: id,
      message: "mine now",
      reported_by: "scout",
      agent: "agent_name2",
    });
    expect(stranger.ok ? "stored" : stranger.error.code).toBe("not_permitted");
    await report(id, 1, "agent_name1", "scout");
    await report(id, 1, "agent_name2", "scout", { battles: [id] });
    const entry = await indexed(id, (b) => b.event_count === 4);
    expect(entry.agents).toEqual(["agent_name1", "agent_name2"]);
    expect(entry.reporters).toEqual(["scout", "lookout"]);
    const tables = await runInDurableObject(session(id), (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .toArray()
        .map((t) => t.name),
    );
    expect(tables).toEqual(expect.arrayContaining(["battle", "events", "meta", "participants"]));
  });
});

describe("viewers across eviction", () => {
  it("keeps a viewer's socket open while the object is evicted, and delivers the next event", async () => {
    const id = uniqueId("hibernate");
    await report(id, 1);
    const response = await exports.default.fetch(`${ORIGIN}/api/battles/${id}/live`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await inspectToken()}` },
    });
    const ws = response.webSocket;
    if (!ws) throw new Error(`no socket: ${response.status}`);
    const messages: LiveMessage[] = [];
    ws.addEventListener("message", (e) => {
      messages.push(JSON.parse(e.data as string));
    });
    ws.accept();
    await expect.poll(() => messages.length).toBe(1);

    await evictDurableObject(session(id));
    await report(id, 1, "agent_name2", "lookout", { battles: [id] });
    await expect.poll(() => messages.length).toBe(2);
    expect(messages[1]).toMatchObject({ type: "event", event: { seq: 2, agent: "agent_name2" } });
    ws.close(1000, "done");
  });
});
