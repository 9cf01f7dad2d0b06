/**
 * wrangler dev's local folders under the launcher: the Workers' Durable Object and D1 storage
 * (audit records, upstream session ids, agents' counters, battles), the dev registry and build
 * output. They are their owner's alone, like the keys (keys/private-files.ts): each folder is
 * 0700 before wrangler first writes in it, and the launcher runs wrangler under umask 077, so
 * what wrangler and workerd create there is 0600 from its first write.
 */
import { join } from "node:path";
import { ensurePrivateDir, type Notice } from "../keys/private-files.ts";

/**
 * The folders wrangler dev writes under for the proxy (config at the root) and mcp1: each config's
 * own `.wrangler/`, which also holds the launcher's registries and the `--persist-to` state of
 * another port base (`.wrangler/state-<base>`).
 */
export function wranglerStateDirs(root: string): string[] {
  return [join(root, ".wrangler"), join(root, "workers", "mcp1", ".wrangler")];
}

/** Makes each of wranglerStateDirs 0700, creating it or tightening it once (with a notice). */
export async function prepareWranglerState(root: string, notice: Notice): Promise<void> {
  for (const dir of wranglerStateDirs(root)) await ensurePrivateDir(dir, notice);
}
