/**
 * CPU accounting from Linux's /proc: a process's user+system time, and the whole machine's busy
 * share, read before and after a load run. Lets the benchmark say what a call cost in workerd
 * itself, not only in Node.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of `pid` (and its reaped children) in ms; undefined once it is gone. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime is field 14, stime 15 (1-based).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine (all cores), from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  // idle + iowait
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** Snapshots of CPU time for a set of processes and the machine, to subtract later. */
export class CpuMeter {
  readonly #pids: Record<string, number | undefined>;
  #before: Record<string, number | undefined> = {};
  #machine = { busy: 0, total: 0 };

  constructor(pids: Record<string, number | undefined>) {
    this.#pids = pids;
  }

  start(): void {
    this.#before = Object.fromEntries(
      Object.entries(this.#pids).map(([name, pid]) => [name, processCpuMs(pid)]),
    );
    this.#machine = machineTicks();
  }

  /** CPU ms each process used since `start()`, and the machine's busy share (0..1). */
  stop(): { processMs: Record<string, number | undefined>; machineBusy: number } {
    const processMs = Object.fromEntries(
      Object.entries(this.#pids).map(([name, pid]) => {
        const before = this.#before[name];
        const after = processCpuMs(pid);
        return [name, before === undefined || after === undefined ? undefined : after - before];
      }),
    );
    const machine = machineTicks();
    const total = machine.total - this.#machine.total;
    return {
      processMs,
      machineBusy: total > 0 ? (machine.busy - this.#machine.busy) / total : Number.NaN,
    };
  }
}

/** The busy share of all cores over `seconds`: how much else the machine is doing. */
export async function machineBusy(seconds: number): Promise<number> {
  const meter = new CpuMeter({});
  meter.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return meter.stop().machineBusy;
}

/** The workerd process Miniflare started: a child of this process named `workerd`. */
export async function findWorkerdPid(): Promise<number | undefined> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("workerd")) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
