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
import { describe, expect, inject, it } from "vitest";
import { LEGACY_VERSION, ORIGIN, postTo, token } from "./client.ts";
import { closeAfterTest, connectDoor, gatewayFetch, text } from "./door-client.ts";

/** A v1 SDK client (2025-era) for `agent` at the door of `server`. */
const connect = (agent: string, server: string) => connectDoor(agent, server);

function thirdParty(path: string, init?: RequestInit) {
  return fetch(`${inject("thirdPartyUrl")}${path}`, init);
}

async function labelState(label: string): Promise<string | undefined> {
  const state = (await (await thirdParty("/__state")).json()) as { labels: Record<string, string> };
  return state.labels[label];
}

const rawPost = (path: string, bearer: string | undefined, body: unknown, headers = {}) =>
  postTo(path, body, bearer, headers);

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
    closeAfterTest(client);
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toContain("echo");
    const result = await client.callTool({ name: "echo", arguments: { message: "modern" } });
    expect(text(result)).toContain("modern");
  });
});

describe("a door between eras", () => {
  const modernClient = async (mode: "auto" | { pin: string }) => {
    const bearer = await token("integrator");
    const transport = new ModernTransport(new URL(`${ORIGIN}/servers/ext/mcp`), {
      fetch: gatewayFetch,
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    });
    const client = new ModernClient(
      { name: "door-test", version: "1.0.0" },
      { versionNegotiation: { mode } },
    );
    closeAfterTest(client);
    return { client, connecting: client.connect(transport) };
  };

  it("a 2026-07-28 client reaches a 2025-only server: the negotiation falls back through the door", async () => {
    const { client, connecting } = await modernClient("auto");
    await connecting;
    expect(client.getProtocolEra()).toBe("legacy");
    expect(text(await client.callTool({ name: "echo", arguments: { message: "down" } }))).toBe(
      "3p: down",
    );
  });

  it("a client that insists on 2026-07-28 is told at once that the server does not speak it", async () => {
    const began = Date.now();
    const { connecting } = await modernClient({ pin: "2026-07-28" });
    await expect(connecting).rejects.toThrow(/2026-07-28/);
    expect(Date.now() - began).toBeLessThan(Number(env.BACKEND_TIMEOUT_MS));
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

/** Reads SSE events from `reader` until `until` says stop; returns them as {id, data}. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (events: { id?: string; data: string }[]) => boolean,
): Promise<{ id?: string; data: string }[]> {
  const decoder = new TextDecoder();
  const events: { id?: string; data: string }[] = [];
  let buffer = "";
  while (!until(events)) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join("\n");
      if (data !== "") events.push({ ...(id === undefined ? {} : { id }), data });
      end = buffer.indexOf("\n\n");
    }
  }
  return events;
}

describe("a door keeps a dropped stream for a 2025-era agent", () => {
  it("keeps nothing for a stream the agent read to the end", async () => {
    // Numbered events wait in memory and reach the StreamLog only once the agent has gone.
    const bearer = await token("integrator");
    const init = await rawPost("/servers/ext/mcp", bearer, INITIALIZE);
    const session = init.headers.get("mcp-session-id") ?? "";
    await init.body?.cancel();
    const headers = { "mcp-session-id": session };
    const call = await rawPost(
      "/servers/ext/mcp",
      bearer,
      {
        jsonrpc: "2.0",
        id: 8,
        method: "tools/call",
        params: { name: "echo", arguments: { message: "all" } },
      },
      headers,
    );
    const events = await readEvents(
      (call.body as ReadableStream<Uint8Array>).getReader(),
      () => false,
    );
    const last = events.at(-1)?.id ?? "";
    expect(last).toMatch(/^[0-9a-f]{32}\.\d+$/);
    const resumed = await exports.default.fetch(
      new Request(`${ORIGIN}/servers/ext/mcp`, {
        headers: {
          authorization: `Bearer ${bearer}`,
          accept: "text/event-stream",
          "mcp-protocol-version": LEGACY_VERSION,
          ...headers,
          "last-event-id": last,
        },
      }),
    );
    expect(resumed.status).toBe(404);
  });

  it("numbers the events of a backend that does not, and replays them after Last-Event-ID", async () => {
    const bearer = await token("integrator");
    const init = await rawPost("/servers/ext/mcp", bearer, INITIALIZE);
    const session = init.headers.get("mcp-session-id") ?? "";
    await init.body?.cancel();
    const headers = { "mcp-session-id": session };
    await rawPost(
      "/servers/ext/mcp",
      bearer,
      { jsonrpc: "2.0", method: "notifications/initialized" },
      headers,
    );
    const call = await rawPost(
      "/servers/ext/mcp",
      bearer,
      {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: {
          name: "wait_for_release",
          arguments: { label: "door-resume" },
          _meta: { progressToken: 1 },
        },
      },
      headers,
    );
    expect(call.headers.get("content-type")).toContain("text/event-stream");
    const reader = (call.body as ReadableStream<Uint8Array>).getReader();
    // The progress and the log message arrive; then the agent's connection drops.
    const seen = await readEvents(reader, (events) => events.length >= 2);
    expect(seen.every((event) => /^[0-9a-f]{32}\.\d+$/.test(event.id ?? ""))).toBe(true);
    await reader.cancel();
    await thirdParty("/__release?label=door-resume", { method: "POST" });
    const last = seen.at(-1)?.id ?? "";

    const resumeHeaders = {
      authorization: `Bearer ${bearer}`,
      accept: "text/event-stream",
      "mcp-protocol-version": LEGACY_VERSION,
      "mcp-session-id": session,
    };
    // Another agent holding the id (without the session, which would not open for it) finds nothing.
    const { "mcp-session-id": _session, ...sessionless } = resumeHeaders;
    const stranger = await exports.default.fetch(
      new Request(`${ORIGIN}/servers/ext/mcp`, {
        headers: {
          ...sessionless,
          authorization: `Bearer ${await token("ext_narrow")}`,
          "last-event-id": last,
        },
      }),
    );
    expect(stranger.status).toBe(404);
    const resumed = await exports.default.fetch(
      new Request(`${ORIGIN}/servers/ext/mcp`, {
        headers: { ...resumeHeaders, "last-event-id": last },
      }),
    );
    expect(resumed.status).toBe(200);
    const rest = await readEvents(
      (resumed.body as ReadableStream<Uint8Array>).getReader(),
      (events) => events.some((event) => event.data.includes('"id":7')),
    );
    const answer = rest.find((event) => event.data.includes('"id":7'));
    expect(JSON.parse(answer?.data ?? "{}")).toMatchObject({
      id: 7,
      result: { content: [{ text: "door-resume done" }] },
    });
    expect(Number(answer?.id?.split(".")[1])).toBeGreaterThan(Number(last.split(".")[1]));
  });
});
