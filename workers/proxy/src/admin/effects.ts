/**
 * What a policy gives an agent, in the names the agent sees: its tools, resources and prompts,
 * listed by the very operations that answer the agent's own `tools/list`, `resources/list` and
 * `prompts/list`, so a dry run shows what the agent will get, not a guess at it.
 */
import { Outcome, RequestContext } from "../context.ts";
import type { Policy, PolicyDocument } from "../core/policy.ts";
import type { OperationCall } from "../operations/call.ts";
import { listPrompts } from "../operations/prompts.ts";
import { listResources } from "../operations/resources.ts";
import { listTools } from "../operations/tools.ts";
import type { Gateway } from "../pipeline.ts";

/** The names an agent may use: tools and prompts by prefixed name, resources by prefixed URI. */
export interface Effective {
  tools: string[];
  resources: string[];
  prompts: string[];
}

/** What an agent would gain and lose. */
export interface Effect {
  gained: string[];
  lost: string[];
}

/** Lists what `agent` gets under `policy`, asking its backends as that agent. */
export async function effectiveFor(
  gateway: Gateway,
  env: Env,
  policy: Policy,
  agent: string,
  signal: AbortSignal,
  defer: (work: Promise<unknown>) => void,
): Promise<Effective> {
  const config = { ...gateway.config, policy };
  const identity = {
    agent,
    scopes: new Set<string>(),
    expiresAt: Math.floor(Date.now() / 1000) + 60,
    tokenId: undefined,
    issuedAt: undefined,
    claims: {},
    battleClaims: {},
  };
  const ctx = new RequestContext(config, env, identity, signal, defer);
  const call = (): OperationCall => ({ ctx, outcome: new Outcome(), signal });
  const [tools, resources, prompts] = await Promise.all([
    listTools(call()),
    listResources(call()),
    listPrompts(call()),
  ]);
  return {
    tools: tools.tools.map((t) => t.name).sort(),
    resources: resources.resources.map((r) => r.uri).sort(),
    prompts: prompts.prompts.map((p) => p.name).sort(),
  };
}

/** The names in `after` and not in `before` (gained), and the other way round (lost). */
export function effectOf(before: Effective, after: Effective): Effect {
  const all = (e: Effective) => new Set([...e.tools, ...e.resources, ...e.prompts]);
  const a = all(before);
  const b = all(after);
  return {
    gained: [...b].filter((name) => !a.has(name)).sort(),
    lost: [...a].filter((name) => !b.has(name)).sort(),
  };
}

/** The agents whose grants differ between two policy documents, sorted. */
export function agentsChanged(before: PolicyDocument, after: PolicyDocument): string[] {
  const agents = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...agents].filter((agent) => canonical(before[agent]) !== canonical(after[agent])).sort();
}

/** One agent's grants as text that does not depend on the order servers or tools were written in. */
function canonical(grants: PolicyDocument[string] | undefined): string {
  const entries = Object.entries(grants ?? {}).map(([server, grant]) => [
    server,
    grant === "*" ? "*" : grant.map((entry) => JSON.stringify(entry)).sort(),
  ]);
  return JSON.stringify(entries.sort());
}
