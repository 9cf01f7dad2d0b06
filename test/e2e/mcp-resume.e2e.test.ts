/**
 * A 2025 agent holding a session on `/mcp` whose connection drops mid-call, against `npm start`
 * (the proxy under `wrangler dev`) with a real socket: what the workerd pool cannot show
 * (test/workers/proxy/mcp-resume.test.ts covers the rest there). workerd notices the closed
 * socket only when a write fails; the call goes on while the agent comes back with `GET` and
 * `Last-Event-ID`, and is cancelled upstream once it does not (RESUME_GRACE_MS).
 *
 * The backend is this test's own `ext` (test/support/third-party-backend.ts): its
 * `wait_for_release` reports progress and a log message at once, then waits for the test.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type ClientRequest, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { startThirdPartyBackend, type ThirdPartyBackend } from "../support/third-party-backend.ts";
import { type Launched, launch } from "./launcher.ts";

const LEGACY = "2025-11-25";
/** The proxy's RESUME_GRACE_MS (workers/proxy/src/relay/resume.ts, which needs workerd to load). */
const RESUME_GRACE_MS = 2_500;
/** The `retry` its streams carry (RETRY_MS there). */
const RETRY_MS = 1_000;

let ext: ThirdPartyBackend;
let system: Launched;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcpcp-resume-"));
  ext = await startThirdPartyBackend();
  const policy = join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ resumer: { ext: "*" } }));
  system = await launch({
    env: {
      EXTRA_BACKENDS: JSON.stringify([{ id: "ext", url: `${ext.url}/mcp` }]),
      MCPCP_POLICY: policy,
    },
  });
}, 150_000);

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
  await ext?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

async function labelOf(label: string): Promise<string | undefined> {
  const state = (await (await fetch(`${ext.url}/__state`)).json()) as {
    labels: Record<string, string>;
  };
  return state.labels[label];
}

/** A session on /mcp for an agent that can answer sampling. */
async function openSession(bearer: string): Promise<string> {
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${bearer}`,
    "mcp-protocol-version": LEGACY,
  };
  const initialize = await fetch(system.proxyUrl, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: LEGACY,
        capabilities: { sampling: {} },
        clientInfo: { name: "resumer", version: "1" },
      },
    }),
  });
  const session = initialize.headers.get("mcp-session-id");
  await initialize.body?.cancel();
  expect(session).toBeTruthy();
  const initialized = await fetch(system.proxyUrl, {
    method: "POST",
    headers: { ...headers, "mcp-session-id": session ?? "" },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  return session ?? "";
}

/**
 * Starts `wait_for_release` on a connection of its own, and resolves with the last event id once
 * the backend's first two events (progress, log) have come.
 */
function startCall(bearer: string, session: string, label: string) {
  const call: ClientRequest = request(system.proxyUrl, {
    method: "POST",
    agent: false, // a connection of its own, closed when the agent leaves
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${bearer}`,
      "mcp-protocol-version": LEGACY,
      "mcp-session-id": session,
    },
  });
  const lastId = new Promise<string>((resolve, reject) => {
    call.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
        const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1] ?? "");
        if (ids.length >= 2) resolve(ids.at(-1) ?? "");
      });
      response.on("error", () => {});
      response.on("end", () => reject(new Error(`the stream ended: ${text}`)));
    });
  });
  call.on("error", () => {}); // the agent itself destroys the socket
  call.end(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 9,
      method: "tools/call",
      params: { name: "ext_wait_for_release", arguments: { label }, _meta: { progressToken: 1 } },
    }),
  );
  return { call, lastId };
}

describe("a session's call on /mcp whose connection drops", () => {
  it("goes on while the agent resumes it, and the agent has its answer", async () => {
    const bearer = await mintToken({ agent: "resumer" });
    const session = await openSession(bearer);
    const label = `resume-${crypto.randomUUID()}`;
    const { call, lastId } = startCall(bearer, session, label);
    const last = await lastId;
    expect(last).toMatch(/^[0-9a-f]{32}\.\d+$/);
    call.destroy();
    // As a client does: it waits the `retry` it was told before it reconnects.
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    const resumed = await fetch(system.proxyUrl, {
      headers: {
        accept: "text/event-stream",
        authorization: `Bearer ${bearer}`,
        "mcp-protocol-version": LEGACY,
        "mcp-session-id": session,
        "last-event-id": last,
      },
    });
    expect(resumed.status).toBe(200);
    const reading = resumed.text();
    // Well past the grace, the agent being back, the call still runs.
    await new Promise((resolve) => setTimeout(resolve, 2 * RESUME_GRACE_MS));
    expect(await labelOf(label)).toBe("running");
    await fetch(`${ext.url}/__release?label=${label}`, { method: "POST" });
    const rest = await reading;
    const answers = [...rest.matchAll(/^data: (.+)$/gm)]
      .map((m) => JSON.parse(m[1] ?? "{}"))
      .filter((message) => message.id === 9);
    expect(answers).toMatchObject([{ result: { content: [{ text: `${label} done` }] } }]);
  }, 30_000);

  it("is cancelled upstream when the agent does not come back within the grace", async () => {
    const bearer = await mintToken({ agent: "resumer" });
    const session = await openSession(bearer);
    const label = `gone-${crypto.randomUUID()}`;
    const { call, lastId } = startCall(bearer, session, label);
    await lastId;
    call.destroy();
    const left = Date.now();
    await expect
      .poll(() => labelOf(label), { timeout: 2 * RESUME_GRACE_MS + 3_000, interval: 50 })
      .toBe("cancelled");
    // Not at once: the agent might have come back.
    expect(Date.now() - left).toBeGreaterThanOrEqual(RESUME_GRACE_MS);
  }, 30_000);
});
