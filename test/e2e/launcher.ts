/** Runs the real launcher (`scripts/start.ts`) for end-to-end tests, as `npm start` does. */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { mintToken } from "../../keys/mint.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

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
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
  child: ChildProcess;
}

/** Starts the launcher and resolves once it prints its ready banner. */
export function launch({
  portBase = DEFAULT_PORT_BASE,
  timeoutMs = 120_000,
} = {}): Promise<Launched> {
  const ports = { proxy: portBase, mcp1: portBase + 1, mcp2: portBase + 2, mcp3: portBase + 3 };
  const child = spawn(process.execPath, ["scripts/start.ts"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", MCPCP_PORT_BASE: String(portBase) },
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
      for (const match of output.matchAll(/^\s+(\w+)\s+http:\S+\s+\(pid (\d+)\)/gm)) {
        pids[match[1] as string] = Number(match[2]);
      }
      resolve({
        proxyUrl: new URL(`http://127.0.0.1:${ports.proxy}/mcp`),
        ports,
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
