/**
 * Per-server doors (`/servers/<id>/mcp`): one backend under its own names, through the same token,
 * policy, limits and audit as `/mcp`, spoken to by the MCP SDK clients agents use.
 *
 * `ext` is a stateful v1-SDK server (test/support/third-party-backend.ts); mcp1 is the real battle
 * Worker over its service binding, spoken to in both eras.
 */

import { env, exports } from "cloudflare:workers";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { LEGACY_VERSION, ORIGIN, token } from "./client.ts";

const clients: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
});

const gatewayFetch = (url: string | URL, init?: RequestInit) =>
  exports.default.fetch(new Request(url, init));

/** A v1 SDK client (2025-era) for `agent` at the door of `server`. */
async function connect(agent: string, server: string): Promise<Client> {
  const bearer = await token(agent);
  const transport = new StreamableHTTPClientTransport(new URL(`${ORIGIN}/servers/${server}/mcp`), {
    fetch: gatewayFetch,
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "door-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

function text(result: unknown): string {
  const [first] = ((result as { content?: unknown }).content ?? []) as { text?: string }[];
  return first?.text ?? "";
}

function thirdParty(path: string, init?: RequestInit) {
  return fetch(`${inject("thirdPartyUrl")}${path}`, init);
}

async function labelState(label: string): Promise<string | undefined> {
  const state = (await (await thirdParty("/__state")).json()) as { labels: Record<string, string> };
  return state.labels[label];
}

async function rawPost(path: string, bearer: string | undefined, body: unknown, headers = {}) {
  return exports.default.fetch(
    new Request(`${ORIGIN}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...headers,
      },
      body: JSON.stringify(body),
    }),
  );
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: LEGACY_VERSION,
    capabilities: {},
    clientInfo: { name: "raw", version: "1" },
  },
};

describe("a door shows one server under its own names", () => {
  it("lists and calls the backend's tools, resources and prompts unprefixed", async () => {
    const client = await connect("integrator", "ext");
    expect(client.getServerVersion()?.name).toBe("third-party");
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      "echo",
      "files.read/v2",
      "wait_for_release",
    ]);
    expect(text(await client.callTool({ name: "echo", arguments: { message: "hi" } }))).toBe(
      "3p: hi",
    );
    const { resources } = await client.listResources();
    expect(resources.map((resource) => resource.uri)).toEqual(["notes://hello"]);
    const read = await client.readResource({ uri: "notes://abc" });
    expect(read.contents[0]).toMatchObject({ uri: "notes://abc", text: "note abc" });
    const prompt = await client.getPrompt({ name: "greet", arguments: { name: "Ada" } });
    expect(JSON.stringify(prompt.messages)).toContain("Say hello to Ada");
  });

  it("hides what the grant does not name, exactly as the server would answer an unknown one", async () => {
    const client = await connect("ext_narrow", "ext");
    const capabilities = client.getServerCapabilities() ?? {};
    expect(capabilities.tools).toBeDefined();
    expect(capabilities.resources).toBeUndefined();
    expect(capabilities.prompts).toBeUndefined();
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(["echo"]);
    await expect(
      client.callTool({ name: "wait_for_release", arguments: { label: "x" } }),
    ).rejects.toThrow(/Tool wait_for_release not found/);
    await expect(client.listResources()).rejects.toThrow(/Method not found/);
    expect(await labelState("x")).toBeUndefined();
  });

  it("relays progress and log messages while a call runs", async () => {
    const client = await connect("integrator", "ext");
    const logs: unknown[] = [];
    client.setNotificationHandler(
      (await import("@modelcontextprotocol/sdk/types.js")).LoggingMessageNotificationSchema,
      (notification) => {
        logs.push(notification.params.data);
      },
    );
    const progress: number[] = [];
    const call = client.callTool(
      { name: "wait_for_release", arguments: { label: "door-progress" } },
      undefined,
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    await expect.poll(() => labelState("door-progress")).toBe("running");
    await thirdParty("/__release?label=door-progress", { method: "POST" });
    expect(text(await call)).toBe("door-progress done");
    expect(progress).toEqual([1, 2]);
    expect(logs).toEqual(["door-progress is waiting"]);
  });

  it("speaks 2026-07-28 to a backend that does, with the SDK's modern client", async () => {
    const bearer = await token("agent_name1");
    const transport = new ModernTransport(new URL(`${ORIGIN}/servers/mcp1/mcp`), {
      fetch: gatewayFetch,
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    });
    const client = new ModernClient(
      { name: "door-test", version: "1.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    await client.connect(transport);
    clients.push(client);
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toContain("echo");
    const result = await client.callTool({ name: "echo", arguments: { message: "modern" } });
    expect(text(result)).toContain("modern");
  });
});

describe("a door keeps what /mcp keeps", () => {
  it("answers a server the agent holds no grant on as one that does not exist", async () => {
    const bearer = await token("agent_name1");
    const hidden = await rawPost("/servers/ext/mcp", bearer, INITIALIZE);
    const unknown = await rawPost("/servers/nope/mcp", bearer, INITIALIZE);
    expect(hidden.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(await hidden.json()).toMatchObject({ error: "not_found" });
    expect(await unknown.json()).toMatchObject({ error: "not_found" });
  });

  it("asks for a token first, pointing at the door's own metadata", async () => {
    const response = await rawPost("/servers/ext/mcp", undefined, INITIALIZE);
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate") ?? "";
    expect(challenge).toContain(
      `resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/servers/ext/mcp"`,
    );
    const metadata = await exports.default.fetch(
      `${ORIGIN}/.well-known/oauth-protected-resource/servers/ext/mcp`,
    );
    expect(await metadata.json()).toMatchObject({ resource: `${ORIGIN}/servers/ext/mcp` });
  });

  it("seals the upstream session to the agent: another agent cannot use it", async () => {
    const owner = await token("integrator");
    const first = await rawPost("/servers/ext/mcp", owner, INITIALIZE);
    expect(first.status).toBe(200);
    const session = first.headers.get("mcp-session-id") ?? "";
    expect(session).not.toBe("");
    await first.body?.cancel();
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };
    const stranger = await token("ext_narrow");
    const refused = await rawPost("/servers/ext/mcp", stranger, list, {
      "mcp-session-id": session,
    });
    expect(refused.status).toBe(404);
    const forged = await rawPost("/servers/ext/mcp", owner, list, {
      "mcp-session-id": `${session}x`,
    });
    expect(forged.status).toBe(404);
  });

  it("refuses a Host that is not the gateway's before reading the token", async () => {
    const response = await exports.default.fetch(
      new Request("http://evil.example.com/servers/ext/mcp", {
        method: "POST",
        headers: { origin: "http://evil.example.com", "content-type": "application/json" },
        body: JSON.stringify(INITIALIZE),
      }),
    );
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /Host not allowed/,
    );
  });

  it("times a silent call out, cancels it upstream, and says so", async () => {
    const client = await connect("integrator", "ext");
    const began = Date.now();
    const result = await client.callTool({
      name: "wait_for_release",
      arguments: { label: "door-timeout" },
    });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/^Timed out after 3 s waiting for ext/);
    expect(Date.now() - began).toBeLessThan(Number(env.BACKEND_TIMEOUT_MS) + 2_000);
    await expect.poll(() => labelState("door-timeout")).toBe("cancelled");
  });
});
