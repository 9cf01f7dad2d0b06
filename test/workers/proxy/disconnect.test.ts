/**
 * An agent that goes away mid-call: its backend call is cancelled at once and its concurrency
 * slot is free again, on every path (the hot path and the SDK server, FAST_PATH on and off) and in
 * both eras, whether the runtime says the agent left (the request's signal aborts) or the
 * answer's stream is cancelled. MAX_CONCURRENT_CALLS_PER_AGENT is 1 here, so "the slot is free"
 * is the agent's next call being admitted.
 *
 * One exception: a 2025 agent's stream that has had events may be resumed (`relay/resume.ts`), so
 * its call goes on while the agent may come back, and is cancelled once it has not, after
 * RESUME_GRACE_MS (mcp-resume.test.ts has the agent that does come back).
 *
 * The backends (test/support): `ext` (2025, sessions) tells the agent right away that its
 * `wait_for_release` waits, so that answer is a stream from the start; `slow` (2026-07-28)
 * says nothing while `hang` runs, so a 2026-07-28 answer has nothing to send until the end: the
 * gateway must open a stream itself to notice anything (`agent-side/http.ts`).
 *
 * How workerd notices a closed socket (only when a write to it fails) is not something the pool
 * can show: test/e2e/disconnect.e2e.test.ts closes real sockets against `npm start`.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { RESUME_GRACE_MS } from "../../../workers/proxy/src/relay/resume.ts";
import { token } from "./client.ts";
import { type Era, mcpRequest, observed } from "./exchange.ts";
import { TEST_POLICY } from "./fixtures.ts";

/** The longest the backend may keep working after the agent left. */
const AT_ONCE_MS = 1_000;

const BACKENDS = [
  { tool: "ext_wait_for_release", state: () => inject("thirdPartyUrl") },
  { tool: "slow_hang", state: () => inject("slowUrl") },
] as const;
const ERAS: Era[] = ["legacy", "modern"];
const HOW = ["the runtime says the agent left", "the agent cancels the answer's stream"] as const;

interface Case {
  fast: boolean;
  era: Era;
  tool: string;
  state: () => string;
  how: (typeof HOW)[number];
  agent: string;
}

const CASES: Case[] = [true, false].flatMap((fast) =>
  ERAS.flatMap((era) =>
    BACKENDS.flatMap((backend) =>
      HOW.map((how) => ({
        fast,
        era,
        ...backend,
        how,
        agent: `leaver-${fast ? "fast" : "sdk"}-${era}-${backend.tool}-${HOW.indexOf(how)}`,
      })),
    ),
  ),
);

// One agent per case, so that a slot one case keeps cannot fail the next.
const POLICY = JSON.stringify({
  ...TEST_POLICY,
  ...Object.fromEntries(CASES.map((c) => [c.agent, { ext: "*", slow: "*" }])),
});
// Built once each: the gateway caches its configuration per env object.
const ENVS = new Map(
  [true, false].map((fast) => [
    fast,
    {
      ...env,
      POLICY,
      FAST_PATH: fast ? "on" : "off",
      MAX_CONCURRENT_CALLS_PER_AGENT: "1",
      AGENT_RATE_LIMIT_PER_MINUTE: "1000000",
    } as Env,
  ]),
);

async function labelState(base: string, label: string): Promise<string | undefined> {
  const state = (await (await fetch(`${base}/__state`)).json()) as {
    labels: Record<string, string>;
  };
  return state.labels[label];
}

/** `promise`'s value, or undefined if it has none within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, new Promise<undefined>((r) => setTimeout(r, ms))]);
}

beforeAll(async () => {
  // The backends' eras learnt, as after any first contact.
  for (const gatewayEnv of ENVS.values()) {
    const ctx = createExecutionContext();
    const bearer = await token(CASES[0]?.agent ?? "");
    const listed = await observed(
      await worker.fetch(mcpRequest("legacy", bearer, "tools/list", {}), gatewayEnv, ctx),
    );
    expect(listed.status).toBe(200);
    await waitOnExecutionContext(ctx);
  }
}, 30_000);

describe.each(CASES)("FAST_PATH=$fast, $era agent, $tool: when $how", (c) => {
  it("the backend's call is cancelled at once, and the agent's slot is free", async () => {
    const gatewayEnv = ENVS.get(c.fast) as Env;
    const bearer = await token(c.agent);
    const label = `leave-${crypto.randomUUID()}`;
    const leaving = new AbortController();
    const ctx = createExecutionContext();
    const request = mcpRequest(c.era, bearer, "tools/call", { name: c.tool, arguments: { label } });
    const answer = Promise.resolve(
      worker.fetch(new Request(request, { signal: leaving.signal }), gatewayEnv, ctx),
    );
    answer.catch(() => {});
    await expect.poll(() => labelState(c.state(), label), { timeout: 5_000 }).toBe("running");

    // When the agent left: before the cancellation is over, which waits for a kept stream's log.
    let left = Date.now();
    if (c.how === "the runtime says the agent left") leaving.abort();
    else {
      // A stream by now, even where the backend has said nothing: there is something to close.
      const response = await within(answer, 2_000);
      expect(response?.headers.get("content-type")).toBe("text/event-stream");
      left = Date.now();
      await response?.body?.cancel();
    }
    // ext tells a 2025 agent something at once: it has an event id to resume from.
    const kept = c.era === "legacy" && c.tool === "ext_wait_for_release" ? RESUME_GRACE_MS : 0;
    await expect
      .poll(() => labelState(c.state(), label), { timeout: kept + AT_ONCE_MS, interval: 20 })
      .toBe("cancelled");
    expect(Date.now() - left).toBeLessThan(kept + AT_ONCE_MS);
    expect(Date.now() - left).toBeGreaterThanOrEqual(kept);

    // The agent's one slot is back: its next call is admitted and answered.
    const next = await worker.fetch(
      mcpRequest(c.era, bearer, "tools/call", { name: "ext_echo", arguments: { message: "next" } }),
      gatewayEnv,
      createExecutionContext(),
    );
    const reply = await observed(next);
    expect(reply.status).toBe(200);
    expect(reply.messages.at(-1)?.result).toMatchObject({ content: [{ text: "3p: next" }] });
    await waitOnExecutionContext(ctx);
  }, 15_000);
});
