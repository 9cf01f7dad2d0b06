/**
 * The access policy: which agent may see and call which tools of which server.
 *
 * A JSON document `{ agent: { server: "*" | [tool | {tool, when}, ...] } }` (docs/design.md,
 * "Policy"; rules: docs/policy-conditions.md). It is parsed
 * and validated once, when the proxy loads its configuration; a bad document fails there with a
 * message naming the problem, never on an agent's request. An agent absent from the policy sees
 * nothing and can call nothing. The same `allows` decides listing and calling, so a hidden tool
 * and an unknown tool look the same to an agent.
 */
import { z } from "zod";
import type { CompileResult, Condition, ConditionInput } from "./conditions.ts";
import { type ParseResult, parseJson, validated } from "./documents.ts";
import { SERVER_ID } from "./names.ts";

/** A tool granted only when a CEL rule allows the call (docs/policy-conditions.md). */
const RuledEntry = z.strictObject({ tool: z.string().min(1), when: z.string().min(1) });
const ToolEntry = z.union([z.string().min(1), RuledEntry]);
const ToolGrant = z.union([z.literal("*"), z.array(ToolEntry).max(1000)]);
export const PolicyDocument = z.record(
  z.string().min(1, "agent id must not be empty"),
  z.record(z.string(), ToolGrant),
);

/** A policy as written (policy.json, the store's documents). */
export type PolicyDocument = z.infer<typeof PolicyDocument>;

/**
 * What one agent may use on one server: every tool (`"*"`), or the tools a list names, each
 * outright or under rules (`{ "tool": name | "*", "when": CEL }`).
 */
export type ToolGrant = "*" | ListedTools;

export interface ListedTools {
  /** Tools granted outright. */
  names: ReadonlySet<string>;
  /** Tools granted under rules (a name, or `*` for every tool): any rule that allows, allows. */
  rules: ReadonlyMap<string, readonly Condition[]>;
}

/** A validated policy: agent → server → grant. */
export type Policy = ReadonlyMap<string, ReadonlyMap<string, ToolGrant>>;

/** Compiles a rule (`core/conditions.ts`); loaded only for a policy that has rules. */
export type CompileRule = (source: string, place: string) => CompileResult;

export type { ParseResult };

let compiler: Promise<CompileRule> | undefined;

/**
 * `compileCondition`, loaded on first need: the CEL runtime takes tens of milliseconds to load,
 * which an isolate whose policy has no rules never pays.
 */
export function loadRuleCompiler(): Promise<CompileRule> {
  compiler ??= import("./conditions.ts").then((module) => module.compileCondition);
  return compiler;
}

/** A policy read once: the document as written (validated) and what is served from it. */
export interface ReadPolicy {
  document: PolicyDocument;
  policy: Policy;
}

/**
 * Parses and validates POLICY against the servers the proxy knows, once: the document is kept as
 * written (the store is seeded with it, and its hash tells deployed configurations apart), beside
 * its index.
 */
export function readPolicy(
  json: string,
  knownServers: readonly string[],
  compile?: CompileRule,
): ParseResult<ReadPolicy> {
  const raw = parseJson("POLICY", json);
  if (!raw.ok) return raw;
  const checked = validated("POLICY", raw.value, PolicyDocument);
  if (!checked.ok) return checked;
  // The schema has no defaults or transforms, so a valid document is its own value: keeping the
  // text's own object keeps its key order, and with it the hash an existing store knows it by.
  const document = raw.value as PolicyDocument;
  const policy = indexPolicy(document, knownServers, "POLICY", compile);
  return policy.ok ? { ok: true, value: { document, policy: policy.value } } : policy;
}

/** Parses and validates a policy document against the servers the proxy knows. */
export function parsePolicy(
  json: string,
  knownServers: readonly string[],
  compile?: CompileRule,
): ParseResult<Policy> {
  const read = readPolicy(json, knownServers, compile);
  return read.ok ? { ok: true, value: read.value.policy } : read;
}

/** Whether a policy document has rules, so its reader needs `compileCondition`. */
export function hasRules(raw: unknown): boolean {
  if (typeof raw !== "object" || raw === null) return false;
  return Object.values(raw).some(
    (servers) =>
      typeof servers === "object" &&
      servers !== null &&
      Object.values(servers).some(
        (grant) => Array.isArray(grant) && grant.some((entry) => typeof entry === "object"),
      ),
  );
}

/**
 * Validates a policy already read as a value (a policy an operator sends) against the servers the
 * proxy knows; errors name the document as `name`, and the agent and server they concern.
 */
export function policyFrom(
  raw: unknown,
  knownServers: readonly string[],
  name: string,
  compile?: CompileRule,
): ParseResult<Policy> {
  const checked = validated(name, raw, PolicyDocument);
  if (!checked.ok) return checked;
  return indexPolicy(checked.value, knownServers, name, compile);
}

