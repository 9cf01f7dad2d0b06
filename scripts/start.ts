/**
 * The launcher (`npm start`): makes keys if missing, checks the gateway's configuration, starts the
 * four servers, waits until each answers its health check, looks at each extra backend, prints one
 * banner, watches the servers, and stops them all on Ctrl+C or SIGTERM with nothing left running.
 *
 * On the terminal: the banner, then one line per request (from the proxy's audit log line), and
 * loud, specific lines when a server fails. Everything the servers and wrangler print goes to one
 * log file per server (logs/<name>.log, written afresh each start); `npm start -- --verbose`
 * prints it on the terminal too, each line prefixed with the server's name.
 *
 *   proxy  wrangler dev  :9003   (workers/proxy, wrangler.toml)
 *   mcp1   wrangler dev  :9004   (workers/mcp1 + its Durable Object)
 *   mcp2   node          :9005   (local-backends/mcp2)
 *   mcp3   node          :9006   (local-backends/mcp3)
 *
 * Extra backends are someone else's servers: `EXTRA_BACKENDS` in the launcher's environment (the
 * proxy's variable, `[{id, url, identity?}]`) is checked by the proxy's rules, handed to the proxy,
 * and each one is probed once for the banner; the launcher neither starts nor waits for them.
 * `MCPCP_POLICY` names another policy file than policy.json. `BATTLE_WEBHOOK_URL` (and its
 * `BATTLE_WEBHOOK_*_MS` settings) in the launcher's environment reach mcp1, which then delivers
 * every battle event there (docs/design.md, "Battle delivery").
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, stripVTControlCharacters } from "node:util";
import { createAssertionSigner } from "../common/assertion.ts";
import {
  parseWebhookConfig,
  WEBHOOK_JWKS_PATH,
  type WebhookVars,
} from "../common/battle-webhook.ts";
import { ensureBattleWebhookKey } from "../keys/battle-webhook-key.ts";
import { ensureKeys, writeDevVars } from "../keys/generate.ts";
import { mintInspectionToken } from "../keys/mint.ts";
import { proxyKeyPaths } from "../keys/proxy-key.ts";
import type { ExtraBackendSpec } from "../workers/proxy/src/core/config.ts";
import { readOAuthSettings } from "../workers/proxy/src/core/oauth-settings.ts";
import { type Probe, probeBackend, probeLine } from "./backend-probe.ts";
import { dockerHost } from "./docker-host.ts";
import { checkLaunchConfig } from "./launch-config.ts";
import { requestLine } from "./request-line.ts";
import { prepareWranglerState } from "./wrangler-state.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const HEALTH_TIMEOUT_MS = 90_000;
/** How long the banner waits for an extra backend to answer its handshake. */
const PROBE_TIMEOUT_MS = 3000;

/** `--verbose`: every line the servers print reaches the terminal, as well as their log files. */
const VERBOSE = verboseFlag();

function verboseFlag(): boolean {
  try {
    const { values } = parseArgs({
      options: { verbose: { type: "boolean", short: "v", default: false } },
    });
    return values.verbose;
  } catch (error) {
    process.stderr.write(
      `[launcher] ${(error as Error).message}\nusage: npm start [-- --verbose]\n`,
    );
    process.exit(2);
  }
}

/**
 * The proxy's port; mcp1, mcp2 and mcp3 take the next three (docs/design.md, "The system":
 * 9003–9006). Another base (`MCPCP_PORT_BASE=9103`) runs a second, fully separate system beside
 * the first: its own ports, inspector ports, Durable Object storage and wrangler dev registry.
 */
const PORT_BASE = portBase(process.env.MCPCP_PORT_BASE);

function portBase(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 9003;
  const base = Number(raw);
  if (!Number.isInteger(base) || base < 1024 || base > 65000) {
    throw new Error(`MCPCP_PORT_BASE must be a port number 1024..65000, got "${raw}"`);
  }
  return base;
}

interface Service {
  name: string;
  port: number;
  args: string[];
  env?: Record<string, string>;
  /** The server's umask; unset, it keeps the launcher's. */
  umask?: string;
}

function wranglerDev(config: string, port: number, extra: string[] = []): string[] {
  return [
    WRANGLER,
    "dev",
    "-c",
    config,
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    // Distinct inspector ports: two wrangler dev processes cannot share one.
    "--inspector-port",
    String(port + 226),
    "--show-interactive-dev-session=false",
    ...extra,
  ];
}

