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
import { type ParseResult, parseDocument } from "./documents.ts";
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

/** Parses and validates a policy document against the servers the proxy knows. */
export function parsePolicy(
  json: string,
  knownServers: readonly string[],
  compile?: CompileRule,
): ParseResult<Policy> {
  const parsed = parseDocument("POLICY", json, PolicyDocument);
  if (!parsed.ok) return parsed;
  return policyFrom(parsed.value, knownServers, "POLICY", compile);
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
 * Validates a policy already read as a value (the run-time store's copy) against the servers the
 * proxy knows; errors name the document as `name`, and the agent and server they concern. Rules
 * are compiled here, once, with `compile`: a policy with rules and no compiler is refused.
 */
export function policyFrom(
  raw: unknown,
  knownServers: readonly string[],
  name: string,
  compile?: CompileRule,
): ParseResult<Policy> {
  const parsed = PolicyDocument.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.join(".") || "(root)";
    return { ok: false, error: `${name} is invalid at ${at}: ${issue?.message}` };
  }
  const policy = new Map<string, Map<string, ToolGrant>>();
  for (const [agent, servers] of Object.entries(parsed.data)) {
    const grants = new Map<string, ToolGrant>();
    for (const [server, grant] of Object.entries(servers)) {
      if (!SERVER_ID.test(server)) {
        return {
          ok: false,
          error: `${name} names server "${server}": server ids match ${SERVER_ID.source}`,
        };
      }
      if (!knownServers.includes(server)) {
        return {
          ok: false,
          error: `${name} grants agent "${agent}" server "${server}", which is not configured (known: ${knownServers.join(", ")})`,
        };
      }
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
