/**
 * Grant conditions run inside workerd, which refuses code generation (eval, new Function) and
 * whose V8 is not Node's: compile once and decide calls there, through every part @bufbuild/cel
 * and the meter use (parser, planner, RE2 patterns, loops over lists and maps, the budget).
 */
import { describe, expect, it } from "vitest";
import { compileCondition } from "../../../workers/proxy/src/core/conditions.ts";

function compiled(source: string) {
  const result = compileCondition(source, "POLICY.red.mcp2[1].when");
  if (!result.ok) throw new Error(result.error);
  return result.condition;
}

const call = (args: Record<string, unknown>, claims: Record<string, unknown> = {}) => ({
  claims,
  agent: "red",
  server: "mcp2",
  tool: "run_docker",
  args,
  annotations: {},
});

describe("conditions in workerd", () => {
  it("compiles and decides the policy examples", () => {
    const ps = compiled('args.command.startsWith("ps")');
    expect(ps.evaluate(call({ command: "ps -a" }))).toEqual({ allowed: true });
    expect(ps.evaluate(call({ command: "rm -rf /" }))).toEqual({
      allowed: false,
      reason: 'refused by rule "args.command.startsWith(\\"ps\\")"',
    });
    const battles = compiled("args.battle_id in claims.battles");
    expect(battles.evaluate(call({ battle_id: "b-7" }, { battles: ["b-1", "b-7"] }))).toEqual({
      allowed: true,
    });
  });

  it("runs patterns, loops and int arithmetic, and holds a hostile list to the budget", () => {
    const rule = compiled(
      "args.name.matches('^[a-z]+$') && args.ids.all(i, i + 1 > 0) && args.exists(k, k == 'name')",
    );
    expect(rule.evaluate(call({ name: "abc", ids: [1, 2, 3] }))).toEqual({ allowed: true });
    const hostile = rule.evaluate(call({ name: "abc", ids: new Array(100_000).fill(1) }));
    expect(hostile.allowed).toBe(false);
    if (!hostile.allowed) expect(hostile.reason).toContain("units of work");
    expect(compiled("args.name.size() > 0").evaluate(call({ ids: [] }))).toEqual({
      allowed: false,
      reason: 'rule "args.name.size() > 0" could not be evaluated: field not found: name',
    });
  });

  it("reports compile errors with the place", () => {
    const result = compileCondition("args.x == 1 && nobody", "POLICY.red.mcp2[1].when");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^POLICY\.red\.mcp2\[1\]\.when: unknown name/);
  });
});
