/** The shape of the lab's results: its figures, or why they are missing. */
import type { Outcome } from "../results.ts";
import type { LoadResult } from "../wrk.ts";
import type { CpuReport } from "./cpu.ts";
import type { MeteredLoad } from "./cpu-per-call.ts";
import type { Profiles } from "./profiles.ts";
import type { WranglerDevFigures } from "./wrangler-dev.ts";

export interface LabResults {
  /** Busy share of all cores over a moment before the system started: other work on the box. */
  machineBusyBefore: number;
  /**
   * wrk at 16 connections with the CPU time of workerd, mcp2 and the harness read from /proc, by
   * target (proxy→mcp1, pass-through→mcp1, proxy→mcp2, pass-through→mcp2, mcp2, mcp2 sent the
   * proxy's exact request).
   */
  cpuPerCall: Record<string, Outcome<MeteredLoad>>;
  /** The gateway's parts re-run in Node (lab/cpu.ts, a process of its own). */
  node?: Outcome<CpuReport>;
  /** CPU profiles of workerd's isolates while wrk drove the proxy at 16 connections. */
  profiles: Profiles;
  /** GET /healthz of the proxy on its direct workerd socket: the wrangler dev rows' baseline. */
  healthz: Record<number, Outcome<LoadResult>>;
  wranglerDev?: WranglerDevFigures | { skipped: string };
}
