/**
 * The measuring tools of lab/cpu.ts: CPU time per operation in Node, a sampled profile of one,
 * and a backend stub answering in-process so a loop costs the client, not a backend.
 */
import { Session } from "node:inspector/promises";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { registerEcho } from "../../common/echo.ts";
import { type ProfileSummary, summarizeProfile } from "./profile.ts";

const SAMPLING_US = 100;

type JsonRpcMessage = { id?: string | number; method?: string };
type Recorded = { status: number; headers: [string, string][]; body: string; id: string };

/**
 * A backend answering in-process: the first request of each method goes to a real SDK server
 * (McpServer + echo, as mcp2 and mcp3 run it) and is recorded; later ones get the recording with
 * their own id, so the loop costs the client, not a backend.
 */
export class StubBackend {
  readonly #real = createMcpHandler(() => {
    const server = new McpServer({ name: "stub", version: "0.1.0" });
    registerEcho(server);
    return server;
  });
  readonly #recorded = new Map<string, Recorded>();

  readonly fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    const text = await request.text();
    const message = JSON.parse(text) as JsonRpcMessage;
    if (message.id === undefined) return new Response(null, { status: 202 });
    const key = message.method ?? "";
    let recorded = this.#recorded.get(key);
    if (!recorded) {
      const response = await this.#real.fetch(
        new Request(request.url, { method: "POST", headers: request.headers, body: text }),
      );
      recorded = {
        status: response.status,
        headers: [...response.headers].filter(([name]) => name !== "content-length"),
        body: await response.text(),
        id: JSON.stringify(message.id),
      };
      this.#recorded.set(key, recorded);
    }
    return new Response(
      recorded.body.replace(`"id":${recorded.id}`, `"id":${JSON.stringify(message.id)}`),
      { status: recorded.status, headers: recorded.headers },
    );
  };
}

export interface CpuFigure {
  iterations: number;
  /** CPU (user + system) per operation, µs: the median of five batches. */
  cpuUs: number;
  wallUs: number;
}

/** Runs `op` repeatedly for about `budgetMs` (after a warm-up) and returns its cost per call. */
export async function measure(op: () => unknown, budgetMs: number): Promise<CpuFigure> {
  const warmEnd = performance.now() + Math.max(50, budgetMs / 4);
  while (performance.now() < warmEnd) await op();
  const batches: CpuFigure[] = [];
  for (let b = 0; b < 5; b++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const end = start + budgetMs / 5;
    let n = 0;
    do {
      await op();
      n++;
    } while (performance.now() < end);
    const wall = performance.now() - start;
    const used = process.cpuUsage(cpu);
    batches.push({
      iterations: n,
      cpuUs: (used.user + used.system) / n,
      wallUs: (wall * 1000) / n,
    });
  }
  batches.sort((a, b) => a.cpuUs - b.cpuUs);
  const median = batches[2] as CpuFigure;
  return {
    iterations: batches.reduce((sum, b) => sum + b.iterations, 0),
    cpuUs: Math.round(median.cpuUs * 100) / 100,
    wallUs: Math.round(median.wallUs * 100) / 100,
  };
}

/** A CPU profile of `op` run for `ms`, summarised. */
export async function profiled(op: () => unknown, ms: number): Promise<ProfileSummary> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: SAMPLING_US });
  await session.post("Profiler.start");
  const end = performance.now() + ms;
  while (performance.now() < end) await op();
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  return summarizeProfile(profile, SAMPLING_US, 20);
}
