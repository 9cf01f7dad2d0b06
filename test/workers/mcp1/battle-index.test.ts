/**
 * BattleIndex on its own, through RPC, on instances no other test touches: ordering, status
 * filter, cursor pages, and that stale or repeated summaries never move an entry backwards.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../../durable-objects/battle-index.ts";
import type { BattleSummary } from "../../../durable-objects/battle-types.ts";
import { uniqueId } from "./helpers.ts";

function freshIndex() {
  return env.BATTLE_INDEX.get(env.BATTLE_INDEX.idFromName(uniqueId("index")));
}

function summary(id: string, createdAt: string, extra: Partial<BattleSummary> = {}): BattleSummary {
  return {
    id,
    status: "ongoing",
    winner: null,
    event_count: 1,
    created_at: createdAt,
    updated_at: createdAt,
    agents: ["agent_name1"],
    reporters: ["scout"],
    ...extra,
  };
}

async function page(index: ReturnType<typeof freshIndex>, query: Parameters<typeof index.list>[0]) {
  const result = await index.list(query);
  if (!result.ok) throw new Error(result.error.message);
  return result.page;
}

describe("BattleIndex", () => {
  it("lists newest first by creation, ties broken by id", async () => {
    const index = freshIndex();
    await index.record(summary("a", "2026-01-01T00:00:01.000Z"));
    await index.record(summary("c", "2026-01-01T00:00:03.000Z"));
    await index.record(summary("b", "2026-01-01T00:00:03.000Z"));
    await index.record(summary("d", "2026-01-01T00:00:02.000Z"));
    const { battles, next_cursor } = await page(index, { limit: 10 });
    expect(battles.map((b) => b.id)).toEqual(["c", "b", "d", "a"]);
    expect(next_cursor).toBeNull();
  });

  it("pages with cursors that stay valid while listed battles change", async () => {
    const index = freshIndex();
    for (let i = 0; i < 10; i++) {
      await index.record(summary(`b${i}`, `2026-01-01T00:00:${String(i).padStart(2, "0")}.000Z`));
    }
    const first = await page(index, { limit: 4 });
    expect(first.battles.map((b) => b.id)).toEqual(["b9", "b8", "b7", "b6"]);
    // An update to a battle on the first page must not shift the next pages.
    await index.record(summary("b9", "2026-01-01T00:00:09.000Z", { event_count: 5 }));
    const second = await page(index, { limit: 4, cursor: first.next_cursor ?? "" });
    expect(second.battles.map((b) => b.id)).toEqual(["b5", "b4", "b3", "b2"]);
    const third = await page(index, { limit: 4, cursor: second.next_cursor ?? "" });
    expect(third.battles.map((b) => b.id)).toEqual(["b1", "b0"]);
    expect(third.next_cursor).toBeNull();
  });

  it("filters by status, and pages within the filter", async () => {
    const index = freshIndex();
    for (let i = 0; i < 6; i++) {
      const ended = i % 2 === 0;
      await index.record(
        summary(`s${i}`, `2026-02-01T00:00:0${i}.000Z`, {
          status: ended ? "ended" : "ongoing",
          winner: ended ? "blue" : null,
        }),
      );
    }
    const ended = await page(index, { status: "ended", limit: 2 });
    expect(ended.battles.map((b) => b.id)).toEqual(["s4", "s2"]);
    const rest = await page(index, { status: "ended", limit: 2, cursor: ended.next_cursor ?? "" });
    expect(rest.battles.map((b) => b.id)).toEqual(["s0"]);
    const ongoing = await page(index, { status: "ongoing", limit: 10 });
    expect(ongoing.battles.map((b) => [b.id, b.status, b.winner])).toEqual([
      ["s5", "ongoing", null],
      ["s3", "ongoing", null],
      ["s1", "ongoing", null],
    ]);
  });

  it("keeps the summary with the most events: stale and repeated pushes change nothing", async () => {
    const index = freshIndex();
    const created = "2026-03-01T00:00:00.000Z";
    await index.record(
      summary("m", created, { event_count: 3, updated_at: "2026-03-01T00:00:03Z" }),
    );
    await index.record(
      summary("m", created, {
        event_count: 5,
        status: "ended",
        winner: "red",
        agents: ["agent_name1", "agent_name2"],
      }),
    );
    await index.record(summary("m", created, { event_count: 4 }));
    await index.record(summary("m", created, { event_count: 5 }));
    const [entry] = (await page(index, { limit: 10 })).battles;
    expect(entry).toMatchObject({
      id: "m",
      event_count: 5,
      status: "ended",
      winner: "red",
      agents: ["agent_name1", "agent_name2"],
    });
  });

  it("refuses a forged cursor and a limit out of range", async () => {
    const index = freshIndex();
    expect(await index.list({ limit: 10, cursor: "%%%" })).toMatchObject({
      ok: false,
      error: { code: "invalid_cursor" },
    });
    expect(await index.list({ limit: 10, cursor: btoa('{"a":1}') })).toMatchObject({ ok: false });
    expect(await index.list({ limit: 0 })).toMatchObject({
      ok: false,
      error: { code: "invalid_limit" },
    });
    expect(await index.list({ limit: 101 })).toMatchObject({ ok: false });
  });

  it("round-trips cursors", () => {
    const position = { created_at: "2026-01-01T00:00:00.000Z", id: "game:42" };
    expect(decodeCursor(encodeCursor(position))).toEqual(position);
    expect(encodeCursor(position)).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});
