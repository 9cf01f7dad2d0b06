/**
 * How the proxy names what backends offer (docs/design.md, "Tool names and routing"):
 *
 * - Tools and prompts: backend name `t` of server `s` is shown as `s_t`. Server ids never contain
 *   `_`, so the first `_` always splits server from name.
 * - Names the big model providers would reject (they accept `^[A-Za-z0-9_-]{1,64}$`) are mapped:
 *   `s_<t with every other character replaced by "-", cut to fit>_<8 hex of FNV-1a(t)>`. The map
 *   is deterministic, so the proxy reverses it by mapping the backend's names again and matching.
 * - Resource URIs: `u` of server `s` is shown as `s+u` (`mcp1+battle://b1`), itself a valid URI
 *   whose scheme names the server; the first `+` splits it back.
 */

/** Server ids: lower-case letter first, then lower-case letters and digits; never `_` or `+`. */
export const SERVER_ID = /^[a-z][a-z0-9]{0,15}$/;

/** What model providers accept as a tool name. */
export const PROVIDER_SAFE = /^[A-Za-z0-9_-]{1,64}$/;

const MAPPED_SUFFIX = /_[0-9a-f]{8}$/;

/** 32-bit FNV-1a over UTF-16 code units: tiny, synchronous, stable across runtimes. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/** Returns the name an agent sees for `tool` of `server`. */
export function prefixToolName(server: string, tool: string): string {
  const plain = `${server}_${tool}`;
  if (PROVIDER_SAFE.test(plain)) return plain;
  const room = 64 - server.length - 1 - 9;
  const slug = tool.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, Math.max(room, 0));
  return `${server}_${slug}_${fnv1a(tool)}`;
}

/** Whether an agent-side name may be a mapped one, so resolving it needs the backend's list. */
export function mayBeMapped(name: string): boolean {
  return MAPPED_SUFFIX.test(name);
}

/** A prefixed name split back into server and tool; `undefined` when it cannot be ours. */
export function splitToolName(name: string): { server: string; tool: string } | undefined {
  const cut = name.indexOf("_");
  if (cut <= 0 || cut === name.length - 1) return undefined;
  const server = name.slice(0, cut);
  if (!SERVER_ID.test(server)) return undefined;
  return { server, tool: name.slice(cut + 1) };
}

/** The backend tool among `tools` that `name` maps from, if any. */
export function resolveMapped(
  server: string,
  name: string,
  tools: readonly string[],
): string | undefined {
  return tools.find((tool) => prefixToolName(server, tool) === name);
}

/** Returns the URI an agent sees for resource `uri` of `server`. */
export function prefixUri(server: string, uri: string): string {
  return `${server}+${uri}`;
}

/** A prefixed URI split back into server and backend URI; `undefined` when it cannot be ours. */
export function splitUri(uri: string): { server: string; uri: string } | undefined {
  const cut = uri.indexOf("+");
  if (cut <= 0 || cut === uri.length - 1) return undefined;
  const server = uri.slice(0, cut);
  if (!SERVER_ID.test(server)) return undefined;
  return { server, uri: uri.slice(cut + 1) };
}
