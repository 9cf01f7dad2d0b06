/**
 * `npm run bundle:backends`: mcp2 and mcp3 as one self-contained file each, for a host that runs
 * them under systemd (deploy/install-host.sh). The host needs Node 22 and nothing from npm:
 *
 *   dist/backends/mcp2.mjs   node dist/backends/mcp2.mjs   (MCP2_PORT, PROXY_JWKS, MCP2_*)
 *   dist/backends/mcp3.mjs   node dist/backends/mcp3.mjs   (MCP3_PORT, PROXY_JWKS, MCP3_*)
 *
 * Why bundles and not a container image: mcp3's sandbox needs the host's bubblewrap and
 * unprivileged user namespaces, which a container would have to be loosened to allow, and mcp2
 * drives the host's Docker engine through its socket, which is root on the host from inside any
 * container too. A container would add a layer to configure without confining either further;
 * systemd confines both directly (deploy/systemd/). A bundle is also one file to copy and checks
 * nothing out of a registry on the host.
 *
 * A bundle reads no file of the repository at run time, except that without PROXY_JWKS it would
 * look for the development keys next to it; the host's env files always set PROXY_JWKS.
 */
import { rm } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const ROOT = resolve(import.meta.dirname, "..");

/** The entry scripts, by the name of the file each becomes. */
export const BACKEND_ENTRIES = {
  mcp2: join(ROOT, "local-backends", "mcp2", "server.ts"),
  mcp3: join(ROOT, "local-backends", "mcp3", "server.ts"),
} as const;

export type BackendName = keyof typeof BACKEND_ENTRIES;

/** Bundles every backend into `outdir` as `<name>.mjs`; returns the files written. */
export async function bundleBackends(outdir: string): Promise<Record<BackendName, string>> {
  await rm(outdir, { recursive: true, force: true });
  await build({
    entryPoints: Object.entries(BACKEND_ENTRIES).map(([out, entry]) => ({ in: entry, out })),
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // Licences of the bundled packages stay with the code they cover, at the end of each file.
    legalComments: "eof",
    // Stack traces in the journal should name real functions.
    keepNames: true,
    logLevel: "warning",
    banner: { js: "// Built by scripts/bundle-backends.ts from local-backends/; do not edit." },
  });
  const files = {} as Record<BackendName, string>;
  for (const name of Object.keys(BACKEND_ENTRIES) as BackendName[]) {
    files[name] = join(outdir, `${name}.mjs`);
  }
  return files;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { outdir: { type: "string", default: join(ROOT, "dist", "backends") } },
  });
  const files = await bundleBackends(resolve(values.outdir));
  for (const [name, file] of Object.entries(files)) {
    console.log(`${name}: ${relative(process.cwd(), file)}`);
  }
}
