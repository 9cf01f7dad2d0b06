/**
 * The backend's questions to the agent through a door (`/servers/<id>/mcp`): sampling,
 * elicitation (form and URL), roots, in both eras, with the MCP SDK clients as agents use them,
 * and agents that misbehave where the SDK client cannot (raw POSTs).
 *
 * - `ref` is the conformance reference server (test/conformance/reference-server.ts): 2025-era,
 *   sessions; `test_sampling` and `test_elicitation` ask the client on the call's own stream.
 * - `exch` is test/support/exchanges-backend.ts: 2025-era, sessions; roots, URL elicitation, an
 *   elicitation whose fate it remembers, and requests sent whatever the client declared.
 * - `mrtr` is test/support/mrtr-backend.ts: 2026-07-28 multi-round-trip (`input_required`).
 *
 * `asker` holds all three whole; `bystander` holds `exch` and `mrtr` (another agent, same servers).
 */

import { env } from "cloudflare:workers";
import {
  type ClientCapabilities,
  CreateMessageRequestSchema,
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import {
  CONFIRMED,
  connectListening,
  exchangesState,
  modernCall,
  modernClient,
  mrtrState,
  RawSession,
  timed,
} from "./agent-exchange.ts";
import { connectDoor, doorUrl, text } from "./door-client.ts";

const TIMEOUT_MS = Number(env.BACKEND_TIMEOUT_MS);
/** How long a door waits for an agent to answer a backend's question. */
const ANSWER_TIMEOUT_MS = Number(env.AGENT_ANSWER_TIMEOUT_MS);
const FOREIGN_STATE = "Invalid params: requestState was not issued to this agent by this server";

/** A v1 SDK client (2025-era) for `agent` at the door of `server`, `setup` run before connecting. */
const connect = connectDoor;

/** A raw 2025 session at the door of `server`: a door always has the backend's session. */
async function openDoorSession(agent: string, server: string, capabilities: ClientCapabilities) {
  const opened = await RawSession.open(doorUrl(server), agent, capabilities);
  expect(opened.session).toBeDefined();
  return opened;
}

/** A raw 2026-07-28 tools/call through the door of `mrtr` (`modernCall` in agent-exchange.ts). */
async function doorCall(
  agent: string,
  name: string,
  params: Record<string, unknown>,
  meta: Record<string, unknown> = {},
) {
  const answer = await modernCall(doorUrl("mrtr"), agent, name, params, { meta });
  expect(answer.status).toBe(200);
  return answer;
}

describe("a door carries the backend's questions to the agent (2025 era)", () => {
  it("sampling: the backend's sampling/createMessage reaches the agent and its answer the tool", async () => {
    const asked: unknown[] = [];
    const client = await connect("asker", "ref", { sampling: {} }, (c) =>
      c.setRequestHandler(CreateMessageRequestSchema, async (request) => {
        asked.push(request.params.messages);
        return {
          role: "assistant",
          content: { type: "text", text: "42, as ever" },
          model: "test-model",
          stopReason: "endTurn",
        };
      }),
    );
    const result = await client.callTool({
      name: "test_sampling",
      arguments: { prompt: "What is six times seven?" },
    });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe("LLM response: 42, as ever");
    expect(asked).toEqual([
      [{ role: "user", content: { type: "text", text: "What is six times seven?" } }],
    ]);
  });

  it("an answer slower than the backends' deadline still counts: the agent's wait is its own", async () => {
    const client = await connect("asker", "ref", { sampling: {} }, (c) =>
      c.setRequestHandler(CreateMessageRequestSchema, async () => {
        // A model (or a person) that takes longer than BACKEND_TIMEOUT_MS, within the allowance.
        await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS + 500));
        return {
          role: "assistant",
          content: { type: "text", text: "slow but sure" },
          model: "test-model",
        };
      }),
    );
    expect(ANSWER_TIMEOUT_MS).toBeGreaterThan(TIMEOUT_MS + 500);
    const result = await client.callTool({ name: "test_sampling", arguments: { prompt: "?" } });
    expect(text(result)).toBe("LLM response: slow but sure");
  });

  it("form elicitation: the agent's answer is what the tool reports", async () => {
    const asked: unknown[] = [];
    const client = await connect("asker", "ref", { elicitation: { form: {} } }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(request.params.message);
        return { action: "accept", content: { username: "ada", email: "ada@example.com" } };
      }),
    );
    const result = await client.callTool({
      name: "test_elicitation",
      arguments: { message: "Who are you?" },
    });
    expect(asked).toEqual(["Who are you?"]);
    expect(text(result)).toBe(
      'Elicitation completed: action=accept, content={"username":"ada","email":"ada@example.com"}',
    );
  });

  it("URL elicitation: the agent gets the URL, its answer and the completion notice pass", async () => {
    const asked: unknown[] = [];
    const completed: string[] = [];
    const client = await connect("asker", "exch", { elicitation: { form: {}, url: {} } }, (c) => {
      c.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(request.params);
        return { action: "accept" };
      });
      c.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) => {
        completed.push(notification.params.elicitationId);
      });
    });
    const result = await client.callTool({ name: "ask_url", arguments: { label: "door-url" } });
    expect(text(result)).toBe("door-url: accept");
    expect(asked).toEqual([
      {
        mode: "url",
        message: "Connect your account (door-url)",
        url: "https://auth.example.com/connect?label=door-url",
        elicitationId: "door-url",
      },
    ]);
    expect(completed).toEqual(["door-url"]);
  });

  it("roots: a tool that lists the client's roots gets the agent's", async () => {
    const client = await connect("asker", "exch", { roots: {} }, (c) =>
      c.setRequestHandler(ListRootsRequestSchema, async () => ({
        roots: [
          { uri: "file:///work/project", name: "project" },
          { uri: "file:///work/notes", name: "notes" },
        ],
      })),
    );
    const result = await client.callTool({ name: "list_roots", arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe("roots: file:///work/project, file:///work/notes");
  });

  it("roots asked outside any call reach the agent on its GET stream, and the answer the tool", async () => {
    const client = await connectListening(doorUrl("exch"), "asker", { roots: {} }, (c) =>
      c.setRequestHandler(ListRootsRequestSchema, async () => ({
        roots: [{ uri: "file:///work/detached" }],
      })),
    );
    const result = await client.callTool({ name: "list_roots_detached", arguments: {} });
    expect(text(result)).toBe("roots: file:///work/detached");
  });

  it("the agent's notifications reach the backend: roots/list_changed", async () => {
    const client = await connect("asker", "exch", { roots: { listChanged: true } }, (c) =>
      c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [] })),
    );
    const before = (await exchangesState()).rootsChanged;
    await client.sendRootsListChanged();
    await expect.poll(async () => (await exchangesState()).rootsChanged).toBe(before + 1);
  });
});

