/**
 * The measurements, one function per figure, each run against the started system with the
 * run's plan. run.ts calls them in order and keeps what they return.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { battleRate } from "./battle.ts";
import type { Endpoint } from "./endpoint.ts";
import type { CpuReport } from "./lab/cpu.ts";
import { type IsolateProfile, profileIsolates } from "./lab/inspector.ts";
import { type Resolve, sourceMapResolver } from "./lab/profile.ts";
import {
  echoStep,
  interleave,
  listStep,
  medianOfMaxima,
  type PairedFigure,
  paired,
  type Step,
} from "./latency.ts";
import type { Plan } from "./plan.ts";
import {
  attempt,
  type BackendRequests,
  type EchoFigure,
  type ListFigure,
  type Outcome,
  ok,
  type Results,
  type ToolFigure,
} from "./results.ts";
import { ROOT } from "./root.ts";
import { expectResult, RpcClient, toolText } from "./rpc.ts";
import { summarize } from "./stats.ts";
import type { System } from "./system.ts";
import { type LoadResult, runLoad } from "./wrk.ts";

const exec = promisify(execFile);

type Log = (line: string) => void;

/** A tools/call request body. */
export const callBody = (name: string, args: object) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name, arguments: args },
  });

/** Paired echo: proxy, pass-through and direct take turns, `pairs` rounds. */
export async function echoFigure(
  system: System,
  plan: Plan,
  server: "mcp1" | "mcp2",
): Promise<EchoFigure> {
  const proxyClient = new RpcClient(system.proxy);
  const directClient = new RpcClient(system.direct[server]);
  const passClient = new RpcClient(system.passThrough[server]);
  try {
    const samples = await interleave(
      {
        proxy: echoStep(proxyClient, `${server}_echo`),
        direct: echoStep(directClient, "echo"),
        passThrough: echoStep(passClient, "echo"),
      },
      plan.pairs,
      plan.warmup,
    );
    const pass = paired(samples.passThrough ?? [], samples.direct ?? []);
    return {
      ...paired(samples.proxy ?? [], samples.direct ?? []),
      passThrough: pass.proxy,
      passThroughDiff: pass.diff,
    };
  } finally {
    proxyClient.close();
    directClient.close();
    passClient.close();
  }
}

/**
 * Echo as a 2026-07-28 agent sends it (JSON answers, no stream), proxy and direct in turn. The
 * proxy speaks 2026-07-28 to its backends whatever the agent speaks; this shows the agent's side.
 */
export async function modernEchoFigure(
  system: System,
  plan: Plan,
  server: "mcp1" | "mcp2",
): Promise<PairedFigure> {
  const proxyClient = new RpcClient(system.proxy, 1, "2026-07-28");
  const directClient = new RpcClient(system.direct[server], 1, "2026-07-28");
  try {
    const samples = await interleave(
      {
        proxy: echoStep(proxyClient, `${server}_echo`),
        direct: echoStep(directClient, "echo"),
      },
      plan.variantRounds,
      plan.warmup,
    );
    return paired(samples.proxy ?? [], samples.direct ?? []);
  } finally {
    proxyClient.close();
    directClient.close();
  }
}

/** echo mcp2 through each proxy variant, the proxy as configured and direct, in the same rounds. */
export async function variantFigures(
  system: System,
  plan: Plan,
): Promise<Record<string, PairedFigure>> {
  const clients = Object.fromEntries(
    Object.entries({ ...system.variants, proxy: system.proxy, direct: system.direct.mcp2 }).map(
      ([name, endpoint]) => [name, new RpcClient(endpoint)],
    ),
  );
  try {
    const steps = Object.fromEntries(
      Object.entries(clients).map(([name, client]) => [
        name,
        echoStep(client, name === "direct" ? "echo" : "mcp2_echo"),
      ]),
    );
    const samples = await interleave(steps, plan.variantRounds, plan.warmup);
    return Object.fromEntries(
      [...Object.keys(system.variants), "proxy"].map((name) => [
        name,
        paired(samples[name] ?? [], samples.direct ?? []),
      ]),
    );
  } finally {
    for (const client of Object.values(clients)) client.close();
  }
}

