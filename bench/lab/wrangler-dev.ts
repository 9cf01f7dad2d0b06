/**
 * For reference only: the same echo figures through `wrangler dev`, whose development proxy sits in
 * front of each Worker, and `GET /healthz` there beside the same on workerd's direct socket.
 * Started with the launcher on its own port base (9403: proxy, 9404 mcp1, 9405 mcp2, 9406 mcp3),
 * so it never meets a developer's `npm start` on 9003. It uses the developer's keys and
 * policy.json as `npm start` does (agent_name1 reaches mcp1, agent_name2 mcp2).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { mintToken } from "../../keys/mint.ts";
import { readDevVars } from "../build.ts";
import { directEndpoint, type Endpoint } from "../endpoint.ts";
import { echoStep, interleave, type PairedFigure, paired } from "../latency.ts";
import { attempt, type Outcome } from "../results.ts";
import { ROOT } from "../root.ts";
import { RpcClient } from "../rpc.ts";
import type { System } from "../system.ts";
import { type LoadResult, runLoad } from "../wrk.ts";

export const PORT_BASE = 9403;
const READY_TIMEOUT_MS = 180_000;

export interface WranglerDevFigures {
  portBase: number;
  echo: Partial<Record<"mcp1" | "mcp2", PairedFigure>>;
  /**
   * GET /healthz of the proxy at 1 and 16 connections: the dev proxy's own ceiling. Not the MCP
   * path, because the launcher runs the real limits (8 calls in flight and 600 a minute per agent)
   * and a load test would measure those instead.
   */
  healthz: Record<number, LoadResult>;
  errors: string[];
}

async function startLauncher(log: (line: string) => void): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, "scripts", "start.ts")], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MCPCP_PORT_BASE: String(PORT_BASE), WRANGLER_SEND_METRICS: "false" },
  });
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", keep);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no "MCPCP ready" within ${READY_TIMEOUT_MS / 1000} s`));
    }, READY_TIMEOUT_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the launcher exited (${code}):\n${tail.join("\n")}`));
    });
    lines.on("line", (line) => {
      keep(line);
      if (line.trim() !== "MCPCP ready") return;
      clearTimeout(timer);
      resolve();
    });
  });
  log("wrangler dev reference system is ready");
  return child;
}

async function stopLauncher(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // The launcher stops its servers' process groups itself (SIGTERM, then SIGKILL after 5 s).
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Runs the reference figures; never throws (failures are reported in `errors`). */
export async function wranglerDevFigures(
  pairs: number,
  loadSeconds: number,
  log: (line: string) => void,
): Promise<WranglerDevFigures> {
  const figures: WranglerDevFigures = {
    portBase: PORT_BASE,
    echo: {},
    healthz: {},
    errors: [],
  };
  let launcher: ChildProcess | undefined;
  try {
    log(`starting the launcher on port base ${PORT_BASE} (wrangler dev)`);
    launcher = await startLauncher(log);
    const secrets = await readDevVars(join(ROOT, ".dev.vars")).catch(
      () => ({}) as Record<string, string>,
    );
    const url = (port: number) => new URL(`http://127.0.0.1:${port}/mcp`);
    const cases = [
      { server: "mcp1" as const, agent: "agent_name1", port: PORT_BASE + 1 },
      { server: "mcp2" as const, agent: "agent_name2", port: PORT_BASE + 2 },
    ];
    for (const { server, agent, port } of cases) {
      try {
        const token = await mintToken({ agent, ttlSeconds: 3600 });
        const proxy: Endpoint = {
          url: url(PORT_BASE),
          headers: { authorization: `Bearer ${token}` },
        };
        const direct = await directEndpoint(url(port), server, secrets.PROXY_SIGNING_KEY, agent);
        const proxyClient = new RpcClient(proxy);
        const directClient = new RpcClient(direct);
        log(`wrangler dev: ${pairs} paired echo calls, ${server}`);
        const samples = await interleave(
          {
            proxy: echoStep(proxyClient, `${server}_echo`),
            direct: echoStep(directClient, "echo"),
          },
          pairs,
          Math.min(50, pairs),
        );
        proxyClient.close();
        directClient.close();
        figures.echo[server] = paired(samples.proxy ?? [], samples.direct ?? []);
      } catch (error) {
        figures.errors.push(`${server}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    for (const connections of [1, 16]) {
      log(`wrangler dev: GET /healthz of the proxy, ${connections} connection(s)`);
      figures.healthz[connections] = await runLoad({
        endpoint: { url: new URL(`http://127.0.0.1:${PORT_BASE}/healthz`), headers: {} },
        expect: '"status":"ok"',
        connections,
        seconds: loadSeconds,
      });
    }
  } catch (error) {
    figures.errors.push(error instanceof Error ? error.message : String(error));
  } finally {
    if (launcher) await stopLauncher(launcher);
  }
  return figures;
}

/** GET /healthz of the proxy on its direct workerd socket: the runtime's floor, no MCP. */
export async function workerdHealthz(
  system: System,
  seconds: number,
  log: (line: string) => void,
): Promise<Record<number, Outcome<LoadResult>>> {
  const points: Record<number, Outcome<LoadResult>> = {};
  for (const connections of [1, 16]) {
    log(`lab: GET /healthz of the proxy on workerd, ${connections} connection(s)`);
    points[connections] = await attempt(
      "healthz",
      () =>
        runLoad({
          endpoint: { url: new URL("/healthz", system.proxy.url), headers: {} },
          expect: '"status":"ok"',
          connections,
          seconds,
        }),
      log,
    );
  }
  return points;
}