describe("an agent without the capability is answered at once, never left to time out", () => {
  it("the backend learns from the agent's initialize that it cannot sample or elicit", async () => {
    const client = await connect("asker", "ref", {});
    const sampling = await timed(() =>
      client.callTool({ name: "test_sampling", arguments: { prompt: "hi" } }),
    );
    expect(sampling.value.isError).toBe(true);
    expect(text(sampling.value)).toMatch(/does not support sampling/);
    expect(sampling.ms).toBeLessThan(TIMEOUT_MS / 2);
    const elicitation = await timed(() =>
      client.callTool({ name: "test_elicitation", arguments: { message: "hi" } }),
    );
    expect(elicitation.value.isError).toBe(true);
    expect(text(elicitation.value)).toMatch(/does not support elicitation/);
    expect(elicitation.ms).toBeLessThan(TIMEOUT_MS / 2);
  });

  it("a backend that asks anyway gets the agent's -32601 back on its session", async () => {
    const client = await connect("asker", "exch", {});
    for (const kind of ["sampling", "elicitation"]) {
      const { value, ms } = await timed(() =>
        client.callTool({ name: "ask_anyway", arguments: { kind } }),
      );
      expect(value.isError).toBe(true);
      expect(text(value)).toMatch(new RegExp(`^${kind} refused: MCP error -32601`));
      expect(ms).toBeLessThan(TIMEOUT_MS / 2);
    }
    const roots = await timed(() => client.callTool({ name: "list_roots", arguments: {} }));
    expect(text(roots.value)).toMatch(/^roots\/list failed: MCP error -32601/);
    expect(roots.ms).toBeLessThan(TIMEOUT_MS / 2);
  });
});

