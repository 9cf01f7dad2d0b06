/**
 * `node bench/streams.ts [--streams 500] [--rounds 2] [--idle 30] [--only <scenario>]`: what an agent's long-lived streams cost
 * workerd, and what comes back once they close. Not a timed test: it prints figures and writes
 * them to bench-results/streams.json; nothing is asserted but the counts it reports.
 *
 * The proxy runs from its `wrangler deploy --dry-run` bundle in workerd (Miniflare, direct
 * sockets, as bench/system.ts runs it), with two 2026-07-28 backends that count the listen
 * streams open on them (test/support/streams-backend.ts), so each agent `subscriptions/listen`
 * on /mcp makes two upstream listens. Three scenarios, each in a fresh workerd:
 *
 * - `one agent, no cap` (`MAX_STREAMS_PER_AGENT=0`): the attack as it was, one agent opening
 *   `--streams` listen streams, all of them admitted;
 * - `one agent, capped` (the default cap): the same attack, refused past the cap;
 * - `many agents, capped`: the same number of streams spread over agents at the cap each, the
 *   most the gateway admits: what each stream costs and what comes back.
 *
 * For each: workerd's resident memory (VmRSS) and the proxy isolate's V8 heap before, then in
 * each of `--rounds` rounds of opening and closing the streams, at the peak, just after they
 * closed, after `--idle` seconds of idling (V8's own GC schedule) and after a forced full GC
 * (over the inspector); and the upstream listens the backends still see open after the close.
 * A second round that peaks no higher than the first is memory reused, not leaked. With a cap, a second proxy Worker (its own isolate) bound to the
 * same AgentGate shows the cap holds across isolates.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { ensureKeys, writeDevVars } from "../keys/generate.ts";
import { mintToken } from "../keys/mint.ts";
import { type StreamsState, startStreamsBackend } from "../test/support/streams-backend.ts";
import { bundle, bundleModules, devOptions, readDevVars } from "./build.ts";
import { CdpSession } from "./lab/inspector.ts";
import { findWorkerdPid } from "./lab/proc.ts";
import { ROOT } from "./root.ts";

const MODERN = "2026-07-28";
const BUILD_ROOT = join(ROOT, ".wrangler", "bench-build");
/** The cap the scenarios with a cap run under: wrangler.toml's. */
const DEFAULT_CAP = 8;
/** Streams opened at once while a scenario opens its streams. */
const OPENING_AT_ONCE = 50;

const { values: args } = parseArgs({
  options: {
    streams: { type: "string", default: "500" },
    idle: { type: "string", default: "30" },
    rounds: { type: "string", default: "2" },
    snapshots: { type: "string" },
    only: { type: "string" },
  },
});
const STREAMS = Number(args.streams);
const IDLE_S = Number(args.idle);
const ROUNDS = Number(args.rounds);