/**
 * The proxy's EXTRA_BACKENDS, from the launcher's environment. It always reaches the proxy as a
 * `--var`, set or empty, so what the launcher checked is what the proxy runs with, whatever
 * wrangler.toml's development value says.
 */
const EXTRA_BACKENDS = process.env.EXTRA_BACKENDS ?? "";

/**
 * mcp1's webhook settings from the launcher's environment. The URL always reaches mcp1 as a
 * `--var`, set or empty, like EXTRA_BACKENDS; the delays only when set (else wrangler.toml's).
 */
const WEBHOOK_VARS = [
  "BATTLE_WEBHOOK_URL",
  "BATTLE_WEBHOOK_BACKOFF_MS",
  "BATTLE_WEBHOOK_MAX_BACKOFF_MS",
  "BATTLE_WEBHOOK_TIMEOUT_MS",
] as const;

function webhookVarArgs(): string[] {
  return WEBHOOK_VARS.flatMap((name) => {
    const value = process.env[name];
    if (name !== "BATTLE_WEBHOOK_URL" && !value) return [];
    return ["--var", `${name}:${value ?? ""}`];
  });
}

/** The policy file: policy.json, or the one `MCPCP_POLICY` names. */
const POLICY_FILE = resolve(ROOT, process.env.MCPCP_POLICY || "policy.json");

/**
 * Where the Workers keep their state (Durable Objects, D1), if not wrangler's default:
 * `MCPCP_STATE_DIR` (the end-to-end tests give each test file its own, so what one changes at run
 * time, a policy included, never reaches another), else a folder per port base other than 9003.
 */
const STATE_DIR = process.env.MCPCP_STATE_DIR;

/** The four servers of a system whose proxy listens on `base`. */
function services(base: number): Service[] {
  const [proxy, mcp1, mcp2, mcp3] = [base, base + 1, base + 2, base + 3];
  const stateOf = (server: string) =>
    STATE_DIR !== undefined
      ? ["--persist-to", resolve(STATE_DIR, server)]
      : base === 9003
        ? []
        : ["--persist-to", `.wrangler/state-${base}${server === "mcp1" ? "" : `-${server}`}`];
  const separateState = stateOf("mcp1");
  return [
    {
      name: "proxy",
      port: proxy,
      args: wranglerDev("wrangler.toml", proxy, [
        "--var",
        `MCP2_URL:http://127.0.0.1:${mcp2}/mcp`,
        "--var",
        `MCP3_URL:http://127.0.0.1:${mcp3}/mcp`,
        "--var",
        `EXTRA_BACKENDS:${EXTRA_BACKENDS}`,
        // OAuth sign-in, off unless the launcher's environment sets OIDC_ISSUER; the client
        // secret goes through .dev.vars, never a command line (keys/generate.ts).
        "--var",
        `OIDC_ISSUER:${process.env.OIDC_ISSUER ?? ""}`,
        "--var",
        `OIDC_CLIENT_ID:${process.env.OIDC_CLIENT_ID ?? ""}`,
        ...stateOf("proxy"),
      ]),
      // What wrangler and workerd write (state, registry, builds) is the owner's alone.
      umask: "077",
    },
    {
      name: "mcp1",
      port: mcp1,
      args: wranglerDev("workers/mcp1/wrangler.toml", mcp1, [
        ...webhookVarArgs(),
        ...separateState,
      ]),
      umask: "077",
    },
    {
      name: "mcp2",
      port: mcp2,
      args: ["local-backends/mcp2/server.ts"],
      env: { MCP2_PORT: String(mcp2), ...dockerHost() },
    },
    {
      name: "mcp3",
      port: mcp3,
      args: ["local-backends/mcp3/server.ts"],
      env: { MCP3_PORT: String(mcp3) },
    },
  ];
}

const SERVICES = services(PORT_BASE);

/**
 * One log file per server: logs/<name>.log, logs/<base>/<name>.log for another port base, or in
 * `MCPCP_LOG_DIR` (the e2e tests keep each system's logs apart).
 */
const LOG_DIR = process.env.MCPCP_LOG_DIR
  ? resolve(ROOT, process.env.MCPCP_LOG_DIR)
  : join(ROOT, "logs", PORT_BASE === 9003 ? "" : String(PORT_BASE));
const logPath = (name: string) => join(LOG_DIR, `${name}.log`);
/** A path as the user would type it from the repository root (absolute when outside it). */
function shown(path: string): string {
  const inside = relative(ROOT, path);
  return inside.startsWith("..") ? path : inside;
}
/** How many of a server's last lines a failure report repeats. */
const TAIL_LINES = 15;

