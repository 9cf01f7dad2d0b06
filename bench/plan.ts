/** What a run measures and for how long: the command line turned into a plan. */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./root.ts";
import { PARTS, type Part } from "./scale-parts.ts";

export const USAGE = `usage: node bench/run.ts [options]   (npm run bench -- [options])
  --quick             fewer samples, 1 s load points
  --lab               also run the profiling lab (bench/lab/; npm run bench:lab is the same):
                      workerd and Node CPU per call from /proc, Node re-runs of the gateway's
                      parts, CPU profiles of workerd's isolates, the wrangler dev reference
  --no-profile        with --lab: skip the CPU profiles
  --no-wrangler-dev   with --lab: skip the wrangler dev reference (it needs ports 9403-9406)
  --scale             only the scale section (bench/scale.ts): backends, policy agents, battle
                      events and audit records at three sizes each, with their growth; 6-13
                      minutes (most of it the battle's 100,000 events), --quick about 1
  --scale-only LIST   with --scale: only these parts, comma-separated (backends,policy,battle,audit)
  --seconds N         seconds per load point (default 8, quick 1)
  --pairs N           rounds of the echo comparison per backend (default 1000, quick 150)
  --docker-image IMG  image for the run_docker figure (default mcpcp/busybox)
  --out PATH          where the JSON goes (default bench-results/latest.json, with --scale
                      bench-results/scale.json)`;

/** Where the JSON goes unless --out says: the core's figures, or the scale section's. */
export const DEFAULT_OUT = join(ROOT, "bench-results", "latest.json");
export const SCALE_OUT = join(ROOT, "bench-results", "scale.json");

export type Plan = ReturnType<typeof parsePlan>;
/** What the lab runs and for how long; only in a plan made with --lab. */
export type LabPlan = NonNullable<Plan["lab"]>;

/** Reads the command line; throws with USAGE on anything it does not know. */
export function parsePlan(argv: string[]) {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      lab: { type: "boolean" },
      "no-profile": { type: "boolean" },
      "no-wrangler-dev": { type: "boolean" },
      scale: { type: "boolean" },
      "scale-only": { type: "string" },
      seconds: { type: "string" },
      pairs: { type: "string" },
      "docker-image": { type: "string", default: "mcpcp/busybox" },
      out: { type: "string", default: DEFAULT_OUT },
      help: { type: "boolean", short: "h" },
    },
  });
  const quick = args.quick === true;
  const lab = args.lab === true;
  for (const option of ["no-profile", "no-wrangler-dev"] as const) {
    if (args[option] && !lab) throw new Error(`--${option} only applies with --lab\n${USAGE}`);
  }
  const scale = args.scale === true;
  if (scale && lab) throw new Error(`--scale runs on its own, not with --lab\n${USAGE}`);
  if (args["scale-only"] && !scale)
    throw new Error(`--scale-only only applies with --scale\n${USAGE}`);
  const scaleParts = (args["scale-only"] ?? PARTS.join(",")).split(",").map((p) => p.trim());
  for (const part of scaleParts) {
    if (!(PARTS as readonly string[]).includes(part)) {
      throw new Error(`--scale-only: no part "${part}" (${PARTS.join(", ")})\n${USAGE}`);
    }
  }
  const loadSeconds = Number(args.seconds ?? (quick ? 1 : 8));
  return {
    help: args.help === true,
    quick,
    /** The scale section's parts, when --scale asked for it (bench/scale.ts). */
    scale: scale ? (scaleParts as Part[]) : undefined,
    out: args.out,
    dockerImage: args["docker-image"],
    pairs: Number(args.pairs ?? (quick ? 150 : 1000)),
    warmup: quick ? 30 : 100,
    listRounds: quick ? 40 : 300,
    variantRounds: quick ? 60 : 300,
    loadSeconds,
    connections: [1, 16, 64],
    toolPairs: quick ? 5 : 20,
    battleEvents: quick ? 100 : 1000,
    battleCallers: 16,
    lab: lab
      ? {
          /** Seconds of /proc/stat read before the system starts: other work on the machine. */
          busySeconds: quick ? 1 : 2,
          /** Seconds per metered load point (16 connections), as the throughput points. */
          loadSeconds,
          healthzSeconds: quick ? 1 : 3,
          cpuMsPerFigure: quick ? 200 : 1000,
          profile: args["no-profile"] !== true,
          profileSeconds: quick ? 2 : 5,
          /** Where the raw profiles go: beside the JSON. */
          profileDir: join(dirname(args.out), "profiles"),
          wranglerDev: args["no-wrangler-dev"] !== true,
          wranglerDevPairs: quick ? 100 : 300,
          wranglerDevLoadSeconds: quick ? 1 : 3,
        }
      : undefined,
  };
}
