/** The results as table rows: each figure, its baseline, the difference, and its target. */
import type { Plan } from "./plan.ts";
import { ms, percent, plusMs, type Row, rps, us } from "./report.ts";
import { ok, type Results } from "./results.ts";

/** Every figure of `results` as a row, in the order the table prints them. */
export function buildRows(results: Results, plan: Plan): Row[] {
  const rows: Row[] = [];
  const errorRow = (figure: string, error: string) =>
    rows.push({
      figure,
      proxy: `error: ${error.slice(0, 60)}`,
      baseline: "",
      delta: "",
      target: "",
    });

  for (const server of ["mcp1", "mcp2"] as const) {
    const how = server === "mcp1" ? "service binding" : "fetch";
    const outcome = results.echo[server];
    const label = `echo ${server} (${how})`;
    if (!outcome) continue;
    if ("error" in outcome) {
      errorRow(label, outcome.error);
      continue;
    }
    rows.push({
      figure: `${label} p50, n=${outcome.proxy.n}`,
      proxy: ms(outcome.proxy.p50),
      baseline: ms(outcome.baseline.p50),
      delta: `${plusMs(outcome.diff.p50)} (median of pairs)`,
      target: "≤ +1 ms",
      met: outcome.diff.p50 <= 1,
    });
    const p99Delta = outcome.proxy.p99 - outcome.baseline.p99;
    rows.push({
      figure: `${label} p99`,
      proxy: ms(outcome.proxy.p99),
      baseline: ms(outcome.baseline.p99),
      delta: `${plusMs(p99Delta)} (pairs' p99 ${plusMs(outcome.diff.p99)})`,
      target: "≤ +5 ms",
      met: p99Delta <= 5,
    });
    rows.push({
      figure: `${label} via pass-through Worker p50`,
      proxy: ms(outcome.passThrough.p50),
      baseline: ms(outcome.baseline.p50),
      delta: `${plusMs(outcome.passThroughDiff.p50)} (floor of any Worker hop)`,
      target: "",
    });
  }

  for (const server of ["mcp1", "mcp2"] as const) {
    const figure = ok(results.modernEcho[server]);
    if (!figure) continue;
    rows.push({
      figure: `echo ${server}, 2026-07-28 agent (JSON answers) p50, n=${figure.proxy.n}`,
      proxy: ms(figure.proxy.p50),
      baseline: ms(figure.baseline.p50),
      delta: `${plusMs(figure.diff.p50)} (median of pairs)`,
      target: "",
    });
  }

  const seen = ok(results.backendRequests);
  for (const [kind, counts] of Object.entries(seen?.perCall ?? {})) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const backends = kind === "tools/list" ? 3 : 1;
    rows.push({
      figure: `backend HTTP requests per ${kind}`,
      proxy: String(Math.round(total * 100) / 100),
      baseline: String(backends),
      delta: Object.entries(counts)
        .map(([key, n]) => `${Math.round(n * 100) / 100}× ${key}`)
        .join(", "),
      target: `${backends} (one per backend)`,
      met: total <= backends,
    });
  }
  if (results.backendRequests && "error" in results.backendRequests) {
    errorRow("backend requests per call", results.backendRequests.error);
  }

  const asIs = ok(results.variants.proxy);
  for (const [name, outcome] of Object.entries(results.variants)) {
    if (name === "proxy") continue;
    if ("error" in outcome) {
      errorRow(`echo mcp2, ${name}`, outcome.error);
      continue;
    }
    rows.push({
      figure: `echo mcp2 p50, proxy with ${name}`,
      proxy: ms(outcome.proxy.p50),
      baseline: `${ms(asIs?.proxy.p50)} (proxy as configured)`,
      delta: `${plusMs(outcome.diff.p50)} over direct (as configured ${plusMs(asIs?.diff.p50)})`,
      target: "",
    });
  }

  const list = results.list;
  if (list && "error" in list) errorRow("tools/list over 3 backends", list.error);
  else if (list) {
    rows.push({
      figure: `tools/list over 3 (${list.tools} tools) p50`,
      proxy: ms(list.proxy.p50),
      baseline: `${ms(list.backends[list.slowest]?.p50)} (${list.slowest} alone)`,
      delta: `${plusMs(list.vsSlowest.diff.p50)} (max of 3: ${ms(list.medianOfMaximaMs)})`,
      target: "≤ slowest +1 ms",
      met: list.vsSlowest.diff.p50 <= 1,
    });
    rows.push({
      figure: "tools/list over 3 p99",
      proxy: ms(list.proxy.p99),
      baseline: ms(list.backends[list.slowest]?.p99),
      delta: plusMs(list.proxy.p99 - (list.backends[list.slowest]?.p99 ?? Number.NaN)),
      target: "",
    });
  }

  for (const server of ["mcp1", "mcp2"]) {
    for (const connections of plan.connections) {
      const proxy = ok(results.throughput[`proxy→${server}`]?.[connections]);
      const direct = ok(results.throughput[server]?.[connections]);
      if (!proxy || !direct) {
        errorRow(`throughput echo ${server} @${connections}`, "see JSON");
        continue;
      }
      const ratio = proxy.rps / direct.rps;
      rows.push({
        figure: `throughput echo ${server} @${connections} conn`,
        proxy: rps(proxy.rps, proxy.errorCount),
        baseline: rps(direct.rps, direct.errorCount),
        delta: percent(ratio),
        target: connections === 64 ? "≥ 70%, 0 err" : "",
        ...(connections === 64
          ? { met: ratio >= 0.7 && proxy.errorCount === 0 && direct.errorCount === 0 }
          : {}),
      });
    }
    // The ceiling on this machine: a Worker that only forwards, against the same direct figure.
    const pass = ok(results.throughput[`pass-through→${server}`]?.[64]);
    const direct = ok(results.throughput[server]?.[64]);
    if (pass && direct) {
      rows.push({
        figure: `throughput echo ${server} @64 via pass-through Worker`,
        proxy: rps(pass.rps, pass.errorCount),
        baseline: rps(direct.rps, direct.errorCount),
        delta: `${percent(pass.rps / direct.rps)} (ceiling for any Worker hop)`,
        target: "",
      });
    }
  }

  // workerd's CPU per call, from /proc while wrk ran at 16 connections: the proxy against the
  // pass-through Worker doing the same I/O. The difference is the proxy's own work in workerd.
  for (const server of ["mcp2", "mcp1"]) {
    const at16 = (name: string) => ok(results.throughput[name]?.[16])?.cpuMsPerRequest.workerd;
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

  const mcp2Cpu = (name: string) => ok(results.throughput[name]?.[16])?.cpuMsPerRequest.mcp2;
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

  const cpu = results.cpu;
  if (cpu && "error" in cpu) errorRow("Node: proxy parts", cpu.error);
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

  for (const [name, outcome] of Object.entries(results.tools)) {
    if ("error" in outcome) {
      errorRow(name, outcome.error);
      continue;
    }
    const figure = outcome.figure;
    rows.push({
      figure: `${name} p50`,
      proxy: figure ? ms(figure.proxy.p50) : (outcome.unavailable ?? "n/a"),
      baseline: figure ? ms(figure.baseline.p50) : "",
      delta: figure ? `${plusMs(figure.diff.p50)} (median of pairs)` : "",
      target: "",
    });
  }

  const proxyBattle = ok(results.battle.proxy);
  const directBattle = ok(results.battle.direct);
  if (proxyBattle) {
    rows.push({
      figure: `battle events/s, one battle, ${proxyBattle.callers} callers`,
      proxy: `${Math.round(proxyBattle.eventsPerSecond)}/s (${proxyBattle.lost} lost)`,
      baseline: directBattle
        ? `${Math.round(directBattle.eventsPerSecond)}/s (${directBattle.lost} lost)`
        : "n/a",
      delta: directBattle
        ? percent(proxyBattle.eventsPerSecond / directBattle.eventsPerSecond)
        : "",
      target: "0 lost",
      met:
        proxyBattle.lost === 0 &&
        proxyBattle.duplicates === 0 &&
        proxyBattle.errors === 0 &&
        (!directBattle || directBattle.lost === 0),
    });
  } else if (results.battle.proxy && "error" in results.battle.proxy) {
    errorRow("battle events/s", results.battle.proxy.error);
  }

  const dev = results.wranglerDev;
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
      const onWorkerd = ok(results.echo[server]);
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
      const direct = ok(results.healthz[connections]);
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
    for (const error of dev.errors) errorRow("wrangler dev", error);
  }
  return rows;
}

/** Where a proxied call's CPU goes in workerd, isolate by isolate, and the top functions. */
export function profileText(profiles: Results["profiles"]): string {
  const lines: string[] = [];
  for (const [load, outcome] of Object.entries(profiles)) {
    if ("error" in outcome) {
      lines.push(`profile ${load}: ${outcome.error}`);
      continue;
    }
    const isolates = Object.entries(outcome)
      .filter(([, p]) => p.msPerRequest > 0)
      .map(([id, p]) => `${id} ${ms(p.msPerRequest)}`);
    lines.push(`workerd CPU per ${load} request, sampled by isolate: ${isolates.join(", ")}`);
    const proxy = outcome["core:user:mcpcp-proxy"];
    const share = (line: { share: number }) => `${(line.share * 100).toFixed(1).padStart(5)}%`;
    lines.push("  proxy isolate by package/file:");
    for (const line of proxy?.byPackage.slice(0, 8) ?? [])
      lines.push(`  ${share(line)}  ${line.name}`);
    lines.push("  proxy isolate by function:");
    for (const line of proxy?.byFunction.slice(0, 12) ?? []) {
      lines.push(`  ${share(line)}  ${line.name}`);
    }
  }
  return lines.length ? `${lines.join("\n")}\n\n` : "";
}
