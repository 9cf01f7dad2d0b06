/**
 * The Node backends (mcp2, mcp3) as the launcher starts them: each from its own entry script,
 * `local-backends/<name>/server.ts`, as a child process on a free port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT } from "./root.ts";

/** Backends still running if this process dies unexpectedly; killed synchronously on exit. */
const orphans = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of orphans) child.kill("SIGKILL");
});

/** What a Node backend wrote after it started: a count, and the first lines. */
export interface BackendLog {
  lines: number;
  first: string[];
}

export interface NodeBackend {
  url: URL;
  pid: number | undefined;
  child: ChildProcess;
  log: BackendLog;
}

/** Starts `local-backends/<name>/server.ts` on a free port and waits for the line naming it. */
export async function startNodeBackend(
  name: "mcp2" | "mcp3",
  env: Record<string, string>,
): Promise<NodeBackend> {
  const child = spawn(process.execPath, [join(ROOT, "local-backends", name, "server.ts")], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env, [`${name.toUpperCase()}_PORT`]: "0" },
  });
  orphans.add(child);
  child.once("exit", () => orphans.delete(child));
  const output: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s`)), 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening:\n${output.join("")}`));
    });
    lines.on("line", (line) => {
      output.push(`${line}\n`);
      // runBackend's startup line: "[mcp2] MCP at http://127.0.0.1:PORT/mcp, health at ...".
      const match = /MCP at (http:\/\/\S+\/mcp)/.exec(line);
      if (!match?.[1]) return;
      clearTimeout(timer);
      lines.removeAllListeners("line");
      // Keep draining its output, or a chatty backend would block on a full pipe.
      const log: BackendLog = { lines: 0, first: [] };
      child.stderr?.removeAllListeners("data");
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        createInterface({ input: stream }).on("line", (text) => {
          log.lines++;
          if (log.first.length < 10) log.first.push(text.slice(0, 500));
        });
      }
      resolve({ url: new URL(match[1]), pid: child.pid, child, log });
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}