const began = Date.now();
function log(line: string): void {
  const t = ((Date.now() - began) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[streams ${t}s] ${line}\n`);
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Memory {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
}

interface Scenario {
  name: string;
  cap: number;
  agents: number;
  perAgent: number;
}

interface Round {
  asked: number;
  opened: number;
  refused: number;
  refusal?: { status: number; retryAfter: string | null; body: string };
  /** Upstream listens open at the backends at the peak, and after the close. */
  upstreamAtPeak: number;
  upstreamAfterClose: number;
  upstreamOpenedInAll: number;
  /** How long after the close the backends saw their last upstream listen end, ms. */
  upstreamClosedMs: number | null;
  memory: { peak: Memory; afterClose: Memory; afterIdle: Memory; afterGc: Memory };
}

interface Figures {
  scenario: string;
  cap: number;
  agents: number;
  before: Memory;
  /** Each round opens the scenario's streams, holds them, closes them, idles, then forces a GC. */
  rounds: Round[];
  /**
   * With a cap: streams held on one isolate up to the cap, then the HTTP status of one more on
   * the other isolate, and of another once one of the first closed.
   */
  acrossIsolates?: { heldOnFirst: number; twinStatus: number; twinAfterOneClosed: number };
}

function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

/** One open `subscriptions/listen` stream, or the proxy's refusal of it. */
type Stream =
  | { ok: true; close: () => void }
  | { ok: false; status: number; retryAfter: string | null; body: string };

async function openListen(url: URL, token: string, n: number): Promise<Stream> {
  const abort = new AbortController();
  const response = await fetch(url, {
    method: "POST",
    signal: abort.signal,
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: `listen-${n}`,
      method: "subscriptions/listen",
      params: {
        notifications: { toolsListChanged: true },
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "streams-bench", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }),
  });
  const streamed = (response.headers.get("content-type") ?? "").includes("text/event-stream");
  if (response.status !== 200 || !response.body || !streamed) {
    return {
      ok: false,
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      body: (await response.text()).slice(0, 300),
    };
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("notifications/subscriptions/acknowledged")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`listen-${n} ended before its acknowledgement: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  // Read on, as a client does (heartbeats), until closed.
  void (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  return { ok: true, close: () => abort.abort() };
}

async function openAll(jobs: (() => Promise<Stream>)[]): Promise<Stream[]> {
  const streams: Stream[] = [];
  for (let i = 0; i < jobs.length; i += OPENING_AT_ONCE) {
    streams.push(...(await Promise.all(jobs.slice(i, i + OPENING_AT_ONCE).map((job) => job()))));
  }
  return streams;
}

async function upstream(stateUrl: string): Promise<{ open: number; opened: number }> {
  const state = (await (await fetch(stateUrl)).json()) as StreamsState;
  let open = 0;
  let opened = 0;
  for (const counts of Object.values(state)) {
    open += counts.listens;
    opened += counts.listensOpened;
  }
  return { open, opened };
}

async function run(scenario: Scenario): Promise<Figures> {
  await mkdir(BUILD_ROOT, { recursive: true });
  const build = await mkdtemp(join(BUILD_ROOT, "streams-"));
  const secretsDir = await mkdtemp(join(tmpdir(), "mcpcp-streams-keys-"));
  const backend = await startStreamsBackend();
  const stateUrl = `${backend.url}/__state`;
  let mf: Miniflare | undefined;
  let cdp: CdpSession | undefined;
  try {
    const agents = Array.from({ length: scenario.agents }, (_, i) => `streamer${i}`);
    const policy = Object.fromEntries(agents.map((agent) => [agent, { cnta: "*", cntb: "*" }]));
    await ensureKeys({ dir: secretsDir });
    const policyPath = join(secretsDir, "policy.json");
    await writeFile(policyPath, JSON.stringify(policy));
    const devVars = await writeDevVars({
      keysDir: secretsDir,
      policyPath,
      devVarsPath: join(secretsDir, "proxy.dev.vars"),
    });
    const secrets = await readDevVars(devVars.path);
    const proxyBundle = await bundle("wrangler.toml", join(build, "proxy"));
    const options = devOptions(
      "wrangler.toml",
      {
        ...secrets,
        EXTRA_BACKENDS: JSON.stringify([
          { id: "cnta", url: `${backend.url}/a/mcp` },
          { id: "cntb", url: `${backend.url}/b/mcp` },
        ]),
        MAX_STREAMS_PER_AGENT: String(scenario.cap),
      },
      [],
    );
    const modules = await bundleModules(proxyBundle);
    const direct = [{ host: "127.0.0.1", port: 0 }];
    process.env.WRANGLER_LOG ??= "error";
    mf = new Miniflare(
      convertV4MiniflareOptions({
        host: "127.0.0.1",
        port: 0,
        log: new Log(LogLevel.ERROR),
        handleStructuredLogs: () => {},
        inspectorPort: 0,
        cf: false,
        resourcePersistencePath: join(build, "state"),
        workers: [
          {
            ...options,
            name: "mcpcp-proxy",
            modules,
            modulesRoot: proxyBundle,
            unsafeDirectSockets: direct,
          },
          {
            // Another isolate of the gateway, whose agents' gates are the first one's.
            ...options,
            name: "mcpcp-proxy-twin",
            modules,
            modulesRoot: proxyBundle,
            durableObjects: {
              ...options.durableObjects,
              AGENT_GATE: { className: "AgentGate", scriptName: "mcpcp-proxy" },
            },
            unsafeDirectSockets: direct,
          },
          {
            // mcp1 is no agent's server here; the binding only has to exist.
            name: "mcpcp-mcp1",
            modules: [
              {
                type: "ESModule",
                path: "mcp1.mjs",
                contents: "export default { fetch: () => new Response('', { status: 404 }) };",
              },
            ],
            compatibilityDate: options.compatibilityDate,
          },
        ],
      }),
    );
    await mf.ready;
    log(`${scenario.name}: workerd ready`);
    const proxy = new URL("/mcp", await mf.unsafeGetDirectURL("mcpcp-proxy"));
    const twin = new URL("/mcp", await mf.unsafeGetDirectURL("mcpcp-proxy-twin"));
    const pid = await findWorkerdPid();
    if (pid === undefined) throw new Error("workerd's process not found");
    const inspector = await mf.getInspectorURL();
    const targets = (await (
      await fetch(new URL("/json/list", inspector.href.replace(/^ws/, "http")))
    ).json()) as { id: string; webSocketDebuggerUrl: string }[];
    const target = targets.find((t) => t.id === "core:user:mcpcp-proxy");
    if (!target) throw new Error("the proxy's inspector target not found");
    cdp = await CdpSession.open(target.webSocketDebuggerUrl);
    const session = cdp;
    const memory = async (): Promise<Memory> => {
      const heap = await session.send<{ usedSize: number; totalSize: number }>(
        "Runtime.getHeapUsage",
      );
      return {
        rssMb: mb(await rssOf(pid)),
        heapUsedMb: mb(heap.usedSize),
        heapTotalMb: mb(heap.totalSize),
      };
    };
    const collect = async () => {
      for (let i = 0; i < 3; i++) {
        const done = session.send("HeapProfiler.collectGarbage");
        // V8 runs the collection as a task of the isolate's, which workerd runs when the isolate
        // next does something: a request that needs no token gives it something to do.
        for (let settled = false; !settled; ) {
          void done.then(() => {
            settled = true;
          });
          await (await fetch(new URL("/healthz", proxy))).text();
          await sleep(50);
        }
      }
    };

    /** A heap snapshot of the proxy's isolate into --snapshots, for DevTools' Memory panel. */
    const snapshot = async (name: string) => {
      const chunks: string[] = [];
      session.on("HeapProfiler.addHeapSnapshotChunk", (params) => {
        chunks.push((params as { chunk: string }).chunk);
      });
      const taken = session.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      for (let settled = false; !settled; ) {
        void taken.then(() => {
          settled = true;
        });
        await (await fetch(new URL("/healthz", proxy))).text();
        await sleep(50);
      }
      await mkdir(args.snapshots ?? ".", { recursive: true });
      await writeFile(join(args.snapshots ?? ".", `${name}.heapsnapshot`), chunks.join(""));
    };

    const tokens = new Map<string, string>();
    for (const agent of agents) {
      tokens.set(agent, await mintToken({ agent, keysDir: secretsDir, ttlSeconds: 3600 }));
    }
    const tokenOf = (agent: string) => tokens.get(agent) ?? "";
    const first = agents[0] ?? "";

    // Warm up: the gateway loaded, the backends' era learned, one listen opened and closed.
    const warm = await openListen(proxy, tokenOf(first), -1);
    await sleep(1_000);
    if (warm.ok) warm.close();
    await sleep(2_000);
    await collect();
    const before = await memory();
    log(`${scenario.name}: before ${JSON.stringify(before)}`);

    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const jobs = agents.flatMap((agent, a) =>
        Array.from(
          { length: scenario.perAgent },
          (_, i) => () => openListen(proxy, tokenOf(agent), a * scenario.perAgent + i),
        ),
      );
      const streams = await openAll(jobs);
      const opened = streams.filter((s) => s.ok);
      const refused = streams.filter((s) => !s.ok);
      // The upstream listens open just after the agent's: wait until their count stops moving.
      let peakRss = await rssOf(pid);
      let last = -1;
      for (let i = 0; i < 40; i++) {
        await sleep(250);
        peakRss = Math.max(peakRss, await rssOf(pid));
        const now = (await upstream(stateUrl)).open;
        if (now === last && now >= opened.length) break;
        last = now;
      }
      for (let i = 0; i < 8; i++) {
        await sleep(250);
        peakRss = Math.max(peakRss, await rssOf(pid));
      }
      const upstreamAtPeak = (await upstream(stateUrl)).open;
      const peak = { ...(await memory()), rssMb: mb(peakRss) };
      log(
        `${scenario.name} #${round}: ${opened.length} open, ${refused.length} refused, ${upstreamAtPeak} upstream; peak ${JSON.stringify(peak)}`,
      );

      const closedAt = Date.now();
      for (const stream of opened) if (stream.ok) stream.close();
      let upstreamClosedMs: number | null = null;
      for (let i = 0; i < 120; i++) {
        if ((await upstream(stateUrl)).open === 0) {
          upstreamClosedMs = Date.now() - closedAt;
          break;
        }
        await sleep(250);
      }
      await sleep(2_000);
      const afterClose = await memory();
      const after = await upstream(stateUrl);
      await sleep(IDLE_S * 1000);
      const afterIdle = await memory();
      await collect();
      await sleep(1_000);
      const afterGc = await memory();
      if (args.snapshots) await snapshot(`${scenario.name.replace(/\W+/g, "-")}-${round}`);
      log(
        `${scenario.name} #${round}: closed, ${after.open} upstream left; ${JSON.stringify(afterClose)}, idle ${JSON.stringify(afterIdle)}, forced GC ${JSON.stringify(afterGc)}`,
      );
      const refusal = refused[0];
      rounds.push({
        asked: streams.length,
        opened: opened.length,
        refused: refused.length,
        ...(refusal && !refusal.ok
          ? {
              refusal: {
                status: refusal.status,
                retryAfter: refusal.retryAfter,
                body: refusal.body,
              },
            }
          : {}),
        upstreamAtPeak,
        upstreamAfterClose: after.open,
        upstreamOpenedInAll: after.opened,
        upstreamClosedMs,
        memory: { peak, afterClose, afterIdle, afterGc },
      });
    }
    const figures: Figures = {
      scenario: scenario.name,
      cap: scenario.cap,
      agents: scenario.agents,
      before,
      rounds,
    };

    if (scenario.cap > 0) {
      // The cap on one isolate, then one more on the other: refused there too. One closed on the
      // first: the other admits one.
      const held = await openAll(
        Array.from({ length: scenario.cap }, (_, i) => () => openListen(proxy, tokenOf(first), i)),
      );
      const onTwin = await openListen(twin, tokenOf(first), 9_000);
      const [one] = held;
      if (one?.ok) one.close();
      let again: Stream | undefined;
      for (let i = 0; i < 20 && !again?.ok; i++) {
        await sleep(250);
        again = await openListen(twin, tokenOf(first), 9_001 + i);
      }
      figures.acrossIsolates = {
        heldOnFirst: held.filter((s) => s.ok).length,
        twinStatus: onTwin.ok ? 200 : onTwin.status,
        twinAfterOneClosed: again?.ok ? 200 : again?.ok === false ? again.status : 0,
      };
      for (const stream of [...held, onTwin, ...(again ? [again] : [])]) {
        if (stream.ok) stream.close();
      }
    }
    return figures;
  } finally {
    cdp?.close();
    await mf?.dispose();
    await backend.close();
    await rm(build, { recursive: true, force: true });
    await rm(secretsDir, { recursive: true, force: true });
  }
}

const scenarios: Scenario[] = [
  { name: "one agent, no cap", cap: 0, agents: 1, perAgent: STREAMS },
  { name: "one agent, capped", cap: DEFAULT_CAP, agents: 1, perAgent: STREAMS },
  {
    name: "many agents, capped",
    cap: DEFAULT_CAP,
    agents: Math.ceil(STREAMS / DEFAULT_CAP),
    perAgent: DEFAULT_CAP,
  },
].filter((s) => !args.only || s.name.includes(args.only));

const results: Figures[] = [];
for (const scenario of scenarios) {
  log(`scenario: ${scenario.name}`);
  results.push(await run(scenario));
}
const out = join(ROOT, "bench-results", "streams.json");
await mkdir(join(ROOT, "bench-results"), { recursive: true });
await writeFile(out, `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);

const row = (m: Memory) => `${m.rssMb} MB (V8 heap used ${m.heapUsedMb} of ${m.heapTotalMb} MB)`;
for (const f of results) {
  console.log(`\n${f.scenario} (cap ${f.cap || "none"}, ${f.agents} agents)`);
  console.log(`  workerd RSS before          ${row(f.before)}`);
  f.rounds.forEach((r, i) => {
    console.log(`  round ${i + 1}: ${r.opened} of ${r.asked} streams opened, ${r.refused} refused`);
    if (r.refusal) console.log(`    refusal: HTTP ${r.refusal.status}, ${r.refusal.body}`);
    console.log(
      `    upstream listens: ${r.upstreamAtPeak} at the peak, ${r.upstreamAfterClose} after the close (the last ended ${r.upstreamClosedMs ?? "never"} ms after it), ${r.upstreamOpenedInAll} opened so far`,
    );
    console.log(`    workerd RSS peak          ${row(r.memory.peak)}`);
    console.log(`    2 s after the close       ${row(r.memory.afterClose)}`);
    console.log(`    after ${IDLE_S} s idle          ${row(r.memory.afterIdle)}`);
    console.log(`    after a forced full GC    ${row(r.memory.afterGc)}`);
  });
  if (f.acrossIsolates) console.log(`  across isolates: ${JSON.stringify(f.acrossIsolates)}`);
}
console.log(`\nfigures: ${out}`);
