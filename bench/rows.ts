/** The core results as table rows: each figure, its baseline, the difference, and its target. */
import type { Plan } from "./plan.ts";
import { failedRow, ms, percent, plusMs, type Row, rps } from "./report.ts";
import { ok, type Results } from "./results.ts";

/** Every figure of `results` as a row, in the order the table prints them. */
export function buildRows(results: Results, plan: Plan): Row[] {
  const rows: Row[] = [];
  const errorRow = (figure: string, error: string) => rows.push(failedRow(figure, error));

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
    // The door, from the same rounds: against the floor of a Worker hop, and against /mcp.
    const { overPassThrough, overProxy, overDirect } = outcome.door;
    rows.push({
      figure: `${label} via door /servers/${server}/mcp p50`,
      proxy: ms(overPassThrough.proxy.p50),
      baseline: `${ms(overPassThrough.baseline.p50)} (pass-through)`,
      delta: `${plusMs(overPassThrough.diff.p50)} (median of pairs; over direct ${plusMs(overDirect.p50)})`,
      target: "",
    });
    rows.push({
      figure: `${label} via door p99`,
      proxy: ms(overPassThrough.proxy.p99),
      baseline: `${ms(overPassThrough.baseline.p99)} (pass-through)`,
      delta: `${plusMs(overPassThrough.proxy.p99 - overPassThrough.baseline.p99)} (pairs' p99 ${plusMs(overPassThrough.diff.p99)})`,
      target: "",
    });
    rows.push({
      figure: `${label} via door vs /mcp p50`,
      proxy: ms(overProxy.proxy.p50),
      baseline: `${ms(overProxy.baseline.p50)} (/mcp)`,
      delta: `${plusMs(overProxy.diff.p50)} (median of pairs; p99 ${plusMs(overProxy.proxy.p99 - overProxy.baseline.p99)})`,
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
    rows.push({
      figure: `echo ${server}, 2026-07-28 agent, via door p50`,
      proxy: ms(figure.door.proxy.p50),
      baseline: ms(figure.door.baseline.p50),
      delta: `${plusMs(figure.door.diff.p50)} (median of pairs; over /mcp ${plusMs(figure.doorOverProxy.p50)})`,
      target: "",
    });
  }

  const seen = ok(results.backendRequests);
  const count = (n: number) => String(Math.round(n * 100) / 100);
  for (const [kind, counts] of Object.entries(seen?.perCall ?? {})) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const backends = kind === "tools/list" ? 3 : 1;
    rows.push({
      figure: `backend HTTP requests per ${kind}`,
      proxy: count(total),
      baseline: String(backends),
      delta: Object.entries(counts)
        .map(([key, n]) => `${count(n)}× ${key}`)
        .join(", "),
      target: `${backends} (one per backend)`,
      met: total <= backends,
    });
  }
  // What a door keeps per call so that a 2025-era agent can resume its stream; /mcp keeps none.
  for (const [kind, logs] of Object.entries(seen?.streamLogsPerCall ?? {})) {
    if (!kind.includes("door")) continue;
    rows.push({
      figure: `StreamLog Durable Objects made per ${kind}`,
      proxy: count(logs),
      baseline: `${count(seen?.streamLogsPerCall["tools/call mcp2_echo"] ?? Number.NaN)} (/mcp)`,
      delta: "one SQLite database per numbered stream, on disk here",
      target: "",
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
          ? {
              // A direct point with no answers at all (an overloaded machine) meets nothing.
              met:
                direct.rps > 0 && ratio >= 0.7 && proxy.errorCount === 0 && direct.errorCount === 0,
            }
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
    const door = ok(results.throughput[`door→${server}`]?.[64]);
    const proxy = ok(results.throughput[`proxy→${server}`]?.[64]);
    if (door && direct) {
      rows.push({
        figure: `throughput echo ${server} @64 via door /servers/${server}/mcp`,
        proxy: rps(door.rps, door.errorCount),
        baseline: rps(direct.rps, direct.errorCount),
        delta: `${percent(door.rps / direct.rps)} (/mcp ${percent(proxy && proxy.rps / direct.rps)})`,
        target: "",
      });
    } else if (results.throughput[`door→${server}`]) {
      errorRow(`throughput echo ${server} @64 via door`, "see JSON");
    }
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

  return rows;
}
