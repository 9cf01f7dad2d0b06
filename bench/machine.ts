/** Where the figures came from: the machine, its load, and the versions of everything measured. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { ROOT } from "./root.ts";
import { wrkVersion } from "./wrk.ts";

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  /** workerd as the benchmark runs it (through the top-level miniflare package). */
  workerd: string;
  /** workerd as `wrangler dev` runs it (wrangler's own miniflare), when that differs. */
  workerdUnderWranglerDev: string;
  miniflare: string;
  wrangler: string;
  wrk: string;
  /** The commit measured, and whether the system's code had uncommitted changes. */
  commit: string;
  loadAverage: { start: number[]; end?: number[] };
}

function version(packageDir: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "not installed";
  }
}

function firstExisting(...dirs: string[]): string {
  for (const dir of dirs) {
    const found = version(dir);
    if (found !== "not installed") return found;
  }
  return "not installed";
}

function commitOf(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: "pipe" }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    const changed = git(
      "status",
      "--porcelain",
      "--",
      "workers",
      "durable-objects",
      "local-backends",
      "common",
      "wrangler.toml",
    );
    return changed ? `${head} + uncommitted changes` : head;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** Describes this machine now; call `finish` at the end for the closing load average. */
export function describeMachine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const modules = join(ROOT, "node_modules");
  let nproc: number;
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {
    nproc = Number.NaN;
  }
  return {
    nproc,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    node: process.version,
    workerd: firstExisting(
      join(modules, "miniflare", "node_modules", "workerd"),
      join(modules, "workerd"),
    ),
    workerdUnderWranglerDev: firstExisting(
      join(modules, "wrangler", "node_modules", "workerd"),
      join(modules, "workerd"),
    ),
    miniflare: version(join(modules, "miniflare")),
    wrangler: version(join(modules, "wrangler")),
    wrk: wrkVersion() ?? "not installed",
    commit: commitOf(),
    loadAverage: { start: loadavg().map((l) => Math.round(l * 100) / 100) },
  };
}

/** Records the closing load average. */
export function finish(machine: Machine): void {
  machine.loadAverage.end = loadavg().map((l) => Math.round(l * 100) / 100);
}
