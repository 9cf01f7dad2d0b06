/**
 * An answer's audit record is logged before the answer's last bytes reach the agent, on every
 * path: the hot path and the SDK server, in both eras, a slow answer turned into a stream, a
 * door's relayed answer. So a proxy that dies once the agent has its answer has written the
 * record's line already (docs/design.md, "Audit"; test/e2e/audit-crash.e2e.test.ts kills one).
 * Events before the last one are not held back for it: a progress notification reaches the agent
 * while its call still runs, before any record.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { ORIGIN, token } from "./client.ts";
import { type Era, ID, mcpRequest } from "./exchange.ts";

// Built once each: the gateway caches its configuration per env object.
const ENVS = { hot: env, sdk: { ...env, FAST_PATH: "off" } as Env };

let logs: MockInstance<typeof console.log>;
beforeEach(() => {
  logs = vi.spyOn(console, "log");
});
afterEach(() => logs.mockRestore());

/** Whether the audit line of request `requestId` has been logged. */
function logged(requestId: string): boolean {
  return logs.mock.calls.some(
    ([line]) =>
      typeof line === "string" &&
      line.startsWith('{"event":"audit"') &&
      (JSON.parse(line) as { request_id: string }).request_id === requestId,
  );
}

/** Each chunk of the answer as the agent reads it, and whether its record was logged by then. */
async function read(response: Response): Promise<{ text: string; logged: boolean }[]> {
  const requestId = response.headers.get("mcpcp-request-id") ?? "";
  expect(requestId).not.toBe("");
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  const chunks: { text: string; logged: boolean }[] = [];
  for (;;) {
    const next = await reader?.read();
    if (!next || next.done) return chunks;
    chunks.push({ text: decoder.decode(next.value), logged: logged(requestId) });
  }
}

/** A door's POST, as a client of that server alone sends it. */
function doorRequest(era: Era, bearer: string, name: string, args: object): Request {
  const request = mcpRequest(era, bearer, "tools/call", { name, arguments: args });
  return new Request(`${ORIGIN}/servers/mcp1/mcp`, request);
}

async function serve(request: Request, bindings: Env = ENVS.hot): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, bindings, ctx);
  // The test reads the answer before the context's work (the D1 batch) is waited for.
  void waitOnExecutionContext(ctx);
  return response;
}

const ERAS: Era[] = ["legacy", "modern"];

describe("the audit line comes before the answer's last bytes", () => {
  it.each(ERAS)("hot path, %s agent", async (era) => {
    const bearer = await token("agent_name1");
    const args = { name: "mcp1_echo", arguments: { message: "in order" } };
    const chunks = await read(await serve(mcpRequest(era, bearer, "tools/call", args)));
    expect(chunks.map((c) => c.text).join("")).toContain(`"id":${ID}`);
    expect(chunks.at(-1)?.logged).toBe(true);
  });

  it.each(ERAS)("SDK server, %s agent", async (era) => {
    const bearer = await token("agent_name1");
    const args = { name: "mcp1_echo", arguments: { message: "in order" } };
    const chunks = await read(await serve(mcpRequest(era, bearer, "tools/call", args), ENVS.sdk));
    expect(chunks.map((c) => c.text).join("")).toContain(`"id":${ID}`);
    expect(chunks.at(-1)?.logged).toBe(true);
  });

  it.each(ERAS)("a door's relayed answer, %s agent", async (era) => {
    const bearer = await token("agent_name1");
    const chunks = await read(await serve(doorRequest(era, bearer, "echo", { message: "door" })));
    expect(chunks.map((c) => c.text).join("")).toContain(`"id":${ID}`);
    expect(chunks.at(-1)?.logged).toBe(true);
  });

  it("a refusal", async () => {
    const bearer = await token("agent_name1");
    const args = { name: "mcp2_echo", arguments: { message: "hidden" } };
    const chunks = await read(await serve(mcpRequest("legacy", bearer, "tools/call", args)));
    expect(chunks.map((c) => c.text).join("")).toContain("not found");
    expect(chunks.at(-1)?.logged).toBe(true);
  });

  it("a 2026-07-28 answer too slow for a JSON body, sent as a stream", async () => {
    const bearer = await token("sleeper");
    const args = {
      name: "slow_pulse",
      arguments: { label: "order-slow", beats: 2, every_ms: 400 },
    };
    const response = await serve(mcpRequest("modern", bearer, "tools/call", args));
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const chunks = await read(response);
    expect(chunks.map((c) => c.text).join("")).toContain("order-slow done");
    expect(chunks.at(-1)?.logged).toBe(true);
  });

  it("progress before the result goes on at once, before the record", async () => {
    const bearer = await token("sleeper");
    const args = {
      name: "slow_pulse",
      arguments: { label: "order-progress", beats: 2, every_ms: 300 },
      _meta: { progressToken: "p" },
    };
    const chunks = await read(await serve(mcpRequest("legacy", bearer, "tools/call", args)));
    const progress = chunks.filter((c) => c.text.includes("notifications/progress"));
    expect(progress).toHaveLength(2);
    expect(progress.every((c) => !c.logged)).toBe(true);
    expect(chunks.at(-1)?.text).toContain("order-progress done");
    expect(chunks.at(-1)?.logged).toBe(true);
  });
});
