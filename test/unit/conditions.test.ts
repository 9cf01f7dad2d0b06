/**
 * Conditions on grants (core/conditions.ts): compiling CEL once with errors that name the place,
 * deciding calls fail-closed, JSON numbers as CEL ints, and hostile arguments held to the budget.
 * Inputs are parsed from JSON text, as the gateway hands them over.
 */
import { describe, expect, it } from "vitest";
import {
  CONDITION_LIMITS,
  type Condition,
  type ConditionInput,
  compileCondition,
} from "../../workers/proxy/src/core/conditions.ts";

const PLACE = "POLICY.red.mcp2[1].when";

function compiled(source: string): Condition {
  const result = compileCondition(source, PLACE);
  if (!result.ok) throw new Error(result.error);
  return result.condition;
}

function compileError(source: string): string {
  const result = compileCondition(source, PLACE);
  if (result.ok) throw new Error(`${JSON.stringify(source)} compiled`);
  return result.error;
}

function input(
  args: unknown,
  claims: unknown = {},
  more: Partial<ConditionInput> = {},
): ConditionInput {
  return {
    claims: JSON.parse(JSON.stringify(claims)),
    agent: "red",
    server: "mcp2",
    tool: "run_docker",
    args: JSON.parse(JSON.stringify(args)),
    annotations: {},
    ...more,
  };
}

const decide = (source: string, args: unknown, claims: unknown = {}) =>
  compiled(source).evaluate(input(args, claims));

const OVER_BUDGET = `units of work (docs/policy-conditions.md, "Cost")`;

describe("compileCondition", () => {
  it("reports a syntax error with the place and the position", () => {
    expect(compileError("args.command.startsWith(")).toMatch(
      /^POLICY\.red\.mcp2\[1\]\.when: syntax error at 1:\d+: /,
    );
    expect(compileError("args.x == 1 &&\n  args.y ==* 2")).toMatch(/syntax error at 2:\d+/);
  });

  it("refuses a name that is not a declared variable, saying where", () => {
    expect(compileError("args.x == 1 && user.admin")).toBe(
      `${PLACE}: unknown name 'user' (a condition may use claims, agent, server, tool, args, annotations) at 1:16`,
    );
    expect(compileError("optional.of(1) == 1")).toContain("unknown name 'optional'");
  });

  it("refuses an unknown function", () => {
    expect(compileError('args.s.lowerAscii() == "a"')).toContain("unknown function 'lowerAscii'");
    expect(compileError("has(args)")).toContain("has() takes one field selection");
  });

  it("refuses an expression that can be seen not to yield a bool", () => {
    expect(compileError('"ps"')).toBe(
      `${PLACE}: the condition must yield a bool, but it yields a string`,
    );
    expect(compileError("size(args.command)")).toContain("but it yields an int");
    expect(compileError("args.count + 1")).toContain("yields a value that is never a bool");
    expect(compileError("args.x ? 1 : 'one'")).toContain("must yield a bool");
    expect(compileError("[args.x]")).toContain("yields a list");
  });

  it("leaves to evaluation what only the data can tell", () => {
    // A field of args may be a bool; so may a ternary with a bool branch.
    expect(compileCondition("args.dry_run", PLACE).ok).toBe(true);
    expect(compileCondition("args.x ? true : args.y", PLACE).ok).toBe(true);
  });

  it("refuses empty, overlong and over-nested expressions", () => {
    expect(compileError("  ")).toBe(`${PLACE}: the condition is empty`);
    const long = `args.x == "${"a".repeat(CONDITION_LIMITS.maxSourceLength)}"`;
    expect(compileError(long)).toContain(`at most ${CONDITION_LIMITS.maxSourceLength}`);
    expect(compileError(`size(${"[".repeat(120)}${"]".repeat(120)}) == 1`)).toContain(
      `nested more than ${CONDITION_LIMITS.maxDepth} levels deep`,
    );
    expect(compileError(`${"(".repeat(990)}true${")".repeat(990)}`)).toMatch(/nested too deeply/);
  });

  it("refuses map(), filter(), nested loops and message literals", () => {
    expect(compileError("args.a.map(x, x * 2) == [2]")).toContain("map() and filter()");
    expect(compileError("size(args.a.filter(x, x > 1)) == 0")).toContain("map() and filter()");
    expect(compileError("args.a.all(x, claims.b.exists(y, x == y))")).toContain(
      "may not be nested",
    );
    expect(compileError("google.protobuf.BoolValue{value: true}.value")).toContain(
      "message literals",
    );
  });

  it("compiles matches() patterns once and refuses patterns not written in the rule", () => {
    expect(compileError("args.s.matches(args.pattern)")).toContain("string literal");
    expect(compileError("args.s.matches('[a-')")).toContain("invalid matches() pattern");
    expect(compileError("args.s.matches('^[a-z]{1,1000}$')")).toContain("instructions");
    expect(decide("args.s.matches('^[a-z]+$')", { s: "abc" })).toEqual({ allowed: true });
  });

  it("exposes the source and whether the rule reads annotations", () => {
    const plain = compiled('args.command.startsWith("ps")');
    expect(plain.source).toBe('args.command.startsWith("ps")');
    expect(plain.usesAnnotations).toBe(false);
    expect(compiled("annotations.readOnlyHint == true").usesAnnotations).toBe(true);
    // A loop variable that happens to be called annotations is not the variable.
    expect(compiled("args.a.all(annotations, annotations > 0)").usesAnnotations).toBe(false);
  });
});

