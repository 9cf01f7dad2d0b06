/**
 * `npm run bench` (`node bench/run.ts [--quick]`): what the gateway adds to a call, measured on the
 * Workers runtime without `wrangler dev`'s dev proxy, each figure beside its baseline from the same
 * run. Prints a table and writes every figure to bench-results/latest.json. BENCHMARKS.md explains
 * the method; `--help` lists the options. No timing is asserted anywhere: targets are printed.
 * `--lab` (`npm run bench:lab`) adds the profiling lab in bench/lab/, loaded only then.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  backendRequests,
  echoFigure,
  listFigure,
  modernEchoFigure,
  toolFigure,
  variantFigures,
} from "./figures.ts";
import type { LabResults } from "./lab/results.ts";
import { toolNames } from "./latency.ts";
import { battles, throughput } from "./load.ts";
import { describeMachine, finish } from "./machine.ts";
import { DEFAULT_OUT as defaultOut, parsePlan, SCALE_OUT as scaleOut, USAGE } from "./plan.ts";
import { formatTable, markdownTable } from "./report.ts";
import { attempt, type Results } from "./results.ts";
import { buildRows } from "./rows.ts";
import { RpcClient } from "./rpc.ts";
import type { Part } from "./scale-parts.ts";
import { type System, startSystem } from "./system.ts";
import { wrkVersion } from "./wrk.ts";

const began = Date.now();
function log(line: string): void {
  const t = ((Date.now() - began) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[bench ${t}s] ${line}\n`);
}

/** What the proxy and each backend answer a stateless 2025-11-25 tools/list with. */
async function probe(system: System, results: Results): Promise<number> {
  const proxy = new RpcClient(system.proxy);
  const listed = await proxy.call("tools/list", {});
  proxy.close();
  results.toolsSeen = toolNames(listed);
  results.protocol.proxy = `HTTP ${listed.status}, ${listed.contentType}`;
  let directTools = 0;
  for (const [id, endpoint] of Object.entries(system.direct)) {
    const client = new RpcClient(endpoint);
    const reply = await client.call("tools/list", {});
    client.close();
    directTools += toolNames(reply).length;
    results.protocol[id] = `HTTP ${reply.status}, ${reply.contentType}`;
  }
  log(`proxy offers ${results.toolsSeen.length} tools: ${results.toolsSeen.join(", ")}`);
  return directTools;
}

async function measure(system: System, results: Results): Promise<void> {
  const plan = results.plan;
  const directTools = await probe(system, results);

  for (const server of ["mcp1", "mcp2"] as const) {
    log(`echo ${server}: ${plan.pairs} rounds of /mcp, door, direct and pass-through in turn`);
    results.echo[server] = await attempt(
      `echo ${server}`,
      () => echoFigure(system, plan, server),
      log,
    );
  }
  for (const server of ["mcp1", "mcp2"] as const) {
    log(
      `echo ${server} from a 2026-07-28 agent: ${plan.variantRounds} rounds of /mcp, door, direct`,
    );
    results.modernEcho[server] = await attempt(
      `echo ${server} (2026-07-28)`,
      () => modernEchoFigure(system, plan, server),
      log,
    );
  }
  log("backend requests per proxied request (through a recording Worker)");
  results.backendRequests = await attempt("backend requests", () => backendRequests(system), log);
  if (Object.keys(system.variants).length) {
    log(`echo mcp2 through proxy variants: ${plan.variantRounds} rounds`);
    try {
      results.variants = await variantFigures(system, plan);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`variants failed: ${message}`);
      results.variants = { all: { error: message } };
    }
  }
  log(`tools/list: ${plan.listRounds} rounds of proxy, mcp1, mcp2, mcp3`);
  results.list = await attempt("tools/list", () => listFigure(system, plan, directTools), log);

  await attempt("throughput", () => throughput(system, plan, results, log), log);

  log("optional tools: run_python_code, run_docker");
  results.tools["python print(1)"] = await attempt(
    "python",
    () =>
      toolFigure(
        system,
        plan,
        "mcp3",
        "run_python_code",
        { code: "print(1)" },
        (text) => text.includes("1"),
        results.toolsSeen,
      ),
    log,
  );
  results.tools[`docker run --rm ${plan.dockerImage} true`] = await attempt(
    "docker",
    () =>
      toolFigure(
        system,
        plan,
        "mcp2",
        "run_docker",
        { command: `run --rm ${plan.dockerImage} true` },
        () => true,
        results.toolsSeen,
      ),
    log,
  );

  log(`battle: ${plan.battleEvents} events, ${plan.battleCallers} callers, proxy then direct`);
  results.battle = await battles(system, plan, log);
}

