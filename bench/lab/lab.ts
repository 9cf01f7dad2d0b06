/**
 * The profiling lab (`npm run bench:lab`, or `npm run bench -- --lab`): where a call's CPU goes,
 * beyond what the core figures say it costs. run.ts loads this module only when asked and calls
 * it at three moments: before the system starts (how busy the machine is), while it runs (CPU per
 * call from /proc, CPU profiles of workerd's isolates, workerd's bare /healthz) and after it has
 * stopped (the Node re-runs of the gateway's parts, the `wrangler dev` reference). Its rows follow
 * the core rows in the table; its figures go to the JSON's `lab` field.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LabPlan } from "../plan.ts";
import { percent, type Row } from "../report.ts";
import { attempt, type Results } from "../results.ts";
import { ROOT } from "../root.ts";
import type { System } from "../system.ts";
import type { CpuReport } from "./cpu.ts";
import { cpuPerCall } from "./cpu-per-call.ts";
import { machineBusy } from "./proc.ts";
import { profiles, profileText } from "./profiles.ts";
import type { LabResults } from "./results.ts";
import { labRows } from "./rows.ts";
import { workerdHealthz, wranglerDevFigures } from "./wrangler-dev.ts";

const exec = promisify(execFile);
type Log = (line: string) => void;

/** Before the system starts: how busy the machine already is. */
export async function labBefore(plan: LabPlan, log: Log): Promise<LabResults> {
  const lab: LabResults = {
    machineBusyBefore: await machineBusy(plan.busySeconds),
    cpuPerCall: {},
    profiles: {},
    healthz: {},
  };
  log(`lab: machine busy before start: ${percent(lab.machineBusyBefore)} of all cores`);
  return lab;
}

/** While the system runs, after the core figures. */
export async function labWithSystem(
  system: System,
  plan: LabPlan,
  core: Results,
  lab: LabResults,
  log: Log,
): Promise<void> {
  lab.cpuPerCall = await cpuPerCall(system, plan, core, log);
  lab.healthz = await workerdHealthz(system, plan.healthzSeconds, log);
  if (plan.profile) lab.profiles = await profiles(system, plan, plan.profileDir, log);
}

/** The Node figures, from lab/cpu.ts in a process of its own (its JIT and heap its own). */
async function nodeFigures(plan: LabPlan): Promise<CpuReport> {
  const { stdout } = await exec(
    process.execPath,
    [join(ROOT, "bench", "lab", "cpu.ts"), "--ms", String(plan.cpuMsPerFigure), "--profile"],
    { cwd: ROOT, maxBuffer: 16 << 20 },
  );
  return JSON.parse(stdout) as CpuReport;
}

/** After the system has stopped. */
export async function labAfter(plan: LabPlan, lab: LabResults, log: Log): Promise<void> {
  log("lab: Node: the gateway's parts without I/O (bench/lab/cpu.ts)");
  lab.node = await attempt("cpu", () => nodeFigures(plan), log);
  lab.wranglerDev = plan.wranglerDev
    ? await wranglerDevFigures(plan.wranglerDevPairs, plan.wranglerDevLoadSeconds, log)
    : { skipped: "skipped (--no-wrangler-dev)" };
}

/** What the lab adds to the report: a header line, its rows, and the profiles as text. */
export function labReport(
  lab: LabResults,
  core: Results,
): { header: string; rows: Row[]; text: string } {
  return {
    header: `lab: machine busy before start ${percent(lab.machineBusyBefore)} (from /proc/stat)`,
    rows: labRows(lab, core),
    text: profileText(lab.profiles),
  };
}
