/**
 * 2026-07-28 multi-round-trip requests on `/mcp` itself: a backend's `input_required` reaches a
 * 2026-07-28 agent with its `requestState` sealed (core/seal.ts), and the agent's retry reaches
 * the backend with the backend's own state. The v2 SDK client drives the whole flow as agents
 * run it; raw requests show what the SDK client would never send, under every setting of the
 * FAST_PATH and DIRECT switches (workers/proxy/README.md, "One owner for each behaviour").
 *
 * `mrtr` is test/support/mrtr-backend.ts (granted whole to `asker` and `bystander`); on /mcp its
 * tools are `mrtr_confirm` and `mrtr_visit`.
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { CONFIRMED, modernCall, modernClient, mrtrState } from "./agent-exchange.ts";
import { LEGACY_VERSION, ORIGIN, token } from "./client.ts";
import { text } from "./door-client.ts";

const MCP = new URL(`${ORIGIN}/mcp`);
const FOREIGN = "Invalid params: requestState was not issued to this agent by this server";

const SETTINGS = [
  { label: "FAST_PATH=on DIRECT=on", FAST_PATH: "on", DIRECT: "on" },
  { label: "FAST_PATH=off DIRECT=on", FAST_PATH: "off", DIRECT: "on" },
  { label: "FAST_PATH=on DIRECT=off", FAST_PATH: "on", DIRECT: "off" },
  { label: "FAST_PATH=off DIRECT=off", FAST_PATH: "off", DIRECT: "off" },
].map((s) => ({ ...s, env: { ...env, FAST_PATH: s.FAST_PATH, DIRECT: s.DIRECT } as Env }));

/** A raw 2026-07-28 call of mrtr_confirm as `agent` under `setEnv` (`modernCall`). */
function confirmCall(setEnv: Env, agent: string, extra: Record<string, unknown> = {}) {
  return modernCall(
    MCP,
    agent,
    "mrtr_confirm",
    { arguments: { action: "deploy" }, ...extra },
    {
      env: setEnv,
    },
  );
}

describe("2026-07-28 multi-round-trip on /mcp", () => {
  it("the SDK client fulfils input_required and retries; the backend gets its own state back", async () => {
    const asked: unknown[] = [];
    const { client, bodies } = await modernClient(MCP, "asker", (params) => {
      asked.push(params);
      return { action: "accept", content: { confirm: true } };
    });
    const before = await mrtrState();
    const result = await client.callTool({ name: "mrtr_confirm", arguments: { action: "deploy" } });
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
    expect(seen).not.toContain("mrtr:");
  });

  it("URL elicitation rides the same round trip", async () => {
    const asked: unknown[] = [];
    const { client } = await modernClient(MCP, "asker", (params) => {
      asked.push(params);
      return { action: "accept" };
    });
    const result = await client.callTool({ name: "mrtr_visit", arguments: { label: "mcp-visit" } });
    expect(text(result)).toBe("mcp-visit: accept");
    expect(asked).toMatchObject([
      { mode: "url", url: "https://auth.example.com/connect?label=mcp-visit" },
    ]);
  });

  for (const setting of SETTINGS) {
    it(`${setting.label}: sealed on the way out, opened on the way back, refused for another agent`, async () => {
      const first = await confirmCall(setting.env, "asker");
      expect(first.result).toMatchObject({ resultType: "input_required" });
      const sealed = first.result?.requestState as string;
      expect(sealed).toMatch(/^[A-Za-z0-9_-]{40,}$/);

      const before = (await mrtrState()).calls.length;
      // Another agent holding the same server, a changed state: refused before the backend.
      const stolen = await confirmCall(setting.env, "bystander", {
        inputResponses: CONFIRMED,
        requestState: sealed,
      });
      expect(stolen.error).toMatchObject({ code: -32602, message: FOREIGN });
      const changed = await confirmCall(setting.env, "asker", {
        inputResponses: CONFIRMED,
        requestState: `${sealed.slice(0, -2)}AA`,
      });
      expect(changed.error).toMatchObject({ code: -32602, message: FOREIGN });
      expect((await mrtrState()).calls.length).toBe(before);

      const retried = await confirmCall(setting.env, "asker", {
        inputResponses: CONFIRMED,
        requestState: sealed,
      });
      expect(text(retried.result)).toBe("deploy: confirmed");
    });
  }

  it("a 2025 agent is not offered input_required: the backend refuses at once, saying why", async () => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(MCP, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          authorization: `Bearer ${await token("asker")}`,
          "mcp-protocol-version": LEGACY_VERSION,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "mrtr_confirm", arguments: { action: "deploy" } },
        }),
      }),
      env,
      ctx,
    );
    const body = await response.text();
    await waitOnExecutionContext(ctx);
    expect(body).toMatch(/client capabilities do not declare the required capability/);
  });
});
