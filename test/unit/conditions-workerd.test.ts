/**
 * Grant conditions in workerd as deployed: code generation from strings (eval, new Function) is
 * refused there, and the Workers Vitest pool allows it for its own loader, so the pool's test
 * (test/workers/proxy/conditions.test.ts) cannot show that @bufbuild/cel does without it. This
 * bundles the module as wrangler would and runs it in plain Miniflare, where it is refused.
 */
import { join } from "node:path";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MODULE = join(import.meta.dirname, "../../workers/proxy/src/core/conditions.ts");

// The Worker answers one request: compile each rule, evaluate it on the given call, and report
// whether this isolate allows code generation at all (it must not, or the test proves nothing).
const WORKER = `
import { compileCondition } from ${JSON.stringify(MODULE)};
export default {
  async fetch(request) {
    let codegen = "allowed";
    try { new Function("return 1"); } catch { codegen = "refused"; }
    const cases = await request.json();
    const decisions = cases.map(({ rule, call }) => {
      const compiled = compileCondition(rule, "POLICY.red.mcp2[1].when");
      return compiled.ok ? compiled.condition.evaluate(call) : { error: compiled.error };
    });
    return Response.json({ codegen, decisions });
  },
};`;

let mf: Miniflare;

beforeAll(async () => {
  const bundle = await build({
    stdin: { contents: WORKER, resolveDir: import.meta.dirname, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
  });
  const script = bundle.outputFiles[0]?.text ?? "";
  mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [{ name: "conditions", modules: true, compatibilityDate: "2026-11-01", script }],
    }),
  );
});

afterAll(() => mf?.dispose());

const call = (args: Record<string, unknown>, claims: Record<string, unknown> = {}) => ({
  claims,
  agent: "red",
  server: "mcp2",
  tool: "run_docker",
  args,
  annotations: {},
});

describe("conditions in workerd without code generation", () => {
  it("compiles and decides, patterns, loops and the budget included", async () => {
    const cases = [
      { rule: 'args.command.startsWith("ps")', call: call({ command: "ps -a" }) },
      { rule: 'args.command.startsWith("ps")', call: call({ command: "rm -rf /" }) },
      {
        rule: "args.battle_id in claims.battles && args.name.matches('^[a-z]+$')",
        call: call({ battle_id: "b-7", name: "abc" }, { battles: ["b-1", "b-7"] }),
      },
      { rule: "args.ids.all(i, i + 1 > 0)", call: call({ ids: new Array(50_000).fill(1) }) },
      { rule: "args.x == 1 && nobody", call: call({}) },
    ];
    const response = await mf.dispatchFetch("http://conditions.test/", {
      method: "POST",
      body: JSON.stringify(cases),
    });
    const { codegen, decisions } = (await response.json()) as {
      codegen: string;
      decisions: unknown[];
    };
    expect(codegen).toBe("refused");
    expect(decisions[0]).toEqual({ allowed: true });
    expect(decisions[1]).toEqual({
      allowed: false,
      reason: 'refused by rule "args.command.startsWith(\\"ps\\")"',
    });
    expect(decisions[2]).toEqual({ allowed: true });
    expect(decisions[3]).toEqual({
      allowed: false,
      reason: expect.stringContaining("units of work"),
    });
    expect(decisions[4]).toEqual({
      error: expect.stringMatching(/^POLICY\.red\.mcp2\[1\]\.when: unknown name 'nobody'/),
    });
  });
});
