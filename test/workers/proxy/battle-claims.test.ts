/**
 * The agent token's `battles` and `battle_role` claims, end to end inside workerd: the proxy
 * refuses a token whose claims are malformed, and carries good ones in its assertion to the real
 * mcp1, which decides with them who may report on a battle and which battles it shows as
 * resources (docs/design.md, "Battle state (mcp1)").
 */
import { describe, expect, it } from "vitest";
import { message, post, rpc, token } from "./client.ts";

type Claims = Record<string, unknown>;

async function callAs(agent: string, claims: Claims, name: string, args: object) {
  const reply = await message(
    await post(rpc("tools/call", { name, arguments: args }), await token(agent, claims)),
  );
  const result = reply.result as
    | { isError?: boolean; structuredContent?: { error?: { code: string } } }
    | undefined;
  return result?.isError ? (result.structuredContent?.error?.code ?? "error") : "ok";
}

const progress = (battle: string) => ({
  battle_id: battle,
  message: "a move",
  reported_by: "scout",
});
const ending = (battle: string) => ({ ...progress(battle), winner: "green" });

describe("battle claims in agent tokens", () => {
  it.each([
    ["battles is not an array", { battles: "b-1" }],
    ["battles holds an id mcp1 would refuse", { battles: ["b-1", "no spaces allowed"] }],
    ["battles lists more than 100", { battles: Array.from({ length: 101 }, (_, i) => `b${i}`) }],
    ["battle_role is not a string", { battle_role: { judge: true } }],
  ])(
    "refuses a token whose %s with 401 invalid_token, naming the claims",
    async (_case, claims) => {
      const response = await post(rpc("tools/list"), await token("agent_name1", claims));
      expect(response.status).toBe(401);
      const challenge = response.headers.get("www-authenticate") ?? "";
      expect(challenge).toContain('error="invalid_token"');
      expect(challenge).toContain("battles or battle_role claim is malformed");
      expect((await response.json()) as unknown).toMatchObject({ error: { code: -32001 } });
    },
  );

  it("carries them to mcp1: a listed battle may be opened, another not; binding and judge decide the rest", async () => {
    const mine = `claims-${crypto.randomUUID().slice(0, 8)}`;
    const other = `claims-other-${crypto.randomUUID().slice(0, 8)}`;
    const scoped = { battles: [mine] };
    expect(await callAs("agent_name1", scoped, "mcp1_update_battle_process", progress(other))).toBe(
      "not_permitted",
    );
    expect(await callAs("agent_name1", scoped, "mcp1_update_battle_process", progress(mine))).toBe(
      "ok",
    );
    // batcher holds mcp1 too, but neither opened the battle nor is bound to it.
    expect(await callAs("batcher", {}, "mcp1_update_battle_process", progress(mine))).toBe(
      "not_permitted",
    );
    expect(await callAs("batcher", scoped, "mcp1_update_battle_process", progress(mine))).toBe(
      "ok",
    );
    expect(await callAs("batcher", scoped, "mcp1_report_on_battle_end", ending(mine))).toBe(
      "not_permitted",
    );
    const judge = { ...scoped, battle_role: "judge" };
    expect(await callAs("batcher", judge, "mcp1_report_on_battle_end", ending(mine))).toBe("ok");
  });

  it("shows an agent with a battles claim only those battles as resources", async () => {
    const ids = ["a", "b", "c"].map((s) => `claims-res-${s}-${crypto.randomUUID().slice(0, 8)}`);
    for (const id of ids) {
      expect(await callAs("agent_name1", {}, "mcp1_update_battle_process", progress(id))).toBe(
        "ok",
      );
    }
    const [a, b, c] = ids as [string, string, string];
    const uris = async (claims: Claims): Promise<string[]> => {
      const reply = await message(
        await post(rpc("resources/list"), await token("agent_name1", claims)),
      );
      const result = reply.result as unknown as { resources: { uri: string }[] };
      return result.resources.map((r) => r.uri);
    };
    // The index follows each battle within about a round trip.
    await expect
      .poll(async () => (await uris({})).filter((u) => ids.some((id) => u.endsWith(id))).length, {
        timeout: 5000,
        interval: 50,
      })
      .toBe(3);
    expect((await uris({ battles: [a, b] })).sort()).toEqual(
      [`mcp1+battle://${a}`, `mcp1+battle://${b}`].sort(),
    );
    const hidden = await message(
      await post(
        rpc("resources/read", { uri: `mcp1+battle://${c}` }),
        await token("agent_name1", { battles: [a] }),
      ),
    );
    expect(hidden.error?.code).toBe(-32602);
  });
});
