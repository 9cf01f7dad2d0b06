/**
 * Battles as MCP resources, read with the real SDK v2 client in both protocol eras, the way the
 * proxy reads them: `battle://<id>` per battle in resources/list, the `battle://{battle_id}`
 * template, and resources/read returning the battle as JSON.
 */
import { exports } from "cloudflare:workers";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { battleUri, parseBattleUri } from "../../../workers/mcp1/src/resources.ts";
import { asProxy, end, indexed, proxyAuthorization, report, uniqueId } from "./helpers.ts";

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function connect(era: "modern" | "legacy"): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL("http://mcp1/mcp"), {
    fetch: asProxy("agent_name1"),
  });
  const client = new Client(
    { name: "mcp1-resources-test", version: "1.0.0" },
    era === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {},
  );
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** The JSON body of a battle resource. */
async function read(client: Client, uri: string) {
  const result = await client.readResource({ uri });
  expect(result.contents).toHaveLength(1);
  const [content] = result.contents;
  expect(content).toMatchObject({ uri, mimeType: "application/json" });
  return JSON.parse((content as { text: string }).text);
}

describe("battle URIs", () => {
  it("percent-encode the id as RFC 6570 simple expansion does, and parse back", () => {
    expect(battleUri("b-1")).toBe("battle://b-1");
    expect(battleUri("game:42.round_1")).toBe("battle://game%3A42.round_1");
    expect(battleUri("b-1", 100)).toBe("battle://b-1?after=100");
    expect(parseBattleUri("battle://game%3A42.round_1")).toEqual({
      id: "game:42.round_1",
      after: 0,
    });
    expect(parseBattleUri("battle://game:42")).toEqual({ id: "game:42", after: 0 });
    expect(parseBattleUri("battle://b-1?after=100")).toEqual({ id: "b-1", after: 100 });
  });

  it.each([
    "battle://",
    "battle://has%20space",
    "battle://a/b",
    "battle://b?after=x",
    "battle://b?x=1",
    "battles://b",
    "mcpcp://mcp1/battle://b",
  ])("name no battle: %s", (uri) => {
    expect(parseBattleUri(uri)).toBeNull();
  });
});

type RpcReply = {
  result?: { resources: { uri: string }[]; nextCursor?: string };
  error?: { code: number; message: string };
};

/** One raw JSON-RPC round trip (2025-era), to see the wire: the v2 client walks pages itself. */
async function rpc(method: string, params: object): Promise<RpcReply> {
  const response = await exports.default.fetch("http://mcp1/mcp", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": "2025-06-18",
      Authorization: await proxyAuthorization("agent_name1"),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const raw = await response.text();
  const json = raw.startsWith("{") ? raw : raw.split("\n").find((l) => l.startsWith("data: "));
  return JSON.parse(json?.replace(/^data: /, "") ?? "null");
}

describe("resources/list paging", () => {
  it("pages 50 battles at a time with nextCursor, newest first, each battle once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 55; i++) {
      const id = uniqueId(`many-${i}`);
      await report(id, 1);
      ids.push(id);
    }
    for (const id of ids) await indexed(id);

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const { result } = await rpc("resources/list", cursor ? { cursor } : {});
      pages.push(result?.resources.map((r) => r.uri) ?? []);
      cursor = result?.nextCursor;
    } while (cursor);
    expect(pages.length).toBeGreaterThanOrEqual(2);
    expect(pages[0]).toHaveLength(50);
    const all = pages.flat();
    expect(new Set(all).size).toBe(all.length);
    const mine = all.filter((uri) => ids.some((id) => uri === battleUri(id)));
    expect(mine).toEqual(ids.map((id) => battleUri(id)).reverse());

    // The SDK client, asked without a cursor, follows the same cursors to the end.
    const walked = await (await connect("modern")).listResources();
    expect(walked.resources.map((r) => r.uri)).toEqual(all);
  });

  it("refuses a cursor it did not issue with invalid params", async () => {
    expect(await rpc("resources/list", { cursor: "not-a-cursor" })).toMatchObject({
      error: { code: -32602 },
    });
  });
});

describe.each(["modern", "legacy"] as const)("battle resources (%s era)", (era) => {
  it("declares the resources capability and the battle://{battle_id} template", async () => {
    const client = await connect(era);
    expect(client.getServerCapabilities()?.resources).toBeDefined();
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates).toEqual([
      expect.objectContaining({
        uriTemplate: "battle://{battle_id}",
        name: "battle",
        mimeType: "application/json",
      }),
    ]);
  });

  it("lists each battle as battle://<id> with its status in the description", async () => {
    const id = uniqueId(`res-${era}`);
    await report(id, 2);
    await end(id, "green");
    await indexed(id, (b) => b.status === "ended");

    const client = await connect(era);
    const resources = [];
    let cursor: string | undefined;
    do {
      const page = await client.listResources(cursor ? { cursor } : {});
      resources.push(...page.resources);
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(resources.map((r) => r.uri)).size).toBe(resources.length);
    expect(resources.find((r) => r.uri === `battle://${id}`)).toMatchObject({
      name: id,
      title: `Battle ${id}`,
      mimeType: "application/json",
      description: expect.stringMatching(/^ended, winner green; 3 events; last update /),
    });
  });

  it("reads a battle as JSON: status, winner, events with reporter and agent", async () => {
    const id = uniqueId(`read-${era}`);
    await report(id, 1, "agent_name2", "scout");
    await end(id, "red", "agent_name2");
    const body = await read(await connect(era), battleUri(id));
    expect(body.battle).toMatchObject({ id, status: "ended", winner: "red" });
    expect(body.events).toMatchObject([
      { seq: 1, kind: "progress", reported_by: "scout", agent: "agent_name2" },
      { seq: 2, kind: "result", reported_by: "umpire" },
    ]);
    expect(body.next_after).toBeNull();
    expect(body.next_uri).toBeNull();
  });

  it("pages a long battle through next_uri", async () => {
    const id = uniqueId(`paged-${era}`);
    await report(id, 120);
    const client = await connect(era);
    const first = await read(client, battleUri(id));
    expect(first.events).toHaveLength(100);
    expect(first.next_uri).toBe(`battle://${id}?after=100`);
    const rest = await read(client, first.next_uri);
    expect(rest.events.map((e: { seq: number }) => e.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => 101 + i),
    );
    expect(rest.next_uri).toBeNull();
  });

  it("reads a battle whose id holds ':' under its encoded URI", async () => {
    const id = uniqueId(`game:7.${era}`);
    await report(id, 1);
    const body = await read(await connect(era), battleUri(id));
    expect(body.battle.id).toBe(id);
  });

  it("answers an unknown battle or a foreign URI with a resource-not-found error", async () => {
    const client = await connect(era);
    for (const uri of [battleUri(uniqueId("nobody")), "battle://bad%20id", "file:///etc/passwd"]) {
      await expect(client.readResource({ uri })).rejects.toMatchObject({
        code: -32602,
        message: expect.stringContaining("Resource not found"),
      });
    }
  });
});
