/**
 * The proxy killed in the middle of a burst of writes (SIGKILL of its workerd, under `npm start`'s
 * launcher as the other e2e tests run it), then started again on the same state: every write an
 * agent had its answer for is audited (docs/design.md, "Audit", what a crash can lose). Its record
 * is in D1, read back through GET /admin/audit, or else in the proxy's log file (the line is
 * written before the answer's last bytes go out); D1 lacks only the newest records, those of the
 * last FLUSH_AFTER_MS before the kill and of the batch being written.
 *
 * The kill comes the moment one more agent has its answer: the last answer a proxy gives before
 * it dies is the one whose record is most at risk.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { type Launched, launch } from "./launcher.ts";

/** The audit store's FLUSH_AFTER_MS (workers/proxy/src/state/audit-store.ts). */
const FLUSH_AFTER_MS = 100;
/**
 * What the bound allows on top of FLUSH_AFTER_MS: the batch's own write to D1, and its timer
 * firing late, on a machine whose two cores are shared with other test suites (measured there:
 * up to about 300 ms more).
 */
const BUSY_MS = 500;
/** Agents writing at once; each writer has its own connections (each agent may have 8 calls). */
const AGENTS = 4;
const WRITERS_PER_AGENT = 4;
/** How long the burst runs before the last write, whose answer sets off the kill. */
const BURST_MS = 3000;
const MODERN = "2026-07-28";
/**
 * How each agent's writers ask: a 2025-era agent gets an SSE answer, a 2026-07-28 one a JSON
 * body; on `/mcp` the gateway frames it, at mcp1's door it relays the backend's.
 */
const WAYS = [
  { era: "legacy", via: "gateway" },
  { era: "modern", via: "gateway" },
  { era: "legacy", via: "door" },
  { era: "modern", via: "door" },
] as const;
type Way = (typeof WAYS)[number];

const stamp = Date.now();
const writers = Array.from({ length: AGENTS }, (_, i) => `crash_writer${i}`);
/** The agent whose answer sets off the kill: quiet until then. */
const LAST = "crash_last";
const dir = join(tmpdir(), `mcpcp-audit-crash-${stamp}`);
let system: Launched | undefined;

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An answer the agent has: its request's id, how it came, and when. */
interface Answered {
  requestId: string;
  way: Way;
  receivedAt: number;
}

let nextId = 1;

/**
 * One tools/call that writes a battle event, over its own connection. It is answered once the
 * agent has the call's whole JSON-RPC response (an SSE event, or the JSON body), as an MCP client
 * takes it: `onAnswer` runs at that moment, before the stream's end.
 */
function write(
  bearer: string,
  way: Way,
  battle: string,
  onAnswer: () => void = () => {},
): Promise<Answered> {
  const modern = way.era === "modern";
  const name = way.via === "door" ? "update_battle_process" : "mcp1_update_battle_process";
  const path = way.via === "door" ? "/servers/mcp1/mcp" : "/mcp";
  const meta = modern
    ? {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "crash-writer", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      }
    : {};
  const id = nextId++;
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: {
      name,
      arguments: { battle_id: battle, message: `write ${id}`, reported_by: "crash-writer" },
      ...meta,
    },
  });
  return new Promise((resolve, reject) => {
    const call = request(new URL(path, `http://127.0.0.1:${system?.ports.proxy}`), {
      method: "POST",
      agent: false,
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${bearer}`,
        "mcp-protocol-version": modern ? MODERN : "2025-11-25",
        ...(modern ? { "mcp-method": "tools/call", "mcp-name": name } : {}),
      },
    });
    call.on("error", reject);
    call.on("response", (response) => {
      const requestId = response.headers["mcpcp-request-id"];
      const sse = (response.headers["content-type"] ?? "").includes("text/event-stream");
      let text = "";
      let answered = false;
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
        if (answered || !isWhole(text, sse, id)) return;
        answered = true;
        if (typeof requestId !== "string" || response.statusCode !== 200) {
          reject(new Error(`not a write's answer: ${response.statusCode} ${text.slice(0, 200)}`));
          return;
        }
        onAnswer();
        resolve({ requestId, way, receivedAt: Date.now() });
      });
      response.on("error", reject);
      response.on("end", () => {
        if (!answered) reject(new Error(`no whole answer: ${text.slice(0, 200)}`));
      });
    });
    call.end(body);
  });
}

/** Whether `text` holds the whole response to request `id`: its SSE event, or the JSON body. */
function isWhole(text: string, sse: boolean, id: number): boolean {
  if (sse) {
    return text
      .split(/\n\n/)
      .slice(0, -1)
      .some((event) => event.includes(`"id":${id}`));
  }
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The pids of every workerd process under `root` (wrangler runs two per `wrangler dev`). */
function workerdUnder(root: number): number[] {
  const parents = new Map<number, number>();
  const commands = new Map<number, string>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      commands.set(Number(name), readFileSync(`/proc/${name}/cmdline`, "utf8"));
    } catch {
      // gone meanwhile
    }
  }
  const under = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) return true;
    }
    return false;
  };
  return [...commands]
    .filter(([pid, command]) => /\/workerd\0serve\0/.test(command) && under(pid))
    .map(([pid]) => pid);
}

interface AuditLine {
  request_id: string;
  agent: string;
  at: string;
  duration_ms: number;
}

