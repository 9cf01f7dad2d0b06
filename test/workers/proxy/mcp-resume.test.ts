/**
 * Resumable streams on `/mcp` for a 2025-era agent, with a session (core/agent-session.ts) or
 * without one: its call streams (and a session's GET stream) are numbered as a door numbers a backend's
 * (relay/resume.ts), so an agent whose connection drops comes back with `GET` and
 * `Last-Event-ID`, on any isolate, for what it missed. The call behind a dropped stream goes on
 * while the agent comes back for it, and is cancelled upstream once it does not (RESUME_GRACE_MS).
 *
 * The backends: `ext` (test/support/third-party-backend.ts), whose `wait_for_release` reports
 * progress and a log message, then waits for the test; `exch` (exchanges-backend.ts), whose
 * `touch_board` updates a resource the agent may subscribe to, on the session's GET stream.
 */

import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, inject, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { RESUME_GRACE_MS, RETRY_MS } from "../../../workers/proxy/src/relay/resume.ts";
import { LEGACY_VERSION, ORIGIN, token } from "./client.ts";
import { closeAfterTest, text } from "./door-client.ts";

// The backends may take far longer than the grace: what ends a call here is the agent, not them.
const LONG = { ...env, BACKEND_TIMEOUT_MS: "20000" } as Env;

/** A request to the gateway, straight to its handler: the test holds the answer's stream itself. */
function send(request: Request, gateway: Env = LONG): Promise<Response> {
  return Promise.resolve(worker.fetch(request, gateway, createExecutionContext()));
}

const MCP = new URL(`${ORIGIN}/mcp`);
const LOGGED_ID = /^[0-9a-f]{32}\.\d+$/;

interface ThirdPartyState {
  labels: Record<string, string>;
  calls: Record<string, { session: string | undefined; requestId: string | number }>;
  cancellations: { session: string | undefined; requestId: unknown; reason: unknown }[];
}

async function extState(): Promise<ThirdPartyState> {
  return (await fetch(`${inject("thirdPartyUrl")}/__state`)).json() as Promise<ThirdPartyState>;
}

function release(label: string): Promise<Response> {
  return fetch(`${inject("thirdPartyUrl")}/__release?label=${label}`, { method: "POST" });
}

interface SseEvent {
  id?: string;
  data: string;
}

/** An SSE stream's raw text and events, read as they come. */
class RawStream {
  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  text = "";
  readonly events: SseEvent[] = [];
  ended = false;
  private buffer = "";
  private readonly decoder = new TextDecoder();

  constructor(response: Response) {
    if (!response.body) throw new Error(`no body (HTTP ${response.status})`);
    this.reader = response.body.getReader();
  }

  /** Reads until `until` holds of the events so far, or the stream ends. */
  async readUntil(until: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
    while (!until(this.events) && !this.ended) {
      const { done, value } = await this.reader.read();
      if (done) {
        this.ended = true;
        break;
      }
      const chunk = this.decoder.decode(value, { stream: true });
      this.text += chunk;
      this.buffer += chunk;
      let end = this.buffer.indexOf("\n\n");
      while (end !== -1) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join("\n");
        if (data !== "") this.events.push({ ...(id === undefined ? {} : { id }), data });
        end = this.buffer.indexOf("\n\n");
      }
    }
    return this.events;
  }

  /** The agent's connection drops. */
  drop(): Promise<void> {
    return this.reader.cancel();
  }
}

const answerTo = (id: number) => (event: SseEvent) => JSON.parse(event.data).id === id;

/** A 2025-era agent's session on /mcp, driven by hand. */
class Session {
  readonly bearer: string;
  readonly session: string | undefined;

  constructor(bearer: string, session: string | undefined) {
    this.bearer = bearer;
    this.session = session;
  }

  static async open(agent: string, capabilities: Record<string, unknown>): Promise<Session> {
    const bearer = await token(agent);
    const initialize = await postAs(bearer, undefined, {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: LEGACY_VERSION,
        capabilities,
        clientInfo: { name: "raw", version: "1" },
      },
    });
    expect(initialize.status).toBe(200);
    await initialize.body?.cancel();
    const opened = new Session(bearer, initialize.headers.get("mcp-session-id") ?? undefined);
    const initialized = await opened.post({ jsonrpc: "2.0", method: "notifications/initialized" });
    expect(initialized.status).toBe(202);
    return opened;
  }

  post(body: unknown): Promise<Response> {
    return postAs(this.bearer, this.session, body);
  }
}

