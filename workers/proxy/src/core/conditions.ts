/**
 * Conditions on policy grants: CEL expressions (https://cel.dev) that decide one tool call from
 * the caller's verified claims and the call's arguments (docs/policy-conditions.md). The one
 * owner of CEL in the project: nothing else imports `@bufbuild/cel`.
 *
 * `compileCondition` parses and checks an expression once, when the policy loads, and says what is
 * wrong with it and where; `Condition.evaluate` decides one call and never throws. Whatever cannot
 * be decided refuses: a run-time error, a result that is not a bool, a call whose data would cost
 * more than the evaluation budget. Pure: no I/O and no clock (workerd's clock stands still while
 * code runs, so a time limit could not be kept there; the budget counts work instead).
 *
 * @bufbuild/cel 0.6 parses and evaluates but has no public type checker (its `check` is internal
 * and covers only constants and names) and no cost limit, so this module adds both: a checker
 * over the parsed tree (declared names, known functions, a bool result where the syntax shows the
 * type) and a meter on the data an evaluation reads and the strings its functions scan.
 */
import {
  type CelFunc,
  CelScalar,
  type CelValue,
  celEnv,
  celFunc,
  celMethod,
  celType,
  celUint,
  isCelError,
  mapType,
  parse,
  plan,
} from "@bufbuild/cel";
import { RE2JS } from "@bufbuild/re2";

/** Limits on expressions and on the work of one evaluation. */
export const CONDITION_LIMITS = {
  /** Longest expression (UTF-16 units). A rule is a line or two; a program is not a rule. */
  maxSourceLength: 2_000,
  /**
   * Deepest nesting of the syntax tree: keeps compiling and evaluating off the stack's edge, yet
   * lets a rule reach the bottom of arguments nested as deep as the gateway admits (64).
   */
  maxDepth: 100,
  /** Largest compiled `matches()` pattern, in RE2 instructions: its cost per character. */
  maxPatternSize: 1_000,
  /**
   * Units of work one evaluation may spend (`COST`): about 1-2 µs each on V8, so a hostile call
   * costs a rule at most a few tens of milliseconds. Measured worst cases: bench/conditions.ts,
   * docs/policy-conditions.md, "Cost".
   */
  budget: 20_000,
} as const;

/** What the meter charges, in units: each about one loop step of @bufbuild/cel's interpreter. */
const COST = {
  /** Reading one value of the data (a variable, a list element, a map entry or key). */
  value: 1,
  /** Characters of a string read that cost one more unit (comparing it, copying it). */
  charsPerUnit: 1_024,
  /** Characters `contains`, `startsWith`, `endsWith` and `size` scan per unit (~8 ns each). */
  scannedPerUnit: 256,
  /** `matches` costs length × (pattern size + 4) / this: RE2JS runs an NFA, ~75 ns per pair. */
  regexPerUnit: 16,
} as const;

/** Longest string `int()` and `uint()` parse: BigInt() is superlinear; int64 needs 20 digits. */
const MAX_NUMERIC_STRING = 64;

/** What an expression is evaluated against: one call of one tool by one agent. */
export interface ConditionInput {
  /** The verified token's payload. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly agent: string;
  readonly server: string;
  /** The backend's own tool name (not the prefixed name agents see). */
  readonly tool: string;
  /** The call's arguments; `{}` when it has none. */
  readonly args: Readonly<Record<string, unknown>>;
  /** The tool's MCP annotations (`readOnlyHint`, ...); `{}` when unknown. */
  readonly annotations: Readonly<Record<string, unknown>>;
}

export type Decision = { allowed: true } | { allowed: false; reason: string };

/** A checked expression, ready to decide calls. */
export interface Condition {
  /** The expression as written in the policy. */
  readonly source: string;
  /** Whether it reads `annotations`: only then does the caller need the tool's definition. */
  readonly usesAnnotations: boolean;
  /** Decides one call. Never throws: anything but `true` refuses, and says why. */
  evaluate(input: ConditionInput): Decision;
}

export type CompileResult = { ok: true; condition: Condition } | { ok: false; error: string };

/** The variables an expression may name, and their CEL types. */
const VARIABLES = {
  claims: mapType(CelScalar.STRING, CelScalar.DYN),
  agent: CelScalar.STRING,
  server: CelScalar.STRING,
  tool: CelScalar.STRING,
  args: mapType(CelScalar.STRING, CelScalar.DYN),
  annotations: mapType(CelScalar.STRING, CelScalar.DYN),
} as const;

