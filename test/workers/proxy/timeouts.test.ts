/**
 * Honest timeouts: a backend call past its deadline (`BACKEND_TIMEOUT_MS`) is cancelled upstream
 * and answered as a timeout that names the server; "unavailable" is kept for a server that did
 * not answer at all. Every case runs under FAST_PATH on/off × DIRECT on/off (env copies passed to
 * `worker.fetch`, as in parity.test.ts, with a deadline of 1.5 s), for a 2025 and a 2026-07-28
 * agent.
 *
 * The backends (global-setup.ts, vitest.proxy.config.mts):
 * - ext, a stateful 2025-era server on SDK v1: asked through the SDK client, on one upstream
 *   session per agent. It records every `notifications/cancelled` it receives, with its session.
 * - slow, a 2026-07-28 server on SDK v2: asked directly under DIRECT=on, through the SDK client
 *   under DIRECT=off. Over HTTP in that revision closing the request's stream is the cancellation
 *   (no notification is expected); it records when a call's signal aborted.
 * - mcp2, a dead address.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { ORIGIN, token } from "./client.ts";
import { type Era, ID, type Message, observed, mcpRequest as request } from "./exchange.ts";

const DEADLINE_MS = 1_500;
const AGENT = "sleeper";

interface Setting {
  label: string;
  direct: boolean;
  env: Env;
}

// Built once each: the gateway caches its configuration per env object.
const SETTINGS: Setting[] = [
  { label: "FAST_PATH=on DIRECT=on", fast: true, direct: true },
  { label: "FAST_PATH=off DIRECT=on", fast: false, direct: true },
  { label: "FAST_PATH=on DIRECT=off", fast: true, direct: false },
  { label: "FAST_PATH=off DIRECT=off", fast: false, direct: false },
].map(({ label, fast, direct }) => ({
  label,
  direct,
  env: {
    ...env,
    BACKEND_TIMEOUT_MS: String(DEADLINE_MS),
    AGENT_RATE_LIMIT_PER_MINUTE: "1000000",
    TOOL_RATE_LIMIT_PER_MINUTE: "1000000",
    FAST_PATH: fast ? "on" : "off",
    DIRECT: direct ? "on" : "off",
  } as Env,
}));

/** What the gateway sent slow's /mcp, by label: whether `direct.ts` sent it (plain headers). */
const sentToSlow = new Map<string, boolean[]>();
const realFetch = globalThis.fetch;
beforeAll(() => {
  const slow = `${inject("slowUrl")}/mcp`;
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === slow && typeof init?.body === "string") {
      const label = (JSON.parse(init.body) as { params?: { arguments?: { label?: string } } })
        .params?.arguments?.label;
      if (label) {
        sentToSlow.set(label, [
          ...(sentToSlow.get(label) ?? []),
          !(init.headers instanceof Headers),
        ]);
      }
    }
    return realFetch(input, init);
  }) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
});

interface Answer {
  last: Message;
  messages: Message[];
  requestId: string;
  ms: number;
}

/** Sends one request as the test agent under `setting`; waits for the work it leaves behind. */
async function send(
  setting: Setting,
  era: Era,
  method: string,
  params: Record<string, unknown>,
): Promise<Answer> {
  const ctx = createExecutionContext();
  const began = Date.now();
  const response = await worker.fetch(
    request(era, await token(AGENT), method, params),
    setting.env,
    ctx,
  );
  const answer = await observed(response);
  const ms = Date.now() - began;
  await waitOnExecutionContext(ctx);
  expect(answer.status).toBe(200);
  const last = answer.messages.at(-1) as Message;
  expect(last.id).toBe(ID);
  return {
    last,
    messages: answer.messages,
    requestId: response.headers.get("mcpcp-request-id") ?? "",
    ms,
  };
}

/** The backends' eras known, as after any first contact (DIRECT applies only then). */
async function warmUp(): Promise<void> {
  const { last } = await send(SETTINGS[0] as Setting, "legacy", "tools/list", {});
  expect(last.result?.tools).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: "ext_wait_for_release" }),
      expect.objectContaining({ name: "slow_hang" }),
    ]),
  );
}

/** The test agent's audit record of the request `requestId`. */
async function auditRecord(setting: Setting, requestId: string) {
  const bearer = await token("operator", { scope: "audit_read" });
  const read = async () => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`${ORIGIN}/admin/audit?agent=${AGENT}&limit=1000`, {
        headers: { authorization: `Bearer ${bearer}` },
      }),
      setting.env,
      ctx,
    );
    const { records } = (await response.json()) as { records: Record<string, unknown>[] };
    await waitOnExecutionContext(ctx);
    return records.find((r) => r.request_id === requestId);
  };
  await expect.poll(read, { timeout: 5_000 }).toBeDefined();
  return read();
}

async function state<T>(base: string): Promise<T> {
  return (await (await realFetch(`${base}/__state`)).json()) as T;
}

interface ExtState {
  labels: Record<string, string>;
  calls: Record<string, { session?: string; requestId: string | number }>;
  cancellations: { session?: string; requestId: unknown }[];
}

interface SlowState {
  labels: Record<string, string>;
  cancellations: Record<string, { requestId: unknown; reason: string }>;
}

const timedOutText = (server: string) =>
  `Timed out after ${DEADLINE_MS / 1000} s waiting for ${server}; the call was cancelled. Other servers are unaffected.`;

/** Runs `check` once per setting, all four at once, after the backends' eras are known. */
async function underEverySetting(
  era: Era,
  check: (setting: Setting, label: string) => Promise<void>,
): Promise<void> {
  await warmUp();
  await Promise.all(
    SETTINGS.map((setting) =>
      check(setting, `${era}-${setting.direct ? "d" : "s"}-${crypto.randomUUID().slice(0, 8)}`),
    ),
  );
}