function postAs(bearer: string, session: string | undefined, body: unknown): Promise<Response> {
  return send(
    new Request(MCP, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        authorization: `Bearer ${bearer}`,
        ...(session === undefined ? {} : { "mcp-session-id": session }),
      },
      body: JSON.stringify(body),
    }),
  );
}

/** A sessionful agent's `wait_for_release` call, its stream read up to the backend's log message. */
async function startCall(agent: string, id: number, label: string) {
  const session = await Session.open(agent, { sampling: {} });
  expect(session.session).toBeDefined();
  const response = await session.post({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "ext_wait_for_release", arguments: { label }, _meta: { progressToken: 1 } },
  });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const stream = new RawStream(response);
  await stream.readUntil((events) => events.length >= 2);
  return { session, stream };
}

/** `GET /mcp` as `session`'s agent (or `bearer`'s), resuming after `lastEventId`. */
async function resume(
  session: Session,
  lastEventId: string,
  options: { bearer?: string; sessionId?: string | undefined } = {},
): Promise<Response> {
  const sessionId = "sessionId" in options ? options.sessionId : session.session;
  return send(
    new Request(MCP, {
      headers: {
        authorization: `Bearer ${options.bearer ?? session.bearer}`,
        accept: "text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId }),
        "last-event-id": lastEventId,
      },
    }),
  );
}

const seqOf = (id: string | undefined) => Number(id?.split(".")[1]);

/**
 * The agent drops `stream` (call `id`, waiting on `label`) after its last event and comes back
 * through `resumeAt` with that event's id: the call is still running well past the grace, then
 * the resumed stream has its answer exactly once, and only what came after the id, under the
 * same stream's numbering.
 */
async function resumedAfterDrop(
  stream: RawStream,
  resumeAt: (last: string) => Promise<Response>,
  id: number,
  label: string,
): Promise<void> {
  const last = stream.events.at(-1)?.id ?? "";
  expect(last).toMatch(LOGGED_ID);
  await stream.drop();

  const resumed = await resumeAt(last);
  expect(resumed.status).toBe(200);
  expect(resumed.headers.get("content-type")).toContain("text/event-stream");
  const rest = new RawStream(resumed);
  const reading = rest.readUntil(() => false);
  // The agent is back: well past the grace, the call is still running, not cancelled.
  await new Promise((resolve) => setTimeout(resolve, 2 * RESUME_GRACE_MS));
  expect((await extState()).labels[label]).toBe("running");

  await release(label);
  const events = await reading;
  expect(rest.ended).toBe(true);
  const answers = events.filter(answerTo(id));
  expect(answers).toHaveLength(1);
  expect(JSON.parse(answers[0]?.data ?? "{}")).toMatchObject({
    result: { content: [{ text: `${label} done` }] },
  });
  expect(events.every((event) => seqOf(event.id) > seqOf(last))).toBe(true);
  expect(events.every((event) => event.id?.startsWith(last.split(".")[0] ?? "-"))).toBe(true);
}

