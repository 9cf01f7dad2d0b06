/**
 * The cap on an agent's long-lived streams (MAX_STREAMS_PER_AGENT, 8 in wrangler.toml): a
 * 2026-07-28 `subscriptions/listen` stream on /mcp and a door's GET stream each hold a lease in
 * the agent's AgentGate from before anything goes upstream until the stream ends. One past the
 * cap is refused at once (429, Retry-After, JSON-RPC -32029 naming the limit) and opens nothing
 * upstream; a closed stream frees its lease; streams another isolate holds count the same.
 *
 * The backends `lsa` and `lsb` are one server (test/support/streams-backend.ts) that counts the
 * streams open on each, so a test sees every upstream listen open and end. Each test has an agent
 * of its own, and ends with every stream it opened closed.
 */
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, inject, it } from "vitest";
import { LEGACY_VERSION, ORIGIN, post, token } from "./client.ts";

const MODERN = "2026-07-28";
/** wrangler.toml's MAX_STREAMS_PER_AGENT. */
const CAP = 8;

interface StreamCounts {
  listens: number;
  listensOpened: number;
  gets: number;
  getsOpened: number;
}

/** What the stream-counting server has seen behind `lsa` and behind `lsb`. */
async function counts(): Promise<{ a: StreamCounts; b: StreamCounts }> {
  const state = (await (await fetch(`${inject("streamsUrl")}/__state`)).json()) as Record<
    string,
    StreamCounts
  >;
  const none = { listens: 0, listensOpened: 0, gets: 0, getsOpened: 0 };
  return { a: state["/a/mcp"] ?? none, b: state["/b/mcp"] ?? none };
}

/** The streams open upstream now: listens behind lsa and lsb, and GETs behind them. */
async function openUpstream() {
  const { a, b } = await counts();
  return { listens: [a.listens, b.listens], gets: [a.gets, b.gets] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An agent's 2026-07-28 `subscriptions/listen` on /mcp. */
async function listen(agent: string, id: string): Promise<Response> {
  return post(
    {
      jsonrpc: "2.0",
      id,
      method: "subscriptions/listen",
      params: {
        notifications: { toolsListChanged: true },
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "streams", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    },
    await token(agent),
    { "mcp-protocol-version": MODERN, "mcp-method": "subscriptions/listen" },
  );
}

/** An agent's GET stream at `server`'s door. */
async function doorGet(agent: string, server: string): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ORIGIN}/servers/${server}/mcp`, {
      method: "GET",
      headers: {
        authorization: `Bearer ${await token(agent)}`,
        accept: "text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
      },
    }),
  );
}

/** Every stream a test opened, closed after it whatever happened. */
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((close) => close()));
  await expect.poll(openUpstream, { timeout: 5_000 }).toEqual({ listens: [0, 0], gets: [0, 0] });
});

/**
 * An admitted stream, read as a client reads it (a listen until its acknowledgement, then on);
 * `close` ends it as an agent does, by cancelling it.
 */
async function held(response: Response, kind: "listen" | "get"): Promise<() => Promise<void>> {
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const close = () => reader.cancel().catch(() => {});
  opened.push(close);
  if (kind === "listen") {
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("notifications/subscriptions/acknowledged")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the listen stream ended before its acknowledgement: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
  }
  void (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  return close;
}

/** Asks until the stream is admitted: a closed stream's lease goes back moments after it ends. */
async function admittedSoon(open: () => Promise<Response>): Promise<Response> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const response = await open();
    if (response.status !== 429) return response;
    await response.body?.cancel();
    await sleep(100);
  }
  return open();
}

/** The refusal of a stream over the cap, as the agent receives it. */
async function expectRefused(response: Response, agent: string, id: string | null) {
  expect(response.status).toBe(429);
  expect(response.headers.get("retry-after")).toBe("1");
  expect(await response.json()).toEqual({
    jsonrpc: "2.0",
    id,
    error: {
      code: -32029,
      message: `Agent ${agent} already has ${CAP} streams open (limit ${CAP}); retry after 1 s`,
    },
  });
}

describe("the cap on an agent's long-lived streams", () => {
  it(`admits an agent's first ${CAP} listen streams and refuses the next at once, opening nothing upstream for it`, async () => {
    const agent = "streams_listener";
    const closes: (() => Promise<void>)[] = [];
    for (let i = 0; i < CAP; i++) closes.push(await held(await listen(agent, `l-${i}`), "listen"));
    // Each open listen stream listens upstream to each of the agent's two servers.
    await expect
      .poll(async () => (await openUpstream()).listens, { timeout: 5_000 })
      .toEqual([CAP, CAP]);
    const before = await counts();

    await expectRefused(await listen(agent, "l-over"), agent, "l-over");
    await sleep(500);
    const after = await counts();
    expect(after.a.listensOpened).toBe(before.a.listensOpened);
    expect(after.b.listensOpened).toBe(before.b.listensOpened);

    // One closes: its upstream listens end, and the agent may open another.
    await closes[0]?.();
    await expect
      .poll(async () => (await openUpstream()).listens, { timeout: 5_000 })
      .toEqual([CAP - 1, CAP - 1]);
    await held(await admittedSoon(() => listen(agent, "l-again")), "listen");
    await expect
      .poll(async () => (await openUpstream()).listens, { timeout: 5_000 })
      .toEqual([CAP, CAP]);
  }, 30_000);

  it("opens one upstream listen per server for a listen stream, and closing the stream closes them", async () => {
    const before = await counts();
    const close = await held(await listen("streams_upstream", "one"), "listen");
    await expect
      .poll(async () => (await openUpstream()).listens, { timeout: 5_000 })
      .toEqual([1, 1]);
    await sleep(500);
    const during = await counts();
    expect(during.a.listensOpened - before.a.listensOpened).toBe(1);
    expect(during.b.listensOpened - before.b.listensOpened).toBe(1);
    await close();
    await expect
      .poll(async () => (await openUpstream()).listens, { timeout: 2_000 })
      .toEqual([0, 0]);
  });

  it("counts a door's GET streams under the same cap, and closing one closes the backend's", async () => {
    const agent = "streams_door";
    const half = CAP / 2;
    for (let i = 0; i < half; i++) await held(await doorGet(agent, "lsa"), "get");
    for (let i = 0; i < CAP - half; i++) await held(await listen(agent, `d-${i}`), "listen");
    await expect
      .poll(openUpstream, { timeout: 5_000 })
      .toEqual({ listens: [CAP - half, CAP - half], gets: [half, 0] });
    const before = await counts();

    await expectRefused(await doorGet(agent, "lsb"), agent, null);
    await expectRefused(await listen(agent, "d-over"), agent, "d-over");
    await sleep(500);
    expect((await counts()).b.getsOpened).toBe(before.b.getsOpened);

    await opened[0]?.();
    await expect
      .poll(async () => (await openUpstream()).gets, { timeout: 2_000 })
      .toEqual([half - 1, 0]);
    await held(await admittedSoon(() => doorGet(agent, "lsb")), "get");
    await expect
      .poll(async () => (await openUpstream()).gets, { timeout: 5_000 })
      .toEqual([half - 1, 1]);
  }, 30_000);

  it("counts the streams another isolate holds: the agent's gate decides, not the isolate", async () => {
    const agent = "streams_elsewhere";
    // What another isolate's admission of seven streams leaves in the agent's gate.
    const gate = env.AGENT_GATE.get(env.AGENT_GATE.idFromName(agent));
    const elsewhere = await gate.admit({
      rate: { limit: 1e9, windowMs: 60_000 },
      toolRate: { limit: 1e9, windowMs: 60_000 },
      calls: [],
      maxInFlight: 8,
      leaseMs: 60_000,
      streams: CAP - 1,
      maxStreams: CAP,
      streamLeaseMs: 60_000,
    });
    const leases = elsewhere.ok ? (elsewhere.streamLeases ?? []) : [];
    expect(leases).toHaveLength(CAP - 1);
    try {
      await held(await listen(agent, "here-1"), "listen");
      await expectRefused(await listen(agent, "here-2"), agent, "here-2");
      // The other isolate's streams end: this one admits more.
      await gate.release(leases);
      await held(await listen(agent, "here-3"), "listen");
    } finally {
      await gate.release(leases);
    }
  });

  it("opens no upstream listen for the listens of a batch, which gets no listen stream", async () => {
    const before = await counts();
    // A call that hangs keeps the batch's answer open, as long as the agent waits for it.
    const label = `batch-${crypto.randomUUID()}`;
    const batch = [
      ...["b-1", "b-2"].map((id) => ({
        jsonrpc: "2.0",
        id,
        method: "subscriptions/listen",
        params: { notifications: { toolsListChanged: true } },
      })),
      {
        jsonrpc: "2.0",
        id: "b-3",
        method: "tools/call",
        params: { name: "slow_hang", arguments: { label } },
      },
    ];
    const response = await post(batch, await token("streams_batch"));
    expect(response.status).toBe(200);
    opened.push(() => response.body?.cancel().catch(() => {}) ?? Promise.resolve());
    const slowState = async () =>
      (
        (await (await fetch(`${inject("slowUrl")}/__state`)).json()) as {
          labels: Record<string, string>;
        }
      ).labels[label];
    await expect.poll(slowState, { timeout: 5_000 }).toBe("running");
    await sleep(1_000);
    const after = await counts();
    expect(after.a.listensOpened).toBe(before.a.listensOpened);
    expect(after.b.listensOpened).toBe(before.b.listensOpened);
  });
});

