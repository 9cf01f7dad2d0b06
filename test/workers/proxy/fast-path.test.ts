/**
 * The hot path (`fast-path.ts`, `direct.ts`) against the SDK path it stands in for: the same
 * request, sent to the gateway as configured and to the same gateway with `FAST_PATH=off`, must
 * get the same answer, byte for byte in its JSON-RPC messages, status and content type. The
 * backends are real (mcp1 over its service binding, mcp3 a Node server, ext a third-party server
 * with sessions, mcp2 a dead address).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { token } from "./client.ts";
import { type Era, observed, mcpRequest as request } from "./exchange.ts";

const slowEnv = { ...env, FAST_PATH: "off" };

async function bothPaths(
  era: Era,
  agent: string,
  method: string,
  params: Record<string, unknown> = {},
) {
  const bearer = await token(agent);
  const ctx = createExecutionContext();
  const slow = await observed(
    await worker.fetch(request(era, bearer, method, params), slowEnv, ctx),
  );
  await waitOnExecutionContext(ctx);
  const fastCtx = createExecutionContext();
  const fast = await observed(
    await worker.fetch(request(era, bearer, method, params), env, fastCtx),
  );
  await waitOnExecutionContext(fastCtx);
  return { fast, slow };
}

const cases: [string, string, string, Record<string, unknown>][] = [
  ["tools/list over mcp1 and mcp3", "agent_name1", "tools/list", {}],
  ["tools/list with a dead backend", "agent_name2", "tools/list", {}],
  ["tools/list through a session backend", "integrator", "tools/list", {}],
  ["an echo on mcp1 (service binding)", "agent_name1", "tools/call", echo("mcp1_echo")],
  ["an echo on mcp3 (fetch, assertion)", "agent_name1", "tools/call", echo("mcp3_echo")],
  ["an echo on a session backend", "integrator", "tools/call", echo("ext_echo")],
  ["a call to a dead backend", "agent_name2", "tools/call", echo("mcp2_echo")],
  ["an unknown tool", "agent_name1", "tools/call", echo("mcp1_no_such_tool")],
  ["a tool the policy hides", "narrow", "tools/call", echo("mcp3_echo")],
  ["arguments the tool rejects", "agent_name1", "tools/call", { name: "mcp1_echo", arguments: {} }],
  [
    "a call with a progress token",
    "agent_name1",
    "tools/call",
    { ...echo("mcp3_echo"), _meta: { progressToken: "p" } },
  ],
];

function echo(name: string) {
  return { name, arguments: { message: "parity" } };
}

describe("the hot path answers exactly as the SDK path does", () => {
  for (const era of ["legacy", "modern"] as const) {
    for (const [label, agent, method, params] of cases) {
      it(`${era}: ${label}`, async () => {
        const { fast, slow } = await bothPaths(era, agent, method, params);
        expect(fast).toEqual(slow);
        // The answer is a real one, not two identical failures.
        expect(fast.status).toBe(200);
        expect(fast.messages.at(-1)).toHaveProperty("id", 41);
      });
    }
  }

  it("takes the hot path: a 2026-07-28 answer from it is JSON, and names the gateway", async () => {
    const { fast } = await bothPaths("modern", "agent_name1", "tools/call", echo("mcp1_echo"));
    expect(fast.type).toBe("application/json");
    expect(fast.messages[0]?.result).toMatchObject({
      content: [{ type: "text", text: "Echo: parity" }],
      resultType: "complete",
      _meta: { "io.modelcontextprotocol/serverInfo": { name: "mcpcp" } },
    });
  });
});