/** tools/list through the proxy (three backends) and of each backend alone, in the same rounds. */
export async function listFigure(
  system: System,
  plan: Plan,
  expectTools: number,
): Promise<ListFigure> {
  const clients = {
    proxy: new RpcClient(system.proxy),
    mcp1: new RpcClient(system.direct.mcp1),
    mcp2: new RpcClient(system.direct.mcp2),
    mcp3: new RpcClient(system.direct.mcp3),
  };
  try {
    const steps: Record<string, Step> = {
      proxy: listStep(clients.proxy, expectTools),
      mcp1: listStep(clients.mcp1, undefined),
      mcp2: listStep(clients.mcp2, undefined),
      mcp3: listStep(clients.mcp3, undefined),
    };
    const samples = await interleave(steps, plan.listRounds, plan.warmup);
    const backends = Object.fromEntries(
      ["mcp1", "mcp2", "mcp3"].map((id) => [id, summarize(samples[id] ?? [])]),
    );
    const slowest = ["mcp1", "mcp2", "mcp3"].reduce((a, b) =>
      (backends[b]?.p50 ?? 0) > (backends[a]?.p50 ?? 0) ? b : a,
    );
    return {
      proxy: summarize(samples.proxy ?? []),
      backends,
      slowest,
      vsSlowest: paired(samples.proxy ?? [], samples[slowest] ?? []),
      medianOfMaximaMs: medianOfMaxima([
        samples.mcp1 ?? [],
        samples.mcp2 ?? [],
        samples.mcp3 ?? [],
      ]),
      tools: expectTools,
    };
  } finally {
    for (const client of Object.values(clients)) client.close();
  }
}

/** What the recorder saw per proxied request, for each kind of request, after a warm-up. */
export async function backendRequests(system: System): Promise<BackendRequests> {
  const client = new RpcClient(system.recorded.proxy);
  const calls = 20;
  const kinds: [string, () => Promise<unknown>][] = [
    ["tools/call mcp1_echo", () => echoStep(client, "mcp1_echo")()],
    ["tools/call mcp2_echo", () => echoStep(client, "mcp2_echo")()],
    ["tools/list", () => listStep(client, undefined)()],
  ];
  const read = async () =>
    (await (await fetch(system.recorded.counts)).json()) as {
      counts: Record<string, number>;
      samples: BackendRequests["samples"];
    };
  try {
    for (const [, call] of kinds) for (let i = 0; i < 3; i++) await call();
    await read();
    const perCall: Record<string, Record<string, number>> = {};
    let samples: BackendRequests["samples"] = {};
    for (const [name, call] of kinds) {
      for (let i = 0; i < calls; i++) await call();
      const seen = await read();
      samples = seen.samples;
      perCall[name] = Object.fromEntries(
        Object.entries(seen.counts).map(([key, n]) => [key, n / calls]),
      );
    }
    return { perCall, samples };
  } finally {
    client.close();
  }
}

/** wrk at 1, 16 and 64 connections: proxy, pass-through and direct, into results.throughput. */
export async function throughput(
  system: System,
  plan: Plan,
  results: Results,
  log: Log,
): Promise<void> {
  // [name, endpoint, tool, connection counts]; the pass-through Worker is the floor for workerd
  // CPU per call, so it runs where that is read (16) and at the throughput target (64).
  const targets: [string, Endpoint, string, number[], string?][] = [
    ["proxy→mcp1", system.proxy, "mcp1_echo", plan.connections],
    ["pass-through→mcp1", system.passThrough.mcp1, "echo", plan.quick ? [16] : [16, 64]],
    ["mcp1", system.direct.mcp1, "echo", plan.connections],
    ["proxy→mcp2", system.proxy, "mcp2_echo", plan.connections],
    ["pass-through→mcp2", system.passThrough.mcp2, "echo", plan.quick ? [16] : [16, 64]],
    ["mcp2", system.direct.mcp2, "echo", plan.connections],
  ];
  // mcp2 sent exactly what the proxy sends it (the 2026-07-28 era, its headers and _meta): what
  // the backend itself spends on a proxied call, apart from the proxy.
  const sample = ok(results.backendRequests)?.samples["mcp2 POST tools/call"];
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
    targets.push(["mcp2 (proxy's request)", endpoint, "echo", [16], sample.body]);
  }
  // The harness too: it parses the Workers' log lines (Miniflare), on the same two cores.
  const pids = { workerd: system.pids.workerd, mcp2: system.pids.mcp2, harness: process.pid };
  // One unrecorded second per target first (the echo rounds have already warmed the JITs).
  for (const [, endpoint, tool, , body] of plan.quick ? [] : targets) {
    await runLoad({
      endpoint,
      body: body ?? callBody(tool, { message: "bench" }),
      expect: "Echo: bench",
      connections: 16,
      seconds: 1,
      pids,
    });
  }
  // Connection counts outermost, so proxy and direct points sit next to each other in time.
  for (const connections of plan.connections) {
    for (const [name, endpoint, tool, counts, body] of targets) {
      if (!counts.includes(connections)) continue;
      log(`load: ${name}, ${connections} connection(s), ${plan.loadSeconds} s`);
      results.throughput[name] ??= {};
      (results.throughput[name] as Record<number, Outcome<LoadResult>>)[connections] =
        await attempt(
          `load ${name} @${connections}`,
          () =>
            runLoad({
              endpoint,
              body: body ?? callBody(tool, { message: "bench" }),
              expect: "Echo: bench",
              connections,
              seconds: plan.loadSeconds,
              pids,
            }),
          log,
        );
    }
  }
}