describe("a session's call stream on /mcp is resumable", () => {
  it("carries event ids and the reconnection delay", async () => {
    const label = `resume-ids-${crypto.randomUUID()}`;
    const { stream } = await startCall("integrator", 21, label);
    expect(stream.text).toMatch(new RegExp(`^retry: ${RETRY_MS}$`, "m"));
    await release(label);
    const events = await stream.readUntil((seen) => seen.some(answerTo(21)));
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const event of events) expect(event.id).toMatch(LOGGED_ID);
    // One stream, numbered in order.
    expect(new Set(events.map((event) => event.id?.split(".")[0])).size).toBe(1);
    expect(events.map((event) => seqOf(event.id))).toEqual(events.map((_, index) => index + 1));
  });

  it("dropped mid-call, the call goes on, and GET with Last-Event-ID has the answer once", async () => {
    const label = `resume-drop-${crypto.randomUUID()}`;
    const { session, stream } = await startCall("integrator", 22, label);
    await resumedAfterDrop(stream, (last) => resume(session, last), 22, label);
    expect((await extState()).cancellations.map((c) => c.requestId)).not.toContain(
      (await extState()).calls[label]?.requestId,
    );
  }, 20_000);

  it("a resume after the answer came replays it, and the stream ends", async () => {
    const label = `resume-late-${crypto.randomUUID()}`;
    const { session, stream } = await startCall("integrator", 23, label);
    const last = stream.events.at(-1)?.id ?? "";
    await stream.drop();
    await release(label);
    await expect.poll(async () => (await extState()).labels[label]).toBe("released");

    const rest = new RawStream(await resume(session, last));
    const events = await rest.readUntil(() => false);
    expect(events.filter(answerTo(23))).toHaveLength(1);
    expect(rest.text).toMatch(new RegExp(`^retry: ${RETRY_MS}$`, "m"));
  }, 20_000);

  it("dropped and never resumed, the call is cancelled upstream after the grace", async () => {
    const label = `resume-gone-${crypto.randomUUID()}`;
    const { stream } = await startCall("integrator", 24, label);
    // Before the drop: the grace runs from the agent's leaving, which the drop's logging follows.
    const left = Date.now();
    await stream.drop();
    // Within the grace the agent may still come back: the call goes on.
    await new Promise((resolve) => setTimeout(resolve, RESUME_GRACE_MS / 2));
    expect((await extState()).labels[label]).toBe("running");
    await expect
      .poll(async () => (await extState()).labels[label], {
        timeout: 2 * RESUME_GRACE_MS + 2_000,
        interval: 50,
      })
      .toBe("cancelled");
    expect(Date.now() - left).toBeGreaterThanOrEqual(RESUME_GRACE_MS);
    const state = await extState();
    const cancellation = state.cancellations.find(
      (c) =>
        c.requestId === state.calls[label]?.requestId && c.session === state.calls[label]?.session,
    );
    expect(cancellation).toBeDefined();
    // The agent's absence ended it, not the backend's deadline (BACKEND_TIMEOUT_MS is long here).
    expect(String(cancellation?.reason)).not.toMatch(/timeout/i);
  }, 20_000);

  it("another agent's, a forged or a malformed id is refused, never a 500", async () => {
    const label = `resume-foreign-${crypto.randomUUID()}`;
    const { session, stream } = await startCall("integrator", 25, label);
    const last = stream.events.at(-1)?.id ?? "";
    await stream.drop();
    try {
      // Another agent with its own session, holding the id: the log is not its own.
      const stranger = await Session.open("asker", { sampling: {} });
      const borrowed = await resume(stranger, last);
      expect(borrowed.status).toBe(404);
      expect(await borrowed.json()).toMatchObject({ error: { code: -32001 } });
      // The same agent, an id of a stream that never was.
      const forged = await resume(session, `${"0".repeat(32)}.1`);
      expect(forged.status).toBe(404);
      await forged.body?.cancel();
      const malformed = await resume(session, "not-an-id");
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toMatchObject({ error: { code: -32600 } });
      // Another agent's session: unknown here, as any session of someone else's.
      const intruder = await resume(session, last, { bearer: await token("asker") });
      expect(intruder.status).toBe(404);
      await intruder.body?.cancel();
      // Without the session header the same agent's id still resumes: the log is the agent's.
      const sessionless = await resume(session, last, { sessionId: undefined });
      expect(sessionless.status).toBe(200);
      await sessionless.body?.cancel();
    } finally {
      await release(label);
    }
  });

  it("the SDK client resumes a dropped call stream itself and gets its answer", async () => {
    const label = `resume-sdk-${crypto.randomUUID()}`;
    const bearer = await token("integrator");
    let dropped = false;
    const resumedWith: string[] = [];
    const transport = new StreamableHTTPClientTransport(MCP, {
      fetch: async (input, init) => {
        const response = await send(new Request(input, init));
        const lastEventId = new Headers(init?.headers).get("last-event-id");
        if (lastEventId !== null) resumedWith.push(lastEventId);
        const body = init?.body;
        if (dropped || typeof body !== "string" || !body.includes("wait_for_release")) {
          return response;
        }
        // The connection drops after the call's first event: its bytes, then an error.
        dropped = true;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        const cut = new ReadableStream<Uint8Array>({
          async start(controller) {
            const first = await reader.read();
            if (!first.done) controller.enqueue(first.value);
            await reader.cancel();
            controller.error(new Error("connection reset"));
          },
        });
        return new Response(cut, response);
      },
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    });
    const client = new Client(
      { name: "resume", version: "1.0.0" },
      { capabilities: { sampling: {} } },
    );
    await client.connect(transport);
    closeAfterTest(client);
    const calling = client.callTool({ name: "ext_wait_for_release", arguments: { label } });
    await expect.poll(() => resumedWith.length, { timeout: 3 * RETRY_MS }).toBeGreaterThan(0);
    await release(label);
    expect(text(await calling)).toBe(`${label} done`);
    expect(dropped).toBe(true);
    expect(resumedWith[0]).toMatch(LOGGED_ID);
    expect((await extState()).labels[label]).toBe("released");
  }, 20_000);
});

