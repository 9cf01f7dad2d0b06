/**
 * How the proxy names a backend's tools to agents (DESIGN.md, "Tool names and routing"):
 * backend tool `t` of server `s` is shown as `s_t`. Server ids never contain `_`, so the first
 * `_` always splits server from tool, whatever the tool's own name holds.
 */

/** Server ids: lower-case letter first, then lower-case letters and digits; never `_`. */
export const SERVER_ID = /^[a-z][a-z0-9]*$/;

/** Returns the name an agent sees for `tool` of `server`. */
export function prefixToolName(server: string, tool: string): string {
  return `${server}_${tool}`;
}

/** A prefixed name split back into server and tool; `undefined` when it cannot be ours. */
export function splitToolName(name: string): { server: string; tool: string } | undefined {
  const cut = name.indexOf("_");
  if (cut <= 0 || cut === name.length - 1) return undefined;
  const server = name.slice(0, cut);
  if (!SERVER_ID.test(server)) return undefined;
  return { server, tool: name.slice(cut + 1) };
}