/** Compiles `source`, the expression at `place` (e.g. `POLICY.red.mcp2[1].when`), for evaluation. */
export function compileCondition(source: string, place: string): CompileResult {
  const fail = (problem: string): CompileResult => ({ ok: false, error: `${place}: ${problem}` });
  if (source.trim() === "") return fail("the condition is empty");
  if (source.length > CONDITION_LIMITS.maxSourceLength) {
    return fail(
      `the condition is ${source.length} characters long; at most ${CONDITION_LIMITS.maxSourceLength} are allowed`,
    );
  }
  let parsed: Parsed;
  try {
    parsed = parse(source);
  } catch (e) {
    if (e instanceof RangeError) return fail("the condition is nested too deeply");
    // The parser's messages read "<input>:LINE:COLUMN: what it found and what it expected".
    const message = e instanceof Error ? e.message : String(e);
    const located = /^<input>:(\d+):(\d+): (.*)$/s.exec(message);
    return fail(located ? `syntax error at ${located[1]}:${located[2]}: ${located[3]}` : message);
  }
  const checked = checkTree(parsed, source);
  if (!checked.ok) return fail(checked.problem);
  if (checked.kind !== "bool" && checked.kind !== "dyn") {
    return fail(`the condition must yield a bool, but it yields ${describe(checked.kind)}`);
  }
  const rule = JSON.stringify(source);
  let program: Program;
  try {
    program = plan(environment(checked.patterns), parsed);
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  return {
    ok: true,
    condition: {
      source,
      usesAnnotations: checked.names.has("annotations"),
      evaluate: (input) => decide(program, rule, input),
    },
  };
}

// --- Evaluation ----------------------------------------------------------------------------

type Parsed = ReturnType<typeof parse>;
type Program = ReturnType<typeof plan<typeof VARIABLES>>;

const ALLOWED: Decision = { allowed: true };

/** The evaluation under way, which the string functions below charge. Evaluation is synchronous. */
let active: Meter | undefined;

/** Runs `program` on `input`; `rule` is its source, quoted, for the reasons. */
function decide(program: Program, rule: string, input: ConditionInput): Decision {
  const meter = new Meter(CONDITION_LIMITS.budget);
  const outer = active;
  active = meter;
  let result: unknown;
  try {
    // Getters: a variable's data is presented (and charged) only if the expression reads it.
    const bindings = {
      get claims() {
        return meter.read(input.claims ?? {});
      },
      agent: input.agent,
      server: input.server,
      tool: input.tool,
      get args() {
        return meter.read(input.args ?? {});
      },
      get annotations() {
        return meter.read(input.annotations ?? {});
      },
    };
    // The bindings' types are CEL's; the getters hand over values made by Meter.read.
    result = program(bindings as unknown as Parameters<Program>[0]);
  } catch (e) {
    // plan() turns exceptions into error values; this is the backstop for "never throws".
    result = e;
  } finally {
    active = outer;
  }
  if (result === true) return ALLOWED;
  if (result === false) return { allowed: false, reason: `refused by rule ${rule}` };
  let why: string;
  if (meter.exhausted) {
    why = `the call's data would cost it more than ${CONDITION_LIMITS.budget} units of work (docs/policy-conditions.md, "Cost")`;
  } else if (isCelError(result) || result instanceof Error) {
    why = result.message;
  } else {
    why = `it yielded ${withArticle(String(celType(result as CelValue)))}, not a bool`;
  }
  return { allowed: false, reason: `rule ${rule} could not be evaluated: ${why}` };
}

function charge(units: number): void {
  if (active === undefined) throw new Error("a condition function ran outside an evaluation");
  active.charge(units);
}

/** Thrown by the meter; @bufbuild/cel turns it into an error value, so it ends as a refusal. */
class CostExceeded extends Error {}

/**
 * Presents JSON data to CEL, lazily, and charges for every value the evaluation reads. Lazily,
 * because a rule usually reads one or two arguments of a body that may hold megabytes. Charged on
 * every read, because the cost of an evaluation is the data it walks: a loop over a list, an `in`
 * over a list inside that loop. A hostile argument list can make a rule walk it, but never for
 * longer than the budget.
 *
 * Conversions (docs/policy-conditions.md, "Values"):
 * - a JSON number that is a whole number within ±(2^53 - 1) is a CEL `int`, any other a `double`,
 *   so `args.count < 5` and `args.count + 1` mean what they say;
 * - an object is a `map` with string keys, an array a `list`; strings, bools and null stay.
 * Every object reaches @bufbuild/cel as a Map (`JsonMap`), never as itself, so no key
 * (`$typeName`, `constructor`) can make it take a plain object for a protobuf message.
 */
class Meter {
  #remaining: number;
  exhausted = false;
  /** What each object read became, so a second read finds the same map or list. */
  #seen: WeakMap<object, unknown> | undefined;

  constructor(budget: number) {
    this.#remaining = budget;
  }

  charge(units: number): void {
    this.#remaining -= units;
    if (this.#remaining < 0) {
      this.exhausted = true;
      throw new CostExceeded("evaluation budget exhausted");
    }
  }

  /** `raw` as CEL reads it, charged. */
  read(raw: unknown): unknown {
    switch (typeof raw) {
      case "string":
        this.charge(COST.value + Math.floor(raw.length / COST.charsPerUnit));
        return raw;
      case "number":
        this.charge(COST.value);
        return Number.isSafeInteger(raw) ? BigInt(raw) : raw;
      case "boolean":
        this.charge(COST.value);
        return raw;
      case "object": {
        this.charge(COST.value);
        if (raw === null) return null;
        this.#seen ??= new WeakMap();
        const seen = this.#seen.get(raw);
        if (seen !== undefined) return seen;
        const made = Array.isArray(raw) ? this.#list(raw) : this.#map(raw);
        this.#seen.set(raw, made);
        return made;
      }
      default:
        throw new TypeError(`a ${typeof raw} is not a JSON value`);
    }
  }

  /** Charges for reading a map key (an entry's key costs like a string value). */
  key(key: string): void {
    this.charge(COST.value + Math.floor(key.length / COST.charsPerUnit));
  }

  #map(raw: object): JsonMap {
    return new JsonMap(raw as Readonly<Record<string, unknown>>, this);
  }

  /**
   * A list must be a real array to @bufbuild/cel (`Array.isArray`), and every element read must be
   * charged and converted: a Proxy over the array is the one way to have both.
   */
  #list(raw: readonly unknown[]): unknown[] {
    const meter = this;
    return new Proxy<unknown[]>([], {
      get(_target, key) {
        if (key === "length") return raw.length;
        // Indices arrive as strings of digits; anything else is a property of arrays.
        if (typeof key === "string" && key.charCodeAt(0) >= 48 && key.charCodeAt(0) <= 57) {
          const index = Number(key);
          return index < raw.length ? meter.read(raw[index]) : undefined;
        }
        // Array.prototype's methods (values, Symbol.iterator) run against this proxy, so they
        // read elements through the branch above.
        return Reflect.get(raw, key);
      },
    });
  }
}