async function main(): Promise<void> {
  const plan = parsePlan(process.argv.slice(2));
  if (plan.help) {
    console.log(USAGE);
    return;
  }
  if (!wrkVersion()) {
    throw new Error("wrk is not installed: bash .ci/wrk.sh setup (npm run bench runs it)");
  }
  if (plan.scale) {
    await scaleOnly(plan, plan.scale);
    return;
  }
  const machine = describeMachine();
  log(`${machine.nproc} cores (${machine.cpuModel}), load ${machine.loadAverage.start.join(" ")}`);
  // The lab's code is loaded only when asked for.
  const lab = plan.lab ? await import("./lab/lab.ts") : undefined;
  let labResults: LabResults | undefined;
  if (lab && plan.lab) labResults = await lab.labBefore(plan.lab, log);
  const results: Results = {
    when: new Date().toISOString(),
    quick: plan.quick,
    plan,
    machine,
    overrides: [],
    protocol: {},
    toolsSeen: [],
    echo: {},
    modernEcho: {},
    variants: {},
    throughput: {},
    tools: {},
    battle: {},
    rows: [],
  };

  const system = await startSystem(log, { inspector: plan.lab?.profile === true });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await system.stop();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void stop().then(() => process.exit(130));
    });
  }
  try {
    results.overrides = system.overrides;
    await measure(system, results);
    if (lab && plan.lab && labResults) {
      await lab.labWithSystem(system, plan.lab, results, labResults, log);
    }
  } finally {
    results.workerLogLines = system.logLines;
    results.backendLogs = system.backendLogs;
    await stop();
  }

  if (lab && plan.lab && labResults) await lab.labAfter(plan.lab, labResults, log);

  finish(machine);
  const labReport = lab && labResults ? lab.labReport(labResults, results) : undefined;
  results.rows = [...buildRows(results, plan), ...(labReport?.rows ?? [])];
  const out = resolve(plan.out);
  await mkdir(dirname(out), { recursive: true });
  const json = { ...results, ...(labResults ? { lab: labResults } : {}) };
  await writeFile(
    out,
    `${JSON.stringify({ ...json, markdown: markdownTable(results.rows) }, null, 2)}\n`,
  );

  const header = [
    `MCPCP benchmark, ${results.when}${plan.quick ? " (quick)" : ""}${lab ? " with the lab" : ""}`,
    `${machine.nproc} × ${machine.cpuModel}; Node ${machine.node}; workerd ${machine.workerd} (Miniflare ${machine.miniflare}); ${machine.wrk}; code ${machine.commit}`,
    `load average ${machine.loadAverage.start.join(" ")} → ${machine.loadAverage.end?.join(" ")}`,
    ...(labReport ? [labReport.header] : []),
    `protocol: ${Object.entries(results.protocol)
      .map(([k, v]) => `${k} ${v}`)
      .join("; ")}`,
    ...(results.overrides.length ? [`overrides: ${results.overrides.join("; ")}`] : []),
    "",
  ];
  process.stdout.write(`${header.join("\n")}\n${formatTable(results.rows)}\n\n`);
  process.stdout.write(labReport?.text ?? "");
  process.stdout.write(`JSON: ${out} (the table as Markdown in its "markdown" field)\n`);
  log(`done in ${((Date.now() - began) / 1000).toFixed(0)} s`);
}

/** `--scale`: the scale section alone (bench/scale.ts), its tables and bench-results/scale.json. */
async function scaleOnly(
  plan: ReturnType<typeof parsePlan>,
  parts: readonly Part[],
): Promise<void> {
  const machine = describeMachine();
  log(`${machine.nproc} cores (${machine.cpuModel}), load ${machine.loadAverage.start.join(" ")}`);
  const scale = await import("./scale.ts");
  const scalePlan = scale.scalePlan(plan.quick);
  const { tables, errors, seconds } = await scale.runScale(scalePlan, parts, log);
  finish(machine);
  const out = resolve(plan.out === defaultOut ? scaleOut : plan.out);
  await mkdir(dirname(out), { recursive: true });
  const markdown = scale.scaleMarkdown(tables);
  const when = new Date().toISOString();
  await writeFile(
    out,
    `${JSON.stringify({ when, plan: scalePlan, parts, machine, seconds, errors, tables, markdown }, null, 2)}\n`,
  );
  const header = [
    `MCPCP benchmark, scale section, ${when}${plan.quick ? " (quick)" : ""}`,
    `${machine.nproc} × ${machine.cpuModel}; Node ${machine.node}; workerd ${machine.workerd} (Miniflare ${machine.miniflare}); code ${machine.commit}`,
    `load average ${machine.loadAverage.start.join(" ")} → ${machine.loadAverage.end?.join(" ")}; seconds per part ${JSON.stringify(seconds)}`,
    "",
  ];
  process.stdout.write(`${header.join("\n")}\n${scale.scaleText(tables)}\n\n`);
  for (const [part, error] of Object.entries(errors)) {
    process.stdout.write(`${part} failed: ${error.split("\n")[0]}\n`);
  }
  process.stdout.write(`JSON: ${out} (the tables as Markdown in its "markdown" field)\n`);
  log(`done in ${((Date.now() - began) / 1000).toFixed(0)} s`);
  if (Object.keys(errors).length) process.exitCode = 1;
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
