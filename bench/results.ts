/** The shape of a run's results: every figure, or why it is missing. */
import type { BattleFigure } from "./battle.ts";
import type { PairedFigure } from "./latency.ts";
import type { Machine } from "./machine.ts";
import type { Plan } from "./plan.ts";
import type { Row } from "./report.ts";
import type { Summary } from "./stats.ts";
import type { System } from "./system.ts";
import type { LoadResult } from "./wrk.ts";

/** A figure, or the reason it could not be measured. */
export type Outcome<T> = T | { error: string };

/** Runs one measurement; a failure becomes its Outcome (and a log line), not the run's end. */
export async function attempt<T>(
  what: string,
  run: () => Promise<T>,
  log: (line: string) => void,
): Promise<Outcome<T>> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`${what} failed: ${message}`);
    return { error: message };
  }
}

/** The figure, if it was measured. */
export function ok<T extends object>(outcome: Outcome<T> | undefined): T | undefined {
  return outcome && !("error" in outcome) ? outcome : undefined;
}

export interface EchoFigure extends PairedFigure {
  /** The same call through the pass-through Worker, and its round-by-round excess over direct. */
  passThrough: Summary;
  passThroughDiff: Summary;
  /**
   * The same call through the server's door (`/servers/<id>/mcp`, tool `echo`), paired with the
   * pass-through Worker and with /mcp in the same rounds, and its excess over direct.
   */
  door: { overPassThrough: PairedFigure; overProxy: PairedFigure; overDirect: Summary };
}

export interface ModernEchoFigure extends PairedFigure {
  /** The door against direct, and its round-by-round excess over /mcp. */
  door: PairedFigure;
  doorOverProxy: Summary;
}

export interface ListFigure {
  proxy: Summary;
  backends: Record<string, Summary>;
  slowest: string;
  vsSlowest: PairedFigure;
  /** Median over rounds of the slowest of the three direct calls in that round. */
  medianOfMaximaMs: number;
  tools: number;
}

export interface ToolFigure {
  tool: string;
  arguments: object;
  figure?: PairedFigure;
  unavailable?: string;
}

export interface BackendRequests {
  /** Requests per proxied request, by kind of proxied request, then by backend and method. */
  perCall: Record<string, Record<string, number>>;
  /** StreamLog Durable Objects made per proxied request, by kind (doors log 2025-era streams). */
  streamLogsPerCall: Record<string, number>;
  /** The first request of each kind a backend received: headers and body, as the proxy sent it. */
  samples: Record<string, { headers: Record<string, string>; body?: string }>;
}

export interface Results {
  when: string;
  quick: boolean;
  plan: Plan;
  machine: Machine;
  overrides: string[];
  protocol: Record<string, string>;
  toolsSeen: string[];
  echo: Partial<Record<"mcp1" | "mcp2", Outcome<EchoFigure>>>;
  /** The same echo from a 2026-07-28 agent: JSON answers instead of a stream. */
  modernEcho: Partial<Record<"mcp1" | "mcp2", Outcome<ModernEchoFigure>>>;
  /**
   * HTTP requests each backend received per proxied request, by HTTP and JSON-RPC method, after
   * warm-up (the design says one round trip per backend call once the era verdict is cached).
   */
  backendRequests?: Outcome<BackendRequests>;
  /** echo mcp2 through proxies with one feature off, each against direct, in the same rounds. */
  variants: Record<string, Outcome<PairedFigure>>;
  list?: Outcome<ListFigure>;
  throughput: Record<string, Record<number, Outcome<LoadResult>>>;
  tools: Record<string, Outcome<ToolFigure>>;
  battle: Partial<Record<"proxy" | "direct", Outcome<BattleFigure>>>;
  /** Console lines the Workers wrote, by level. */
  workerLogLines?: Record<string, number>;
  /** What the Node backends wrote while the benchmark ran. */
  backendLogs?: System["backendLogs"];
  /** The table: the core figures' rows, then the lab's when it ran. */
  rows: Row[];
}
