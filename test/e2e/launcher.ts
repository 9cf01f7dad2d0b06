/**
 * Runs the real launcher (`scripts/start.ts`) for end-to-end tests, as `npm start` does.
 *
 * Each system keeps its output in files, test-artifacts/e2e/<test file>-<n>/: launcher.log (what
 * the launcher printed) and the launcher's own proxy.log, mcp1.log, mcp2.log, mcp3.log. Nothing of
 * it reaches the console unless a test fails: then the test's output ends with their last lines.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { beforeEach, expect } from "vitest";
import { mintToken } from "../../keys/mint.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = join(ROOT, "test-artifacts", "e2e");
/** How many of each log's last lines a failing test prints. */
const TAIL_LINES = 25;

let launches = 0;
/** The logs of the system launched last in this test file. */
let lastLogDir: string | undefined;

// Registered on the root suite of every test file that imports this module.
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    if (lastLogDir) console.log(logReport(lastLogDir));
  });
});

/** The last lines of each log of a launched system, and where the whole logs are. */
export function logReport(dir: string): string {
  const parts = [`[e2e] the system's logs are in ${relative(ROOT, dir)}/; their last lines:`];
  for (const name of ["launcher", "proxy", "mcp1", "mcp2", "mcp3"]) {
    const file = join(dir, `${name}.log`);
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    parts.push(`--- ${name}.log (last ${Math.min(TAIL_LINES, lines.length)} of ${lines.length})`);
    parts.push(...lines.slice(-TAIL_LINES));
  }
  return parts.join("\n");
}

/** A fresh directory for the next system's logs, named after the test file. */
function nextLogDir(): string {
  launches += 1;
  const testFile = basename(expect.getState().testPath ?? "launch").replace(/\.e2e\.test\.ts$/, "");
  const dir = join(ARTIFACTS, `${testFile}-${launches}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  lastLogDir = dir;
  return dir;
}

/** The port base e2e systems use unless told otherwise (`MCPCP_PORT_BASE`, as the launcher). */
export const DEFAULT_PORT_BASE = Number(process.env.MCPCP_PORT_BASE || 9003);

export interface Launched {
  /** The proxy's MCP endpoint. */
  proxyUrl: URL;
  /** proxy, mcp1, mcp2, mcp3 ports. */
  ports: { proxy: number; mcp1: number; mcp2: number; mcp3: number };
  /** Process ids of the servers, from the banner. */
  pids: Record<string, number>;
  /** Everything the launcher printed so far. */
  output: () => string;
  /** Where the launcher's and the servers' logs are (see logReport). */
  logDir: string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
  child: ChildProcess;
}

export interface LaunchOptions {
  portBase?: number;
  timeoutMs?: number;
  /** More of the launcher's environment, as a user would set it (`EXTRA_BACKENDS`, `MCPCP_POLICY`). */
  env?: Record<string, string>;
  /**
   * Runs the launcher in a process group of its own, as a shell runs `npm start`, so a test can
   * signal that whole group without signalling the test runner.
   */
  detached?: boolean;
}

/**
 * The Workers' state for this test file's systems, fresh when the file starts and shared by its
 * launches (a restart finds what the last launch left): a policy changed at run time, or battles,
 * never reach another test file or a developer's own `npm start`.
 */
const fileStates = new Map<number, string>();
function stateDir(portBase: number): string {
  let dir = fileStates.get(portBase);
  if (dir === undefined) {
    // One per port base too: two systems running at once never share their files.
    const file = basename(expect.getState().testPath ?? "unknown", ".e2e.test.ts");
    dir = join(ARTIFACTS, "state", `${file}-${portBase}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fileStates.set(portBase, dir);
  }
  return dir;
}

/** Starts the launcher and resolves once it prints its ready banner. */
export function launch({
  portBase = DEFAULT_PORT_BASE,
  timeoutMs = 120_000,
  env = {},
  detached = false,
}: LaunchOptions = {}): Promise<Launched> {
  const ports = { proxy: portBase, mcp1: portBase + 1, mcp2: portBase + 2, mcp3: portBase + 3 };
  const logDir = nextLogDir();
  const child = spawn(process.execPath, ["scripts/start.ts"], {
    cwd: ROOT,
    detached,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...env,
      WRANGLER_SEND_METRICS: "false",
      MCPCP_PORT_BASE: String(portBase),
      MCPCP_LOG_DIR: logDir,
      MCPCP_STATE_DIR: stateDir(portBase),
    },
  });
  const launcherLog = createWriteStream(join(logDir, "launcher.log"));
  child.stdout.pipe(launcherLog, { end: false });
  child.stderr.pipe(launcherLog, { end: false });
  child.once("close", () => launcherLog.end());
  let output = "";
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let ready = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(
        new Error(`launcher not ready after ${timeoutMs} ms:\n${output}\n${logReport(logDir)}`),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready || !output.includes("MCPCP ready")) return;
      ready = true;
      clearTimeout(timer);
      const pids: Record<string, number> = {};
      for (const match of output.matchAll(/^\s+(\w+)\s+http:\S+\s+\(pid (\d+)\)/gm)) {
        pids[match[1] as string] = Number(match[2]);
      }
      resolve({
        proxyUrl: new URL(`http://127.0.0.1:${ports.proxy}/mcp`),
        ports,
        pids,
        output: () => output,
        logDir,
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
      if (ready) return;
      reject(new Error(`launcher exited (${code}) before ready:\n${output}\n${logReport(logDir)}`));
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

/** Connects the v1 SDK client (what most agents run) to `proxyUrl` as `agent`, with a fresh token. */
export async function connectAgent(proxyUrl: URL, agent: string, scope?: string): Promise<Client> {
  const client = new Client({ name: `e2e-${agent}`, version: "1.0.0" });
  const token = await mintToken(scope === undefined ? { agent } : { agent, scope });
  await client.connect(
    new StreamableHTTPClientTransport(proxyUrl, {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

/** The text of a tool result's content blocks, joined. */
export function resultText(result: object): string {
  const content = "content" in result && Array.isArray(result.content) ? result.content : [];
  return (content as { text?: string }[]).map((c) => c.text ?? "").join("");
}
