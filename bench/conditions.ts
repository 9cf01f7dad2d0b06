/**
 * What a grant's condition costs a call, in Node (V8, as in workerd), without I/O:
 * `node bench/conditions.ts [--ms 500]` prints a table and then one JSON document.
 *
 * Typical rules (the policy examples of docs/policy-conditions.md) in ns per evaluation, beside
 * the baseline they add to: the plain grant check, a Set lookup. Then the hostile cases: the
 * largest inputs a call can carry within the gateway's shape limits (4 MiB body, 1 MiB strings,
 * 64 levels), each against a rule that walks them, in ms per evaluation and with the decision
 * (most end refused by the meter). Standalone: not part of `npm run bench`.
 */
import { parseArgs } from "node:util";
import {
  CONDITION_LIMITS,
  type ConditionInput,
  compileCondition,
} from "../workers/proxy/src/core/conditions.ts";

const { values: options } = parseArgs({ options: { ms: { type: "string", default: "500" } } });
const windowMs = Number(options.ms);

function compiled(source: string) {
  const result = compileCondition(source, "bench");
  if (!result.ok) throw new Error(result.error);
  return result.condition;
}

/** The arguments' JSON text of each input, to weigh a case against parsing its body. */
const texts = new WeakMap<ConditionInput, string>();

function call(args: Record<string, unknown>, claims: Record<string, unknown> = {}): ConditionInput {
  // As the gateway hands them over: parsed from JSON text, within its shape limits.
  const text = JSON.stringify(args);
  if (text.length > 4 * 1_048_576) throw new Error(`arguments of ${text.length} bytes: over 4 MiB`);
  const input = {
    claims: JSON.parse(JSON.stringify(claims)),
    agent: "red",
    server: "mcp2",
    tool: "run_docker",
    args: JSON.parse(text),
    annotations: {},
  };
  texts.set(input, text);
  return input;
}

/** Mean ns per run of `fn` over a time window, after a warm-up of a tenth of it. */
function nsPer(fn: () => unknown): number {
  const until = (ms: number) => {
    let runs = 0;
    const end = performance.now() + ms;
    const start = performance.now();
    while (performance.now() < end) {
      for (let i = 0; i < 100; i++) fn();
      runs += 100;
    }
    return ((performance.now() - start) * 1e6) / runs;
  };
  until(windowMs / 10);
  return until(windowMs);
}