/** GET /healthz of the proxy on its direct socket: the runtime's floor, no MCP. */
export async function healthz(
  system: System,
  plan: Plan,
  log: Log,
): Promise<Record<number, Outcome<LoadResult>>> {
  const points: Record<number, Outcome<LoadResult>> = {};
  for (const connections of [1, 16]) {
    log(`GET /healthz of the proxy, ${connections} connection(s)`);
    points[connections] = await attempt(
      "healthz",
      () =>
        runLoad({
          endpoint: { url: new URL("/healthz", system.proxy.url), headers: {} },
          expect: '"status":"ok"',
          connections,
          seconds: plan.healthzSeconds,
          pids: { workerd: system.pids.workerd },
        }),
      log,
    );
  }
  return points;
}

/** The Node figures, from bench/cpu.ts in a process of its own. */
export async function cpuFigures(plan: Plan): Promise<CpuReport> {
  const { stdout } = await exec(
    process.execPath,
    [join(ROOT, "bench", "lab", "cpu.ts"), "--ms", String(plan.cpuMsPerFigure), "--profile"],
    { cwd: ROOT, maxBuffer: 16 << 20 },
  );
  return JSON.parse(stdout) as CpuReport;
}

/** A slow tool (sandboxed Python, Docker) through the proxy and straight to its backend. */
export async function toolFigure(
  system: System,
  plan: Plan,
  server: "mcp2" | "mcp3",
  tool: string,
  toolArgs: object,
  accept: (text: string) => boolean,
  seen: string[],
): Promise<ToolFigure> {
  const figure: ToolFigure = { tool: `${server}_${tool}`, arguments: toolArgs };
  if (!seen.includes(`${server}_${tool}`)) {
    figure.unavailable = "n/a (tool not registered)";
    return figure;
  }
  const proxyClient = new RpcClient(system.proxy);
  const directClient = new RpcClient(system.direct[server]);
  try {
    const step =
      (client: RpcClient, name: string): Step =>
      async () => {
        const reply = await client.call("tools/call", { name, arguments: toolArgs });
        const result = expectResult(reply, name) as { isError?: boolean };
        const text = toolText(reply);
        if (result.isError || !accept(text)) throw new Error(`${name}: ${text.slice(0, 300)}`);
        return reply.ms;
      };
    const samples = await interleave(
      { proxy: step(proxyClient, `${server}_${tool}`), direct: step(directClient, tool) },
      plan.toolPairs,
      2,
    );
    figure.figure = paired(samples.proxy ?? [], samples.direct ?? []);
  } catch (error) {
    figure.unavailable = `n/a (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    proxyClient.close();
    directClient.close();
  }
  return figure;
}

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

/** CPU profiles of workerd's isolates while wrk drives the proxy at 16 connections. */
export async function profiles(
  system: System,
  plan: Plan,
  log: Log,
): Promise<Record<string, Outcome<Record<string, IsolateProfile>>>> {
  const found: Record<string, Outcome<Record<string, IsolateProfile>>> = {};
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
  for (const [name, body, expect] of loads) {
    log(`profiling workerd's isolates: ${name} at 16 connections`);
    found[name] = await attempt(
      `profile ${name}`,
      () =>
        profileIsolates(inspector, isolates, async () => {
          const load = await runLoad({
            endpoint: system.proxy,
            body,
            expect,
            connections: 16,
            seconds: plan.profileSeconds,
            pids: {},
          });
          return load.requests;
        }),
      log,
    );
  }
  return found;
}

/** Battle events per second through the proxy, then straight to mcp1. */
export async function battles(system: System, plan: Plan, log: Log): Promise<Results["battle"]> {
  return {
    proxy: await attempt(
      "battle via proxy",
      () =>
        battleRate(
          system.proxy,
          "mcp1_update_battle_process",
          plan.battleEvents,
          plan.battleCallers,
        ),
      log,
    ),
    direct: await attempt(
      "battle direct",
      () =>
        battleRate(
          system.direct.mcp1,
          "update_battle_process",
          plan.battleEvents,
          plan.battleCallers,
        ),
      log,
    ),
  };
}
