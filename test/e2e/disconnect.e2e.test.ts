/**
 * An agent that closes its connection mid-call, against `npm start` (the proxy under
 * `wrangler dev`), with a real HTTP client and a real socket: the backend's call is cancelled at
 * once, and the agent's concurrency slots are free again. workerd notices a closed socket only
 * when a write to it fails, so this is what the gateway's answer streams and their comments must
 * make happen (workers/proxy/src/agent-side/http.ts); the workerd pool cannot show it
 * (test/workers/proxy/disconnect.test.ts covers every path there).
 *
 * The backends are this test's own, given to the launcher in EXTRA_BACKENDS: `ext` (2025,
 * sessions: told by notifications/cancelled) and `slow` (2026-07-28, silent while `hang` runs:
 * told by its request's stream closing). Both say when a call was cancelled.
 *
 * A 2025 agent's stream that has had events may be resumed (workers/proxy/src/relay/resume.ts):
 * its call is cancelled once the agent has not come back, after RESUME_GRACE_MS, not at once.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type ClientRequest, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { type SlowBackend, startSlowBackend } from "../support/slow-backend.ts";
import { startThirdPartyBackend, type ThirdPartyBackend } from "../support/third-party-backend.ts";
import { type Launched, launch } from "./launcher.ts";

/** The proxy's RESUME_GRACE_MS (workers/proxy/src/relay/resume.ts, which needs workerd to load). */
const RESUME_GRACE_MS = 2_500;
/** How long after the agent left the backend may still be working. */
const AT_ONCE_MS = 1_000;
/** When the agent leaves, as in the report this test answers: one second into the call. */
const LEAVE_AFTER_MS = 1_000;
const MODERN = "2026-07-28";
/** The proxy's MAX_CONCURRENT_CALLS_PER_AGENT (wrangler.toml). */
const SLOTS = 8;

let ext: ThirdPartyBackend;
let slow: SlowBackend;
let system: Launched;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcpcp-disconnect-"));
  ext = await startThirdPartyBackend();
  slow = await startSlowBackend();
  const policy = join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ leaver: { ext: "*", slow: "*" } }));
  system = await launch({
    env: {
      EXTRA_BACKENDS: JSON.stringify([
        { id: "ext", url: `${ext.url}/mcp` },
        { id: "slow", url: `${slow.url}/mcp` },
      ]),
      MCPCP_POLICY: policy,
    },
  });
}, 150_000);

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
  await slow?.close();
  await ext?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

async function labelOf(base: string, label: string): Promise<string | undefined> {
  const state = (await (await fetch(`${base}/__state`)).json()) as {
    labels: Record<string, string>;
  };
  return state.labels[label];
}

type Era = "legacy" | "modern";

let nextId = 1;
/**
 * Starts a tools/call as an agent of `era` over its own connection, without reading the answer.
 * `sdk` adds a params key the hot path does not take, so that the SDK server serves the call.
 */
function startCall(bearer: string, era: Era, name: string, args: object, sdk = false) {
  const modern = era === "modern";
  const meta = modern
    ? {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "leaver", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      }
    : {};
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: nextId++,
    method: "tools/call",
    params: { name, arguments: args, ...meta, ...(sdk ? { note: "through the SDK server" } : {}) },
  });
  const call: ClientRequest = request(system.proxyUrl, {
    method: "POST",
    agent: false, // a connection of its own, closed when the agent leaves
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${bearer}`,
      "mcp-protocol-version": modern ? MODERN : "2025-11-25",
      ...(modern ? { "mcp-method": "tools/call", "mcp-name": name } : {}),
    },
  });
  const status = new Promise<number>((resolve) => {
    call.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
  });
  call.on("error", () => {}); // the agent itself destroys the socket
  call.end(body);
  return { call, status };
}

/** A short call's status: 200 when the agent was admitted, 429 when all its slots were taken. */
async function echoStatus(bearer: string): Promise<number> {
  const { status } = startCall(bearer, "legacy", "ext_echo", { message: "next" });
  return status;
}

/** `kept`: how long the call waits for the agent to resume its stream, which has had events. */
const CASES: { era: Era; tool: string; base: () => string; sdk: boolean; kept: number }[] = [
  {
    era: "legacy",
    tool: "ext_wait_for_release",
    base: () => ext.url,
    sdk: false,
    kept: RESUME_GRACE_MS,
  },
  { era: "legacy", tool: "slow_hang", base: () => slow.url, sdk: false, kept: 0 },
  { era: "modern", tool: "slow_hang", base: () => slow.url, sdk: false, kept: 0 },
  { era: "legacy", tool: "slow_hang", base: () => slow.url, sdk: true, kept: 0 },
  { era: "modern", tool: "slow_hang", base: () => slow.url, sdk: true, kept: 0 },
];

describe("an agent that closes its connection mid-call", () => {
  it.each(CASES)(
    "$era agent, $tool (SDK server: $sdk): the call is cancelled once the agent is gone ($kept ms kept)",
    async ({ era, tool, base, sdk, kept }) => {
      const bearer = await mintToken({ agent: "leaver" });
      const label = `leave-${crypto.randomUUID()}`;
      const began = Date.now();
      const { call } = startCall(bearer, era, tool, { label }, sdk);
      await expect.poll(() => labelOf(base(), label), { timeout: 10_000 }).toBe("running");
      await new Promise((resolve) => setTimeout(resolve, LEAVE_AFTER_MS - (Date.now() - began)));

      call.destroy();
      const left = Date.now();
      await expect
        .poll(() => labelOf(base(), label), { timeout: kept + AT_ONCE_MS, interval: 20 })
        .toBe("cancelled");
      expect(Date.now() - left).toBeLessThan(kept + AT_ONCE_MS);
      expect(Date.now() - left).toBeGreaterThanOrEqual(kept);
    },
  );

  it("gives every slot back: an agent holding all of them leaves, and its next call is admitted", async () => {
    const bearer = await mintToken({ agent: "leaver" });
    const labels = Array.from({ length: SLOTS }, () => `slot-${crypto.randomUUID()}`);
    const calls = labels.map((label) => startCall(bearer, "legacy", "slow_hang", { label }, false));
    for (const label of labels) {
      await expect.poll(() => labelOf(slow.url, label), { timeout: 10_000 }).toBe("running");
    }
    expect(await echoStatus(bearer)).toBe(429);

    for (const { call } of calls) call.destroy();
    const left = Date.now();
    for (const label of labels) {
      await expect
        .poll(() => labelOf(slow.url, label), { timeout: AT_ONCE_MS, interval: 20 })
        .toBe("cancelled");
    }
    expect(Date.now() - left).toBeLessThan(AT_ONCE_MS);
    await expect.poll(() => echoStatus(bearer), { timeout: AT_ONCE_MS }).toBe(200);
  });
});