describe("a session's GET stream on /mcp is resumable", () => {
  it("carries ids, and a resume has what came while the agent was away", async () => {
    const session = await Session.open("asker", { elicitation: {} });
    const open = await send(
      new Request(MCP, {
        headers: {
          authorization: `Bearer ${session.bearer}`,
          accept: "text/event-stream",
          "mcp-protocol-version": LEGACY_VERSION,
          "mcp-session-id": session.session ?? "",
        },
      }),
    );
    expect(open.status).toBe(200);
    const stream = new RawStream(open);
    const subscribed = await session.post({
      jsonrpc: "2.0",
      id: 31,
      method: "resources/subscribe",
      params: { uri: "exch+note://board" },
    });
    expect(subscribed.status).toBe(200);
    await subscribed.body?.cancel();
    const touch = async (id: number) => {
      const touched = await session.post({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "exch_touch_board", arguments: {} },
      });
      expect(touched.status).toBe(200);
      await touched.text();
    };
    await touch(32);
    const [first] = await stream.readUntil((events) => events.length >= 1);
    expect(first?.id).toMatch(LOGGED_ID);
    expect(stream.text).toMatch(new RegExp(`^retry: ${RETRY_MS}$`, "m"));
    expect(JSON.parse(first?.data ?? "{}")).toMatchObject({
      method: "notifications/resources/updated",
      params: { uri: "exch+note://board" },
    });

    await stream.drop();
    await touch(33);
    const rest = new RawStream(await resume(session, first?.id ?? ""));
    const [next] = await rest.readUntil((events) => events.length >= 1);
    expect(JSON.parse(next?.data ?? "{}")).toMatchObject({
      method: "notifications/resources/updated",
      params: { uri: "exch+note://board" },
    });
    expect(seqOf(next?.id)).toBe(seqOf(first?.id) + 1);
    await rest.drop();
  }, 20_000);
});

/** What a sessionless agent's `wait_for_release` call returned, read up to its log message. */
async function startSessionless(gateway: Env, agent: string, id: number, label: string) {
  const bearer = await token(agent);
  const response = await send(
    new Request(MCP, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        authorization: `Bearer ${bearer}`,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "ext_wait_for_release", arguments: { label }, _meta: { progressToken: 1 } },
      }),
    }),
    gateway,
  );
  expect(response.status).toBe(200);
  expect(response.headers.get("mcp-session-id")).toBeNull();
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  // Which path framed it (parity.test.ts's witness): the SDK's SSE answer says keep-alive.
  expect(response.headers.has("connection")).toBe(gateway.FAST_PATH === "off");
  const stream = new RawStream(response);
  await stream.readUntil((events) => events.length >= 2);
  return { bearer, stream };
}

/** `GET /mcp` without a session, resuming after `lastEventId` when there is one. */
function sessionlessGet(bearer: string, gateway: Env, lastEventId?: string): Promise<Response> {
  return send(
    new Request(MCP, {
      headers: {
        authorization: `Bearer ${bearer}`,
        accept: "text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
      },
    }),
    gateway,
  );
}

