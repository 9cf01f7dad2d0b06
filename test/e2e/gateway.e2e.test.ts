/**
 * The whole system as a user runs it: `npm start`'s launcher brings up the proxy and mcp1 under
 * `wrangler dev` and the two Node backends; agents talk to the proxy with the MCP SDK client.
 */
import { createPrivateKey, type JsonWebKey } from "node:crypto";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssertionSigner } from "../../common/assertion.ts";
import { mintInspectionToken, mintToken } from "../../keys/mint.ts";
import { ensureProxyKey } from "../../keys/proxy-key.ts";
import { alive, connectAgent, type Launched, launch, resultText as text } from "./launcher.ts";

const EXPECTED: Record<string, string[]> = {
  agent_name1: [
    "mcp1_echo",
    "mcp1_update_battle_process",
    "mcp1_report_on_battle_end",
    "mcp3_echo",
    "mcp3_run_python_code",
  ],
  agent_name2: ["mcp2_echo", "mcp2_run_docker", "mcp3_echo", "mcp3_run_python_code"],
};
// Every tool the system has that each agent's policy does not grant.
const OUTSIDE: Record<string, string[]> = {
  agent_name1: ["mcp2_echo", "mcp2_run_docker"],
  agent_name2: ["mcp1_echo", "mcp1_update_battle_process", "mcp1_report_on_battle_end"],
};

let system: Launched;
/** A battle ended in this run, checked again after a restart. */
let endedBattle: string | undefined;
const clients: Client[] = [];

async function agent(name: string): Promise<Client> {
  const client = await connectAgent(system.proxyUrl, name);
  clients.push(client);
  return client;
}

async function listening(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  system = await launch();
}, 150_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  if (system?.child.exitCode === null) await system.stop();
}, 30_000);

describe("two agents, two tokens, two views", () => {
  it.each(Object.keys(EXPECTED))("%s sees exactly its tools, in order", async (name) => {
    const { tools } = await (await agent(name)).listTools();
    expect(tools.map((t) => t.name)).toEqual(EXPECTED[name]);
  });

  it("keeps each backend's input schema under the prefixed name", async () => {
    const { tools } = await (await agent("agent_name1")).listTools();
    const update = tools.find((t) => t.name === "mcp1_update_battle_process");
    expect(update?.inputSchema.required).toEqual(
      expect.arrayContaining(["battle_id", "message", "reported_by"]),
    );
  });

  it.each([
    ["agent_name1", "mcp1_echo"],
    ["agent_name1", "mcp3_echo"],
    ["agent_name2", "mcp2_echo"],
    ["agent_name2", "mcp3_echo"],
  ])("%s calls %s through the proxy", async (name, tool) => {
    const result = await (await agent(name)).callTool({
      name: tool,
      arguments: { message: `hi ${tool}` },
    });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe(`Echo: hi ${tool}`);
  });

  it.each(Object.entries(OUTSIDE).flatMap(([name, tools]) => tools.map((tool) => [name, tool])))(
    "%s is refused %s, exactly like a tool that does not exist",
    async (name, tool) => {
      const client = await agent(name);
      await expect(
        client.callTool({ name: tool, arguments: { message: "x" } }),
      ).rejects.toMatchObject({
        code: -32602,
        message: expect.stringContaining(`Tool ${tool} not found`),
      });
    },
  );
});

describe("a battle through the gateway", () => {
  it("records progress, ends with a winner, then refuses further events", async () => {
    const client = await agent("agent_name1");
    const battle = `e2e-${Date.now()}`;
    const first = await client.callTool({
      name: "mcp1_update_battle_process",
      arguments: {
        battle_id: battle,
        message: "green takes the bridge",
        reported_by: "scout",
        detail: { turn: 1 },
      },
    });
    expect(first.isError).toBeFalsy();
    const end = await client.callTool({
      name: "mcp1_report_on_battle_end",
      arguments: {
        battle_id: battle,
        message: "blue retreats",
        winner: "green",
        reported_by: "judge",
      },
    });
    expect(end.isError).toBeFalsy();
    expect(JSON.stringify(end.structuredContent)).toContain('"winner":"green"');

    const late = await client.callTool({
      name: "mcp1_update_battle_process",
      arguments: { battle_id: battle, message: "too late", reported_by: "scout" },
    });
    expect(late.isError).toBe(true);
    expect(text(late)).toMatch(/ended/i);
    endedBattle = battle;
  });
});