/** A tool result saying the call timed out, sent soon after the deadline and audited as such. */
async function expectTimedOut(setting: Setting, answer: Answer, server: string): Promise<void> {
  expect(answer.last.error, setting.label).toBeUndefined();
  expect(answer.last.result, setting.label).toMatchObject({
    isError: true,
    content: [{ type: "text", text: timedOutText(server) }],
  });
  // Not sooner than the deadline, and not held up by the cancellation behind it.
  expect(answer.ms, setting.label).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
  expect(answer.ms, setting.label).toBeLessThan(DEADLINE_MS + 2_500);
  expect(await auditRecord(setting, answer.requestId), setting.label).toMatchObject({
    method: "tools/call",
    server,
    outcome: "backend_timeout",
  });
}

describe.each(["legacy", "modern"] as const)(
  "a backend call past its deadline (%s agent)",
  (era) => {
    it("on a session backend (2025 era, SDK client): timed out, and cancelled on the same session", async () => {
      await underEverySetting(era, async (setting, label) => {
        const answer = await send(setting, era, "tools/call", {
          name: "ext_wait_for_release",
          arguments: { label },
        });
        await expectTimedOut(setting, answer, "ext");
        const ext = inject("thirdPartyUrl");
        await expect
          .poll(async () => (await state<ExtState>(ext)).labels[label], { timeout: 5_000 })
          .toBe("cancelled");
        const { calls, cancellations } = await state<ExtState>(ext);
        const call = calls[label];
        expect(call?.session, setting.label).toEqual(expect.any(String));
        expect(cancellations, setting.label).toContainEqual(
          expect.objectContaining({ session: call?.session, requestId: call?.requestId }),
        );
      });
    }, 30_000);

    for (const speak of [false, true]) {
      const how = speak ? "after it has begun to answer (SSE)" : "before it has begun to answer";
      it(`on a 2026-07-28 backend, ${how}: timed out, and its request cancelled`, async () => {
        await underEverySetting(era, async (setting, label) => {
          const answer = await send(setting, era, "tools/call", {
            name: "slow_hang",
            arguments: { label, speak },
          });
          await expectTimedOut(setting, answer, "slow");
          const slow = inject("slowUrl");
          await expect
            .poll(async () => (await state<SlowState>(slow)).labels[label], { timeout: 5_000 })
            .toBe("cancelled");
          // Asked directly exactly when DIRECT was on, else through the SDK client.
          expect(sentToSlow.get(label), setting.label).toEqual([setting.direct]);
        });
      }, 30_000);
    }

    it("a read past its deadline: a JSON-RPC error saying so, and the read cancelled", async () => {
      await underEverySetting(era, async (setting, label) => {
        const answer = await send(setting, era, "resources/read", { uri: `slow+stall://${label}` });
        expect(answer.last.result, setting.label).toBeUndefined();
        expect(answer.last.error, setting.label).toEqual({
          code: -32603,
          message: `Timed out after ${DEADLINE_MS / 1000} s waiting for slow`,
        });
        expect(answer.ms, setting.label).toBeLessThan(DEADLINE_MS + 2_500);
        expect(await auditRecord(setting, answer.requestId), setting.label).toMatchObject({
          method: "resources/read",
          outcome: "backend_timeout",
        });
        const slow = inject("slowUrl");
        await expect
          .poll(async () => (await state<SlowState>(slow)).labels[label], { timeout: 5_000 })
          .toBe("cancelled");
      });
    }, 30_000);

    it("progress restarts the deadline: a call longer than it, reporting progress, completes", async () => {
      await underEverySetting(era, async (setting, label) => {
        // Four beats 0.7 s apart: 2.8 s in all, against a deadline of 1.5 s.
        const answer = await send(setting, era, "tools/call", {
          name: "slow_pulse",
          arguments: { label, beats: 4, every_ms: 700 },
          _meta: { progressToken: "beat" },
        });
        expect(answer.last.result, setting.label).toMatchObject({
          content: [{ type: "text", text: `${label} done` }],
        });
        expect(answer.messages.slice(0, -1), setting.label).toMatchObject(
          [1, 2, 3, 4].map((progress) => ({
            method: "notifications/progress",
            params: { progressToken: "beat", progress, total: 4 },
          })),
        );
      });
    }, 30_000);

    it("without progress the same call times out", async () => {
      await underEverySetting(era, async (setting, label) => {
        const answer = await send(setting, era, "tools/call", {
          name: "slow_pulse",
          arguments: { label, beats: 4, every_ms: 700 },
        });
        await expectTimedOut(setting, answer, "slow");
        const slow = inject("slowUrl");
        await expect
          .poll(async () => (await state<SlowState>(slow)).labels[label], { timeout: 5_000 })
          .toBe("cancelled");
      });
    }, 30_000);

    it("a dead backend is still unavailable, at once", async () => {
      await underEverySetting(era, async (setting) => {
        const answer = await send(setting, era, "tools/call", {
          name: "mcp2_echo",
          arguments: { message: "anyone there?" },
        });
        expect(answer.last.result, setting.label).toMatchObject({
          isError: true,
          content: [
            { type: "text", text: expect.stringMatching(/^Server mcp2 is unavailable \(/) },
          ],
        });
        expect(answer.ms, setting.label).toBeLessThan(DEADLINE_MS);
        expect(await auditRecord(setting, answer.requestId), setting.label).toMatchObject({
          server: "mcp2",
          outcome: "backend_unavailable",
        });
      });
    }, 30_000);
  },
);
