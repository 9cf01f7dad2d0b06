/**
 * The mcp1 Worker over HTTP, called the way the proxy calls it: through its fetch handler, with a
 * fresh proxy assertion naming the agent on every request (helpers.ts `asProxy`). MCP round trips
 * use the real SDK v2 client in both protocol eras, and raw JSON-RPC for the 2025 handshake a v1
 * `@modelcontextprotocol/sdk` client sends. What mcp1 refuses: mcp-auth.test.ts.
 */

import { env, exports } from "cloudflare:workers";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { asProxy, proxyAuthorization } from "./helpers.ts";

const TOOL_NAMES = ["echo", "report_on_battle_end", "update_battle_process"];

function state(battleId: string) {
  return env.BATTLE.get(env.BATTLE.idFromName(battleId)).getState();
}

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function connect(era: "modern" | "legacy", agent = "agent_name1"): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL("http://mcp1/mcp"), {
    fetch: asProxy(agent),
  });
  const client = new Client(
    { name: "mcp1-test", version: "1.0.0" },
    era === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {},
  );
  await client.connect(transport);
  clients.push(client);
  return client;
}

function text(result: { content?: unknown }): string {
  const [first] = (result.content ?? []) as { type: string; text?: string }[];
  return first?.type === "text" ? (first.text ?? "") : "";
}

describe("mcp1 HTTP routes", () => {
  it("answers GET /healthz with ok", async () => {
    const response = await exports.default.fetch("http://mcp1/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", server: "mcp1" });
  });

  it("answers GET /mcp with 405: serving is stateless, there is no session stream", async () => {
    const response = await exports.default.fetch("http://mcp1/mcp", {
      headers: { Accept: "text/event-stream", Authorization: await proxyAuthorization("a") },
    });
    expect(response.status).toBe(405);
  });

  it("answers unknown paths with a JSON 404", async () => {
    const response = await exports.default.fetch("http://mcp1/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: "not_found", path: "/nope" });
  });
});