describe("evaluate: the policy examples", () => {
  const runDocker = 'args.command.startsWith("ps")';
  const battles = "args.battle_id in claims.battles";

  it("allows run_docker for ps and refuses anything else, naming the rule", () => {
    expect(decide(runDocker, { command: "ps -a" })).toEqual({ allowed: true });
    expect(decide(runDocker, { command: "rm -rf /" })).toEqual({
      allowed: false,
      reason: 'refused by rule "args.command.startsWith(\\"ps\\")"',
    });
  });

  it("allows a battle the token lists and refuses one it does not", () => {
    const claims = { sub: "red", battles: ["b-1", "b-7"] };
    expect(decide(battles, { battle_id: "b-7" }, claims)).toEqual({ allowed: true });
    expect(decide(battles, { battle_id: "b-2" }, claims)).toEqual({
      allowed: false,
      reason: 'refused by rule "args.battle_id in claims.battles"',
    });
  });

  it("reads the call's names and the tool's annotations", () => {
    const condition = compiled('tool == "run_docker" && annotations.readOnlyHint == true');
    const annotated = { annotations: { readOnlyHint: true } };
    expect(condition.evaluate(input({}, {}, annotated))).toEqual({ allowed: true });
    expect(condition.evaluate(input({}, {}, { ...annotated, tool: "echo" })).allowed).toBe(false);
  });
});

describe("evaluate: fails closed", () => {
  it("refuses when a field is missing, saying why", () => {
    expect(decide('args.command.startsWith("ps")', {})).toEqual({
      allowed: false,
      reason:
        'rule "args.command.startsWith(\\"ps\\")" could not be evaluated: field not found: command',
    });
  });

  it("refuses when a value has the wrong type", () => {
    const decision = decide('args.command.startsWith("ps")', { command: 7 });
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.reason).toMatch(/could not be evaluated: .*overload/);
  });

  it("refuses a result that is not a bool", () => {
    expect(decide("args.dry_run", { dry_run: "yes" })).toEqual({
      allowed: false,
      reason: 'rule "args.dry_run" could not be evaluated: it yielded a string, not a bool',
    });
    expect(decide("args.dry_run", { dry_run: true })).toEqual({ allowed: true });
  });

  it("never throws, whatever the input holds", () => {
    const condition = compiled("claims.x == 1");
    const odd = [() => 1, Symbol("s"), undefined, new Date(0), 10n];
    for (const x of odd) {
      const decision = condition.evaluate({ ...input({}), claims: { x } });
      expect(decision.allowed).toBe(false);
    }
  });

  it("treats keys that look like protobuf or prototype fields as plain keys", () => {
    const bool = { $typeName: "google.protobuf.BoolValue", value: true };
    expect(decide("type(args) == map && args.value && size(args) == 2", bool)).toEqual({
      allowed: true,
    });
    const proto = JSON.parse('{"constructor": 1, "__proto__": {"admin": true}}');
    expect(decide("args.constructor == 1 && !has(args.admin)", proto)).toEqual({ allowed: true });
  });
});

