/**
 * A backend's questions to the agent on `/mcp` itself (2025 era): sampling, elicitation (form
 * and URL), roots, with the v1 SDK client as agents use it, and agents that misbehave where the
 * SDK client cannot (raw POSTs). `/mcp` keeps nothing between requests: the agent's session id
 * seals what it can answer, a question's id seals where its answer goes (core/agent-session.ts).
 *
 * The backends are the door tests' (door-exchanges.test.ts): `ref` the conformance reference
 * server, `exch` test/support/exchanges-backend.ts; on /mcp their tools are `ref_*` and `exch_*`.
 */

import { env, exports } from "cloudflare:workers";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  type ClientCapabilities,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { eraVerdicts } from "../../../workers/proxy/src/state/era-verdicts.ts";
import { connectListening, exchangesState, RawSession, timed } from "./agent-exchange.ts";
import { ORIGIN, token } from "./client.ts";
import { closeAfterTest, gatewayFetch, text } from "./door-client.ts";

const TIMEOUT_MS = Number(env.BACKEND_TIMEOUT_MS);
const ANSWER_TIMEOUT_MS = Number(env.AGENT_ANSWER_TIMEOUT_MS);
const MCP = new URL(`${ORIGIN}/mcp`);

/** A v1 SDK client (2025-era) for `agent` on /mcp, `setup` run before connecting. */
async function connect(
  agent: string,
  capabilities: ClientCapabilities,
  setup: (client: Client) => void = () => {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const bearer = await token(agent);
  const transport = new StreamableHTTPClientTransport(MCP, {
    fetch: gatewayFetch,
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "mcp-questions", version: "1.0.0" }, { capabilities });
  setup(client);
  await client.connect(transport);
  closeAfterTest(client);
  return { client, transport };
}

const accepted = (id: string | number | undefined, name: string) => ({
  jsonrpc: "2.0",
  id,
  result: { action: "accept", content: { name } },
});

describe("an agent's session on /mcp says what it can answer", () => {
  it("is issued only to an agent that declared sampling, elicitation or roots", async () => {
    const plain = await RawSession.open(MCP, "asker", {});
    expect(plain.session).toBeUndefined();
    const asking = await RawSession.open(MCP, "asker", { elicitation: {} });
    expect(asking.session).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    // The session holds no backend's data: the capabilities, sealed, nothing readable.
    expect(atob(asking.session?.replace(/-/g, "+").replace(/_/g, "/") ?? "")).not.toMatch(
      /elicitation/,
    );
  });

  it("another agent's session, or a changed one, is unknown here (404), as a server says", async () => {
    const owner = await RawSession.open(MCP, "asker", { sampling: {} });
    const intruder = await RawSession.open(MCP, "bystander", { sampling: {} });
    const list = { jsonrpc: "2.0", id: 5, method: "tools/list" };
    const borrowed = await intruder.post(list, owner.session);
    expect(borrowed.status).toBe(404);
    expect(await borrowed.json()).toMatchObject({ error: { code: -32001 } });
    const changed = `${owner.session?.slice(0, -2)}AA`;
    expect((await owner.post(list, changed)).status).toBe(404);
    const own = await owner.post(list);
    expect(own.status).toBe(200);
    await own.body?.cancel();
  });
});

describe("a backend's questions reach the agent on /mcp, and its answers the backend", () => {
  it("sampling: the agent's model answers, and that is what the tool reports", async () => {
    const asked: unknown[] = [];
    const { client } = await connect("asker", { sampling: {} }, (c) =>
      c.setRequestHandler(CreateMessageRequestSchema, async (request) => {
        asked.push(request.params.messages);
        return {
          role: "assistant",
          content: { type: "text", text: "42, as ever" },
          model: "test-model",
        };
      }),
    );
    const result = await client.callTool({
      name: "ref_test_sampling",
      arguments: { prompt: "What is six times seven?" },
    });
    expect(text(result)).toBe("LLM response: 42, as ever");
    expect(asked).toEqual([
      [{ role: "user", content: { type: "text", text: "What is six times seven?" } }],
    ]);
  });

  it("form elicitation, and an answer slower than the backends' deadline still counts", async () => {
    const { client } = await connect("asker", { elicitation: { form: {} } }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async () => {
        // A person who takes longer than BACKEND_TIMEOUT_MS, within the agent's allowance.
        await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS + 500));
        return { action: "accept", content: { username: "ada", email: "ada@example.com" } };
      }),
    );
    expect(ANSWER_TIMEOUT_MS).toBeGreaterThan(TIMEOUT_MS + 500);
    const result = await client.callTool({
      name: "ref_test_elicitation",
      arguments: { message: "Who are you?" },
    });
    expect(text(result)).toBe(
      'Elicitation completed: action=accept, content={"username":"ada","email":"ada@example.com"}',
    );
  });

  it("URL elicitation: the agent gets the URL, and its answer reaches the tool", async () => {
    const asked: unknown[] = [];
    const { client } = await connect("asker", { elicitation: { form: {}, url: {} } }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(request.params);
        return { action: "accept" };
      }),
    );
    const result = await client.callTool({ name: "exch_ask_url", arguments: { label: "mcp-url" } });
    expect(text(result)).toBe("mcp-url: accept");
    expect(asked).toMatchObject([
      { mode: "url", url: "https://auth.example.com/connect?label=mcp-url" },
    ]);
  });

  it("roots: a tool that lists the client's roots gets the agent's", async () => {
    const { client } = await connect("asker", { roots: {} }, (c) =>
      c.setRequestHandler(ListRootsRequestSchema, async () => ({
        roots: [{ uri: "file:///work/project", name: "project" }],
      })),
    );
    const result = await client.callTool({ name: "exch_list_roots", arguments: {} });
    expect(text(result)).toBe("roots: file:///work/project");
  });

  it("an agent that declared elicitation only is not asked for sampling: the backend hears at once", async () => {
    const { client } = await connect("asker", { elicitation: { form: {} } }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" })),
    );
    const { value, ms } = await timed(() =>
      client.callTool({ name: "exch_ask_anyway", arguments: { kind: "sampling" } }),
    );
    expect(text(value)).toMatch(/^sampling refused: MCP error -32601/);
    expect(ms).toBeLessThan(TIMEOUT_MS / 2);
  });
});