describe("misbehaving agents end cleanly", () => {
  it("an elicitation never answered: the gateway's timeout ends the call and cancels it upstream", async () => {
    let asked = 0;
    const client = await connect("asker", "exch", { elicitation: { form: {} } }, (c) =>
      c.setRequestHandler(ElicitRequestSchema, () => {
        asked++;
        return new Promise(() => {}); // a user who walked away
      }),
    );
    const { value, ms } = await timed(() =>
      client.callTool({ name: "ask", arguments: { label: "door-never" } }),
    );
    expect(asked).toBe(1);
    expect(value.isError).toBe(true);
    expect(text(value)).toBe(
      `No answer from the agent to exch's elicitation/create after ${ANSWER_TIMEOUT_MS / 1000} s; the call was cancelled.`,
    );
    expect(ms).toBeGreaterThanOrEqual(ANSWER_TIMEOUT_MS - 100);
    expect(ms).toBeLessThan(ANSWER_TIMEOUT_MS + 2_000);
    await expect.poll(async () => (await exchangesState()).labels["door-never"]).toBe("cancelled");
  });

  it("the question left unanswered is withdrawn on the stream before the timed-out result", async () => {
    // Raw, because the v1 SDK client ignores a cancellation of request id 0 (`!requestId`), and
    // a fresh session's first question to the agent has id 0.
    const agent = await openDoorSession("asker", "exch", { elicitation: { form: {} } });
    const next = await agent.call(1, "ask", { label: "door-withdrawn" });
    const question = await next();
    expect(question).toMatchObject({ method: "elicitation/create" });
    expect(await next()).toEqual({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: question.id, reason: "timed out at the gateway" },
    });
    const result = await next();
    expect(result).toMatchObject({ id: 1, result: { isError: true } });
    expect(text(result.result)).toMatch(/^No answer from the agent to exch's elicitation\/create/);
  });

  it("an elicitation answered twice: the first answer counts, the second is turned away cleanly", async () => {
    const agent = await openDoorSession("asker", "exch", { elicitation: { form: {} } });
    const next = await agent.call(1, "ask", { label: "door-twice" });
    const question = await next();
    expect(question).toMatchObject({ method: "elicitation/create" });
    const answer = (name: string) => ({
      jsonrpc: "2.0",
      id: question.id,
      result: { action: "accept", content: { name } },
    });
    const first = await agent.post(answer("first"));
    expect(first.status).toBe(202);
    const errorsBefore = (await exchangesState()).errors.length;
    // The backend takes any answer on its session (202) and drops one it is not waiting for.
    const second = await agent.post(answer("second"));
    expect(second.status).toBe(202);
    await second.body?.cancel();
    const result = await next();
    expect(result).toMatchObject({ id: 1 });
    expect(text(result.result)).toBe('door-twice: accept {"name":"first"}');
    expect((await exchangesState()).labels["door-twice"]).toBe('answered: accept {"name":"first"}');
    // It reached the backend's own session, which has nothing waiting on that id.
    await expect
      .poll(async () => (await exchangesState()).errors.slice(errorsBefore).join("\n"))
      .toMatch(/unknown message ID/);
  });

  it("an answer to another agent's question changes nothing for that agent", async () => {
    const owner = await openDoorSession("asker", "exch", { elicitation: { form: {} } });
    const intruder = await openDoorSession("bystander", "exch", { elicitation: { form: {} } });
    const next = await owner.call(1, "ask", { label: "door-theirs" });
    const question = await next();
    expect(question).toMatchObject({ method: "elicitation/create" });
    const answer = (name: string) => ({
      jsonrpc: "2.0",
      id: question.id,
      result: { action: "accept", content: { name } },
    });

    // On its own session, the answer reaches only the intruder's own upstream session...
    const own = await intruder.post(answer("mallory"));
    expect(own.status).toBe(202);
    await own.body?.cancel();
    // ...and the owner's session is sealed to the owner: the gateway does not know it for another.
    const borrowed = await intruder.post(answer("mallory"), owner.session);
    expect(borrowed.status).toBe(404);
    await borrowed.body?.cancel();
    expect((await exchangesState()).labels["door-theirs"]).toBe("waiting");

    expect((await owner.post(answer("alice"))).status).toBe(202);
    const result = await next();
    expect(result).toMatchObject({ id: 1 });
    expect(text(result.result)).toBe('door-theirs: accept {"name":"alice"}');
  });
});

