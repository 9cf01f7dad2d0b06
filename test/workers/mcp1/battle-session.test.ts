/** The BattleSession Durable Object over RPC, as the mcp1 Worker uses it. */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EVENTS_PAGE_SIZE } from "../../../durable-objects/battle-session.ts";

// Each test uses its own battle id, so tests never share a Durable Object.
function session(battleId: string) {
  return env.BATTLE.get(env.BATTLE.idFromName(battleId));
}

function progress(battle_id: string, message: string, agent: string | null = "agent_name1") {
  return { battle_id, message, reported_by: "scout", agent };
}

describe("BattleSession", () => {
  it("numbers events 1, 2, 3 in arrival order and returns them oldest first", async () => {
    const battle = session("order");
    const answers = [];
    for (const message of ["first", "second", "third"]) {
      answers.push(await battle.appendProgress(progress("order", message)));
    }
    expect(answers.map((a) => (a.ok ? a.event.seq : -1))).toEqual([1, 2, 3]);

    const state = await battle.getState();
    expect(state.events.map((e) => [e.seq, e.message, e.kind])).toEqual([
      [1, "first", "progress"],
      [2, "second", "progress"],
      [3, "third", "progress"],
    ]);
    expect(state.battle).toMatchObject({ id: "order", status: "ongoing", winner: null });
    expect(state.next_after).toBeNull();
  });

  it("keeps sequence numbers gap-free under concurrent reports", async () => {
    const battle = session("concurrent");
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => battle.appendProgress(progress("concurrent", `m${i}`))),
    );
    const seqs = answers.map((a) => (a.ok ? a.event.seq : -1)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("stores every field of an event, with the calling agent, detail and markdown", async () => {
    const battle = session("fields");
    const answer = await battle.appendProgress({
      ...progress("fields", "Blue flanks left", "agent_name1"),
      detail: { sector: "B4", losses: { blue: 2 } },
      markdown_content: "## Turn 3\n- flank",
    });
    expect(answer).toMatchObject({
      ok: true,
      event: {
        seq: 1,
        kind: "progress",
        message: "Blue flanks left",
        reported_by: "scout",
        agent: "agent_name1",
        detail: { sector: "B4", losses: { blue: 2 } },
        markdown_content: "## Turn 3\n- flank",
      },
      battle: { id: "fields", status: "ongoing" },
    });
    if (answer.ok) expect(Date.parse(answer.event.at)).not.toBeNaN();
  });

  it("records a null agent when the proxy named none", async () => {
    const answer = await session("anon").appendProgress(progress("anon", "hello", null));
    expect(answer.ok && answer.event.agent).toBeNull();
    const state = await session("anon").getState();
    expect(state.events[0]?.agent).toBeNull();
  });

  it("ends the battle with the winner on the result event", async () => {
    const battle = session("ending");
    await battle.appendProgress(progress("ending", "skirmish"));
    const end = await battle.reportEnd({
      ...progress("ending", "Red holds the hill"),
      winner: "red",
    });
    expect(end).toMatchObject({
      ok: true,
      event: { seq: 2, kind: "result", message: "Red holds the hill" },
      battle: { id: "ending", status: "ended", winner: "red" },
    });
  });

  it("refuses progress and a second end after the battle ended, saying who won and when", async () => {
    const battle = session("closed");
    const end = await battle.reportEnd({ ...progress("closed", "over"), winner: "draw" });
    if (!end.ok) throw new Error(end.error.message);

    const late = await battle.appendProgress(progress("closed", "one more thing"));
    expect(late).toEqual({
      ok: false,
      error: {
        code: "battle_ended",
        message:
          `Battle "closed" already ended at ${end.battle.updated_at} with winner draw ` +
          "(result event #1). It accepts no further events; " +
          "report a new battle under a new battle_id.",
      },
    });
    const again = await battle.reportEnd({ ...progress("closed", "blue won"), winner: "blue" });
    expect(again.ok ? "" : again.error.code).toBe("battle_ended");

    const state = await battle.getState();
    expect(state.events).toHaveLength(1);
    expect(state.battle?.winner).toBe("draw");
  });

  it("refuses invalid input with a tagged error and stores nothing", async () => {
    const battle = session("invalid");
    const answer = await battle.appendProgress(progress("invalid", "m".repeat(4001)));
    expect(answer).toEqual({
      ok: false,
      error: { code: "invalid_input", message: "message: must be at most 4000 characters" },
    });
    expect(await battle.getState()).toEqual({ battle: null, events: [], next_after: null });
  });

  it("refuses an event addressed to another battle than the one it holds", async () => {
    const battle = session("mine");
    await battle.appendProgress(progress("mine", "start"));
    const answer = await battle.appendProgress(progress("theirs", "misrouted"));
    expect(answer.ok ? "" : answer.error.code).toBe("battle_id_mismatch");
  });

  it("keeps events and status after the object is evicted from memory", async () => {
    const battle = session("durable");
    await battle.appendProgress(progress("durable", "before eviction"));
    await battle.reportEnd({ ...progress("durable", "won"), winner: "green" });

    await evictDurableObject(battle);

    const state = await battle.getState();
    expect(state.battle).toMatchObject({ status: "ended", winner: "green" });
    expect(state.events.map((e) => e.message)).toEqual(["before eviction", "won"]);
    const late = await battle.appendProgress(progress("durable", "after eviction"));
    expect(late.ok ? "" : late.error.code).toBe("battle_ended");
  });

  it("pages through a long log with next_after", async () => {
    const battle = session("paging");
    for (let i = 1; i <= EVENTS_PAGE_SIZE + 5; i++) {
      await battle.appendProgress(progress("paging", `m${i}`));
    }
    const first = await battle.getState();
    expect(first.events).toHaveLength(EVENTS_PAGE_SIZE);
    expect(first.next_after).toBe(EVENTS_PAGE_SIZE);
    const rest = await battle.getState(first.next_after ?? 0);
    expect(rest.events.map((e) => e.seq)).toEqual([101, 102, 103, 104, 105]);
    expect(rest.next_after).toBeNull();
  });

  it("lays out storage as the README says: an events table and a one-row battle table", async () => {
    const battle = session("layout");
    await battle.appendProgress(progress("layout", "x"));
    await runInDurableObject(battle, (_instance, state) => {
      const sql = state.storage.sql;
      const tables = sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .toArray()
        .map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(["battle", "events"]));
      expect(() =>
        sql.exec("INSERT INTO battle VALUES (2, 'x', 'ongoing', NULL, 'a', 'a')"),
      ).toThrow();
      expect(() =>
        sql.exec(
          "INSERT INTO events (at, kind, message, reported_by) VALUES ('a', 'other', 'm', 'r')",
        ),
      ).toThrow();
    });
  });
});