describe("misbehaving agents end cleanly on /mcp", () => {
  it("a question never answered: the call ends after the agent's allowance, cancelled upstream", async () => {
    const agent = await RawSession.open(MCP, "asker", { elicitation: { form: {} } });
    const next = await agent.call(1, "exch_ask", { label: "mcp-never" });
    expect(await next()).toMatchObject({ method: "elicitation/create" });
    const { value, ms } = await timed(next);
    expect(value).toMatchObject({ id: 1, result: { isError: true } });
    expect(text(value.result)).toMatch(/timed out after 4\.5 s waiting for exch/i);
    expect(ms).toBeGreaterThanOrEqual(ANSWER_TIMEOUT_MS - 200);
    await expect.poll(async () => (await exchangesState()).labels["mcp-never"]).toBe("cancelled");
  });

  it("an answer sent twice: the first counts, the second is turned away by the backend", async () => {
    const agent = await RawSession.open(MCP, "asker", { elicitation: { form: {} } });
    const next = await agent.call(1, "exch_ask", { label: "mcp-twice" });
    const question = await next();
    expect(question).toMatchObject({ method: "elicitation/create" });
    expect(String(question.id)).toMatch(/^mcpcp-q\./);
    expect((await agent.post(accepted(question.id, "first"))).status).toBe(202);
    const errorsBefore = (await exchangesState()).errors.length;
    expect((await agent.post(accepted(question.id, "second"))).status).toBe(202);
    const result = await next();
    expect(text(result.result)).toBe('mcp-twice: accept {"name":"first"}');
    await expect
      .poll(async () => (await exchangesState()).errors.slice(errorsBefore).join("\n"))
      .toMatch(/unknown message ID/);
  });

  it("another agent's answer, or a forged id, goes nowhere; the owner's answer still counts", async () => {
    const owner = await RawSession.open(MCP, "asker", { elicitation: { form: {} } });
    const intruder = await RawSession.open(MCP, "bystander", { elicitation: { form: {} } });
    const next = await owner.call(1, "exch_ask", { label: "mcp-theirs" });
    const question = await next();
    const errorsBefore = (await exchangesState()).errors.length;
    expect((await intruder.post(accepted(question.id, "mallory"))).status).toBe(202);
    const forged = `${String(question.id).slice(0, -3)}AAA`;
    expect((await owner.post(accepted(forged, "mallory"))).status).toBe(202);
    expect((await exchangesState()).labels["mcp-theirs"]).toBe("waiting");
    expect((await exchangesState()).errors.slice(errorsBefore)).toEqual([]);

    expect((await owner.post(accepted(question.id, "alice"))).status).toBe(202);
    const result = await next();
    expect(text(result.result)).toBe('mcp-theirs: accept {"name":"alice"}');
  });
});