describe("2026-07-28 multi-round-trip through a door", () => {
  it("the SDK client fulfils input_required and retries; the backend gets its own state back", async () => {
    const asked: unknown[] = [];
    const { client, bodies } = await modernClient(doorUrl("mrtr"), "asker", (params) => {
      asked.push(params);
      return { action: "accept", content: { confirm: true } };
    });
    const before = await mrtrState();
    const result = await client.callTool({ name: "confirm", arguments: { action: "deploy" } });
    expect(text(result)).toBe("deploy: confirmed");
    expect(asked).toMatchObject([{ message: "Really deploy?" }]);

    const after = await mrtrState();
    const [issued] = after.issued.slice(before.issued.length);
    expect(issued).toMatch(/^mrtr:confirm:\d+:deploy$/);
    expect(after.calls.slice(before.calls.length)).toEqual([
      { tool: "confirm" },
      { tool: "confirm", requestState: issued },
    ]);

    // The agent saw a requestState, and it was not the backend's: the gateway sealed it.
    const seen = await bodies();
    expect(seen).toContain('"resultType":"input_required"');
    expect(seen).not.toContain(issued);
    expect(seen).not.toContain("mrtr:");
    const sealed = /"requestState":"([^"]+)"/.exec(seen)?.[1];
    expect(sealed).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  });

  it("URL elicitation rides the same round trip", async () => {
    const asked: unknown[] = [];
    const { client } = await modernClient(doorUrl("mrtr"), "asker", (params) => {
      asked.push(params);
      return { action: "accept" };
    });
    const result = await client.callTool({ name: "visit", arguments: { label: "door-visit" } });
    expect(text(result)).toBe("door-visit: accept");
    expect(asked).toMatchObject([
      { mode: "url", url: "https://auth.example.com/connect?label=door-visit" },
    ]);
  });

  it("another agent replaying an agent's sealed state is refused, and the backend never sees it", async () => {
    const first = await doorCall("asker", "confirm", { arguments: { action: "drop" } });
    expect(first.result).toMatchObject({ resultType: "input_required" });
    const sealed = first.result?.requestState;
    expect(typeof sealed).toBe("string");
    const retry = {
      arguments: { action: "drop" },
      inputResponses: CONFIRMED,
      requestState: sealed,
    };

    const before = (await mrtrState()).calls.length;
    const replayed = await doorCall("bystander", "confirm", retry);
    expect(replayed.error).toEqual({ code: -32602, message: FOREIGN_STATE });
    expect((await mrtrState()).calls.length).toBe(before);

    // The agent it was sealed for still completes with it.
    const own = await doorCall("asker", "confirm", retry);
    expect(text(own.result)).toBe("drop: confirmed");
  });

  it("a tampered state, or the backend's raw one, is refused before the backend", async () => {
    const first = await doorCall("asker", "confirm", { arguments: { action: "wipe" } });
    const sealed = String(first.result?.requestState);
    const flipped = `${sealed.slice(0, 20)}${sealed[20] === "A" ? "B" : "A"}${sealed.slice(21)}`;
    const raw = (await mrtrState()).issued.at(-1);
    expect(raw).toMatch(/^mrtr:confirm:\d+:wipe$/);

    const before = (await mrtrState()).calls.length;
    for (const requestState of [flipped, raw, `${sealed}AAAA`, ""]) {
      const refused = await doorCall("asker", "confirm", {
        arguments: { action: "wipe" },
        inputResponses: CONFIRMED,
        requestState,
      });
      expect(refused.error).toEqual({ code: -32602, message: FOREIGN_STATE });
    }
    expect((await mrtrState()).calls.length).toBe(before);
  });

  it("an input_required that comes on an SSE stream is sealed all the same", async () => {
    const first = await doorCall(
      "asker",
      "confirm",
      { arguments: { action: "stream" } },
      { progressToken: "p-1" },
    );
    expect(first.sse).toBe(true);
    expect(first.messages[0]).toMatchObject({ method: "notifications/progress" });
    const raw = (await mrtrState()).issued.at(-1) ?? "";
    expect(raw).toMatch(/^mrtr:confirm:\d+:stream$/);
    const sealed = String(first.result?.requestState);
    expect(sealed).not.toContain("mrtr:");
    const done = await doorCall("asker", "confirm", {
      arguments: { action: "stream" },
      inputResponses: CONFIRMED,
      requestState: sealed,
    });
    expect(text(done.result)).toBe("stream: confirmed");
    expect((await mrtrState()).calls.at(-1)).toEqual({ tool: "confirm", requestState: raw });
  });

  it("a large state the gateway sealed opens again", async () => {
    const first = await doorCall("asker", "remember", { arguments: { size: 12_000 } });
    expect(first.result).toMatchObject({ resultType: "input_required" });
    const raw = (await mrtrState()).issued.at(-1) ?? "";
    const done = await doorCall("asker", "remember", {
      arguments: { size: 12_000 },
      requestState: first.result?.requestState,
    });
    expect(done.error).toBeUndefined();
    expect(text(done.result)).toBe(`remembered ${raw.length} characters`);
  });
});
