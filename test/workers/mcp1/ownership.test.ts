/**
 * Battles belong to their participants, and retries are safe: the two battle tools called over MCP
 * the way the proxy calls them (a fresh assertion per request, carrying the agent token's
 * `battles` and `battle_role` claims), with the real SDK v2 client. docs/design.md, "Battle state
 * (mcp1)".
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import type { BattleClaims } from "../../../common/battle-claims.ts";
import { asProxy, session, uniqueId } from "./helpers.ts";

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function agent(name: string, claims?: BattleClaims): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL("http://mcp1/mcp"), {
    fetch: asProxy(name, claims),
  });
  const client = new Client({ name: "mcp1-ownership-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

type ToolAnswer = {
  isError?: boolean;
  content?: unknown;
  structuredContent?: { error?: { code: string; message: string } } & Record<string, unknown>;
};

function progress(client: Client, battleId: string, more: Record<string, unknown> = {}) {
  return client.callTool({
    name: "update_battle_process",
    arguments: { battle_id: battleId, message: "a move", reported_by: "scout", ...more },
  }) as Promise<ToolAnswer>;
}

function end(client: Client, battleId: string, more: Record<string, unknown> = {}) {
  return client.callTool({
    name: "report_on_battle_end",
    arguments: {
      battle_id: battleId,
      message: "over",
      reported_by: "umpire",
      winner: "green",
      ...more,
    },
  }) as Promise<ToolAnswer>;
}

function text(answer: ToolAnswer): string {
  const [first] = (answer.content ?? []) as { type: string; text?: string }[];
  return first?.text ?? "";
}

function code(answer: ToolAnswer): string | undefined {
  return answer.isError ? answer.structuredContent?.error?.code : "ok";
}

async function eventCount(battleId: string): Promise<number> {
  return (await session(battleId).getState()).events.length;
}

describe("ownership", () => {
  it("refuses another agent's progress and end on a battle it does not own, naming nobody", async () => {
    const id = uniqueId("owned");
    const owner = await agent("owner_one");
    expect(code(await progress(owner, id))).toBe("ok");

    const stranger = await agent("stranger_two");
    for (const answer of [await progress(stranger, id), await end(stranger, id)]) {
      expect(code(answer)).toBe("not_permitted");
      expect(text(answer)).not.toMatch(/owner_one|stranger_two|scout|umpire/);
      expect(answer.structuredContent?.error?.message).toBe(text(answer));
    }
    const state = await session(id).getState();
    expect(state.battle).toMatchObject({ status: "ongoing", winner: null });
    expect(state.events).toHaveLength(1);
  });

  it("lets an agent its token binds report progress, and the end only as judge", async () => {
    const id = uniqueId("bound");
    expect(code(await progress(await agent("owner_one"), id))).toBe("ok");

    const scout = await agent("bound_scout", { battles: [id], battle_role: "scout" });
    expect(code(await progress(scout, id))).toBe("ok");
    const refused = await end(scout, id);
    expect(code(refused)).toBe("not_permitted");
    expect(text(refused)).not.toMatch(/owner_one/);
    const unroled = await agent("bound_plain", { battles: [id] });
    expect(code(await end(unroled, id))).toBe("not_permitted");
    expect((await session(id).getState()).battle?.status).toBe("ongoing");

    const judge = await agent("bound_judge", { battles: [id], battle_role: "judge" });
    const ended = await end(judge, id, { winner: "blue" });
    expect(code(ended)).toBe("ok");
    const state = await session(id).getState();
    expect(state.battle).toMatchObject({ status: "ended", winner: "blue" });
    expect(state.events.map((e) => e.agent)).toEqual(["owner_one", "bound_scout", "bound_judge"]);
  });

  it("does not let a token that lists battles open another, or act on one it does not list", async () => {
    const listed = uniqueId("listed");
    const other = uniqueId("other");
    const scoped = await agent("scoped_agent", { battles: [listed] });
    const refused = await progress(scoped, other);
    expect(code(refused)).toBe("not_permitted");
    expect((await session(other).getState()).battle).toBeNull();
    // It may open the battle it lists, and then owns it.
    expect(code(await progress(scoped, listed))).toBe("ok");
    expect(code(await end(scoped, listed))).toBe("ok");
  });

  it("does not let a forged reported_by lock out the real reporter, and the refusal names nobody", async () => {
    const id = uniqueId("forged");
    const owner = await agent("owner_one");
    expect(code(await progress(owner, id))).toBe("ok");

    // A stranger claims to be the judge: refused, and the battle stays open for the real one.
    const forger = await agent("forger_three");
    const forged = await end(forger, id, { reported_by: "green-judge", winner: "red" });
    expect(code(forged)).toBe("not_permitted");
    expect((await session(id).getState()).battle?.status).toBe("ongoing");

    const ended = await end(owner, id, { reported_by: "green-judge", report_id: "final" });
    expect(code(ended)).toBe("ok");
    expect(text(ended)).toContain("reported by owner_one (says: green-judge)");

    // Once ended, the refusal names neither the verified agent nor its claimed name.
    const judge = await agent("bound_judge", { battles: [id], battle_role: "judge" });
    const late = await progress(judge, id);
    expect(code(late)).toBe("battle_ended");
    expect(text(late)).not.toMatch(/owner_one|green-judge|bound_judge/);
    // And the real reporter's retry is answered with its own event, not locked out.
    const retry = await end(owner, id, { reported_by: "green-judge", report_id: "final" });
    expect(retry.structuredContent).toEqual(ended.structuredContent);
  });
});

describe("report_id", () => {
  it("stores a retried progress report once and answers the retry with the first answer", async () => {
    const id = uniqueId("retry");
    const owner = await agent("owner_one");
    const first = await progress(owner, id, { report_id: "turn-1", detail: { a: 1, b: [2] } });
    expect(code(first)).toBe("ok");
    // Same report, keys in another order: still the same report.
    const again = await progress(owner, id, { report_id: "turn-1", detail: { b: [2], a: 1 } });
    expect(code(again)).toBe("ok");
    expect(again.structuredContent).toEqual(first.structuredContent);
    expect(first.structuredContent).toMatchObject({ event: { seq: 1, report_id: "turn-1" } });
    expect(await eventCount(id)).toBe(1);

    expect(code(await progress(owner, id, { report_id: "turn-2" }))).toBe("ok");
    expect(await eventCount(id)).toBe(2);
  });

  it("refuses a different report under a used report_id, and stores nothing", async () => {
    const id = uniqueId("reuse");
    const owner = await agent("owner_one");
    expect(code(await progress(owner, id, { report_id: "r1" }))).toBe("ok");
    const changed = await progress(owner, id, { report_id: "r1", message: "another move" });
    expect(code(changed)).toBe("report_id_reused");
    // A used progress id cannot stand for an end either.
    expect(code(await end(owner, id, { report_id: "r1" }))).toBe("report_id_reused");
    // Nor may another participant replay it as its own.
    const bound = await agent("bound_scout", { battles: [id] });
    expect(code(await progress(bound, id, { report_id: "r1" }))).toBe("report_id_reused");
    expect(await eventCount(id)).toBe(1);
    expect((await session(id).getState()).battle?.status).toBe("ongoing");
  });

  it("answers a retry after the end with the stored event, for progress and the end", async () => {
    const id = uniqueId("after-end");
    const owner = await agent("owner_one");
    const step = await progress(owner, id, { report_id: "p1" });
    const ended = await end(owner, id, { report_id: "e1", winner: "draw" });
    expect(code(ended)).toBe("ok");

    const stepAgain = await progress(owner, id, { report_id: "p1" });
    expect(stepAgain.structuredContent).toEqual(step.structuredContent);
    expect(stepAgain.structuredContent).toMatchObject({ battle: { status: "ongoing" } });
    const endAgain = await end(owner, id, { report_id: "e1", winner: "draw" });
    expect(endAgain.structuredContent).toEqual(ended.structuredContent);
    expect(code(await end(owner, id, { report_id: "e1", winner: "blue" }))).toBe(
      "report_id_reused",
    );
    expect(await eventCount(id)).toBe(2);
  });

  it("refuses a report_id outside its bounds before anything is stored", async () => {
    const id = uniqueId("bad-rid");
    const owner = await agent("owner_one");
    for (const reportId of ["", "has space", "x".repeat(129)]) {
      const answer = await progress(owner, id, { report_id: reportId });
      expect(answer.isError).toBe(true);
      expect(text(answer)).toContain("report_id");
    }
    expect((await session(id).getState()).battle).toBeNull();
  });
});
