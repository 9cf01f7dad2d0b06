/**
 * CPU per call from /proc: wrk at 16 connections against the proxy, the pass-through Worker and
 * mcp2, with the CPU time of workerd (proxy + mcp1), of mcp2 and of the harness read around each
 * point and divided by its requests. The proxy's own work in workerd is its figure minus the
 * pass-through Worker's: the same I/O, none of the logic.
 */
import type { Endpoint } from "../endpoint.ts";
import type { LabPlan } from "../plan.ts";
import { attempt, type Outcome, ok, type Results } from "../results.ts";
import { callBody } from "../rpc.ts";
import type { System } from "../system.ts";
import { type LoadResult, type LoadSpec, runLoad } from "../wrk.ts";
import { CpuMeter, findWorkerdPid } from "./proc.ts";

export interface MeteredLoad extends LoadResult {
  /** CPU ms per request of each process (workerd, mcp2, harness). */
  cpuMsPerRequest: Record<string, number | undefined>;
  /** The machine's busy share (0..1) over the point. */
  machineBusy: number;
}

/** One wrk point with the CPU time of `pids` read around it. */
export async function meteredLoad(
  spec: LoadSpec,
  pids: Record<string, number | undefined>,
): Promise<MeteredLoad> {
  const meter = new CpuMeter(pids);
  meter.start();
  const load = await runLoad(spec);
  const cpu = meter.stop();
  return {
    ...load,
    cpuMsPerRequest: Object.fromEntries(
      Object.entries(cpu.processMs).map(([name, ms]) => [
        name,
        ms === undefined || load.requests === 0 ? undefined : ms / load.requests,
      ]),
    ),
    machineBusy: cpu.machineBusy,
  };
}

const CONNECTIONS = 16;

/** The metered points, by target name (as in the throughput figures). */
export async function cpuPerCall(
  system: System,
  plan: LabPlan,
  core: Results,
  log: (line: string) => void,
): Promise<Record<string, Outcome<MeteredLoad>>> {
  // [name, endpoint, tool, body]
  const targets: [string, Endpoint, string, string?][] = [
    ["proxy→mcp1", system.proxy, "mcp1_echo"],
    ["pass-through→mcp1", system.passThrough.mcp1, "echo"],
    ["proxy→mcp2", system.proxy, "mcp2_echo"],
    ["pass-through→mcp2", system.passThrough.mcp2, "echo"],
    ["mcp2", system.direct.mcp2, "echo"],
  ];
  // mcp2 sent exactly what the proxy sends it (the 2026-07-28 era, its headers and _meta): what
  // the backend itself spends on a proxied call, apart from the proxy.
  const sample = ok(core.backendRequests)?.samples["mcp2 POST tools/call"];
  if (sample?.body) {
    const {
      authorization: _assertion,
      host: _host,
      "content-length": _length,
      ...headers
    } = sample.headers;
    const endpoint: Endpoint = { ...system.direct.mcp2 };
    endpoint.refresh = async () => {
      await system.direct.mcp2.refresh?.();
      endpoint.headers = { ...headers, ...system.direct.mcp2.headers };
    };
    await endpoint.refresh();
    targets.push(["mcp2 (proxy's request)", endpoint, "echo", sample.body]);
  }
  // The harness too: it parses the Workers' log lines (Miniflare), on the same cores.
  const pids = { workerd: await findWorkerdPid(), mcp2: system.pids.mcp2, harness: process.pid };
  const spec = (endpoint: Endpoint, tool: string, body: string | undefined, seconds: number) => ({
    endpoint,
    body: body ?? callBody(tool, { message: "bench" }),
    expect: "Echo: bench",
    connections: CONNECTIONS,
    seconds,
  });
  // One unrecorded second per target first, as for the throughput points.
  for (const [, endpoint, tool, body] of core.quick ? [] : targets) {
    await runLoad(spec(endpoint, tool, body, 1));
  }
  const points: Record<string, Outcome<MeteredLoad>> = {};
  for (const [name, endpoint, tool, body] of targets) {
    log(`lab: CPU per call, ${name}, ${CONNECTIONS} connections, ${plan.loadSeconds} s`);
    points[name] = await attempt(
      `CPU per call ${name}`,
      () => meteredLoad(spec(endpoint, tool, body, plan.loadSeconds), pids),
      log,
    );
  }
  return points;
}
