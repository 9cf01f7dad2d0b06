/**
 * The access policy: which agent may see and call which tools of which server.
 *
 * A JSON document `{ agent: { server: "*" | [tool, ...] } }` (docs/design.md, "Policy"). It is parsed
 * and validated once, when the proxy loads its configuration; a bad document fails there with a
 * message naming the problem, never on an agent's request. An agent absent from the policy sees
 * nothing and can call nothing. The same `allows` decides listing and calling, so a hidden tool
 * and an unknown tool look the same to an agent.
 */
import { z } from "zod";
import { type ParseResult, parseDocument } from "./documents.ts";
import { SERVER_ID } from "./names.ts";

const ToolGrant = z.union([z.literal("*"), z.array(z.string().min(1)).max(1000)]);
export const PolicyDocument = z.record(
  z.string().min(1, "agent id must not be empty"),
  z.record(z.string(), ToolGrant),
);

/** A policy as written (policy.json, the store's documents). */
export type PolicyDocument = z.infer<typeof PolicyDocument>;

/** What one agent may use on one server: every tool, or exactly the named ones. */
export type ToolGrant = "*" | ReadonlySet<string>;

/** A validated policy: agent → server → grant. */
export type Policy = ReadonlyMap<string, ReadonlyMap<string, ToolGrant>>;

export type { ParseResult };

/** Parses and validates a policy document against the servers the proxy knows. */
export function parsePolicy(json: string, knownServers: readonly string[]): ParseResult<Policy> {
  const parsed = parseDocument("POLICY", json, PolicyDocument);
  if (!parsed.ok) return parsed;
  return policyFrom(parsed.value, knownServers, "POLICY");
}

/**
 * Validates a policy already read as a value (the run-time store's copy) against the servers the
 * proxy knows; errors name the document as `name`, and the agent and server they concern.
 */
export function policyFrom(
  raw: unknown,
  knownServers: readonly string[],
  name: string,
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
      grants.set(server, grant === "*" ? "*" : new Set(grant));
    }
    policy.set(agent, grants);
  }
  return { ok: true, value: policy };
}

/** The servers an agent may reach at all, in stable (sorted) order. */
export function serversFor(policy: Policy, agent: string): string[] {
  return [...(policy.get(agent)?.keys() ?? [])].sort();
}

/** Whether `agent` may see and call `tool` on `server`. */
export function allows(policy: Policy, agent: string, server: string, tool: string): boolean {
  const grant = policy.get(agent)?.get(server);
  if (grant === undefined) return false;
  return grant === "*" || grant.has(tool);
}

/**
 * Whether `agent` holds `server` whole (`"*"`). Resources and prompts are not tools, so a grant
 * that names tools one by one does not extend to them; only a whole-server grant does.
 */
export function grantsAll(policy: Policy, agent: string, server: string): boolean {
  return policy.get(agent)?.get(server) === "*";
}