/**
 * Indexes a policy document that has passed `PolicyDocument` (on its own, or inside the store's
 * document): checks each server against those the proxy knows and compiles rules, once, with
 * `compile`; a policy with rules and no compiler is refused. No schema runs here again: a
 * document is validated by whoever parsed it, once.
 */
export function indexPolicy(
  document: PolicyDocument,
  knownServers: readonly string[],
  name: string,
  compile?: CompileRule,
): ParseResult<Policy> {
  const known = new Set(knownServers);
  const policy = new Map<string, Map<string, ToolGrant>>();
  for (const [agent, servers] of Object.entries(document)) {
    const grants = new Map<string, ToolGrant>();
    for (const [server, grant] of Object.entries(servers)) {
      const unknown = unknownServer(agent, server, known, name);
      if (unknown) return unknown;
      if (grant === "*") {
        grants.set(server, "*");
        continue;
      }
      const names = new Set<string>();
      const rules = new Map<string, Condition[]>();
      for (const [index, entry] of grant.entries()) {
        if (typeof entry === "string") {
          names.add(entry);
          continue;
        }
        const place = `${name}.${agent}.${server}[${index}].when`;
        if (!compile) return { ok: false, error: `${place}: rules cannot be read here` };
        const compiled = compile(entry.when, place);
        if (!compiled.ok) return { ok: false, error: compiled.error };
        rules.set(entry.tool, [...(rules.get(entry.tool) ?? []), compiled.condition]);
      }
      grants.set(server, { names, rules });
    }
    policy.set(agent, grants);
  }
  return { ok: true, value: policy };
}

/**
 * Whether a policy indexed before still holds with `knownServers` (a version that changed the
 * backends but not the policy): every server it grants must be one of them.
 */
export function grantsOnly(
  policy: Policy,
  knownServers: readonly string[],
  name: string,
): ParseResult<Policy> {
  const known = new Set(knownServers);
  for (const [agent, grants] of policy) {
    for (const server of grants.keys()) {
      const unknown = unknownServer(agent, server, known, name);
      if (unknown) return unknown;
    }
  }
  return { ok: true, value: policy };
}

function unknownServer(
  agent: string,
  server: string,
  known: ReadonlySet<string>,
  name: string,
): { ok: false; error: string } | undefined {
  if (known.has(server)) return undefined;
  if (!SERVER_ID.test(server)) {
    return {
      ok: false,
      error: `${name} names server "${server}": server ids match ${SERVER_ID.source}`,
    };
  }
  return {
    ok: false,
    error: `${name} grants agent "${agent}" server "${server}", which is not configured (known: ${[...known].join(", ")})`,
  };
}

/** The servers an agent may reach at all, in stable (sorted) order. */
export function serversFor(policy: Policy, agent: string): string[] {
  return [...(policy.get(agent)?.keys() ?? [])].sort();
}

/**
 * Whether `agent` may see `tool` on `server`, and call it unless a rule refuses the call
 * (`rulesFor`): a tool the agent may never use stays hidden, one under rules is shown.
 */
export function allows(policy: Policy, agent: string, server: string, tool: string): boolean {
  const grant = policy.get(agent)?.get(server);
  if (grant === undefined) return false;
  return grant === "*" || grant.names.has(tool) || grant.rules.has(tool) || grant.rules.has("*");
}

/**
 * The rules a call of `tool` must pass, any one of them: none (an empty list) when the tool is
 * granted outright. Only for a tool `allows` lets the agent see.
 */
export function rulesFor(
  policy: Policy,
  agent: string,
  server: string,
  tool: string,
): readonly Condition[] {
  const grant = policy.get(agent)?.get(server);
  if (grant === undefined || grant === "*" || grant.names.has(tool)) return [];
  return [...(grant.rules.get(tool) ?? []), ...(grant.rules.get("*") ?? [])];
}

/**
 * Decides a call under `rules`: allowed when there are none or one allows; otherwise refused,
 * with the reason of the first rule (which names it).
 */
export function decideRules(
  rules: readonly Condition[],
  input: ConditionInput,
): { allowed: true } | { allowed: false; reason: string } {
  let first: string | undefined;
  for (const rule of rules) {
    const decision = rule.evaluate(input);
    if (decision.allowed) return decision;
    first ??= decision.reason;
  }
  return first === undefined ? { allowed: true } : { allowed: false, reason: first };
}

/**
 * Whether `agent` holds `server` whole (`"*"`). Resources and prompts are not tools, so a grant
 * that names tools one by one does not extend to them; only a whole-server grant does.
 */
export function grantsAll(policy: Policy, agent: string, server: string): boolean {
  return policy.get(agent)?.get(server) === "*";
}