describe("watching battles through the proxy, as the banner's link does", () => {
  it("serves the battle page and its JSON API through the proxy, the API only with an inspection token", async () => {
    const origin = system.proxyUrl.origin;
    expect(system.output()).toContain(`${origin}/battles#token=`);
    const page = await fetch(`${origin}/battles`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    await page.body?.cancel();

    const anonymous = await fetch(`${origin}/api/battles`);
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();
    const agentToken = await mintToken({ agent: "agent_name1" });
    const wrongScope = await fetch(`${origin}/api/battles`, {
      headers: { authorization: `Bearer ${agentToken}` },
    });
    expect(wrongScope.status).toBe(403);
    await wrongScope.body?.cancel();

    const token = await mintInspectionToken();
    const listed = await fetch(`${origin}/api/battles`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(listed.status).toBe(200);
    expect(await listed.text()).toContain(endedBattle as string);
  });
});

describe("a 2026-07-28 client, unchanged", () => {
  it("lists and calls through the proxy with the v2 SDK client pinned to 2026-07-28", async () => {
    const client = new ModernClient(
      { name: "e2e-modern", version: "1.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    const token = await mintToken({ agent: "agent_name2" });
    await client.connect(
      new ModernTransport(system.proxyUrl, {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28");
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(EXPECTED.agent_name2);
      const result = await client.callTool({ name: "mcp2_echo", arguments: { message: "modern" } });
      expect(text(result)).toBe("Echo: modern");
    } finally {
      await client.close();
    }
  });
});

describe("the Node backends trust only the proxy's assertion", () => {
  async function post(port: number, authorization?: string): Promise<number> {
    const response = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
        "mcpcp-agent": "agent_name2",
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    await response.body?.cancel();
    return response.status;
  }

  it.each(["mcp2", "mcp3"] as const)(
    "%s refuses a request without an assertion, or with a wrong one",
    async (name) => {
      const port = system.ports[name];
      const other = name === "mcp2" ? "mcp3" : "mcp2";
      const { signingKey } = await ensureProxyKey();
      const signer = await createAssertionSigner(signingKey);
      expect(await post(port)).toBe(401);
      expect(await post(port, `Bearer ${await signer.sign("agent_name2", other)}`)).toBe(401);
      expect(await post(port, `Bearer ${await mintToken({ agent: "agent_name2" })}`)).toBe(401);
      const key = createPrivateKey({ key: signingKey as JsonWebKey, format: "jwk" });
      const past = Math.floor(Date.now() / 1000) - 300;
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: "EdDSA", kid: signingKey.kid as string })
        .setIssuer("mcpcp-proxy")
        .setAudience(name)
        .setSubject("agent_name2")
        .setJti("old")
        .setIssuedAt(past)
        .setExpirationTime(past + 60)
        .sign(key);
      expect(await post(port, `Bearer ${expired}`)).toBe(401);
      // Control: the proxy's own kind of assertion, fresh and for this backend, is let in.
      expect(await post(port, `Bearer ${await signer.sign("agent_name2", name)}`)).toBe(200);
    },
  );
});

describe("mcp1 trusts only the proxy's assertion", () => {
  const mcp1 = (path: string) => `http://127.0.0.1:${system.ports.mcp1}${path}`;

  /** A report on `battleId` straight to mcp1's own port, with `headers` and nothing else. */
  async function reportDirect(battleId: string, headers: Record<string, string>) {
    const response = await fetch(mcp1("/mcp"), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "update_battle_process",
          arguments: { battle_id: battleId, message: "forged", reported_by: "mallory" },
        },
      }),
    });
    return { status: response.status, challenge: response.headers.get("www-authenticate") };
  }

  /** Battle `id`'s events as mcp1's inspection API has them; none when it was never reported. */
  async function events(id: string): Promise<{ agent: string | null; message: string }[]> {
    const response = await fetch(mcp1(`/api/battles/${id}`), {
      headers: { authorization: `Bearer ${await mintInspectionToken()}` },
    });
    if (response.status === 404) return [];
    expect(response.status).toBe(200);
    return ((await response.json()) as { events: { agent: string; message: string }[] }).events;
  }

  it("refuses a forged agent header on port 9004 with 401, while the proxy's call works", async () => {
    const battleId = `forged-${Date.now()}`;
    const forged = await reportDirect(battleId, { "mcpcp-agent": "agent_name1" });
    expect(forged).toEqual({
      status: 401,
      challenge: 'Bearer error="invalid_token", error_description="missing proxy assertion"',
    });
    expect(await events(battleId)).toEqual([]);

    const client = await agent("agent_name1");
    const result = await client.callTool({
      name: "mcp1_update_battle_process",
      arguments: { battle_id: battleId, message: "through the proxy", reported_by: "scout" },
    });
    expect(result.isError, text(result)).toBeFalsy();
    expect(await events(battleId)).toMatchObject([
      { agent: "agent_name1", message: "through the proxy" },
    ]);
  });

  it("lets the proxy's own kind of assertion in once, and no other", async () => {
    const battleId = `asserted-${Date.now()}`;
    const signer = await createAssertionSigner((await ensureProxyKey()).signingKey);
    const forMcp2 = `Bearer ${await signer.sign("agent_name1", "mcp2")}`;
    expect((await reportDirect(battleId, { authorization: forMcp2 })).status).toBe(401);
    const token = `Bearer ${await mintToken({ agent: "agent_name1" })}`;
    expect((await reportDirect(battleId, { authorization: token })).status).toBe(401);
    const assertion = `Bearer ${await signer.sign("agent_name1", "mcp1")}`;
    expect((await reportDirect(battleId, { authorization: assertion })).status).toBe(200);
    expect((await reportDirect(battleId, { authorization: assertion })).status).toBe(401);
    expect(await events(battleId)).toMatchObject([{ agent: "agent_name1", message: "forged" }]);
  });
});

