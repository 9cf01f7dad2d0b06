/**
 * The scale section (`npm run bench -- --scale [--quick]`): how the gateway's cost grows with the
 * size of what it serves, each figure at three sizes with its growth (bench/growth.ts) beside it.
 *
 * 1. Backends: `tools/list` and `tools/call` for one agent granted 1, 10 and 50 EXTRA_BACKENDS,
 *    all served by one Node process (test/support/streams-backend.ts, one endpoint per path).
 * 2. Policy: 10, 1,000 and 100,000 agents in POLICY. A fresh workerd each: the first request's
 *    time (the isolate validates the configuration and seeds the ControlStore), the proxy
 *    isolate's V8 heap and workerd's RSS after it, and one agent's tools/call p50.
 * 3. Battle: one battle on mcp1 grown to 100, 10,000 and 100,000 events (appended through its
 *    tool, straight to mcp1 with the proxy's assertion): the append rate while it grew, the JSON
 *    API's first page, the battle page, and `?after=` pages at the start and at the end.
 * 4. Audit: the D1 audit table seeded to 10⁴, 10⁵ and 10⁶ records (10³/10⁴/10⁵ with --quick) in
 *    the audit store's own columns, then `GET /admin/audit?agent=…&tool=…` for a filter that
 *    matches often and for one that matches nothing.
 *
 * Each part runs its own workerd (Miniflare, direct sockets, from the `wrangler deploy --dry-run`
 * bundles, as bench/system.ts and bench/streams.ts do). Nothing is asserted but the counts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { ensureKeys, writeDevVars } from "../keys/generate.ts";
import { mintInspectionToken, mintToken } from "../keys/mint.ts";
import { startStreamsBackend } from "../test/support/streams-backend.ts";
import { bundle, bundleModules, type DevOptions, devOptions, readDevVars } from "./build.ts";
import { directEndpoint, type Endpoint } from "./endpoint.ts";
import { describeGrowth, growthOf } from "./growth.ts";
import { CdpSession } from "./lab/inspector.ts";
import { findWorkerdPid } from "./lab/proc.ts";
import { ms, textTable } from "./report.ts";
import { ROOT } from "./root.ts";
import { RpcClient, type RpcReply, toolText } from "./rpc.ts";
import type { Part } from "./scale-parts.ts";
import { round, summarize } from "./stats.ts";

const BUILD_ROOT = join(ROOT, ".wrangler", "bench-build");
const AGENT = "bench";
/** The most backends EXTRA_BACKENDS may list (core/config.ts); more come through the admin API. */
const MAX_EXTRA_BACKENDS = 32;

export interface ScalePlan {
  quick: boolean;
  backends: number[];
  agents: number[];
  events: number[];
  records: number[];
  /** Timed requests per figure at each size. */
  rounds: number;
  battleCallers: number;
}

export function scalePlan(quick: boolean): ScalePlan {
  return quick
    ? {
        quick,
        backends: [1, 10, 50],
        agents: [10, 1_000, 10_000],
        events: [100, 1_000, 5_000],
        records: [1_000, 10_000, 100_000],
        rounds: 40,
        battleCallers: 16,
      }
    : {
        quick,
        backends: [1, 10, 50],
        agents: [10, 1_000, 100_000],
        events: [100, 10_000, 100_000],
        records: [10_000, 100_000, 1_000_000],
        rounds: 200,
        battleCallers: 16,
      };
}

/** One table of the section: a row per figure, a column per size, and the figure's growth. */
export interface ScaleTable {
  title: string;
  sizeName: string;
  sizes: number[];
  rows: { figure: string; cells: string[]; growth: string; values: (number | null)[] }[];
  notes: string[];
}

type Logger = (line: string) => void;

interface Keys {
  dir: string;
  proxy: Record<string, string>;
  mcp1: Record<string, string>;
}

interface Bundles {
  proxy: string;
  mcp1: string;
}

/** A running workerd with the proxy (and mcp1, real or a stub), and how to reach them. */
interface Workerd {
  mf: Miniflare;
  proxyBase: URL;
  mcp1Base?: URL;
  pid: number | undefined;
  inspector?: URL;
  stop: () => Promise<void>;
}

const MCP1_STUB = "export default { fetch: () => new Response('', { status: 404 }) };";

