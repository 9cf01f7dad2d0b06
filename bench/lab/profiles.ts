/**
 * CPU profiles of workerd's isolates over the V8 inspector while wrk drives the proxy, mapped
 * through the bundles' source maps, and their summary as text under the table.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LabPlan } from "../plan.ts";
import { ms } from "../report.ts";
import { attempt, type Outcome } from "../results.ts";
import { callBody } from "../rpc.ts";
import type { System } from "../system.ts";
import { runLoad } from "../wrk.ts";
import { type IsolateProfile, profileIsolates } from "./inspector.ts";
import { type Resolve, sourceMapResolver } from "./profile.ts";

/** Per load, each isolate's profile (or why there is none). */
export type Profiles = Record<string, Outcome<Record<string, IsolateProfile>>>;

/** A resolver from a bundle's positions to its sources, from the bundle's source map. */
async function bundleResolver(dir: string): Promise<Resolve | undefined> {
  try {
    const map = JSON.parse(await readFile(join(dir, "index.js.map"), "utf8")) as {
      sources: string[];
      mappings: string;
    };
    const lookup = sourceMapResolver(map);
    return (url, line, column) => (url.endsWith("index.js") ? lookup(line, column) : undefined);
  } catch {
    return undefined;
  }
}

/**
 * CPU profiles of workerd's isolates while wrk drives the proxy at 16 connections. Each raw
 * profile, its frames mapped to source files, is also saved in `dir` as
 * `<load>.<isolate>.cpuprofile` (DevTools opens them; the summary keeps only self time).
 */
export async function profiles(
  system: System,
  plan: LabPlan,
  dir: string,
  log: (line: string) => void,
): Promise<Profiles> {
  const found: Profiles = {};
  const inspector = system.inspector;
  if (!inspector) return found;
  // The isolates a proxied call uses: the Workers, and the local D1 and rate limiter.
  const isolates = {
    "core:user:mcpcp-proxy": await bundleResolver(system.bundles.proxy),
    "core:user:mcpcp-mcp1": await bundleResolver(system.bundles.mcp1),
    "d1:db": undefined,
    "ratelimit:ns": undefined,
  };
  const loads: [string, string, string][] = [
    ["proxy→mcp2 echo", callBody("mcp2_echo", { message: "bench" }), "Echo: bench"],
    ["proxy→mcp1 echo", callBody("mcp1_echo", { message: "bench" }), "Echo: bench"],
    [
      "proxy tools/list over 3",
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
      "mcp3_echo",
    ],
  ];
  await mkdir(dir, { recursive: true });
  for (const [name, body, expect] of loads) {
    log(`lab: profiling workerd's isolates: ${name} at 16 connections`);
    const slug = name.replace(/[^A-Za-z0-9]+/g, "-");
    const keep = (id: string, profile: object) =>
      writeFile(
        join(dir, `${slug}.${id.replace(/[^A-Za-z0-9-]+/g, "_")}.cpuprofile`),
        JSON.stringify(profile),
      );
    found[name] = await attempt(
      `profile ${name}`,
      () =>
        profileIsolates(
          inspector,
          isolates,
          async () => {
            const load = await runLoad({
              endpoint: system.proxy,
              body,
              expect,
              connections: 16,
              seconds: plan.profileSeconds,
            });
            return load.requests;
          },
          keep,
        ),
      log,
    );
  }
  return found;
}

/** Where a proxied call's CPU goes in workerd, isolate by isolate, and the top functions. */
export function profileText(profiles: Profiles): string {
  const lines: string[] = [];
  for (const [load, outcome] of Object.entries(profiles)) {
    if ("error" in outcome) {
      lines.push(`profile ${load}: ${outcome.error}`);
      continue;
    }
    const isolates = Object.entries(outcome)
      .filter(([, p]) => p.msPerRequest > 0)
      .map(([id, p]) => `${id} ${ms(p.msPerRequest)}`);
    lines.push(`workerd CPU per ${load} request, sampled by isolate: ${isolates.join(", ")}`);
    const proxy = outcome["core:user:mcpcp-proxy"];
    const share = (line: { share: number }) => `${(line.share * 100).toFixed(1).padStart(5)}%`;
    lines.push("  proxy isolate by package/file:");
    for (const line of proxy?.byPackage.slice(0, 8) ?? [])
      lines.push(`  ${share(line)}  ${line.name}`);
    lines.push("  proxy isolate by function:");
    for (const line of proxy?.byFunction.slice(0, 12) ?? []) {
      lines.push(`  ${share(line)}  ${line.name}`);
    }
  }
  return lines.length ? `${lines.join("\n")}\n\n` : "";
}