describe.each(["modern", "legacy"] as const)("mcp1 over MCP (%s era)", (era) => {
  it("negotiates the expected protocol era", async () => {
    const client = await connect(era);
    expect(client.getProtocolEra()).toBe(era);
  });

  it("lists exactly echo and the two battle tools, with their input limits", async () => {
    const { tools } = await (await connect(era)).listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    const update = tools.find((t) => t.name === "update_battle_process");
    expect(update?.inputSchema.required).toEqual(["battle_id", "message", "reported_by"]);
    expect(update?.inputSchema.properties?.message).toMatchObject({ maxLength: 4000 });
    const end = tools.find((t) => t.name === "report_on_battle_end");
    expect(end?.inputSchema.properties?.winner).toMatchObject({
      enum: ["green", "blue", "red", "draw"],
    });
  });

  it("echoes a message", async () => {
    const result = await (await connect(era)).callTool({
      name: "echo",
      arguments: { message: "hi" },
    });
    expect(text(result)).toBe("Echo: hi");
  });

  it("records a progress event with the agent from the assertion and reports its number", async () => {
    const battleId = `http-progress-${era}`;
    const client = await connect(era, "agent_name1");
    const result = await client.callTool({
      name: "update_battle_process",
      arguments: { battle_id: battleId, message: "Green crosses the river", reported_by: "scout" },
    });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe(
      `Recorded progress event #1 in battle "${battleId}" (status: ongoing), ` +
        "reported by agent_name1 (says: scout).",
    );
    expect(result.structuredContent).toMatchObject({
      event: { seq: 1, kind: "progress", agent: "agent_name1" },
      battle: { id: battleId, status: "ongoing" },
    });
    expect((await state(battleId)).events[0]).toMatchObject({
      message: "Green crosses the river",
      agent: "agent_name1",
    });
  });

  it("ends a battle, then answers further reports with a tool error naming the winner", async () => {
    const battleId = `http-end-${era}`;
    const client = await connect(era, "agent_name1");
    const end = await client.callTool({
      name: "report_on_battle_end",
      arguments: {
        battle_id: battleId,
        message: "Blue wins",
        reported_by: "umpire",
        winner: "blue",
      },
    });
    expect(end.isError).toBeFalsy();
    expect(text(end)).toBe(
      `Recorded result event #1 in battle "${battleId}": winner blue, ` +
        "reported by agent_name1 (says: umpire). The battle is now ended and accepts no further events.",
    );

    const late = await client.callTool({
      name: "update_battle_process",
      arguments: { battle_id: battleId, message: "late", reported_by: "scout" },
    });
    expect(late.isError).toBe(true);
    expect(text(late)).toMatch(
      new RegExp(`^Battle "${battleId}" already ended at .+ with winner blue \\(result event #1`),
    );
    expect(late.structuredContent).toMatchObject({ error: { code: "battle_ended" } });
  });

  it("accepts a report with every field at its limit", async () => {
    const battleId = `h${"x".repeat(127 - era.length)}${era}`;
    const result = await (await connect(era, "agent_name1")).callTool({
      name: "update_battle_process",
      arguments: {
        battle_id: battleId,
        message: "m".repeat(4000),
        reported_by: "r".repeat(200),
        detail: { k: "d".repeat(16 * 1024 - 8) },
        markdown_content: "#".repeat(64 * 1024),
      },
    });
    expect(result.isError).toBeFalsy();
    expect((await state(battleId)).events[0]?.markdown_content).toHaveLength(64 * 1024);
  });

  it("answers arguments over the limits with a tool error naming the field", async () => {
    const result = await (await connect(era)).callTool({
      name: "update_battle_process",
      arguments: { battle_id: "bad id", message: "m".repeat(4001), reported_by: "r" },
    });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain("battle_id: must be 1 to 128 characters");
    expect(text(result)).toContain("message: must be at most 4000 characters");
  });
});

describe("mcp1 over raw JSON-RPC (the 2025 handshake of a v1 SDK client)", () => {
  async function post(body: unknown, extra: Record<string, string> = {}) {
    const response = await exports.default.fetch("http://mcp1/mcp", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        Authorization: await proxyAuthorization("agent_name2"),
        ...extra,
      },
      body: JSON.stringify(body),
    });
    const raw = await response.text();
    // Streamable HTTP may answer as a single JSON body or as one SSE `data:` frame.
    const json = raw.startsWith("{") ? raw : raw.split("\n").find((l) => l.startsWith("data: "));
    return { status: response.status, body: JSON.parse(json?.replace(/^data: /, "") ?? "null") };
  }

  it("initializes, lists the 3 tools and calls one", async () => {
    const init = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "raw", version: "1" },
      },
    });
    expect(init.status).toBe(200);
    expect(init.body.result).toMatchObject({
      protocolVersion: "2025-06-18",
      capabilities: { tools: {} },
    });

    const version = { "MCP-Protocol-Version": "2025-06-18" };
    const list = await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, version);
    expect(list.body.result.tools.map((t: { name: string }) => t.name).sort()).toEqual(TOOL_NAMES);

    const call = await post(
      {
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: {
          name: "update_battle_process",
          arguments: { battle_id: "raw-rpc", message: "m", reported_by: "r", detail: { a: 1 } },
        },
      },
      version,
    );
    expect(call.body).toMatchObject({
      id: 3,
      result: { structuredContent: { event: { seq: 1, agent: "agent_name2", detail: { a: 1 } } } },
    });
  });

  it("answers an unknown tool with a JSON-RPC error, not a tool result", async () => {
    const call = await post(
      {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "no_such_tool", arguments: {} },
      },
      { "MCP-Protocol-Version": "2025-06-18" },
    );
    expect(call.body).toMatchObject({ id: 7, error: { code: -32602 } });
  });
});
