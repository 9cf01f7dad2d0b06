/**
 * Which containers an agent may touch: those mcp2 started for it. References are resolved against
 * the caller's own containers only, never against the engine, so another agent's container and the
 * host's answer exactly like one that does not exist (and an ID prefix cannot be used to probe
 * them). Pure: the caller lists the containers (`OWNED_FORMAT`) and parses them here.
 */
import { LABELS } from "./labels.ts";
import { agentName } from "./names.ts";

export interface OwnedContainer {
  /** Full 64-hex ID. */
  id: string;
  /** As the agent knows them: without its namespace prefix (`names.ts`). */
  names: string[];
  agent: string;
  /** Docker's state: created, running, paused, restarting, removing, exited or dead. */
  state: string;
}

export type ResolveResult = { ok: true; ids: string[] } | { ok: false; reason: string };

/** `docker ps --format` for `parseOwned`: full ID, names, owner label, state, tab-separated. */
export const OWNED_FORMAT = `{{.ID}}\t{{.Names}}\t{{.Label "${LABELS.agent}"}}\t{{.State}}`;

/** `docker ps -a` arguments listing `agent`'s containers (the engine filters by label). */
export function ownedListArgv(agent: string): string[] {
  return [
    "ps",
    "--all",
    "--no-trunc",
    `--filter=label=${LABELS.managed}=true`,
    `--filter=label=${LABELS.agent}=${agent}`,
    `--format=${OWNED_FORMAT}`,
  ];
}

/**
 * Parses `ownedListArgv` output, keeping only rows whose owner label is `agent` (a second check, so
 * a misbehaving engine filter cannot widen what an agent reaches).
 */
export function parseOwned(stdout: string, agent: string): OwnedContainer[] {
  const owned: OwnedContainer[] = [];
  for (const line of stdout.split("\n")) {
    const [id, names, owner, state = ""] = line.split("\t");
    if (!id || !/^[0-9a-f]{64}$/.test(id) || owner !== agent) continue;
    const known = names ? names.split(",").map((name) => agentName(agent, name)) : [];
    owned.push({ id, names: known, agent: owner, state });
  }
  return owned;
}

/**
 * Resolves each reference as Docker does (full ID, then exact name, then unique ID prefix) among
 * `owned` only. Unknown references get Docker's own "No such container" wording.
 */
export function resolveOwned(refs: string[], owned: OwnedContainer[]): ResolveResult {
  const ids: string[] = [];
  for (const ref of refs) {
    const byId = owned.find((c) => c.id === ref);
    const byName = byId ? [byId] : owned.filter((c) => c.names.includes(ref));
    // Two of the caller's own can share a name only when one has a name Docker generated (those
    // are outside the namespace) and the other was given that very name.
    if (byName.length > 1) {
      return {
        ok: false,
        reason: `"${ref}" names ${byName.length} of your containers; use the ID`,
      };
    }
    if (byName[0]) {
      ids.push(byName[0].id);
      continue;
    }
    const byPrefix = /^[0-9a-f]+$/.test(ref) ? owned.filter((c) => c.id.startsWith(ref)) : [];
    if (byPrefix.length === 1 && byPrefix[0]) {
      ids.push(byPrefix[0].id);
      continue;
    }
    if (byPrefix.length > 1) {
      return {
        ok: false,
        reason: `"${ref}" matches ${byPrefix.length} of your containers; use more of the ID or the name`,
      };
    }
    return { ok: false, reason: `No such container: ${ref}` };
  }
  return { ok: true, ids };
}