async function startWorkerd(
  bundles: Bundles,
  build: string,
  proxyOptions: DevOptions,
  options: { mcp1?: DevOptions; inspector?: boolean; state: string; log?: Logger },
): Promise<Workerd> {
  const direct = [{ host: "127.0.0.1", port: 0 }];
  const mcp1 = options.mcp1
    ? {
        ...options.mcp1,
        name: "mcpcp-mcp1",
        modules: await bundleModules(bundles.mcp1),
        modulesRoot: bundles.mcp1,
        unsafeDirectSockets: direct,
      }
    : {
        // mcp1 is no agent's server here; the binding only has to exist.
        name: "mcpcp-mcp1",
        modules: [{ type: "ESModule" as const, path: "mcp1.mjs", contents: MCP1_STUB }],
        compatibilityDate: proxyOptions.compatibilityDate,
      };
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      log: new Log(LogLevel.ERROR),
      // The Workers' errors are shown (one would explain a failed figure); the rest is dropped.
      handleStructuredLogs: ({ level, message }) => {
        if (level === "error") options.log?.(`workerd ${level}: ${message.trim().slice(0, 600)}`);
      },
      ...(options.inspector ? { inspectorPort: 0 } : {}),
      cf: false,
      resourcePersistencePath: join(build, options.state),
      workers: [
        {
          ...proxyOptions,
          name: "mcpcp-proxy",
          modules: await bundleModules(bundles.proxy),
          modulesRoot: bundles.proxy,
          unsafeDirectSockets: direct,
        },
        mcp1,
      ],
    }),
  );
  await mf.ready;
  return {
    mf,
    proxyBase: await mf.unsafeGetDirectURL("mcpcp-proxy"),
    ...(options.mcp1 ? { mcp1Base: await mf.unsafeGetDirectURL("mcpcp-mcp1") } : {}),
    pid: await findWorkerdPid(),
    ...(options.inspector ? { inspector: await mf.getInspectorURL() } : {}),
    stop: () => mf.dispose(),
  };
}

function proxyEndpoint(base: URL, token: string): Endpoint {
  return { url: new URL("/mcp", base), headers: { authorization: `Bearer ${token}` } };
}

/** Wall time of `fn` in milliseconds. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function getText(url: URL, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response;
}

function expectOk(reply: RpcReply, what: string): void {
  const result = reply.message.result as { isError?: boolean } | undefined;
  if (reply.status !== 200 || reply.message.error || !result || result.isError) {
    throw new Error(`${what}: HTTP ${reply.status} ${toolText(reply).slice(0, 200)}`);
  }
}

/** `n` samples of an RPC, checked, in milliseconds. */
async function rpcSamples(
  client: RpcClient,
  n: number,
  method: string,
  params: unknown,
  check: (reply: RpcReply) => void,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const reply = await client.call(method, params);
    check(reply);
    samples.push(reply.ms);
  }
  return samples;
}

function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

async function rssMb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return mb(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
}

/** A row whose growth is told from `values` (the costs, per size). */
function row(
  figure: string,
  sizes: number[],
  values: (number | null)[],
  show: (value: number) => string,
  growthFrom: (number | null)[] = values,
): ScaleTable["rows"][number] {
  const points = sizes.flatMap((size, i) => {
    const cost = growthFrom[i];
    return cost === null || cost === undefined ? [] : [{ size, cost }];
  });
  return {
    figure,
    cells: values.map((v) => (v === null ? "n/a" : show(v))),
    growth: describeGrowth(growthOf(points)),
    values: values.map((v) => (v === null ? null : round(v))),
  };
}

const perSecond = (value: number) => `${Math.round(value)}/s`;
const megabytes = (value: number) => `${value.toFixed(1)} MB`;
const kilobytes = (value: number) =>
  value < 1024 ? `${value.toFixed(1)} KB` : `${(value / 1024).toFixed(1)} MB`;

// ── 1. backends ──────────────────────────────────────────────────────────────────────────────

/** The policy that grants the bench agent every tool of `ids`. */
const grant = (ids: readonly string[]) => ({
  [AGENT]: Object.fromEntries(ids.map((id) => [id, "*"])),
});