describe("a session's GET stream on /mcp", () => {
  it("carries a backend's question asked outside any call, and the answer reaches the backend", async () => {
    const client = await connectListening(MCP, "asker", { roots: {} }, (c) =>
      c.setRequestHandler(ListRootsRequestSchema, async () => ({
        roots: [{ uri: "file:///work/detached" }],
      })),
    );
    const result = await client.callTool({ name: "exch_list_roots_detached", arguments: {} });
    expect(text(result)).toBe("roots: file:///work/detached");
  });

  it("carries the updates of a resource the agent subscribed to, under the server's prefix", async () => {
    const updated: string[] = [];
    const client = await connectListening(MCP, "asker", { elicitation: {} }, (c) =>
      c.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
        updated.push(notification.params.uri);
      }),
    );
    expect(client.getServerCapabilities()?.resources).toMatchObject({ subscribe: true });
    await client.subscribeResource({ uri: "exch+note://board" });
    await client.callTool({ name: "exch_touch_board", arguments: {} });
    await expect.poll(() => updated).toEqual(["exch+note://board"]);

    await client.unsubscribeResource({ uri: "exch+note://board" });
    await client.callTool({ name: "exch_touch_board", arguments: {} });
    // A second touch after unsubscribing: nothing more comes (the backend's word is synchronous
    // with the tool's answer, so a short wait is enough to see it would have).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(updated).toEqual(["exch+note://board"]);
    // A resource of a server the agent does not hold, or that does not exist: not found.
    await expect(client.subscribeResource({ uri: "nope+note://board" })).rejects.toMatchObject({
      code: -32602,
    });
  });

  it("offers subscriptions only where a server the agent holds whole has them", async () => {
    // `integrator` holds `ext` whole, whose resources have no subscriptions; `asker` holds `exch`,
    // whose do. On an isolate that has heard from neither, as a cold one.
    eraVerdicts.clear();
    const { client } = await connect("integrator", { sampling: {} });
    expect(client.getServerCapabilities()?.resources).toEqual({ listChanged: true });
    expect(eraVerdicts.get("exch")).toBeUndefined();
    const { client: asking } = await connect("asker", { elicitation: {} });
    expect(asking.getServerCapabilities()?.resources).toEqual({
      listChanged: true,
      subscribe: true,
    });
    expect(eraVerdicts.get("exch")).toMatchObject({ kind: "legacy" });
  });

  it("a sessionless agent is offered no subscriptions", async () => {
    const client = new Client({ name: "mcp-plain", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(MCP, {
        fetch: gatewayFetch,
        requestInit: { headers: { authorization: `Bearer ${await token("asker")}` } },
      }),
    );
    closeAfterTest(client);
    expect(client.getServerCapabilities()?.resources).toEqual({ listChanged: true });
    await expect(client.subscribeResource({ uri: "exch+note://board" })).rejects.toMatchObject({
      code: -32601,
    });
  });

  it("is 405 without a session, as before", async () => {
    const response = await exports.default.fetch(
      new Request(MCP, {
        headers: {
          accept: "text/event-stream",
          authorization: `Bearer ${await token("asker")}`,
        },
      }),
    );
    expect(response.status).toBe(405);
    await response.body?.cancel();
  });
});