describe("failure and shutdown", () => {
  it("keeps serving the other backends when one stops", async () => {
    const mcp3 = system.pids.mcp3;
    expect(mcp3).toBeGreaterThan(0);
    process.kill(mcp3 as number, "SIGTERM");
    await expect.poll(() => listening(system.ports.mcp3), { timeout: 10_000 }).toBe(false);

    const client = await agent("agent_name1");
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([
      "mcp1_echo",
      "mcp1_update_battle_process",
      "mcp1_report_on_battle_end",
    ]);

    const began = Date.now();
    const dead = await client.callTool({ name: "mcp3_echo", arguments: { message: "anyone?" } });
    expect(dead.isError).toBe(true);
    expect(text(dead)).toMatch(/^Server mcp3 is unavailable/);
    expect(Date.now() - began).toBeLessThan(5000); // fails fast: a refused connection, not the timeout

    const alive1 = await client.callTool({
      name: "mcp1_echo",
      arguments: { message: "still here" },
    });
    expect(text(alive1)).toBe("Echo: still here");
    await expect
      .poll(() => system.output(), { timeout: 5000 })
      .toMatch(/mcp3 stopped unexpectedly/);
  });

  it("stops every server on SIGTERM and leaves nothing running", async () => {
    const code = await system.stop();
    expect(code).toBe(0);
    for (const pid of Object.values(system.pids)) expect(alive(pid)).toBe(false);
    for (const port of Object.values(system.ports)) expect(await listening(port)).toBe(false);
  }, 30_000);
});

describe("persistence", () => {
  it("keeps a battle's state across a restart of the whole system", async () => {
    expect(endedBattle).toBeDefined();
    system = await launch();
    const client = await agent("agent_name1");
    const late = await client.callTool({
      name: "mcp1_update_battle_process",
      arguments: { battle_id: endedBattle, message: "after the restart", reported_by: "scout" },
    });
    expect(late.isError).toBe(true);
    expect(text(late)).toMatch(/green/);
    expect(await system.stop()).toBe(0);
  }, 150_000);
});
