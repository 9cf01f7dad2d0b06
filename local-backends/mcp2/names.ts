/**
 * Container names, one namespace per agent. The engine has a single namespace of names, so two
 * agents asking for `--name web` would clash, and Docker's conflict message names the holder by
 * its full ID. mcp2 gives the engine `<agent's prefix><name>` instead and takes the prefix off
 * again in everything the agent sees, so each agent has its own `web` and never hears of
 * another's. Pure: no I/O.
 */
import { createHash } from "node:crypto";

/** Characters of a container name (Docker's grammar): a prefix starts only after none of these. */
const NAME_CHAR = "A-Za-z0-9_.-";

/**
 * The prefix of `agent`'s container names on the engine: `mcpcp-` and 16 hex digits of
 * SHA-256(agent). Agent ids may hold characters names may not (`@`, `:`, `+`), so they are hashed;
 * all prefixes have one length, so no agent's name can end up equal to another agent's.
 */
export function namePrefix(agent: string): string {
  return `mcpcp-${createHash("sha256").update(agent).digest("hex").slice(0, 16)}-`;
}

/** The engine's name for `agent`'s container `name`. */
export function engineName(agent: string, name: string): string {
  return namePrefix(agent) + name;
}

/** The name `agent` knows for the engine's `name` (unchanged when it is not in the namespace). */
export function agentName(agent: string, name: string): string {
  const prefix = namePrefix(agent);
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/**
 * `text` (CLI output, an engine error) with `agent`'s prefix taken off every name it begins, so
 * `"/mcpcp-…-web"` reads `"/web"`. Only at the start of a name: a name the agent chose that
 * happens to contain the prefix keeps it.
 */
export function withAgentNames(agent: string, text: string): string {
  if (!text.includes("mcpcp-")) return text;
  const prefix = new RegExp(`(^|[^${NAME_CHAR}])${namePrefix(agent)}`, "g");
  return text.replace(prefix, "$1");
}

/**
 * `docker ps --filter name=VALUE` over the engine's names. VALUE (checked in flags.ts: a name or
 * part of one, `^`, `^/` or `/` to anchor it at the start) becomes a pattern that matches what
 * VALUE would match in the agent's own namespace: Docker reads it as a regular expression over
 * `/name` (a `/` is only ever first), so `web` becomes `^/<prefix>.*web` and `^web`, `^/web` and
 * `/web` become `^/<prefix>web`.
 */
export function engineNameFilter(agent: string, value: string): string {
  const anchored = /^(\^\/?|\/)/.exec(value);
  const rest = anchored ? value.slice(anchored[0].length) : value;
  return `^/${namePrefix(agent)}${anchored ? "" : ".*"}${rest}`;
}

// Docker's wording (daemon/names.go): `Conflict. The container name "/web" is already in use by
// container "<64 hex>". You have to remove (or rename) that container to be able to reuse that name.`
const CONFLICT =
  /is already in use by container "([0-9a-f]{12,64})"(\. You have to remove \(or rename\) that container to be able to reuse that name\.)?/g;

/**
 * `stderr` of a `run` whose name was taken, with the holder's ID removed unless it is one of
 * `ownIds`. In its own namespace an agent clashes only with itself, but a container mcp2 did not
 * start for it (the host's) could hold the engine name; the agent learns only that the name is
 * taken, as Docker would tell it for a name it cannot remove.
 */
export function withoutForeignHolder(stderr: string, ownIds: string[]): string {
  return stderr.replace(CONFLICT, (whole, id: string) =>
    ownIds.some((own) => own.startsWith(id))
      ? whole
      : "is already in use by a container that is not yours; choose another name.",
  );
}