async function backendsTable(
  plan: ScalePlan,
  keys: Keys,
  bundles: Bundles,
  build: string,
  log: Logger,
): Promise<ScaleTable> {
  const backend = await startStreamsBackend();
  const figures: { listP50: number; listP99: number; callP50: number; callP99: number }[] = [];
  let directList = Number.NaN;
  let directCall = Number.NaN;
  try {
    const token = await mintToken({ agent: AGENT, keysDir: keys.dir, ttlSeconds: 3600 });
    const admin = await mintToken({
      agent: "operator",
      scope: "admin",
      keysDir: keys.dir,
      ttlSeconds: 3600,
    });
    // The floor: the same requests straight to one endpoint of the backend process.
    const direct = new RpcClient({ url: new URL(`${backend.url}/b0/mcp`), headers: {} });
    await rpcSamples(direct, 20, "tools/list", {}, () => {});
    directList = summarize(await rpcSamples(direct, plan.rounds, "tools/list", {}, () => {})).p50;
    const echo = { name: "echo", arguments: { message: "hi" } };
    directCall = summarize(
      await rpcSamples(direct, plan.rounds, "tools/call", echo, (r) => expectOk(r, "direct echo")),
    ).p50;
    direct.close();
    for (const n of plan.backends) {
      const ids = Array.from({ length: n }, (_, i) => `b${i}`);
      const options = devOptions(
        "wrangler.toml",
        {
          ...keys.proxy,
          // Only configured servers may be granted: the rest once they are added, below.
          POLICY: JSON.stringify(grant(ids.slice(0, MAX_EXTRA_BACKENDS))),
          EXTRA_BACKENDS: JSON.stringify(
            ids.slice(0, MAX_EXTRA_BACKENDS).map((id) => ({ id, url: `${backend.url}/${id}/mcp` })),
          ),
        },
        [],
      );
      const workerd = await startWorkerd(bundles, build, options, { state: `backends-${n}`, log });
      try {
        // EXTRA_BACKENDS holds at most 32; the rest are added at run time, as an operator would.
        for (const id of ids.slice(MAX_EXTRA_BACKENDS)) {
          const response = await fetch(new URL("/admin/backends", workerd.proxyBase), {
            method: "POST",
            headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
            body: JSON.stringify({ id, url: `${backend.url}/${id}/mcp` }),
          });
          if (response.status !== 201) {
            throw new Error(
              `POST /admin/backends ${id}: HTTP ${response.status} ${await response.text()}`,
            );
          }
        }
        if (n > MAX_EXTRA_BACKENDS) {
          const policyUrl = new URL("/admin/policy", workerd.proxyBase);
          const current = (await (
            await fetch(policyUrl, { headers: { authorization: `Bearer ${admin}` } })
          ).json()) as { version: string };
          const response = await fetch(policyUrl, {
            method: "PUT",
            headers: {
              authorization: `Bearer ${admin}`,
              "content-type": "application/json",
              "if-match": `"${current.version}"`,
            },
            body: JSON.stringify({ policy: grant(ids) }),
          });
          if (response.status !== 200) {
            throw new Error(`PUT /admin/policy: HTTP ${response.status} ${await response.text()}`);
          }
        }
        const client = new RpcClient(proxyEndpoint(workerd.proxyBase, token));
        const listed = (reply: RpcReply) => {
          const tools = (reply.message.result as { tools?: unknown[] } | undefined)?.tools;
          if (reply.status !== 200 || tools?.length !== n) {
            throw new Error(
              `tools/list over ${n}: ${tools?.length} tools, HTTP ${reply.status} ${JSON.stringify(reply.message).slice(0, 300)}`,
            );
          }
        };
        const call = { name: `b${n - 1}_echo`, arguments: { message: "hi" } };
        const called = (reply: RpcReply) => expectOk(reply, `tools/call over ${n}`);
        // Warm up: each backend's era learned, the isolate's caches filled.
        await rpcSamples(client, 20, "tools/list", {}, listed);
        await rpcSamples(client, 20, "tools/call", call, called);
        const list: number[] = [];
        const calls: number[] = [];
        // Interleaved, so both see the same machine.
        for (let i = 0; i < plan.rounds; i++) {
          list.push(...(await rpcSamples(client, 1, "tools/list", {}, listed)));
          calls.push(...(await rpcSamples(client, 1, "tools/call", call, called)));
        }
        client.close();
        const l = summarize(list);
        const c = summarize(calls);
        figures.push({ listP50: l.p50, listP99: l.p99, callP50: c.p50, callP99: c.p99 });
        log(
          `backends ${n}: tools/list p50 ${ms(l.p50)} p99 ${ms(l.p99)}; tools/call p50 ${ms(c.p50)}`,
        );
      } finally {
        await workerd.stop();
      }
    }
  } finally {
    await backend.close();
  }
  const sizes = plan.backends;
  const list50 = figures.map((f) => f.listP50);
  return {
    title: "Backends behind the gateway (one agent granted all)",
    sizeName: "backends",
    sizes,
    rows: [
      row("tools/list p50", sizes, list50, ms),
      row(
        "tools/list p99",
        sizes,
        figures.map((f) => f.listP99),
        ms,
      ),
      row(
        "tools/list p50 per backend",
        sizes,
        list50.map((v, i) => v / (sizes[i] ?? 1)),
        (v) => ms(v),
        list50,
      ),
      row(
        "tools/list p50 over direct (one backend)",
        sizes,
        list50.map((v) => v - directList),
        (v) => `+${ms(v)}`,
      ),
      row(
        "tools/call p50",
        sizes,
        figures.map((f) => f.callP50),
        ms,
      ),
      row(
        "tools/call p99",
        sizes,
        figures.map((f) => f.callP99),
        ms,
      ),
    ],
    notes: [
      `direct to one backend endpoint: tools/list p50 ${ms(directList)}, tools/call echo p50 ${ms(directCall)}`,
      `${plan.rounds} interleaved rounds of each per size after 20 of warm-up; every backend is one path of one Node process (SDK createMcpHandler, 2026-07-28), so the fan-out's backend work is serialised on one core`,
      "growth of the per-backend row is that of the total (tools/list p50) against the number of backends",
      `EXTRA_BACKENDS lists at most ${MAX_EXTRA_BACKENDS} backends; past that they are added with POST /admin/backends (the run-time store holds up to 64)`,
    ],
  };
}

