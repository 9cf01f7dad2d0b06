/**
 * The Workers as `wrangler deploy` builds them and as `wrangler dev` configures them: bundles from
 * `wrangler deploy --dry-run`, and Miniflare options from wrangler's own reading of each config.
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import type { V4ModuleDefinition, V4WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "./root.ts";

const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * Variables the benchmark changes from wrangler.toml, applied only where the config has them. The
 * guards stay in the request path, so their cost is measured, but one bench agent sending
 * thousands of calls a second must not be refused by limits sized for a real agent.
 */
const UNLIMITED = 1_000_000_000;
export const VAR_OVERRIDES: Record<string, string> = {
  MAX_CONCURRENT_CALLS_PER_AGENT: "10000",
  AGENT_RATE_LIMIT_PER_MINUTE: String(UNLIMITED),
  TOOL_RATE_LIMIT_PER_MINUTE: String(UNLIMITED),
};

/** Rate limits likewise stay in the path but never refuse the benchmark's one agent. */

const exec = promisify(execFile);

/** Bundles a Worker as `wrangler deploy` would, into `outdir`. */
export async function bundle(config: string, outdir: string): Promise<string> {
  await exec(
    process.execPath,
    [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, "-c", config],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" } },
  );
  return outdir;
}

// wrangler's default module rules (`**/*.txt|html|sql` Text, `*.bin` Data, `*.wasm` CompiledWasm).
const MODULE_TYPES: Record<string, V4ModuleDefinition["type"]> = {
  ".js": "ESModule",
  ".mjs": "ESModule",
  ".txt": "Text",
  ".html": "Text",
  ".sql": "Text",
  ".bin": "Data",
  ".wasm": "CompiledWasm",
};

/**
 * Every module of a bundle, entry first. Miniflare 5's v4 adapter loads only the entry from a
 * `scriptPath`, so the modules wrangler emitted beside it (SQL, text, wasm) are listed here.
 */
export async function bundleModules(outdir: string): Promise<V4ModuleDefinition[]> {
  const modules: V4ModuleDefinition[] = [{ type: "ESModule", path: join(outdir, "index.js") }];
  for (const entry of await readdir(outdir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const type = MODULE_TYPES[extname(entry.name)];
    if (type && path !== modules[0]?.path) modules.push({ type, path });
  }
  return modules;
}

// What the benchmark copies from wrangler's view of a config; anything else must be empty, so a
// binding added to wrangler.toml later cannot be dropped here without the benchmark saying so.
const COPIED = [
  "compatibilityDate",
  "compatibilityFlags",
  "bindings",
  "serviceBindings",
  "durableObjects",
  "additionalUnboundDurableObjects",
  "d1Databases",
  "kvNamespaces",
  "ratelimits",
  // Static assets (mcp1's battle page), served as `wrangler dev` serves them.
  "assets",
] as const;
// modulesRules: the bundle's modules are listed one by one (bundleModules), by wrangler's rules.
const IGNORED = new Set(["rootPath", "name", "connectHandlers", "modulesRules"]);

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.values(value).every(isEmpty);
  return false;
}

export type DevOptions = Partial<V4WorkerOptions> & {
  bindings?: Record<string, unknown>;
  ratelimits?: Record<string, { simple: { limit: number } }>;
};

/** The Miniflare options `wrangler dev` would give the Worker of `config`, without its source. */
export function devOptions(config: string, secrets: Record<string, string>, overrides: string[]) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, config));
  const all = workerOptions as Record<string, unknown>;
  for (const [key, value] of Object.entries(all)) {
    if ((COPIED as readonly string[]).includes(key) || IGNORED.has(key)) continue;
    if (!isEmpty(value)) throw new Error(`${config}: the benchmark does not pass on "${key}" yet`);
  }
  const options = Object.fromEntries(
    COPIED.filter((key) => all[key] !== undefined).map((key) => [key, all[key]]),
  ) as DevOptions;
  const bindings = { ...options.bindings, ...secrets };
  for (const [name, value] of Object.entries(VAR_OVERRIDES)) {
    if (name in bindings && bindings[name] !== "0") {
      overrides.push(`${config}: ${name} ${String(bindings[name])} → ${value}`);
      bindings[name] = value;
    }
  }
  options.bindings = bindings;
  for (const [name, limit] of Object.entries(options.ratelimits ?? {})) {
    overrides.push(`${config}: rate limit ${name} ${limit.simple.limit} → ${UNLIMITED}`);
    limit.simple.limit = UNLIMITED;
  }
  return options;
}

/** `NAME='value'` lines of a .dev.vars file (the only form writeDevVars writes). */
export async function readDevVars(path: string): Promise<Record<string, string>> {
  const vars: Record<string, string> = {};
  for (const line of (await readFile(path, "utf8")).split("\n")) {
    const match = /^([A-Z0-9_]+)='(.*)'$/.exec(line);
    if (match?.[1] && match[2] !== undefined) vars[match[1]] = match[2];
  }
  return vars;
}