const running = new Map<string, ChildProcess>();
let stopping = false;
/** Set once the banner is out; before it, a server that exits is reported by its health check. */
let ready = false;

function log(line: string): void {
  process.stdout.write(`[launcher] ${line}\n`);
}

const loud = process.stderr.isTTY && !process.env.NO_COLOR;

/** A failure the user must see, on stderr, in red on a terminal. */
function alarm(line: string): void {
  process.stderr.write(loud ? `\x1b[1;31m[launcher] ${line}\x1b[0m\n` : `[launcher] ${line}\n`);
}

/**
 * Fails before anything starts if the JWKS, EXTRA_BACKENDS or the policy would be refused by the
 * proxy; the policy may name the servers the launcher starts and the extra backends.
 */
function checkConfiguration(): ExtraBackendSpec[] {
  const checked = checkLaunchConfig({
    jwks: readFileSync(join(ROOT, "keys", "jwks.json"), "utf8"),
    policy: readFileSync(POLICY_FILE, "utf8"),
    policyFile: shown(POLICY_FILE),
    extraBackends: EXTRA_BACKENDS,
    builtIn: SERVICES.filter((s) => s.name !== "proxy").map((s) => s.name),
  });
  if (!checked.ok) throw new Error(checked.error);
  // OAuth sign-in by the proxy's own rules: a half-configured provider fails here, named.
  const oauth = readOAuthSettings(process.env);
  if (!oauth.ok) throw new Error(oauth.error);
  return checked.value.extraBackends;
}

/**
 * Checks mcp1's webhook settings by mcp1's own rules, with the key `npm run keys` made, so a bad
 * URL or delay fails here naming the variable. The banner's line, or none when webhooks are off.
 */
async function checkWebhook(): Promise<string[]> {
  const vars: WebhookVars = {
    ...Object.fromEntries(WEBHOOK_VARS.map((name) => [name, process.env[name]])),
    BATTLE_WEBHOOK_SIGNING_KEY: JSON.stringify(await ensureBattleWebhookKey()),
  };
  const parsed = parseWebhookConfig(vars);
  if (!parsed.ok) throw new Error(parsed.error);
  if (!parsed.config) return [];
  const jwks = `http://127.0.0.1:${PORT_BASE}${WEBHOOK_JWKS_PATH}`;
  return [`  Webhook:     POST ${parsed.config.url}/battles/<id>, signed (keys: ${jwks})`];
}

/**
 * Probes every extra backend at once. One with `identity: "assertion"` gets the proxy's assertion,
 * signed with the proxy's key from keys/, as the proxy would send it (its `sub` is the launcher).
 */
async function probeExtraBackends(backends: ExtraBackendSpec[]): Promise<string[]> {
  if (backends.length === 0) return [];
  const signer = backends.some((b) => b.identity === "assertion")
    ? await createAssertionSigner(JSON.parse(readFileSync(proxyKeyPaths().signingKey, "utf8")))
    : undefined;
  const assertion = signer && ((backend: string) => signer.sign("mcpcp-launcher", backend));
  const probes: Probe[] = await Promise.all(
    backends.map((backend) =>
      probeBackend(backend, { timeoutMs: PROBE_TIMEOUT_MS, ...(assertion ? { assertion } : {}) }),
    ),
  );
  return backends.map((backend, i) => probeLine(backend, probes[i] as Probe));
}

/** Refuses to start over something already listening, whose health check would fool us. */
async function checkPortsFree(): Promise<void> {
  for (const { name, port } of SERVICES) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer()
        .once("error", () => resolve(false))
        .listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
    });
    if (!free) throw new Error(`port ${port} (${name}) is in use: is MCPCP already running?`);
  }
}

/** What a server printed: its log file, its last lines for failure reports. */
interface Output {
  file: WriteStream;
  tail: string[];
}

const outputs = new Map<string, Output>();

function openLog(service: Service): Output {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = createWriteStream(logPath(service.name), { flags: "w" });
  file.write(
    `[launcher] ${new Date().toISOString()} starting ${service.name}: ${service.args.join(" ")}\n`,
  );
  const output = { file, tail: [] };
  outputs.set(service.name, output);
  return output;
}

/** The log's path and its last lines, for a report that a server failed. */
function lastWords(name: string): string {
  const tail = outputs.get(name)?.tail ?? [];
  const lines = tail.length
    ? [`last lines of ${shown(logPath(name))}:`, ...tail.map((line) => `  | ${line}`)]
    : [`it printed nothing (${shown(logPath(name))})`];
  return lines.join("\n");
}

