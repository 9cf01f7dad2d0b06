/**
 * Delivery of battle events to the battle platform (docs/design.md, "Battle delivery"), on the
 * system `npm start` runs, with `BATTLE_WEBHOOK_URL` pointing at the demo receiver
 * (scripts/battle-receiver.ts) in this process: it verifies every signature against the JWKS the
 * gateway publishes, and fails, hangs and recovers when told. Then the whole system is killed
 * while the receiver is down and started again on the same state; then started without the URL.
 * The battle page, in headless Chromium, shows how far delivery got.
 *
 * Needs /usr/bin/chromium (`.ci/browser.sh setup` installs it) or CHROMIUM_PATH (./browser.ts).
 */

import { connect } from "node:net";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { createRemoteJWKSet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDelivery, WEBHOOK_JWKS_PATH } from "../../common/battle-webhook.ts";
import type { BattleState, DeliveryStatus } from "../../durable-objects/battle-types.ts";
import { mintInspectionToken } from "../../keys/mint.ts";
import { type BattleReceiver, startBattleReceiver } from "../../scripts/battle-receiver.ts";
import { type Chromium, launchChromium } from "./browser.ts";
import { connectAgent, DEFAULT_PORT_BASE, type Launched, launch, resultText } from "./launcher.ts";

/** Short delays, so a test sees several retries in seconds (production: 1 s → 5 min, 10 s). */
const WEBHOOK_ENV = {
  BATTLE_WEBHOOK_BACKOFF_MS: "200",
  BATTLE_WEBHOOK_MAX_BACKOFF_MS: "1000",
  BATTLE_WEBHOOK_TIMEOUT_MS: "1500",
};
const JWKS_URL = `http://127.0.0.1:${DEFAULT_PORT_BASE}${WEBHOOK_JWKS_PATH}`;

let system: Launched;
let agent: Client;
let receiver: BattleReceiver;
let inspectionToken: string;
let browser: Chromium | undefined;
const stamp = Date.now();

async function start(env: Record<string, string>): Promise<void> {
  // Its own process group, so the restart test can SIGKILL all of it as a crash would.
  system = await launch({ env, detached: true });
  agent = await connectAgent(system.proxyUrl, "agent_name1");
}

async function report(battle: string, message: string, winner?: string): Promise<number> {
  const result = await agent.callTool({
    name: winner ? "mcp1_report_on_battle_end" : "mcp1_update_battle_process",
    arguments: { battle_id: battle, message, reported_by: "scout", ...(winner ? { winner } : {}) },
  });
  expect(result.isError, resultText(result)).toBeFalsy();
  return (result.structuredContent as { event: { seq: number } }).event.seq;
}

type Answer = BattleState & { delivery: DeliveryStatus | null };