/**
 * A JSON object as a CEL map, read in place: a Map to @bufbuild/cel (`instanceof Map`), with every
 * method it calls answered from the object, so reading one field never lists the others. Listing
 * (size, loops, equality) enumerates the keys once, then charges for each key it yields.
 */
class JsonMap extends Map<string, unknown> {
  readonly #raw: Readonly<Record<string, unknown>>;
  readonly #meter: Meter;
  #keys: string[] | undefined;

  constructor(raw: Readonly<Record<string, unknown>>, meter: Meter) {
    super();
    this.#raw = raw;
    this.#meter = meter;
  }

  override get(key: string): unknown {
    if (typeof key !== "string" || !Object.hasOwn(this.#raw, key)) return undefined;
    const raw = this.#raw[key];
    return raw === undefined ? undefined : this.#meter.read(raw);
  }

  override has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  override get size(): number {
    return this.#ownKeys().length;
  }

  override *keys(): MapIterator<string> {
    for (const key of this.#ownKeys()) {
      this.#meter.key(key);
      yield key;
    }
  }

  override *entries(): MapIterator<[string, unknown]> {
    for (const key of this.keys()) yield [key, this.get(key)];
  }

  override *values(): MapIterator<unknown> {
    for (const key of this.keys()) yield this.get(key);
  }

  override [Symbol.iterator](): MapIterator<[string, unknown]> {
    return this.entries();
  }

  override forEach(
    callback: (value: unknown, key: string, map: Map<string, unknown>) => void,
    thisArg?: unknown,
  ): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  #ownKeys(): string[] {
    if (this.#keys === undefined) {
      this.#keys = Object.keys(this.#raw);
      this.#meter.charge(this.#keys.length * COST.value);
    }
    return this.#keys;
  }
}

/** A `matches()` pattern, compiled when the condition is. */
interface Pattern {
  readonly regex: RE2JS;
  /** RE2 instructions: what each character of the text costs. */
  readonly size: number;
}

const { BOOL, INT, STRING, UINT } = CelScalar;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * The standard string functions whose work grows with their input, metered (an environment's
 * `funcs` replace the standard overloads with the same signature). The rest of the standard
 * library works on values whose reading was charged, in time proportional to that reading.
 */
function meteredFunctions(patterns: ReadonlyMap<string, Pattern>): CelFunc[] {
  const scan = (...texts: string[]) => {
    let length = 0;
    for (const text of texts) length += text.length;
    charge(Math.ceil(length / COST.scannedPerUnit));
  };
  const numeric = (text: string) => {
    if (text.length > MAX_NUMERIC_STRING) {
      throw new Error(`a string of ${text.length} characters is too long to convert to a number`);
    }
    return BigInt(text);
  };
  return [
    celMethod("contains", STRING, [STRING], BOOL, function (part) {
      scan(this, part);
      return this.includes(part);
    }),
    celMethod("startsWith", STRING, [STRING], BOOL, function (prefix) {
      scan(prefix);
      return this.startsWith(prefix);
    }),
    celMethod("endsWith", STRING, [STRING], BOOL, function (suffix) {
      scan(suffix);
      return this.endsWith(suffix);
    }),
    celFunc("size", [STRING], INT, (text) => {
      scan(text);
      return codePoints(text);
    }),
    celMethod("size", STRING, [], INT, function () {
      scan(this);
      return codePoints(this);
    }),
    celFunc("int", [STRING], INT, (text) => {
      const value = numeric(text);
      if (value < INT64_MIN || value > INT64_MAX) throw new Error("int overflow");
      return value;
    }),
    celFunc("uint", [STRING], UINT, (text) => {
      const value = numeric(text);
      if (value < 0n || value > UINT64_MAX) throw new Error("uint overflow");
      return celUint(value);
    }),
    celMethod("matches", STRING, [STRING], BOOL, function (source) {
      // The checker admits only literal patterns and compiles each one: a pattern from the
      // call's data could cost anything to compile.
      const pattern = patterns.get(source);
      if (pattern === undefined) throw new Error("matches() takes a pattern written in the rule");
      charge(Math.ceil((this.length * (pattern.size + 4)) / COST.regexPerUnit));
      return pattern.regex.test(this);
    }),
  ];
}

/** Unicode code points in `text`, as CEL's size() counts them, without copying it. */
function codePoints(text: string): bigint {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return BigInt(count);
}

const NO_PATTERNS: ReadonlyMap<string, Pattern> = new Map();
/** Made on first use: a gateway whose policy has no conditions never pays for it. */
let sharedEnv: ReturnType<typeof celEnv> | undefined;

/** The environment for a condition: shared, unless it has patterns of its own to match. */
function environment(patterns: ReadonlyMap<string, Pattern>) {
  if (patterns.size > 0) return celEnv({ variables: VARIABLES, funcs: meteredFunctions(patterns) });
  sharedEnv ??= celEnv({ variables: VARIABLES, funcs: meteredFunctions(NO_PATTERNS) });
  return sharedEnv;
}

// --- Checking ------------------------------------------------------------------------------

type Expr = Parsed["expr"];

/**
 * What the syntax says an expression yields: a CEL type name, "dyn" when only evaluation can tell
 * (a field of `args`, a ternary with a bool branch), or "value" for what is certainly not a bool
 * though its type is not known (`args.n + 1`).
 */
type Kind =
  | "bool"
  | "int"
  | "uint"
  | "double"
  | "string"
  | "bytes"
  | "null"
  | "list"
  | "map"
  | "type"
  | "timestamp"
  | "duration"
  | "dyn"
  | "value";

function describe(kind: Kind): string {
  return kind === "value" ? "a value that is never a bool" : withArticle(kind);
}

function withArticle(typeName: string): string {
  return /^[aeiou]/.test(typeName) ? `an ${typeName}` : `a ${typeName}`;
}

const VARIABLE_KINDS: ReadonlyMap<string, Kind> = new Map(
  Object.entries(VARIABLES).map(([name, type]) => [name, type === STRING ? "string" : "map"]),
);

let functions: ReadonlySet<string> | undefined;

/** Every function the environment resolves: CEL's standard library, no extensions. */
function knownFunctions(): ReadonlySet<string> {
  functions ??= new Set(Array.from(environment(NO_PATTERNS).funcs, (f) => f.name));
  return functions;
}

/** Operators the parser makes that @bufbuild/cel evaluates itself, not as functions. */
const OPERATORS = new Set(["_&&_", "_||_", "_?_:_", "_[_]"]);

/** Type names, which CEL lets an expression name (`type(x) == int`). */
const TYPE_NAMES: ReadonlySet<string> = new Set([
  "bool",
  "bytes",
  "double",
  "duration",
  "dyn",
  "int",
  "list",
  "map",
  "null_type",
  "string",
  "timestamp",
  "type",
  "uint",
]);

const BOOL_FUNCTIONS = new Set([
  "!_",
  "_&&_",
  "_||_",
  "_==_",
  "_!=_",
  "_<_",
  "_<=_",
  "_>_",
  "_>=_",
  "@in",
  "@not_strictly_false",
  "contains",
  "startsWith",
  "endsWith",
  "matches",
  "bool",
]);
const ARITHMETIC = new Set(["_+_", "_-_", "_*_", "_/_", "_%_", "-_"]);
const CONVERSIONS: ReadonlyMap<string, Kind> = new Map([
  ["int", "int"],
  ["uint", "uint"],
  ["double", "double"],
  ["string", "string"],
  ["bytes", "bytes"],
  ["timestamp", "timestamp"],
  ["duration", "duration"],
  ["type", "type"],
  ["dyn", "dyn"],
  ["size", "int"],
]);

/** How the CEL macros are written, for calls that use their names but not their shape. */
const MACROS: ReadonlyMap<string, string> = new Map([
  ["has", "has() takes one field selection, like has(args.path)"],
  ["all", "all() is written list.all(x, predicate)"],
  ["exists", "exists() is written list.exists(x, predicate)"],
  ["exists_one", "exists_one() is written list.exists_one(x, predicate)"],
  ["map", "map() is not supported in conditions"],
  ["filter", "filter() is not supported in conditions"],
]);

type Checked =
  | { ok: true; kind: Kind; names: Set<string>; patterns: Map<string, Pattern> }
  | { ok: false; problem: string };

/**
 * Checks the parsed tree: every name declared, every function known, every `matches()` pattern a
 * valid literal, no protobuf messages, no `map`/`filter`, no loop inside a loop, nesting within
 * limits; and works out what the whole yields where the syntax shows it.
 */
function checkTree(parsed: Parsed, source: string): Checked {
  const names = new Set<string>();
  const patterns = new Map<string, Pattern>();
  const positions = parsed.sourceInfo?.positions ?? {};
  class Problem extends Error {}
  const problem = (expr: Expr, text: string): never => {
    const offset = positions[String(expr.id)];
    throw new Problem(offset === undefined ? text : `${text} at ${lineColumn(source, offset)}`);
  };

  const walk = (
    expr: Expr,
    scope: ReadonlyMap<string, Kind>,
    depth: number,
    inLoop: boolean,
  ): Kind => {
    if (depth > CONDITION_LIMITS.maxDepth) {
      problem(expr, `the condition is nested more than ${CONDITION_LIMITS.maxDepth} levels deep`);
    }
    const next = (child: Expr | undefined, inner = scope, loop = inLoop): Kind =>
      child === undefined ? "dyn" : walk(child, inner, depth + 1, loop);
    const kind = expr.exprKind;
    switch (kind.case) {
      case "constExpr":
        return constantKind(kind.value.constantKind.case);
      case "identExpr": {
        const name = kind.value.name;
        const bound = scope.get(name);
        if (bound !== undefined) return bound;
        const variable = VARIABLE_KINDS.get(name);
        if (variable !== undefined) {
          names.add(name);
          return variable;
        }
        if (TYPE_NAMES.has(name)) return "type";
        return problem(
          expr,
          `unknown name '${name}' (a condition may use ${[...VARIABLE_KINDS.keys()].join(", ")})`,
        );
      }
      case "selectExpr":
        next(kind.value.operand);
        return kind.value.testOnly ? "bool" : "dyn";
      case "callExpr": {
        const call = kind.value;
        const fn = call.function;
        if (call.target !== undefined) next(call.target);
        const argKinds = call.args.map((arg) => next(arg));
        // "@"-names are the parser's own (`in`, loop conditions): no expression can spell them.
        if (!fn.startsWith("@") && !knownFunctions().has(fn) && !OPERATORS.has(fn)) {
          problem(expr, MACROS.get(fn) ?? `unknown function '${fn}'`);
        }
        if (fn === "matches") {
          const written = call.target === undefined ? call.args[1] : call.args[0];
          compilePattern(expr, written);
        }
        if (BOOL_FUNCTIONS.has(fn)) return "bool";
        if (ARITHMETIC.has(fn)) return arithmeticKind(argKinds[0] ?? "dyn");
        if (fn === "_?_:_") return joinKinds(argKinds[1] ?? "dyn", argKinds[2] ?? "dyn");
        if (fn.startsWith("get")) return "int";
        return CONVERSIONS.get(fn) ?? "dyn";
      }
      case "listExpr":
        for (const element of kind.value.elements) next(element);
        return "list";
      case "structExpr":
        if (kind.value.messageName !== "") {
          problem(expr, `message literals (${kind.value.messageName}{...}) are not supported`);
        }
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === "mapKey") next(entry.keyKind.value);
          next(entry.value);
        }
        return "map";
      case "comprehensionExpr": {
        const loop = kind.value;
        // map() and filter() build lists; @bufbuild/cel makes them chains of one concatenation
        // per element, which any later comparison or loop walks in quadratic time.
        if (loop.accuInit?.exprKind.case === "listExpr") {
          problem(expr, "map() and filter() are not supported in conditions");
        }
        // The meter charges reading data and scanning strings, not every operation: in a loop
        // inside a loop, an operation on the outer loop's value would repeat once per inner step
        // unseen, and a loop over a literal list is not metered at all.
        if (inLoop) {
          problem(expr, "all(), exists() and exists_one() may not be nested");
        }
        next(loop.iterRange);
        const accu = next(loop.accuInit);
        const inner = new Map(scope);
        inner.set(loop.iterVar, "dyn");
        if (loop.iterVar2 !== "") inner.set(loop.iterVar2, "dyn");
        inner.set(loop.accuVar, accu);
        next(loop.loopCondition, inner, true);
        next(loop.loopStep, inner, true);
        return next(loop.result, inner, true);
      }
      default:
        return problem(expr, "the condition has an empty expression");
    }
  };

  const compilePattern = (call: Expr, written: Expr | undefined) => {
    const literal = written?.exprKind;
    if (literal?.case !== "constExpr" || literal.value.constantKind.case !== "stringValue") {
      return problem(call, "matches() takes a pattern written in the rule, as a string literal");
    }
    const text = literal.value.constantKind.value;
    if (patterns.has(text)) return;
    let regex: RE2JS;
    try {
      regex = RE2JS.compile(text);
    } catch (e) {
      return problem(call, `invalid matches() pattern: ${e instanceof Error ? e.message : e}`);
    }
    const size = regex.re2().prog.numInst();
    if (size > CONDITION_LIMITS.maxPatternSize) {
      return problem(
        call,
        `the matches() pattern compiles to ${size} instructions; at most ${CONDITION_LIMITS.maxPatternSize} are allowed`,
      );
    }
    patterns.set(text, { regex, size });
  };

  try {
    const kind = walk(parsed.expr, new Map(), 1, false);
    return { ok: true, kind, names, patterns };
  } catch (e) {
    if (e instanceof Problem) return { ok: false, problem: e.message };
    if (e instanceof RangeError)
      return { ok: false, problem: "the condition is nested too deeply" };
    throw e;
  }
}

function constantKind(constant: string | undefined): Kind {
  switch (constant) {
    case "boolValue":
      return "bool";
    case "int64Value":
      return "int";
    case "uint64Value":
      return "uint";
    case "doubleValue":
      return "double";
    case "stringValue":
      return "string";
    case "bytesValue":
      return "bytes";
    case "nullValue":
      return "null";
    default:
      return "dyn";
  }
}

/** What `a + b` (and the other operators) yields: the left operand's type, never a bool. */
function arithmeticKind(left: Kind): Kind {
  return left === "dyn" || left === "bool" ? "value" : left;
}

/** What `c ? a : b` yields: a bool branch keeps it possibly a bool, whatever the other is. */
function joinKinds(a: Kind, b: Kind): Kind {
  if (a === b) return a;
  if (a === "dyn" || b === "dyn" || a === "bool" || b === "bool") return "dyn";
  return "value";
}

/** 1-based line and column of a 0-based offset, as the parser reports its own errors. */
function lineColumn(source: string, offset: number): string {
  const before = source.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `${line}:${column}`;
}
