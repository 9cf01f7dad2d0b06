/**
 * The live feed: a viewer's WebSocket, accepted by the battle's Durable Object with the Hibernation
 * API, gets a hello and then every new event; it closes when the battle ends or the token expires.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_VIEWERS } from "../../../durable-objects/battle-session.ts";
import type { LiveMessage } from "../../../durable-objects/battle-types.ts";
import { end, inspectToken, ORIGIN, report, uniqueId } from "./helpers.ts";

interface Feed {
  response: Response;
  next(): Promise<LiveMessage>;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens the live feed of `id` as the page does: token in the subprotocol list. */
async function openFeed(id: string, token: string, headers: Record<string, string> = {}) {
  const response = await exports.default.fetch(
    new Request(`${ORIGIN}/api/battles/${id}/live`, {
      headers: {
        Upgrade: "websocket",
        "Sec-WebSocket-Protocol": `mcpcp-inspect, mcpcp-bearer.${token}`,
        ...headers,
      },
    }),
  );
  const ws = response.webSocket;
  if (!ws) return { response } as Feed;
  const queue: LiveMessage[] = [];
  const waiting: ((message: LiveMessage) => void)[] = [];
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data as string) as LiveMessage;
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
  );
  ws.accept();
  return {
    response,
    closed,
    next: () => {
      const queued = queue.shift();
      return queued ? Promise.resolve(queued) : new Promise<LiveMessage>((r) => waiting.push(r));
    },
  } satisfies Feed;
}

describe("the live feed", () => {
  it("says hello with the battle and its last seq, then sends each new event", async () => {
    const id = uniqueId("live");
    await report(id, 2);
    const feed = await openFeed(id, await inspectToken());
    expect(feed.response.status).toBe(101);
    // The token is never echoed: only our protocol name is selected.
    expect(feed.response.headers.get("Sec-WebSocket-Protocol")).toBe("mcpcp-inspect");

    expect(await feed.next()).toMatchObject({
      type: "hello",
      last_seq: 2,
      battle: { id, status: "ongoing" },
    });
    await report(id, 1, "agent_name2", "lookout", { battles: [id] });
    expect(await feed.next()).toMatchObject({
      type: "event",
      event: { seq: 3, reported_by: "lookout", agent: "agent_name2" },
      battle: { id, status: "ongoing" },
    });
  });

  it("can watch a battle before its first event", async () => {
    const id = uniqueId("early");
    const feed = await openFeed(id, await inspectToken());
    expect(await feed.next()).toEqual({ type: "hello", battle: null, last_seq: 0 });
    await report(id, 1);
    expect(await feed.next()).toMatchObject({ type: "event", event: { seq: 1 } });
  });

  it("sends the result event with the winner, then closes with 1000", async () => {
    const id = uniqueId("final");
    await report(id, 1);
    const feed = await openFeed(id, await inspectToken());
    await feed.next();
    await end(id, "green");
    expect(await feed.next()).toMatchObject({
      type: "event",
      event: { seq: 2, kind: "result" },
      battle: { status: "ended", winner: "green" },
    });
    expect(await feed.closed).toMatchObject({ code: 1000, reason: "battle ended" });
  });

  it("delivers every event of a burst, in order, to every viewer", async () => {
    const id = uniqueId("burst");
    await report(id, 1);
    const viewers = [
      await openFeed(id, await inspectToken()),
      await openFeed(id, await inspectToken()),
    ];
    for (const viewer of viewers) await viewer.next();
    await report(id, 20);
    for (const viewer of viewers) {
      const seqs: number[] = [];
      for (let i = 0; i < 20; i++) {
        const message = await viewer.next();
        if (message.type === "event") seqs.push(message.event.seq);
      }
      expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    }
  });

  it("closes a viewer's socket with 4001 at the first event after its token expired", async () => {
    const id = uniqueId("expiry");
    await report(id, 1);
    // Expired 30 s ago: still inside the 60 s skew the handshake allows, past its own expiry.
    const token = await inspectToken({ exp: Math.floor(Date.now() / 1000) - 30 });
    const feed = await openFeed(id, token);
    expect(feed.response.status).toBe(101);
    await feed.next();
    await report(id, 1);
    expect(await feed.closed).toMatchObject({ code: 4001 });
  });

  it("refuses the upgrade without a token, with a token lacking the scope, or from another origin", async () => {
    const id = uniqueId("closed");
    const none = await exports.default.fetch(`${ORIGIN}/api/battles/${id}/live`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "mcpcp-inspect" },
    });
    expect(none.status).toBe(401);
    const agentToken = await inspectToken({ scope: "list_tools call_tools" });
    expect((await openFeed(id, agentToken)).response.status).toBe(403);
    const foreign = await openFeed(id, await inspectToken(), { Origin: "https://evil.example" });
    expect(foreign.response.status).toBe(403);
    const same = await openFeed(id, await inspectToken(), { Origin: ORIGIN });
    expect(same.response.status).toBe(101);
  });

  it(`serves at most ${MAX_VIEWERS} viewers per battle, then answers 503`, async () => {
    const id = uniqueId("crowd");
    const token = await inspectToken();
    const viewers = await Promise.all(
      Array.from({ length: MAX_VIEWERS }, () => openFeed(id, token)),
    );
    expect(viewers.every((v) => v.response.status === 101)).toBe(true);
    const extra = await openFeed(id, token);
    expect(extra.response.status).toBe(503);
    expect(await extra.response.json()).toMatchObject({ error: "too_many_viewers" });
  });

  it("answers a plain GET on the feed with 426", async () => {
    const response = await exports.default.fetch(`${ORIGIN}/api/battles/x/live`, {
      headers: { Authorization: `Bearer ${await inspectToken()}` },
    });
    expect(response.status).toBe(426);
  });
});