/**
 * What reaches the terminal besides request lines: wrangler's error blocks, which are also how a
 * Worker's console.error shows (`✘ [ERROR] {"event":"unhandled_error",...}`): a Worker that
 * failed to build, lost its configuration, or answered with a 500.
 */
const ERROR_LINE = /^\s*✘ \[ERROR\]/;

function follow(
  stream: NodeJS.ReadableStream | null,
  service: Service,
  output: Output,
  out: NodeJS.WriteStream,
): void {
  if (!stream) return;
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const raw of lines) {
      if (!raw.trim()) continue;
      // wrangler colours its warnings and errors even with FORCE_COLOR=0.
      const line = stripVTControlCharacters(raw);
      // A pipe can still deliver after its process exited and the launcher closed the log.
      if (!output.file.writableEnded) output.file.write(`${line}\n`);
      output.tail.push(line);
      if (output.tail.length > TAIL_LINES) output.tail.shift();
      if (VERBOSE) {
        out.write(`[${service.name}] ${raw}\n`);
        continue;
      }
      const request = service.name === "proxy" ? requestLine(line) : undefined;
      if (request) process.stdout.write(`${request}\n`);
      else if (ERROR_LINE.test(line)) {
        alarm(`${service.name}: ${line.trim()} (more in ${shown(logPath(service.name))})`);
      }
    }
  });
}

/**
 * How a server is started so that nothing of it outlives the launcher, however the launcher ends
 * (SIGKILL included, which no handler of ours sees). The server runs in its own process group
 * beside a sentinel: a subshell of that group holding the read end of a pipe whose only write end
 * is the launcher's (the child's stdin, which the server itself never gets). When the launcher
 * dies the kernel closes that end, the sentinel's read sees end of file, and it ends the whole
 * group: SIGTERM, then SIGKILL a second later. The group holds everything the server started
 * (wrangler → wrangler's CLI → workerd and esbuild); PR_SET_PDEATHSIG on the server alone
 * (`setpriv --pdeathsig`) reaches only wrangler's first process, and left workerd running. The
 * sentinel ignores SIGINT and SIGTERM, so stopAll's SIGTERM reaches the server only and the
 * sentinel goes with the group's final SIGKILL. `$1` is the server's umask ("" keeps ours).
 */
const SUPERVISED = [
  // In sh without job control a background list's stdin is /dev/null: keep the pipe as fd 3.
  "exec 3<&0",
  "(trap '' INT TERM; while read -r _ <&3; do :; done; kill -s TERM 0; sleep 1; kill -s KILL 0) &",
  '[ -z "$1" ] || umask "$1"',
  "shift",
  'exec "$@" </dev/null 3<&-',
].join("\n");

function start(service: Service): ChildProcess {
  const child = spawn(
    "/bin/sh",
    ["-c", SUPERVISED, service.name, service.umask ?? "", process.execPath, ...service.args],
    {
      cwd: ROOT,
      // Its own process group, so stopping it also stops what it started (workerd under wrangler).
      detached: true,
      // stdin is the sentinel's pipe (SUPERVISED): the launcher never writes to it.
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        ...service.env,
        WRANGLER_SEND_METRICS: "false",
        // One registry per system, inside the repo: service bindings find this system's mcp1 only.
        WRANGLER_REGISTRY_PATH: join(ROOT, ".wrangler", `registry-${PORT_BASE}`),
        FORCE_COLOR: "0",
        // Miniflare fetches workers.cloudflare.com/cf.json for `request.cf` on every start and
        // prints a stack when offline; the Workers never read `request.cf`, so its placeholder does.
        CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
      },
    },
  );
  // Nothing is written to the sentinel's pipe, so an error on it can only mean it has gone.
  child.stdin?.on("error", () => {});
  const output = openLog(service);
  follow(child.stdout, service, output, process.stdout);
  follow(child.stderr, service, output, process.stderr);
  child.on("exit", (code, signal) => {
    running.delete(service.name);
    // The sentinel then ends whatever the server left in its group (workerd after wrangler).
    child.stdin?.destroy();
    output.file.write(`[launcher] ${service.name} exited (${signal ?? `exit code ${code}`})\n`);
    if (stopping || !ready) return;
    alarm(
      `${service.name} stopped unexpectedly (${signal ?? `exit code ${code}`}); the others keep running`,
    );
    alarm(lastWords(service.name));
    if (running.size === 0) {
      alarm("every server has stopped; exiting");
      void closeLogs().then(() => process.exit(1));
    }
  });
  running.set(service.name, child);
  return child;
}