// The hot path numbers what it writes; the SDK server's answer is numbered as it passes. Both
// must give the same ids, the same log and the same rules.
describe.each([
  ["the hot path", LONG],
  ["the SDK server", { ...LONG, FAST_PATH: "off" } as Env],
])("a sessionless call stream on /mcp is resumable (%s)", (_path, gateway) => {
  it("carries event ids and the reconnection delay", async () => {
    const label = `resume-free-ids-${crypto.randomUUID()}`;
    const { stream } = await startSessionless(gateway, "integrator", 41, label);
    expect(stream.text).toMatch(new RegExp(`^retry: ${RETRY_MS}$`, "m"));
    await release(label);
    const events = await stream.readUntil((seen) => seen.some(answerTo(41)));
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const event of events) expect(event.id).toMatch(LOGGED_ID);
    expect(new Set(events.map((event) => event.id?.split(".")[0])).size).toBe(1);
    expect(events.map((event) => seqOf(event.id))).toEqual(events.map((_, index) => index + 1));
    expect(JSON.parse(events.at(-1)?.data ?? "{}")).toMatchObject({
      id: 41,
      result: { content: [{ text: `${label} done` }] },
    });
  });

  it("dropped mid-call, GET with Last-Event-ID and no session has the answer once", async () => {
    const label = `resume-free-drop-${crypto.randomUUID()}`;
    const { bearer, stream } = await startSessionless(gateway, "integrator", 42, label);
    await resumedAfterDrop(stream, (last) => sessionlessGet(bearer, gateway, last), 42, label);
    expect((await extState()).labels[label]).toBe("released");
  }, 20_000);

  it("dropped and never resumed, the call is cancelled upstream after the grace", async () => {
    const label = `resume-free-gone-${crypto.randomUUID()}`;
    const { stream } = await startSessionless(gateway, "integrator", 43, label);
    // Before the drop: the grace runs from the agent's leaving, which the drop's logging follows.
    const left = Date.now();
    await stream.drop();
    await new Promise((resolve) => setTimeout(resolve, RESUME_GRACE_MS / 2));
    expect((await extState()).labels[label]).toBe("running");
    await expect
      .poll(async () => (await extState()).labels[label], {
        timeout: 2 * RESUME_GRACE_MS + 2_000,
        interval: 50,
      })
      .toBe("cancelled");
    expect(Date.now() - left).toBeGreaterThanOrEqual(RESUME_GRACE_MS);
  }, 20_000);

  it("another agent's id is 404, a malformed one 400, and GET without one still 405", async () => {
    const label = `resume-free-foreign-${crypto.randomUUID()}`;
    const { bearer, stream } = await startSessionless(gateway, "integrator", 44, label);
    const last = stream.events.at(-1)?.id ?? "";
    await stream.drop();
    try {
      const borrowed = await sessionlessGet(await token("asker"), gateway, last);
      expect(borrowed.status).toBe(404);
      expect(await borrowed.json()).toMatchObject({ error: { code: -32001 } });
      const forged = await sessionlessGet(bearer, gateway, `${"0".repeat(32)}.1`);
      expect(forged.status).toBe(404);
      await forged.body?.cancel();
      const malformed = await sessionlessGet(bearer, gateway, "not-an-id");
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toMatchObject({ error: { code: -32600 } });
      // Without Last-Event-ID a sessionless agent has no GET stream on /mcp, as before.
      const plain = await sessionlessGet(bearer, gateway);
      expect(plain.status).toBe(405);
      await plain.body?.cancel();
    } finally {
      await release(label);
    }
  });

  it("the SDK client without capabilities resumes a cut call stream itself", async () => {
    const label = `resume-free-sdk-${crypto.randomUUID()}`;
    const bearer = await token("integrator");
    let dropped = false;
    const resumedWith: string[] = [];
    const sessions = new Set<string>();
    const transport = new StreamableHTTPClientTransport(MCP, {
      fetch: async (input, init) => {
        const request = new Request(input, init);
        const session = request.headers.get("mcp-session-id");
        if (session !== null) sessions.add(session);
        const response = await send(request, gateway);
        const lastEventId = request.headers.get("last-event-id");
        if (lastEventId !== null) resumedWith.push(lastEventId);
        const body = init?.body;
        if (dropped || typeof body !== "string" || !body.includes("wait_for_release")) {
          return response;
        }
        // The connection drops after the call's first event: its bytes, then an error.
        dropped = true;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        const cut = new ReadableStream<Uint8Array>({
          async start(controller) {
            const first = await reader.read();
            if (!first.done) controller.enqueue(first.value);
            await reader.cancel();
            controller.error(new Error("connection reset"));
          },
        });
        return new Response(cut, response);
      },
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    });
    const client = new Client({ name: "resume-free", version: "1.0.0" });
    await client.connect(transport);
    closeAfterTest(client);
    expect(transport.sessionId).toBeUndefined();
    const calling = client.callTool({ name: "ext_wait_for_release", arguments: { label } });
    await expect.poll(() => resumedWith.length, { timeout: 3 * RETRY_MS }).toBeGreaterThan(0);
    await release(label);
    expect(text(await calling)).toBe(`${label} done`);
    expect(dropped).toBe(true);
    expect(resumedWith[0]).toMatch(LOGGED_ID);
    expect(sessions.size).toBe(0);
    expect((await extState()).labels[label]).toBe("released");
  }, 20_000);
});
