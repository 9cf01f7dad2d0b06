/**
 * A `battles` claim narrows what a token shows: an inspection token's list, JSON and live feed,
 * and an agent's battle resources (the claim riding in the proxy's assertion). Others are answered
 * as battles never reported. docs/design.md, "Inspection".
 */
import { exports } from "cloudflare:workers";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import type { BattlePage, BattleSummary } from "../../../durable-objects/battle-types.ts";
import { battleUri } from "../../../workers/mcp1/src/resources.ts";
import { asProxy, get, indexed, inspectToken, ORIGIN, report, uniqueId } from "./helpers.ts";

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** Three battles, indexed: the token will list the first two. */
async function threeBattles(prefix: string): Promise<[string, string, string]> {
  const ids = [uniqueId(`${prefix}-a`), uniqueId(`${prefix}-b`), uniqueId(`${prefix}-c`)] as const;
  for (const id of ids) {
    await report(id, 1);
    await indexed(id);
  }
  return [...ids];
}

/** Every battle `token` lists, `limit` per page, following cursors. */
async function listAllWith(token: string, limit: number): Promise<BattleSummary[]> {
  const battles: BattleSummary[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const params = new URLSearchParams({ limit: String(limit) });
    if (cursor) params.set("cursor", cursor);
    const response = await get(`/api/battles?${params}`, token);
    expect(response.status).toBe(200);
    const page = (await response.json()) as BattlePage;
    expect(page.battles.length).toBeLessThanOrEqual(limit);
    battles.push(...page.battles);
    cursor = page.next_cursor;
    pages++;
  } while (cursor && pages < 20);
  return battles;
}

describe("an inspection token with a battles claim", () => {
  it("lists only its battles, a page at a time, newest first", async () => {
    const [a, b, c] = await threeBattles("scoped-list");
    const token = await inspectToken({ battles: [a, b, "never-reported-xyz"] });
    const listed = await listAllWith(token, 1);
    expect(listed.map((battle) => battle.id)).toEqual([b, a]);
    // Without the claim, all of them, as before.
    const all = (await listAllWith(await inspectToken(), 100)).map((battle) => battle.id);
    expect(all).toEqual(expect.arrayContaining([a, b, c]));
  });

  it("reads its battles as JSON, and gets 404 for others exactly as for unknown ones", async () => {
    const [a, , c] = await threeBattles("scoped-json");
    const token = await inspectToken({ battles: [a] });
    expect((await get(`/api/battles/${a}`, token)).status).toBe(200);
    const other = await get(`/api/battles/${c}`, token);
    const unknown = await get(`/api/battles/never-reported-${c}`, await inspectToken());
    expect(other.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(await other.json()).toEqual({
      error: "not_found",
      message: `No battle "${c}" has been reported.`,
    });
  });

  it("opens the live feed of its battles only", async () => {
    const [a, , c] = await threeBattles("scoped-live");
    const token = await inspectToken({ battles: [a] });
    const open = (id: string) =>
      exports.default.fetch(
        new Request(`${ORIGIN}/api/battles/${id}/live`, {
          headers: {
            Upgrade: "websocket",
            "Sec-WebSocket-Protocol": `mcpcp-inspect, mcpcp-bearer.${token}`,
          },
        }),
      );
    const mine = await open(a);
    expect(mine.status).toBe(101);
    mine.webSocket?.accept();
    mine.webSocket?.close(1000, "done");
    const other = await open(c);
    expect(other.status).toBe(404);
    expect(other.webSocket).toBeFalsy();
  });

  it.each([
    ["not an array", "b-1"],
    ["a malformed id", ["ok", "has space"]],
    ["too many", Array.from({ length: 101 }, (_, i) => `b-${i}`)],
  ])("is refused with 401 when the claim is %s", async (_case, battles) => {
    const response = await get("/api/battles", await inspectToken({ battles }));
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
  });
});

describe("battle resources for an agent with a battles claim", () => {
  async function connect(claims?: { battles: string[] }): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL("http://mcp1/mcp"), {
      fetch: asProxy("agent_name1", claims),
    });
    const client = new Client({ name: "mcp1-scoped-resources", version: "1.0.0" });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  async function listedUris(client: Client): Promise<string[]> {
    const uris: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listResources(cursor ? { cursor } : {});
      uris.push(...page.resources.map((r) => r.uri));
      cursor = page.nextCursor;
    } while (cursor);
    return uris;
  }

  it("lists and reads only its battles; another is not found", async () => {
    const [a, b, c] = await threeBattles("scoped-res");
    const scoped = await connect({ battles: [a, b] });
    expect((await listedUris(scoped)).sort()).toEqual([battleUri(a), battleUri(b)].sort());
    const read = await scoped.readResource({ uri: battleUri(a) });
    expect(read.contents).toHaveLength(1);
    await expect(scoped.readResource({ uri: battleUri(c) })).rejects.toThrow(/not found/i);

    const unbound = await connect();
    expect(await listedUris(unbound)).toEqual(
      expect.arrayContaining([battleUri(a), battleUri(b), battleUri(c)]),
    );
    expect((await unbound.readResource({ uri: battleUri(c) })).contents).toHaveLength(1);
  });
});