/** What each server's /healthz said once it answered: `ok`, or `degraded` with a reason. */
const health = new Map<string, { status: string; reason?: string }>();

async function healthy(service: Service, deadline: number): Promise<void> {
  const url = `http://127.0.0.1:${service.port}/healthz`;
  while (Date.now() < deadline) {
    if (!running.has(service.name))
      throw new Error(
        `${service.name} exited before it became healthy\n${lastWords(service.name)}`,
      );
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) {
        const body = (await response.json().catch(() => ({}))) as {
          status?: string;
          reason?: string;
        };
        health.set(service.name, { status: body.status ?? "ok", reason: body.reason });
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `${service.name} did not answer ${url} within ${HEALTH_TIMEOUT_MS / 1000} s\n${lastWords(service.name)}`,
  );
}

/** Stops every child's process group: SIGTERM, then SIGKILL for any still alive after 5 s. */
async function stopAll(): Promise<void> {
  stopping = true;
  const children = [...running.values()];
  const exited = children.map(
    (child) =>
      new Promise<void>((resolve) =>
        child.exitCode !== null ? resolve() : child.once("exit", () => resolve()),
      ),
  );
  for (const child of children) signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => {
    for (const child of children) signalGroup(child, "SIGKILL");
  }, 5000);
  await Promise.all(exited);
  clearTimeout(timer);
  // wrangler's workerd children may outlive wrangler itself for a moment; their group goes too.
  for (const child of children) signalGroup(child, "SIGKILL");
}

/** Ends every log file, so nothing a server printed last is lost when the launcher exits. */
function closeLogs(): Promise<unknown> {
  return Promise.all(
    [...outputs.values()].map(({ file }) => new Promise((done) => file.end(done))),
  );
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function banner(
  startedMs: number,
  inspectionToken: string,
  extraRows: string[],
  webhookRows: string[],
): string {
  const logFiles = `${shown(LOG_DIR) || "."}/{${SERVICES.map((x) => x.name).join(",")}}.log`;
  const rows = SERVICES.map((s) => {
    const pid = running.get(s.name)?.pid ?? "?";
    const state = health.get(s.name);
    const note =
      state?.status === "degraded" ? `  DEGRADED: ${state.reason ?? "no reason given"}` : "";
    return `  ${s.name.padEnd(6)} http://127.0.0.1:${s.port}/mcp  (pid ${pid})${note}`;
  });
  return [
    "",
    `MCPCP is up in ${(startedMs / 1000).toFixed(1)} s. Agents connect to the proxy:`,
    ...rows,
    ...extraRows,
    "",
    // Through the proxy, as deployed: mcp1 itself has no public route there.
    `  Battles:     http://127.0.0.1:${PORT_BASE}/battles#token=${inspectionToken}`,
    ...webhookRows,
    `  Admin:       http://127.0.0.1:${PORT_BASE}/admin  (token: npm run -s token -- --agent ops --scope admin)`,
    "  Try it:      npm run client",
    "  A token:     npm run token -- --agent agent_name1",
    `  Logs:        ${logFiles}${VERBOSE ? "" : " (npm start -- --verbose prints them here too)"}`,
    "  Stop:        Ctrl+C",
    ...(VERBOSE
      ? []
      : ["  Requests:    one line each below: time, agent, method, tool, status, ms"]),
    "",
    "MCPCP ready",
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const began = Date.now();
  await ensureKeys({ force: false });
  // Before .dev.vars is written: a policy the proxy would refuse never reaches it.
  const extraBackends = checkConfiguration();
  await writeDevVars({ policyPath: POLICY_FILE });
  const webhookRows = await checkWebhook();
  await prepareWranglerState(ROOT, log);
  await checkPortsFree();

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      log(`${signal}: stopping all servers`);
      void stopAll()
        .then(closeLogs)
        .then(() => process.exit(0));
    });
  }

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (const service of SERVICES) start(service);
  await Promise.all(SERVICES.map((s) => healthy(s, deadline)));
  const extraRows = await probeExtraBackends(extraBackends);
  // A watcher's token (scope inspect_battles only): it can read battles and call no tool.
  const inspectionToken = await mintInspectionToken();
  process.stdout.write(banner(Date.now() - began, inspectionToken, extraRows, webhookRows));
  ready = true;
}

main().catch(async (error: unknown) => {
  alarm(`failed: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  await closeLogs();
  process.exit(1);
});