/** The proxy's audit log lines in `file` (one per record), in the order they were written. */
function auditLines(file: string): Map<string, AuditLine> {
  const lines = new Map<string, AuditLine>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const start = line.indexOf('{"event":"audit"');
    if (start < 0) continue;
    const record = JSON.parse(line.slice(start)) as AuditLine;
    lines.set(record.request_id, record);
  }
  return lines;
}

/** Resolves once `file` has not grown for `quietMs`: what a dead workerd wrote has arrived. */
async function settled(file: string, quietMs = 1000): Promise<void> {
  let size = -1;
  for (let waited = 0; waited < 15_000; waited += quietMs) {
    const now = statSync(file).size;
    if (now === size) return;
    size = now;
    await sleep(quietMs);
  }
}

/** The request ids of the records D1 holds for `agents` since `since`. */
async function storedRecords(proxyUrl: URL, agents: string[], since: string) {
  const auditor = await mintToken({ agent: "crash_auditor", scope: "audit_read" });
  const stored = new Set<string>();
  for (const agent of agents) {
    const url = new URL("/admin/audit", proxyUrl);
    url.search = new URLSearchParams({ agent, since, limit: "1000" }).toString();
    const answer = await fetch(url, { headers: { authorization: `Bearer ${auditor}` } });
    expect(answer.status).toBe(200);
    const { records } = (await answer.json()) as { records: { request_id: string }[] };
    for (const record of records) stored.add(record.request_id);
  }
  return stored;
}

describe("a proxy killed mid-burst", () => {
  it("loses no answered write's record: each is in D1, or in the log file and among the last FLUSH_AFTER_MS", async () => {
    mkdirSync(dir, { recursive: true });
    const agents = [...writers, LAST];
    const policy = join(dir, "policy.json");
    writeFileSync(
      policy,
      JSON.stringify(Object.fromEntries(agents.map((a) => [a, { mcp1: "*" }]))),
    );
    system = await launch({ env: { MCPCP_POLICY: policy } });
    const proxyLog = join(system.logDir, "proxy.log");
    const battle = `crash-${stamp}`;
    // All write to one battle: its first writer owns it, the others' tokens bind them to it.
    const bound = { battles: [battle] };
    const bearers = await Promise.all(writers.map((agent) => mintToken({ agent, ...bound })));
    const last = await mintToken({ agent: LAST, ...bound });
    const since = new Date().toISOString();
    // Warm: each agent's gate, mcp1's battle, the door and the audit table exist before the burst.
    for (const bearer of [...bearers, last]) {
      for (const way of WAYS) await write(bearer, way, battle);
    }
    const workerd = workerdUnder(system.pids.proxy as number);
    expect(workerd.length).toBeGreaterThan(0);

    const answered: Answered[] = [];
    let cut = 0;
    let stop = false;
    const burst = bearers.flatMap((bearer) =>
      Array.from({ length: WRITERS_PER_AGENT }, async (_, w) => {
        const way = WAYS[w % WAYS.length] as Way;
        while (!stop) {
          try {
            answered.push(await write(bearer, way, battle));
          } catch {
            cut += 1; // in flight when the proxy died: no answer
          }
        }
      }),
    );
    await sleep(BURST_MS);
    let killedAt = 0;
    const final = await write(last, WAYS[0], battle, () => {
      killedAt = Date.now();
      for (const pid of workerd) process.kill(pid, "SIGKILL");
    });
    answered.push(final);
    stop = true;
    await Promise.all(burst);
    await settled(proxyLog);
    const logged = auditLines(proxyLog);
    // wrangler starts a new workerd by itself, but its dev proxy no longer reaches it: the whole
    // system starts again, on the same state (.wrangler/state), D1 as the kill left it.
    await system.stop();
    system = await launch({ env: { MCPCP_POLICY: policy } });
    const stored = await storedRecords(system.proxyUrl, agents, since);
    await system.stop();

    // 1. Every answered write is audited: in D1, or else in the log file.
    const unaudited = answered.filter((a) => !stored.has(a.requestId) && !logged.has(a.requestId));
    // 2. D1 lacks only the newest records: batches are stored in order, so from the first logged
    //    record D1 lacks, it lacks every later one (the batches the kill caught)...
    const order = [...logged.values()].filter((line) => agents.includes(line.agent));
    const first = order.findIndex((line) => !stored.has(line.request_id));
    const lost = first < 0 ? [] : order.slice(first);
    // 3. ... and those are the records of the last FLUSH_AFTER_MS, and of the batch being written.
    const ended = (line: AuditLine) => Date.parse(line.at) + line.duration_ms;
    const oldest = lost.length ? killedAt - Math.min(...lost.map(ended)) : 0;
    const where = (id: string) => (stored.has(id) ? "D1" : logged.has(id) ? "log" : "nowhere");
    console.log(
      `[e2e] ${answered.length} writes answered (the last in ${where(final.requestId)}), ${cut} cut by the kill; D1 lacks ${lost.length} logged records (${answered.filter((a) => !stored.has(a.requestId)).length} answered), the oldest ended ${oldest} ms before the kill`,
    );
    expect(new Set(answered.map((a) => a.way)).size).toBe(WAYS.length);
    expect(unaudited).toEqual([]);
    expect(lost.filter((line) => stored.has(line.request_id))).toEqual([]);
    expect(oldest).toBeLessThanOrEqual(FLUSH_AFTER_MS + BUSY_MS);
  }, 300_000);
});
