/** What a run measures and for how long: the command line turned into a plan. */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./root.ts";

export const USAGE = `usage: node bench/run.ts [options]   (npm run bench -- [options])
  --quick             fewer samples, 1 s load points, no wrangler dev reference, no profiles
  --wrangler-dev      run the wrangler dev reference even with --quick
  --no-wrangler-dev   skip it in a full run
  --profile           profile the Workers in workerd under load even with --quick
  --no-profile        skip that in a full run
  --seconds N         seconds per load point (default 8, quick 1)
  --pairs N           rounds of the echo comparison per backend (default 1000, quick 150)
  --docker-image IMG  image for the run_docker figure (default mcpcp/busybox)
  --out PATH          where the JSON goes (default bench-results/latest.json)`;

export type Plan = ReturnType<typeof parsePlan>;

/** Reads the command line; throws with USAGE on anything it does not know. */
export function parsePlan(argv: string[]) {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      "wrangler-dev": { type: "boolean" },
      "no-wrangler-dev": { type: "boolean" },
      profile: { type: "boolean" },
      "no-profile": { type: "boolean" },
      seconds: { type: "string" },
      pairs: { type: "string" },
      "docker-image": { type: "string", default: "mcpcp/busybox" },
      out: { type: "string", default: join(ROOT, "bench-results", "latest.json") },
      help: { type: "boolean", short: "h" },
    },
  });
  const quick = args.quick === true;
  return {
    help: args.help === true,
    quick,
    out: args.out,
    dockerImage: args["docker-image"],
    pairs: Number(args.pairs ?? (quick ? 150 : 1000)),
    warmup: quick ? 30 : 100,
    listRounds: quick ? 40 : 300,
    variantRounds: quick ? 60 : 300,
    loadSeconds: Number(args.seconds ?? (quick ? 1 : 8)),
    connections: [1, 16, 64],
    healthzSeconds: quick ? 1 : 3,
    cpuMsPerFigure: quick ? 200 : 1000,
    toolPairs: quick ? 5 : 20,
    battleEvents: quick ? 100 : 1000,
    battleCallers: 16,
    profile: args["no-profile"] ? false : quick ? args.profile === true : true,
    profileSeconds: quick ? 2 : 5,
    wranglerDev: args["no-wrangler-dev"] ? false : quick ? args["wrangler-dev"] === true : true,
    wranglerDevPairs: quick ? 100 : 300,
    wranglerDevLoadSeconds: quick ? 1 : 3,
  };
}