/** Mean ms per run of a slow `fn`: at least 3 runs, up to the window. */
function msPer(fn: () => unknown): number {
  fn();
  let runs = 0;
  const start = performance.now();
  while (runs < 3 || performance.now() - start < windowMs) {
    fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}

const rows: { case: string; figure: string; decision?: string; parse?: string }[] = [];
const json: Record<string, unknown> = { budget: CONDITION_LIMITS.budget, typical: {}, hostile: {} };

// --- Typical rules -------------------------------------------------------------------------

const grant = new Set(["echo", "run_docker", "list_containers"]);
const typical: [string, string, ConditionInput][] = [
  [
    'run_docker: args.command.startsWith("ps")',
    'args.command.startsWith("ps")',
    call({ command: "ps -a", image: "alpine:3.20" }),
  ],
  [
    "mcp1: args.battle_id in claims.battles",
    "args.battle_id in claims.battles",
    call({ battle_id: "b-7" }, { sub: "red", battles: ["b-1", "b-3", "b-7"] }),
  ],
  ["int compare: args.count < 5", "args.count < 5", call({ count: 3 })],
];
const baseline = nsPer(() => grant.has("run_docker"));
rows.push({
  case: "baseline: Set lookup (the grant check today)",
  figure: `${baseline.toFixed(1)} ns`,
});
(json.typical as Record<string, unknown>).setLookupNs = baseline;
for (const [label, source, input] of typical) {
  const condition = compiled(source);
  const ns = nsPer(() => condition.evaluate(input));
  rows.push({
    case: label,
    figure: `${ns.toFixed(0)} ns`,
    decision: decision(condition.evaluate(input)),
  });
  (json.typical as Record<string, unknown>)[source] = ns;
}
const compileNs = nsPer(() => compileCondition('args.command.startsWith("ps")', "bench"));
rows.push({
  case: 'compile: args.command.startsWith("ps")',
  figure: `${(compileNs / 1000).toFixed(1)} µs`,
});

// --- Hostile inputs ------------------------------------------------------------------------

const zeros = (n: number) => new Array<number>(n).fill(0);
const MiB = 1_048_576;
const justUnder = CONDITION_LIMITS.budget - 100;
const manyKeys = Object.fromEntries(zeros(350_000).map((_, i) => [`k${i}`, 0]));
let nested: unknown = 0;
for (let i = 0; i < 62; i++) nested = [nested];

const hostile: [string, string, ConditionInput][] = [
  ["loop over 2M-element list (4 MiB)", "args.a.exists(x, x == 1)", call({ a: zeros(2_000_000) })],
  [
    "loop over a list just within budget",
    "args.a.exists(x, x == 1)",
    call({ a: zeros(justUnder) }),
  ],
  [
    "in over claims inside a loop (quadratic)",
    "args.a.all(x, x in claims.b)",
    call({ a: zeros(140) }, { b: Array.from({ length: 140 }, (_, i) => 139 - i) }),
  ],
  [
    "list equality within budget",
    "args.a == args.b",
    call({ a: zeros(justUnder / 2), b: zeros(justUnder / 2) }),
  ],
  ["loop over a 350k-key object (4 MiB)", "args.exists(k, k == 'z')", call(manyKeys)],
  ["one field of a 350k-key object", "args.k7 == 0", call(manyKeys)],
  [
    "size() of 1 MiB string, 3 times",
    "size(args.s) + size(args.s) + size(args.s) > 0",
    call({ s: "é".repeat(MiB) }),
  ],
  [
    "contains worst case on 1 MiB, 3 times",
    `args.s.contains('${"a".repeat(30)}b') || args.s.contains('${"a".repeat(30)}c') || args.s.contains('${"a".repeat(30)}d')`,
    call({ s: "a".repeat(MiB) }),
  ],
  [
    "contains, 1 MiB needle in 1 MiB text",
    "args.s.contains(args.t)",
    call({ s: "a".repeat(MiB), t: `${"a".repeat(MiB - 1)}b` }),
  ],
  ["matches on 1 MiB", "args.s.matches('^[ab]*$')", call({ s: "a".repeat(MiB) })],
  ["matches within budget", "args.s.matches('^[ab]*$')", call({ s: "a".repeat(30_000) })],
  [
    "matches, big pattern, within budget",
    `args.s.matches('^(${Array.from({ length: 20 }, (_, i) => "a".repeat(i + 1)).join("|")})*$')`,
    call({ s: "a".repeat(1_000) }),
  ],
  [
    "string equality, 1 MiB each",
    "args.s == args.t",
    call({ s: "a".repeat(MiB), t: `${"a".repeat(MiB - 1)}b` }),
  ],
  ["int() of a 1 MiB digit string", "int(args.s) > 0", call({ s: "7".repeat(MiB) })],
  ["62 nested lists, read to the bottom", `args.a${"[0]".repeat(62)} == 0`, call({ a: nested })],
];
for (const [label, source, input] of hostile) {
  const condition = compiled(source);
  const ms = msPer(() => condition.evaluate(input));
  const text = texts.get(input) ?? "";
  const parseMs = msPer(() => JSON.parse(text));
  rows.push({
    case: label,
    figure: `${ms.toFixed(2)} ms`,
    decision: decision(condition.evaluate(input)),
    parse: `${parseMs.toFixed(2)} ms`,
  });
  (json.hostile as Record<string, unknown>)[label] = {
    source: source.slice(0, 120),
    ms,
    argsBytes: text.length,
    jsonParseMs: parseMs,
  };
}

function decision(d: ReturnType<ReturnType<typeof compiled>["evaluate"]>): string {
  if (d.allowed) return "allowed";
  return d.reason.includes("units of work") ? "refused: over budget" : "refused";
}

const width = Math.max(...rows.map((r) => r.case.length));
console.log(`budget ${CONDITION_LIMITS.budget} units; Node ${process.version}`);
console.log(
  `${"case".padEnd(width)}  ${"per eval".padStart(10)}  ${"decision".padEnd(20)}  JSON.parse of the arguments`,
);
for (const row of rows) {
  const line = `${row.case.padEnd(width)}  ${row.figure.padStart(10)}  ${(row.decision ?? "").padEnd(20)}  ${row.parse ?? ""}`;
  console.log(line.trimEnd());
}
console.log(JSON.stringify(json));