// ── 2. policy ────────────────────────────────────────────────────────────────────────────────

async function policyTable(
  plan: ScalePlan,
  keys: Keys,
  bundles: Bundles,
  build: string,
  log: Logger,
): Promise<ScaleTable> {
  const backend = await startStreamsBackend();
  const figures: {
    bytes: number;
    firstMs: number;
    secondMs: number;
    heapBefore: number;
    heapAfter: number;
    rssBefore: number | null;
    rssAfter: number | null;
    callP50: number;
    callP99: number;
    callMean: number;
    healthP50: number;
  }[] = [];
  try {
    const token = await mintToken({ agent: AGENT, keysDir: keys.dir, ttlSeconds: 3600 });
    for (const n of plan.agents) {
      const policy: Record<string, Record<string, string>> = { [AGENT]: { b0: "*" } };
      for (let i = 1; i < n; i++) policy[`agent_${i}`] = { b0: "*" };
      const POLICY = JSON.stringify(policy);
      const options = devOptions(
        "wrangler.toml",
        {
          ...keys.proxy,
          POLICY,
          EXTRA_BACKENDS: JSON.stringify([{ id: "b0", url: `${backend.url}/b0/mcp` }]),
        },
        [],
      );
      const workerd = await startWorkerd(bundles, build, options, {
        state: `policy-${n}`,
        inspector: true,
        log,
      });
      let cdp: CdpSession | undefined;
      try {
        const targets = (await (
          await fetch(new URL("/json/list", workerd.inspector?.href.replace(/^ws/, "http")))
        ).json()) as { id: string; webSocketDebuggerUrl: string }[];
        const target = targets.find((t) => t.id === "core:user:mcpcp-proxy");
        if (!target) throw new Error("the proxy's inspector target not found");
        cdp = await CdpSession.open(target.webSocketDebuggerUrl);
        const session = cdp;
        const heapMb = async () =>
          mb((await session.send<{ usedSize: number }>("Runtime.getHeapUsage", {})).usedSize);
        const health = new URL("/healthz", workerd.proxyBase);
        const heapBefore = await heapMb();
        const rssBefore = await rssMb(workerd.pid);
        // The isolate's first request: the configuration validated (POLICY parsed), the
        // ControlStore seeded with it and the first version read back.
        const firstMs = await timed(async () => {
          const response = await getText(health);
          if (response.status !== 200) throw new Error(`first /healthz: HTTP ${response.status}`);
        });
        const secondMs = await timed(() => getText(health));
        const client = new RpcClient(proxyEndpoint(workerd.proxyBase, token));
        const call = { name: "b0_echo", arguments: { message: "hi" } };
        const called = (reply: RpcReply) => expectOk(reply, `tools/call, ${n} agents`);
        await rpcSamples(client, 20, "tools/call", call, called);
        const calls = await rpcSamples(client, plan.rounds, "tools/call", call, called);
        client.close();
        const healths: number[] = [];
        for (let i = 0; i < 50; i++) healths.push(await timed(() => getText(health)));
        // Settle, then read what the isolate holds.
        // V8 runs the collection as a task of the isolate's, which workerd runs when the isolate
        // next does something (bench/streams.ts): a request gives it something to do.
        const collected = session.send("HeapProfiler.collectGarbage");
        for (let settled = false; !settled; ) {
          void collected.then(() => {
            settled = true;
          });
          await getText(health);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const heapAfter = await heapMb();
        const rssAfter = await rssMb(workerd.pid);
        const f = {
          bytes: POLICY.length,
          firstMs,
          secondMs,
          heapBefore,
          heapAfter,
          rssBefore,
          rssAfter,
          callP50: summarize(calls).p50,
          callP99: summarize(calls).p99,
          callMean: summarize(calls).mean,
          healthP50: summarize(healths).p50,
        };
        figures.push(f);
        log(`policy ${n} agents: ${JSON.stringify(f)}`);
      } finally {
        cdp?.close();
        await workerd.stop();
      }
    }
  } finally {
    await backend.close();
  }
  const sizes = plan.agents;
  return {
    title: "Agents in the policy (one agent calling)",
    sizeName: "agents",
    sizes,
    rows: [
      row(
        "POLICY size",
        sizes,
        figures.map((f) => f.bytes / 1024),
        kilobytes,
      ),
      row(
        "first request of an isolate (GET /healthz)",
        sizes,
        figures.map((f) => f.firstMs),
        ms,
      ),
      row(
        "second request (GET /healthz)",
        sizes,
        figures.map((f) => f.secondMs),
        ms,
      ),
      row(
        "proxy isolate V8 heap after the first requests",
        sizes,
        figures.map((f) => f.heapAfter),
        megabytes,
      ),
      row(
        "  of which since before the first request",
        sizes,
        figures.map((f) => f.heapAfter - f.heapBefore),
        megabytes,
      ),
      row(
        "workerd RSS after",
        sizes,
        figures.map((f) => f.rssAfter),
        megabytes,
      ),
      row(
        "tools/call p50, one agent",
        sizes,
        figures.map((f) => f.callP50),
        ms,
      ),
      row(
        "tools/call p99, one agent",
        sizes,
        figures.map((f) => f.callP99),
        ms,
      ),
      row(
        "tools/call mean, one agent",
        sizes,
        figures.map((f) => f.callMean),
        ms,
      ),
      row(
        "GET /healthz p50 (steady)",
        sizes,
        figures.map((f) => f.healthP50),
        ms,
      ),
    ],
    notes: [
      "a fresh workerd and empty ControlStore per size; the store runs in the proxy's isolate here, so the heap holds its copy too",
      `${plan.rounds} tools/call echo to one backend after 20 of warm-up; 50 GET /healthz; heap read after a forced GC`,
    ],
  };
}

// ── 3. battle ────────────────────────────────────────────────────────────────────────────────

async function battleTable(
  plan: ScalePlan,
  keys: Keys,
  bundles: Bundles,
  build: string,
  log: Logger,
): Promise<ScaleTable> {
  const proxyOptions = devOptions("wrangler.toml", keys.proxy, []);
  const mcp1Options = devOptions("workers/mcp1/wrangler.toml", keys.mcp1, []);
  const workerd = await startWorkerd(bundles, build, proxyOptions, {
    mcp1: mcp1Options,
    state: "battle",
    log,
  });
  const figures: {
    appendRate: number;
    firstPage: number;
    html: number;
    startPage: number;
    endPage: number;
  }[] = [];
  let lost = 0;
  try {
    const base = workerd.mcp1Base as URL;
    const endpoint = await directEndpoint(
      new URL("/mcp", base),
      "mcp1",
      keys.proxy.PROXY_SIGNING_KEY,
      AGENT,
    );
    const inspection = await mintInspectionToken({ keysDir: keys.dir });
    const auth = { authorization: `Bearer ${inspection}` };
    const battleId = `scale-${process.pid}-${Date.now()}`;
    // The assertion is renewed before each request (a backend takes each once), so each caller
    // has its own endpoint object.
    const callers = await Promise.all(
      Array.from({ length: plan.battleCallers }, async () => {
        const own = await directEndpoint(endpoint.url, "mcp1", keys.proxy.PROXY_SIGNING_KEY, AGENT);
        return new RpcClient(own);
      }),
    );
    const seen = new Set<number>();
    let appended = 0;
    const appendTo = async (target: number) => {
      const started = performance.now();
      const from = appended;
      await Promise.all(
        callers.map(async (client) => {
          while (appended < target) {
            const n = appended++;
            const reply = await client.call("tools/call", {
              name: "update_battle_process",
              arguments: {
                battle_id: battleId,
                message: `scale event ${n}`,
                reported_by: "scale bench",
                detail: { n },
              },
            });
            const seq = (
              reply.message.result as { structuredContent?: { event?: { seq?: number } } }
            )?.structuredContent?.event?.seq;
            if (typeof seq !== "number") {
              throw new Error(`append ${n}: HTTP ${reply.status} ${toolText(reply).slice(0, 200)}`);
            }
            seen.add(seq);
          }
        }),
      );
      return (target - from) / ((performance.now() - started) / 1000);
    };
    const page = (after: number) =>
      new URL(`/api/battles/${battleId}${after ? `?after=${after}` : ""}`, base);
    const pageMs = async (after: number) =>
      timed(async () => {
        const response = await fetch(page(after), { headers: auth });
        const body = (await response.json()) as { events?: unknown[] };
        if (response.status !== 200 || !body.events?.length) {
          throw new Error(`page after ${after}: HTTP ${response.status}`);
        }
      });
    const reps = plan.quick ? 10 : 30;
    for (const n of plan.events) {
      const rate = await appendTo(n);
      for (let i = 0; i < 3; i++) {
        await pageMs(0);
        await getText(new URL(`/battles/${battleId}`, base));
      }
      const first: number[] = [];
      const html: number[] = [];
      for (let i = 0; i < reps; i++) {
        first.push(await pageMs(0));
        html.push(
          await timed(async () => {
            const response = await getText(new URL(`/battles/${battleId}`, base));
            if (response.status !== 200) throw new Error(`battle page: HTTP ${response.status}`);
          }),
        );
      }
      // Pages of 100 through ?after=: the first ten and the last ten of the battle.
      const pages = Math.min(10, Math.floor(n / 100));
      const start: number[] = [];
      const end: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        for (let p = 0; p < pages; p++) start.push(await pageMs(p * 100));
        for (let p = pages; p > 0; p--) end.push(await pageMs(n - p * 100));
      }
      const f = {
        appendRate: rate,
        firstPage: summarize(first).p50,
        html: summarize(html).p50,
        startPage: summarize(start).p50,
        endPage: summarize(end).p50,
      };
      figures.push(f);
      log(`battle ${n} events: ${JSON.stringify(f)}`);
    }
    for (const client of callers) client.close();
    const total = plan.events.at(-1) ?? 0;
    for (let seq = 1; seq <= total; seq++) if (!seen.has(seq)) lost++;
  } finally {
    await workerd.stop();
  }
  const sizes = plan.events;
  return {
    title: "Events in one battle (mcp1, one BattleSession)",
    sizeName: "events",
    sizes,
    rows: [
      // A rate that holds is flat; growth is told from the time per event (1 / rate).
      row(
        "append rate while growing to this size",
        sizes,
        figures.map((f) => f.appendRate),
        perSecond,
        figures.map((f) => 1 / f.appendRate),
      ),
      row(
        "GET /api/battles/<id> (first page) p50",
        sizes,
        figures.map((f) => f.firstPage),
        ms,
      ),
      row(
        "GET /battles/<id> (page HTML) p50",
        sizes,
        figures.map((f) => f.html),
        ms,
      ),
      row(
        "?after= page of 100, first ten p50",
        sizes,
        figures.map((f) => f.startPage),
        ms,
      ),
      row(
        "?after= page of 100, last ten p50",
        sizes,
        figures.map((f) => f.endPage),
        ms,
      ),
    ],
    notes: [
      `${plan.battleCallers} callers append update_battle_process straight to mcp1 with the proxy's assertion (2025-11-25, SSE answers); the rate at each size is over the events appended since the size before; ${lost} of ${sizes.at(-1)} sequence numbers missing`,
      "growth of the append row is that of the time per event; the page rows are the time of one page",
    ],
  };
}

