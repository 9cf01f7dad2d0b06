/**
 * The request-by-request figures, one function each, run against the started system with the
 * run's plan: latency pairs against direct, backend requests per call, tools/list fan-out, slow
 * tools. run.ts calls them in order and keeps what they return; load.ts has the load figures.
 */
import { readdir } from "node:fs/promises";
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
import type {
  BackendRequests,
  EchoFigure,
  ListFigure,
  ModernEchoFigure,
  ToolFigure,
} from "./results.ts";
import { expectResult, RpcClient, toolText } from "./rpc.ts";
import { summarize } from "./stats.ts";
import type { System } from "./system.ts";

/**
 * Paired echo: /mcp, the server's door, pass-through and direct take turns, `pairs` rounds. The
 * door speaks the backend's own names (`echo`), so it sends what direct and pass-through send.
 */
export async function echoFigure(
  system: System,
  plan: Plan,
  server: "mcp1" | "mcp2",
): Promise<EchoFigure> {
  const proxyClient = new RpcClient(system.proxy);
  const doorClient = new RpcClient(system.door[server]);
  const directClient = new RpcClient(system.direct[server]);
  const passClient = new RpcClient(system.passThrough[server]);
  try {
    const samples = await interleave(
      {
        proxy: echoStep(proxyClient, `${server}_echo`),
        door: echoStep(doorClient, "echo"),
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
      door: {
        overPassThrough: paired(samples.door ?? [], samples.passThrough ?? []),
        overProxy: paired(samples.door ?? [], samples.proxy ?? []),
        overDirect: paired(samples.door ?? [], samples.direct ?? []).diff,
      },
    };
  } finally {
    proxyClient.close();
    doorClient.close();
    directClient.close();
    passClient.close();
  }
}

/**
 * Echo as a 2026-07-28 agent sends it (JSON answers, no stream): /mcp, the server's door and
 * direct in turn. The proxy speaks 2026-07-28 to its backends whatever the agent speaks; this
 * shows the agent's side. Through the door the backend answers JSON too, so the door neither
 * re-frames a stream nor numbers its events for resumption (2026-07-28 has none).
 */
export async function modernEchoFigure(
  system: System,
  plan: Plan,
  server: "mcp1" | "mcp2",
): Promise<ModernEchoFigure> {
  const proxyClient = new RpcClient(system.proxy, 1, "2026-07-28");
  const doorClient = new RpcClient(system.door[server], 1, "2026-07-28");
  const directClient = new RpcClient(system.direct[server], 1, "2026-07-28");
  try {
    const samples = await interleave(
      {
        proxy: echoStep(proxyClient, `${server}_echo`),
        door: echoStep(doorClient, "echo"),
        direct: echoStep(directClient, "echo"),
      },
      plan.variantRounds,
      plan.warmup,
    );
    return {
      ...paired(samples.proxy ?? [], samples.direct ?? []),
      door: paired(samples.door ?? [], samples.direct ?? []),
      doorOverProxy: paired(samples.door ?? [], samples.proxy ?? []).diff,
    };
  } finally {
    proxyClient.close();
    doorClient.close();
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

/** The StreamLog Durable Objects the recorded proxy has made so far (one SQLite file each). */
async function streamLogCount(dir: string): Promise<number> {
  const files = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  return files.filter((name) => name.endsWith(".sqlite")).length;
}

/**
 * What the recorder saw per proxied request, for each kind of request, after a warm-up, and the
 * StreamLog objects each kind made. The doors' kinds come last: the lab replays the first
 * `mcp2 POST tools/call` the recorder kept, which must be what /mcp sends.
 */
export async function backendRequests(system: System): Promise<BackendRequests> {
  const client = new RpcClient(system.recorded.proxy);
  const doors = {
    mcp1: new RpcClient(system.recorded.doors.mcp1),
    mcp2: new RpcClient(system.recorded.doors.mcp2),
  };
  const calls = 20;
  const kinds: [string, () => Promise<unknown>][] = [
    ["tools/call mcp1_echo", () => echoStep(client, "mcp1_echo")()],
    ["tools/call mcp2_echo", () => echoStep(client, "mcp2_echo")()],
    ["tools/list", () => listStep(client, undefined)()],
    ["tools/call echo, door mcp1", () => echoStep(doors.mcp1, "echo")()],
    ["tools/call echo, door mcp2", () => echoStep(doors.mcp2, "echo")()],
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
    const streamLogsPerCall: Record<string, number> = {};
    let samples: BackendRequests["samples"] = {};
    for (const [name, call] of kinds) {
      const logsBefore = await streamLogCount(system.recorded.streamLogs);
      for (let i = 0; i < calls; i++) await call();
      const seen = await read();
      samples = seen.samples;
      perCall[name] = Object.fromEntries(
        Object.entries(seen.counts).map(([key, n]) => [key, n / calls]),
      );
      streamLogsPerCall[name] =
        ((await streamLogCount(system.recorded.streamLogs)) - logsBefore) / calls;
    }
    return { perCall, streamLogsPerCall, samples };
  } finally {
    client.close();
    doors.mcp1.close();
    doors.mcp2.close();
  }
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