describe("an agent's gate and its stream leases", () => {
  const limits = {
    rate: { limit: 1e9, windowMs: 60_000 },
    toolRate: { limit: 1e9, windowMs: 60_000 },
    calls: [],
    maxInFlight: 8,
    leaseMs: 60_000,
    streams: 1,
    maxStreams: 1,
    streamLeaseMs: 300,
  };
  const fresh = () => env.AGENT_GATE.get(env.AGENT_GATE.idFromName(`gate-${crypto.randomUUID()}`));

  it("forgets a stream whose lease is not renewed once it expires", async () => {
    const gate = fresh();
    expect(await gate.admit(limits)).toMatchObject({
      ok: true,
      streamLeases: [expect.any(String)],
    });
    expect(await gate.admit(limits)).toMatchObject({ ok: false, refusal: "streams", open: 1 });
    await sleep(400);
    expect(await gate.admit(limits)).toMatchObject({ ok: true });
  });

  it("keeps a renewed stream counted, and counts again a renewed stream it did not know", async () => {
    const gate = fresh();
    const first = await gate.admit(limits);
    const leases = first.ok ? (first.streamLeases ?? []) : [];
    for (let i = 0; i < 4; i++) {
      await sleep(150);
      await gate.renew(leases, 300);
    }
    // 600 ms after its admission, twice its lease: still counted.
    expect(await gate.admit(limits)).toMatchObject({ ok: false, refusal: "streams" });
    await gate.release(leases);
    const after = await gate.admit(limits);
    expect(after).toMatchObject({ ok: true });

    // A gate that forgot its streams (evicted) learns them again from their renewals.
    const forgetful = fresh();
    await forgetful.renew(["a-stream-it-never-saw"], 60_000);
    expect(await forgetful.admit(limits)).toMatchObject({ ok: false, refusal: "streams" });
  });
});