// ── 4. audit ─────────────────────────────────────────────────────────────────────────────────

/**
 * INSERTs records `from`..`to`-1 in the audit store's columns, spread over agents and tools. The
 * counter is cast: D1 binds a JavaScript number as a REAL, and 'agent_' || 7.0 is "agent_7.0".
 */
const SEED = `
INSERT INTO audit (at, request_id, message_index, agent, method, server, tool, decision, outcome,
                   status, duration_ms, bytes_in, bytes_out)
WITH RECURSIVE n(i) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 1764000000 + i / 100.0, 'unixepoch'),
       'seed-' || i, NULL, 'agent_' || (i % 100), 'tools/call', 'b' || (i % 5),
       'tool_' || ((i / 100) % 20), 'allow', 'ok', 200, 1.5, 120, 300
FROM n`;

async function auditTable(
  plan: ScalePlan,
  keys: Keys,
  bundles: Bundles,
  build: string,
  log: Logger,
): Promise<ScaleTable> {
  const options = devOptions("wrangler.toml", keys.proxy, []);
  const workerd = await startWorkerd(bundles, build, options, { state: "audit", log });
  const figures: {
    seedRate: number;
    hit: number;
    miss: number;
    agentOnly: number;
    byServer: number;
  }[] = [];
  try {
    const token = await mintToken({
      agent: "auditor",
      scope: "audit_read",
      keysDir: keys.dir,
      ttlSeconds: 3600,
    });
    const auth = { authorization: `Bearer ${token}` };
    const query = (params: string) => new URL(`/admin/audit?${params}`, workerd.proxyBase);
    const ask = async (params: string, expect: number | undefined) =>
      timed(async () => {
        const response = await fetch(query(params), { headers: auth });
        const body = (await response.json()) as { records?: unknown[] } | unknown[];
        const records = Array.isArray(body) ? body : body.records;
        if (response.status !== 200 || !Array.isArray(records)) {
          throw new Error(
            `audit ${params}: HTTP ${response.status} ${JSON.stringify(body).slice(0, 200)}`,
          );
        }
        if (expect !== undefined && records.length !== expect) {
          throw new Error(`audit ${params}: ${records.length} records, expected ${expect}`);
        }
      });
    // The schema, as the audit store makes it on first use.
    await ask("limit=1", undefined);
    const db = await workerd.mf.getD1Database("AUDIT_DB", "mcpcp-proxy");
    let seeded = 0;
    const reps = plan.quick ? 10 : 30;
    for (const n of plan.records) {
      const started = performance.now();
      const chunk = 100_000;
      for (let from = seeded; from < n; from += chunk) {
        await db
          .prepare(SEED)
          .bind(from, Math.min(n, from + chunk))
          .run();
      }
      const seedRate = (n - seeded) / ((performance.now() - started) / 1000);
      const counted = await db
        .prepare("SELECT COUNT(*) AS c, MIN(agent) AS a, MAX(at) AS t FROM audit")
        .first<{ c: number; a: string; t: string }>();
      if (counted?.c !== n) throw new Error(`audit: ${JSON.stringify(counted)} after seeding ${n}`);
      seeded = n;
      // agent_7 with tool_3: 1 in 2000 of the records, newest first, 100 a page.
      const matches = Math.min(100, Math.floor(n / 2000));
      // Unrecorded first: the statements prepared, the pages of the table read once.
      for (let i = 0; i < 3; i++) {
        await ask("agent=agent_7&tool=tool_3", undefined);
        await ask("agent=agent_7&tool=no_such_tool", 0);
        await ask("agent=agent_7", undefined);
        await ask("agent=agent_7&server=b3", 0);
      }
      const hit: number[] = [];
      const miss: number[] = [];
      const agentOnly: number[] = [];
      const byServer: number[] = [];
      for (let i = 0; i < reps; i++) {
        hit.push(await ask("agent=agent_7&tool=tool_3", matches || undefined));
        miss.push(await ask("agent=agent_7&tool=no_such_tool", 0));
        agentOnly.push(await ask("agent=agent_7", Math.min(100, n / 100)));
        // agent_7's records are all on b2 (i % 100 = 7, so i % 5 = 2): none is on b3, and only
        // the (agent, server, at) index keeps this from reading every record of agent_7.
        byServer.push(await ask("agent=agent_7&server=b3", 0));
      }
      const f = {
        seedRate,
        hit: summarize(hit).p50,
        miss: summarize(miss).p50,
        agentOnly: summarize(agentOnly).p50,
        byServer: summarize(byServer).p50,
      };
      figures.push(f);
      log(`audit ${n} records: ${JSON.stringify(f)}`);
    }
  } finally {
    await workerd.stop();
  }
  const sizes = plan.records;
  return {
    title: "Records in the audit store (D1)",
    sizeName: "records",
    sizes,
    rows: [
      row(
        "agent + tool, matching 1 in 2000 (100 a page) p50",
        sizes,
        figures.map((f) => f.hit),
        ms,
      ),
      row(
        "agent + tool, matching none p50",
        sizes,
        figures.map((f) => f.miss),
        ms,
      ),
      row(
        "agent only (100 a page) p50",
        sizes,
        figures.map((f) => f.agentOnly),
        ms,
      ),
      row(
        "agent + server, matching none p50",
        sizes,
        figures.map((f) => f.byServer),
        ms,
      ),
      row(
        "seed rate (records/s, for the record)",
        sizes,
        figures.map((f) => f.seedRate),
        perSecond,
        figures.map((f) => 1 / f.seedRate),
      ),
    ],
    notes: [
      "records seeded with one INSERT … SELECT per 100,000 through the D1 binding, in the audit store's columns: 100 agents, 20 tools, 5 servers, one record per 10 ms",
      "each size adds to the table of the size before; growth of the seed row is that of the time per record",
    ],
  };
}