async function battleState(battle: string): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${system.ports.proxy}/api/battles/${battle}`, {
    headers: { Authorization: `Bearer ${inspectionToken}` },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Answer;
}

const attemptsFor = (battle: string) =>
  receiver.attempts.filter((a) => a.key?.startsWith(`${battle}:`));

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Resolves once nothing accepts connections on `port`. */
async function portClosed(port: number): Promise<void> {
  await expect
    .poll(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = connect(port, "127.0.0.1");
          socket.once("connect", () => {
            socket.destroy();
            resolve(false);
          });
          socket.once("error", () => resolve(true));
        }),
      { timeout: 10_000 },
    )
    .toBe(true);
}

beforeAll(async () => {
  receiver = await startBattleReceiver({ jwksUrl: JWKS_URL });
  inspectionToken = await mintInspectionToken();
  await start({ BATTLE_WEBHOOK_URL: receiver.url, ...WEBHOOK_ENV });
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await agent?.close().catch(() => {});
  if (system?.child.exitCode === null) await system.stop();
  await receiver?.close();
}, 30_000);

describe("battle delivery", () => {
  it("delivers every event in order, keyed and signed, and the published JWKS verifies it", async () => {
    const battle = `hook-order-${stamp}`;
    for (const n of range(4)) await report(battle, `move ${n}`);
    await report(battle, "green holds the bridge", "green");

    await expect.poll(() => receiver.seqs(battle), { timeout: 15_000 }).toEqual(range(5));
    const received = receiver.received.filter((r) => r.battleId === battle);
    expect(received.map((r) => r.key)).toEqual(range(5).map((n) => `${battle}:${n}`));
    expect(received.map((r) => r.body.event.message)).toEqual([
      "move 1",
      "move 2",
      "move 3",
      "move 4",
      "green holds the bridge",
    ]);
    expect(received[4]?.body.winner).toBe("green");
    expect(receiver.rejected).toEqual([]);
    await expect
      .poll(async () => (await battleState(battle)).delivery, { timeout: 5000 })
      .toMatchObject({ delivered_seq: 5, last_seq: 5, failures: 0, last_error: null });

    // As the platform would: jose over the JWKS the gateway publishes; a changed body fails.
    const keys = createRemoteJWKSet(new URL(JWKS_URL));
    const last = received[4] as (typeof received)[number];
    const check = { signature: last.signature, idempotencyKey: last.key, battleId: battle };
    const verify = (body: string) =>
      verifyDelivery({ ...check, body, audience: receiver.url, keys });
    expect(await verify(last.rawBody)).toMatchObject({ ok: true });
    const tampered = last.rawBody.replace('"winner":"green"', '"winner":"blue"');
    expect(tampered).not.toBe(last.rawBody);
    expect(await verify(tampered)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/sha256/),
    });
  }, 30_000);

  it("retries through 500s and a hanging receiver, then delivers everything, none lost", async () => {
    const battle = `hook-flaky-${stamp}`;
    receiver.mode = "fail";
    for (const n of range(3)) await report(battle, `flaky ${n}`);
    // Several failures in a row, and the page's view of them.
    await expect
      .poll(() => attemptsFor(battle).filter((a) => a.status === 500).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(3);
    const behind = (await battleState(battle)).delivery;
    expect(behind).toMatchObject({ delivered_seq: 0, last_seq: 3 });
    expect(behind?.last_error).toMatch(/HTTP 500/);
    expect(behind?.failures).toBeGreaterThanOrEqual(3);
    expect(behind?.next_attempt_at).not.toBeNull();

    // The platform stores the event but never answers: mcp1 gives up on the POST and tries again.
    receiver.mode = "hang";
    await expect
      .poll(() => attemptsFor(battle).filter((a) => a.status === null).length, {
        timeout: 15_000,
      })
      .toBeGreaterThanOrEqual(2);
    expect((await battleState(battle)).delivery?.last_error).toMatch(/no answer within 1500 ms/);

    receiver.mode = "ok";
    await expect.poll(() => receiver.seqs(battle), { timeout: 15_000 }).toEqual(range(3));
    await expect
      .poll(async () => (await battleState(battle)).delivery, { timeout: 5000 })
      .toMatchObject({ delivered_seq: 3, last_seq: 3, failures: 0, last_error: null });
    // The hung attempts were stored the first time; their retries are duplicates by key.
    expect(receiver.duplicates).toBeGreaterThanOrEqual(1);
    expect(receiver.rejected).toEqual([]);
  }, 60_000);

  it("shows on the battle page how far delivery got, and the error while behind", async () => {
    const battle = `hook-page-${stamp}`;
    receiver.mode = "fail";
    await report(battle, "first");
    await report(battle, "second");
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(
      `http://127.0.0.1:${system.ports.proxy}/battles/${battle}#token=${inspectionToken}`,
    );
    const line = page.locator("#delivery");
    await expect
      .poll(() => line.locator(".delivery-progress").textContent(), { timeout: 10_000 })
      .toBe("Platform: delivered up to seq 0 of 2");
    await expect
      .poll(() => line.locator(".delivery-error").textContent(), { timeout: 10_000 })
      .toMatch(/last error \(\d+ in a row\): HTTP 500/);
    expect(await line.locator(".delivery-next time").count()).toBe(1);

    receiver.mode = "ok";
    // Without a reload: the page re-reads a delivery that is behind.
    await expect
      .poll(() => line.locator(".delivery-progress").textContent(), { timeout: 15_000 })
      .toBe("Platform: delivered up to seq 2 of 2");
    expect(await line.locator(".delivery-error").count()).toBe(0);
    await page.close();
  }, 60_000);

  it("goes on after the whole system is killed while the receiver is down", async () => {
    const battle = `hook-restart-${stamp}`;
    receiver.mode = "fail";
    for (const n of range(3)) await report(battle, `before the crash ${n}`);
    await expect
      .poll(() => attemptsFor(battle).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);

    await agent.close();
    process.kill(-(system.child.pid as number), "SIGKILL");
    for (const port of Object.values(system.ports)) await portClosed(port);
    const beforeRestart = attemptsFor(battle).length;

    await start({ BATTLE_WEBHOOK_URL: receiver.url, ...WEBHOOK_ENV });
    // Nobody reports anything: the stored alarm alone resumes the retries.
    await expect
      .poll(() => attemptsFor(battle).length, { timeout: 20_000 })
      .toBeGreaterThan(beforeRestart);
    expect(receiver.seqs(battle)).toEqual([]);

    receiver.mode = "ok";
    await expect.poll(() => receiver.seqs(battle), { timeout: 15_000 }).toEqual(range(3));
    expect((await battleState(battle)).delivery).toMatchObject({ delivered_seq: 3, last_seq: 3 });
  }, 180_000);

  it("attempts nothing when BATTLE_WEBHOOK_URL is unset, and shows no delivery", async () => {
    const pending = `hook-pending-${stamp}`;
    receiver.mode = "fail";
    await report(pending, "owed to the platform");
    await expect.poll(() => attemptsFor(pending).length, { timeout: 10_000 }).toBeGreaterThan(0);
    await agent.close();
    expect(await system.stop()).toBe(0);

    await start({});
    receiver.mode = "ok";
    const attemptsBefore = receiver.attempts.length;
    const quiet = `hook-off-${stamp}`;
    await report(quiet, "nobody is told");
    await report(quiet, "still nobody", "draw");
    // Longer than several of the retry delays above: nothing was scheduled.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(receiver.attempts.length).toBe(attemptsBefore);
    expect((await battleState(quiet)).delivery).toBeNull();
    expect((await battleState(pending)).delivery).toBeNull();
    const jwks = await fetch(JWKS_URL);
    expect(jwks.status).toBe(200);
    expect(await jwks.json()).toEqual({ keys: [] });
  }, 180_000);
});