describe("evaluate: JSON numbers", () => {
  it("reads whole numbers as ints, so int literals and int arithmetic work", () => {
    expect(decide("args.count < 5", { count: 3 }).allowed).toBe(true);
    expect(decide("args.count + 1 == 4", { count: 3 }).allowed).toBe(true);
    expect(decide("type(args.count) == int && args.count % 2 == 1", { count: 3 }).allowed).toBe(
      true,
    );
    expect(decide("args.count in [1, 2, 3]", { count: 3 }).allowed).toBe(true);
    expect(decide("args.items[args.index] == 'b'", { items: ["a", "b"], index: 1 }).allowed).toBe(
      true,
    );
  });

  it("reads fractions and whole numbers beyond 2^53 as doubles, compared across types", () => {
    expect(decide("type(args.ratio) == double && args.ratio < 1", { ratio: 0.5 }).allowed).toBe(
      true,
    );
    expect(decide("args.ratio * 2.0 == 1.0", { ratio: 0.5 }).allowed).toBe(true);
    expect(decide("args.count == 3.0 && args.count < 3.5", { count: 3 }).allowed).toBe(true);
    expect(decide("type(args.big) == double", { big: 1e20 }).allowed).toBe(true);
    // CEL has no arithmetic across int and double: say which, do not guess.
    const mixed = decide("args.ratio + 1 > 1", { ratio: 0.5 });
    expect(mixed.allowed).toBe(false);
    if (!mixed.allowed) expect(mixed.reason).toContain("no matching overload");
  });
});

describe("evaluate: hostile arguments are held to the budget", () => {
  it("refuses a loop over a list larger than the budget, in either polarity", () => {
    const huge = { a: new Array(2_000_000).fill(0) };
    for (const source of ["args.a.exists(x, x == 1)", "!args.a.exists(x, x == 1)"]) {
      const decision = decide(source, huge);
      expect(decision.allowed).toBe(false);
      if (!decision.allowed) expect(decision.reason).toContain(OVER_BUDGET);
    }
  });

  it("decides a loop over a list within the budget", () => {
    const list = { a: new Array(CONDITION_LIMITS.budget / 2).fill(0) };
    expect(decide("args.a.all(x, x == 0)", list)).toEqual({ allowed: true });
  });

  it("charges a list walked inside a loop for every walk", () => {
    // 200 x 200 reads: each element alone is cheap, the product is not.
    const claims = { b: Array.from({ length: 200 }, (_, i) => i) };
    const rule = "args.a.all(x, !(x in claims.b))";
    const decision = decide(rule, { a: new Array(200).fill(-1) }, claims);
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.reason).toContain(OVER_BUDGET);
    expect(decide(rule, { a: new Array(20).fill(-1) }, claims)).toEqual({ allowed: true });
  });

  it("reads one field of a huge object without listing the rest", () => {
    const wide = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]));
    expect(decide("args.k7 == 7", wide)).toEqual({ allowed: true });
    const looped = decide("args.exists(k, k == 'z')", wide);
    expect(looped.allowed).toBe(false);
    if (!looped.allowed) expect(looped.reason).toContain(OVER_BUDGET);
  });

  it("charges strings by their length where functions scan them", () => {
    const mib = "a".repeat(1_048_576);
    // One scan of a 1 MiB argument fits; a regular expression over it does not.
    expect(decide("!args.code.contains('import os')", { code: mib })).toEqual({ allowed: true });
    const regex = decide("args.code.matches('^[a-z]*$')", { code: mib });
    expect(regex.allowed).toBe(false);
    if (!regex.allowed) expect(regex.reason).toContain(OVER_BUDGET);
    expect(decide("args.code.matches('^[a-z]*$')", { code: "a".repeat(1_000) }).allowed).toBe(true);
  });

  it("counts code points in size() as CEL does", () => {
    expect(decide("size(args.s) == 3 && args.s.size() == 3", { s: "a😀é" }).allowed).toBe(true);
  });

  it("refuses to parse an overlong numeric string", () => {
    const decision = decide("int(args.n) > 0", { n: "7".repeat(100_000) });
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.reason).toContain("too long to convert");
    expect(decide("int(args.n) == 42 && uint(args.n) == 42u", { n: "42" }).allowed).toBe(true);
  });

  it("reads arguments nested as deep as the gateway admits", () => {
    let nested: unknown = "bottom";
    for (let i = 0; i < 62; i++) nested = [nested];
    expect(decide(`args.a${"[0]".repeat(62)} == "bottom"`, { a: nested })).toEqual({
      allowed: true,
    });
  });
});