// ── the section ──────────────────────────────────────────────────────────────────────────────

export async function runScale(
  plan: ScalePlan,
  parts: readonly Part[],
  log: Logger,
): Promise<{
  tables: ScaleTable[];
  errors: Record<string, string>;
  seconds: Record<string, number>;
}> {
  await mkdir(BUILD_ROOT, { recursive: true });
  const build = await mkdtemp(join(BUILD_ROOT, "scale-"));
  const dir = await mkdtemp(join(tmpdir(), "mcpcp-scale-keys-"));
  process.env.WRANGLER_LOG ??= "error";
  const tables: ScaleTable[] = [];
  const errors: Record<string, string> = {};
  const seconds: Record<string, number> = {};
  try {
    log("scale: bundling the proxy and mcp1 (wrangler deploy --dry-run)");
    const [proxy, mcp1] = await Promise.all([
      bundle("wrangler.toml", join(build, "proxy")),
      bundle("workers/mcp1/wrangler.toml", join(build, "mcp1")),
    ]);
    await ensureKeys({ dir });
    const policyPath = join(dir, "policy.json");
    await writeFile(policyPath, JSON.stringify({ [AGENT]: { mcp1: "*" } }));
    const devVars = await writeDevVars({
      keysDir: dir,
      policyPath,
      devVarsPath: join(dir, "proxy.dev.vars"),
      mcp1DevVarsPath: join(dir, "mcp1.dev.vars"),
    });
    const keys: Keys = {
      dir,
      proxy: await readDevVars(devVars.path),
      mcp1: devVars.mcp1Path ? await readDevVars(devVars.mcp1Path) : {},
    };
    const bundles = { proxy, mcp1 };
    const run = {
      backends: backendsTable,
      policy: policyTable,
      battle: battleTable,
      audit: auditTable,
    };
    for (const part of parts) {
      const began = performance.now();
      log(`scale: ${part}`);
      try {
        tables.push(await run[part](plan, keys, bundles, build, log));
      } catch (error) {
        errors[part] = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`scale: ${part} failed: ${errors[part]}`);
      }
      seconds[part] = Math.round((performance.now() - began) / 1000);
    }
  } finally {
    await rm(build, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
  return { tables, errors, seconds };
}

/** A size for a column head: 100000 → 100,000. */
const sizeText = (size: number) => size.toLocaleString("en-US");

/** The tables as Markdown, for BENCHMARKS.md. */
export function scaleMarkdown(tables: readonly ScaleTable[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  return tables
    .map((t) =>
      [
        `**${t.title}**`,
        "",
        `| ${[t.sizeName, ...t.sizes.map(sizeText), "growth"].join(" | ")} |`,
        `| ${["---", ...t.sizes.map(() => "---"), "---"].join(" | ")} |`,
        ...t.rows.map((r) => `| ${[r.figure, ...r.cells, r.growth].map(cell).join(" | ")} |`),
        "",
        ...t.notes.map((n) => `- ${n}`),
      ].join("\n"),
    )
    .join("\n\n");
}

/** The tables as fixed-width text. */
export function scaleText(tables: readonly ScaleTable[]): string {
  return tables
    .map((t) => {
      const table = textTable([
        [t.sizeName, ...t.sizes.map(sizeText), "growth"],
        ...t.rows.map((r) => [r.figure, ...r.cells, r.growth]),
      ]);
      return [t.title, table, ...t.notes.map((n) => `  ${n}`)].join("\n");
    })
    .join("\n\n");
}
