/** Runs the real launcher (`scripts/start.ts`) for end-to-end tests, as `npm start` does. */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface Launched {
  /** Process ids of the servers, from the banner. */
  pids: Record<string, number>;
  /** Everything the launcher printed so far. */
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
  child: ChildProcess;
}

/** Starts the launcher and resolves once it prints its ready banner. */
export function launch(timeoutMs = 120_000): Promise<Launched> {
  const child = spawn(process.execPath, ["scripts/start.ts"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`launcher not ready after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes("MCPCP ready")) return;
      clearTimeout(timer);
      const pids: Record<string, number> = {};
      for (const match of output.matchAll(/^\s+(\w+)\s+http:\S+\s+\(pid (\d+)\)$/gm)) {
        pids[match[1] as string] = Number(match[2]);
      }
      resolve({
        pids,
        output: () => output,
        stop: async () => {
          child.kill("SIGTERM");
          return exited;
        },
        child,
      });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`launcher exited (${code}) before ready:\n${output}`));
    });
  });
}

/** Whether a process is still alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
