/** The lab's results as table rows, after the core figures' rows. */
import { failedRow, ms, percent, plusMs, type Row, rps, us } from "../report.ts";
import { ok, type Results } from "../results.ts";
import type { LabResults } from "./results.ts";

/** Every lab figure as a row; `core` holds the figures some of them stand beside. */
export function labRows(lab: LabResults, core: Results): Row[] {
  return [...procRows(lab), ...nodeRows(lab), ...wranglerDevRows(lab, core)];
}

/**
 * workerd's CPU per call, from /proc while wrk ran at 16 connections: the proxy against the
 * pass-through Worker doing the same I/O. The difference is the proxy's own work in workerd.
 * Then mcp2's own CPU per echo, proxied and direct.
 */
function procRows(lab: LabResults): Row[] {
  const rows: Row[] = [];
  for (const server of ["mcp2", "mcp1"]) {
    const at16 = (name: string) => ok(lab.cpuPerCall[name])?.cpuMsPerRequest.workerd;
    const proxy = at16(`proxy→${server}`);
    const pass = at16(`pass-through→${server}`);
    if (proxy === undefined || pass === undefined) continue;
    const own = proxy - pass;
    rows.push({
      figure: `workerd CPU per call →${server} @16${server === "mcp1" ? " (incl. mcp1)" : ""}`,
      proxy: ms(proxy),
      baseline: `${ms(pass)} (pass-through Worker)`,
      delta: `${plusMs(own)} = proxy's own work`,
      target: "≤ 0.2 ms",
      met: own <= 0.2,
    });
  }

  const mcp2Cpu = (name: string) => ok(lab.cpuPerCall[name])?.cpuMsPerRequest.mcp2;
  const viaProxy = mcp2Cpu("proxy→mcp2");
  if (viaProxy !== undefined) {
    rows.push({
      figure: "mcp2 (Node) CPU per echo @16: via proxy vs direct",
      proxy: ms(viaProxy),
      baseline: ms(mcp2Cpu("mcp2")),
      delta: `proxy's exact request sent direct: ${ms(mcp2Cpu("mcp2 (proxy's request)"))}`,
      target: "",
    });
  }
  return rows;
}

/** The gateway's parts re-run in Node, against the SDK objects the hot path replaces. */
function nodeRows(lab: LabResults): Row[] {
  const rows: Row[] = [];
  const cpu = lab.node;
  if (cpu && "error" in cpu) rows.push(failedRow("Node: proxy parts", cpu.error));
  else if (cpu) {
    const f = cpu.figures;
    rows.push({
      figure: "Node: gateway work per call, sum of parts",
      proxy: us(cpu.sumOfPartsUs),
      baseline: `${us(cpu.sdkSumOfPartsUs)} (with SDK server+client)`,
      delta: "JWT (cached)+decide+parse+hot path+assertion+direct call",
      target: "≤ 200 µs",
      met: cpu.sumOfPartsUs <= 200,
    });
    rows.push({
      figure: "Node: JWT verify RS256, cached / key imported once",
      proxy: us(f.jwtVerifyCached?.cpuUs),
      baseline: `${us(f.jwtVerify?.cpuUs)} (${us(f.jwtVerifyKeyImportedPerCall?.cpuUs)} imported per call)`,
      delta: "",
      target: "",
    });
    rows.push({
      figure: "Node: policy+scope+routing / assertion sign",
      proxy: us(f.decide?.cpuUs),
      baseline: "",
      delta: `Ed25519 assertion ${us(f.assertionSign?.cpuUs)}`,
      target: "",
    });
    rows.push({
      figure: "Node: hot path per request (2025 / 2026-07-28)",
      proxy: `${us(f.fastPathPerRequest?.cpuUs)} / ${us(f.fastPathPerRequestModern?.cpuUs)}`,
      baseline: `${us(f.sdkServerPerRequest?.cpuUs)} (SDK server)`,
      delta: "",
      target: "",
    });
    const minusStub = (name: string) =>
      (f[name]?.cpuUs ?? Number.NaN) - (f.stubCall?.cpuUs ?? Number.NaN);
    rows.push({
      figure: "Node: backend call, direct / SDK client",
      proxy: us(minusStub("directCall")),
      baseline: `${us(minusStub("sdkClientCall"))} (SDK client)`,
      delta: `SDK backend (McpServer+echo) ${us(f.sdkBackendCall?.cpuUs)}`,
      target: "",
    });
  }
  return rows;
}

/** The reference through `wrangler dev`, beside the same figures on workerd direct. */
function wranglerDevRows(lab: LabResults, core: Results): Row[] {
  const rows: Row[] = [];
  const dev = lab.wranglerDev;
  if (dev && "skipped" in dev) {
    rows.push({
      figure: "wrangler dev (reference)",
      proxy: dev.skipped,
      baseline: "",
      delta: "",
      target: "",
    });
  } else if (dev) {
    for (const server of ["mcp1", "mcp2"] as const) {
      const figure = dev.echo[server];
      if (!figure) continue;
      const onWorkerd = ok(core.echo[server]);
      rows.push({
        figure: `wrangler dev: echo ${server} p50${server === "mcp1" ? " (mcp1 via its dev proxy too)" : ""}`,
        proxy: ms(figure.proxy.p50),
        baseline: ms(figure.baseline.p50),
        delta: `${plusMs(figure.diff.p50)} (workerd direct: ${plusMs(onWorkerd?.diff.p50)})`,
        target: "(reference)",
      });
      rows.push({
        figure: `wrangler dev: echo ${server} p99`,
        proxy: ms(figure.proxy.p99),
        baseline: ms(figure.baseline.p99),
        delta: plusMs(figure.proxy.p99 - figure.baseline.p99),
        target: "(reference)",
      });
    }
    for (const connections of [1, 16]) {
      const viaDev = dev.healthz[connections];
      const direct = ok(lab.healthz[connections]);
      if (!viaDev) continue;
      rows.push({
        figure: `GET /healthz @${connections}: wrangler dev vs workerd direct`,
        proxy: `${rps(viaDev.rps, viaDev.errorCount)}, p50 ${ms(viaDev.latencyMs.p50)}`,
        baseline: direct
          ? `${rps(direct.rps, direct.errorCount)}, p50 ${ms(direct.latencyMs.p50)}`
          : "n/a",
        delta: direct ? percent(viaDev.rps / direct.rps) : "",
        target: "(reference)",
      });
    }
    for (const error of dev.errors) rows.push(failedRow("wrangler dev", error));
  }
  return rows;
}
