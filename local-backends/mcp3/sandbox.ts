/**
 * The Python sandbox as a service: probes at start that a sandbox can really be created, reports
 * health, and runs programs through the bounded pool. It fails closed: until a probe has passed,
 * and whenever the last one failed, every call is refused. There is no unsandboxed fallback.
 */
import { lstat, readFile, readlink } from "node:fs/promises";
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { Health } from "../common/backend.ts";
import type { Mcp3Config } from "./config.ts";
import { interpret, refusal, toToolResult } from "./outcome.ts";
import { createPool } from "./pool.ts";
import { runSandboxed } from "./runner.ts";
import { type HostLayout, LAYOUT_PATHS, type SandboxPlan, sandboxCommand } from "./sandbox-argv.ts";
import { checkSlotUids, slotUid } from "./sandbox-users.ts";

/**
 * Run inside the sandbox at start. Exit 0 with "sandbox ok" only if the program is unprivileged,
 * cannot see the host's /etc, inherited no descriptor beyond stdio (or only /dev/null), and has
 * no route anywhere (connect fails at once with ENETUNREACH, where a shared network would time
 * out or connect).
 */
export const PROBE_CODE = `
import errno, os, socket
assert os.getuid() != 0 and os.geteuid() != 0, "the program runs as root"
assert not os.path.exists("/etc/passwd"), "the host's /etc is visible"
for name in os.listdir("/proc/self/fd"):
    if int(name) > 2:
        try:
            target = os.readlink("/proc/self/fd/" + name)
        except FileNotFoundError:
            continue
        assert target == "/dev/null", f"descriptor {name} leaked into the sandbox: {target}"
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("192.0.2.1", 9))
    raise AssertionError("the network is reachable")
except OSError as e:
    assert e.errno == errno.ENETUNREACH, f"the network is not isolated: {e!r}"
print("sandbox ok")
`;
const PROBE_TIMEOUT_SECONDS = 10;
/** Calls that name no agent (only tests that start mcp3 without keys) share one turn. */
const UNKNOWN_AGENT = "(unknown agent)";
/** A failed probe is retried on demand at most this often (the host may be fixed meanwhile). */
const REPROBE_AFTER_MS = 30_000;

type State = { ok: true } | { ok: false; reason: string };

export interface RunOptions {
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Who asked: the pool's turns and caps are per agent, and the log line names it. */
  agent?: string;
}

export interface PythonSandbox {
  /** The probe's verdict (waits for the probe in progress). */
  ready(): Promise<State>;
  health(): Promise<Health>;
  /** Runs `code` and returns the tool result; refuses when the sandbox is unavailable. */
  run(code: string, options?: RunOptions): Promise<CallToolResult>;
}

/** How /bin, /lib, ... look on this host: symlinks into /usr, real directories, or absent. */
export async function readHostLayout(): Promise<HostLayout> {
  const entries: HostLayout["entries"] = [];
  for (const path of LAYOUT_PATHS) {
    const stat = await lstat(path).catch(() => undefined);
    if (stat?.isSymbolicLink()) entries.push({ path, symlinkTo: await readlink(path) });
    else if (stat?.isDirectory()) entries.push({ path });
  }
  return { entries };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim().slice(0, 300);
}

/** Starts the probe and returns the service; `log` receives one line per notable event. */
export function createPythonSandbox(
  config: Mcp3Config,
  log: (line: string) => void = () => {},
): PythonSandbox {
  const pool = createPool({
    concurrency: config.concurrency,
    queueLimit: config.queueLimit,
    perAgentRunning: config.concurrencyPerAgent,
    perAgentWaiting: config.queuePerAgent,
  });
  // As root, each slot drops to its own user; otherwise mcp3 is already unprivileged, and every
  // run shares its user (and so its process limit).
  const root = process.getuid?.() === 0;
  const slots = Array.from({ length: config.concurrency }, (_, slot) => slot);
  let layout: HostLayout = { entries: [] };

  const plan = (timeoutSeconds: number, slot: number): SandboxPlan => ({
    python: config.python,
    bwrap: config.bwrap,
    prlimit: config.prlimit,
    setpriv: config.setpriv,
    limits: config.limits,
    timeoutSeconds,
    dropTo: root ? { uid: slotUid(config.uid, slot), gid: config.gid } : undefined,
    layout,
  });

  const probe = (): Promise<State> =>
    probeOnce().catch((error: unknown) => ({
      ok: false,
      reason: `sandbox probe failed: ${error instanceof Error ? error.message : String(error)}`,
    }));

  const probeOnce = async (): Promise<State> => {
    layout = await readHostLayout();
    if (root) {
      const read = (file: string) => readFile(file, "utf8").catch(() => "");
      const files = { passwd: await read("/etc/passwd"), subuid: await read("/etc/subuid") };
      const users = checkSlotUids(config.uid, config.concurrency, files);
      if (!users.ok) return { ok: false, reason: `sandbox probe failed: ${users.reason}` };
    }
    // Every slot, each as its own user: one that cannot run fails the whole probe.
    const verdicts = await Promise.all(slots.map(probeSlot));
    return verdicts.find((verdict) => !verdict.ok) ?? { ok: true };
  };

  const probeSlot = async (slot: number): Promise<State> => {
    const raw = await runSandboxed(sandboxCommand(plan(PROBE_TIMEOUT_SECONDS, slot)), {
      code: PROBE_CODE,
      timeoutSeconds: PROBE_TIMEOUT_SECONDS,
      maxOutputBytes: config.limits.maxOutputBytes,
    });
    const result = interpret(raw, config.limits, PROBE_TIMEOUT_SECONDS);
    if (result.ok && result.stdout === "sandbox ok\n") return { ok: true };
    const why = [result.stopMessage, oneLine(result.stderr) || oneLine(result.stdout)]
      .filter(Boolean)
      .join(" ");
    const exit = result.exitCode === null ? "" : ` (exit ${result.exitCode})`;
    const who = root ? `, slot ${slot} as uid ${slotUid(config.uid, slot)}` : "";
    return { ok: false, reason: `sandbox probe failed${exit}${who}: ${why}` };
  };

  const refusalFor = (reason: "queue_full" | "agent_queue_full" | "cancelled"): string => {
    switch (reason) {
      case "queue_full":
        return (
          `mcp3 is busy: ${config.concurrency} programs are running and ` +
          `${config.queueLimit} are waiting. Try again in a few seconds.`
        );
      case "agent_queue_full":
        return (
          `mcp3 is busy with your programs: you already have ${config.queuePerAgent} waiting ` +
          "for a slot, the most one agent may have waiting. Try again when one has finished."
        );
      case "cancelled":
        return "The call was cancelled before the program started.";
    }
  };

  let probedAt = Date.now();
  let state: Promise<State> = probe().then((verdict) => {
    log(verdict.ok ? "python sandbox ready" : `python sandbox UNAVAILABLE: ${verdict.reason}`);
    return verdict;
  });

  const current = async (): Promise<State> => {
    const verdict = await state;
    if (!verdict.ok && Date.now() - probedAt > REPROBE_AFTER_MS) {
      probedAt = Date.now();
      state = probe().then((again) => {
        if (again.ok) log("python sandbox ready after a new probe");
        return again;
      });
      return state;
    }
    return verdict;
  };

  return {
    ready: current,

    async health() {
      const verdict = await current();
      return verdict.ok
        ? { status: "ok" }
        : { status: "degraded", reason: `run_python_code unavailable: ${verdict.reason}` };
    },

    async run(code, options = {}) {
      const verdict = await current();
      if (!verdict.ok) {
        return refusal(
          "run_python_code is unavailable: the Python sandbox could not be created on this " +
            `server (${verdict.reason}). Code is never run outside the sandbox; ask the ` +
            "operator to check mcp3's /healthz.",
        );
      }
      const bytes = Buffer.byteLength(code, "utf8");
      if (bytes > config.maxCodeBytes) {
        return refusal(
          `The program is ${bytes} bytes; the limit is ${config.maxCodeBytes}. Send a shorter one.`,
        );
      }
      const timeoutSeconds = options.timeoutSeconds ?? config.defaultTimeoutSeconds;
      const agent = options.agent ?? UNKNOWN_AGENT;
      const admission = await pool
        .submit(
          agent,
          async (slot) => ({
            slot,
            raw: await runSandboxed(sandboxCommand(plan(timeoutSeconds, slot)), {
              code,
              timeoutSeconds,
              maxOutputBytes: config.limits.maxOutputBytes,
              ...(options.signal ? { signal: options.signal } : {}),
            }),
          }),
          options.signal,
        )
        .catch((error: unknown) => ({ ok: false as const, reason: "failed" as const, error }));
      if (!admission.ok) {
        if (admission.reason === "failed") {
          log(`sandbox failure: ${String(admission.error)}`);
          return refusal("The sandbox could not be started for this run; try again shortly.");
        }
        return refusal(refusalFor(admission.reason));
      }
      const { slot, raw } = admission.value;
      const result = interpret(raw, config.limits, timeoutSeconds);
      log(
        `run for ${agent} in slot ${slot}: ` +
          `${result.stopReason ?? `exit ${result.exitCode}`} in ${result.durationMs} ms`,
      );
      if (result.stopReason === "sandbox_failure") {
        log(`sandbox failure: ${oneLine(result.stderr)}`);
      }
      return toToolResult(result);
    },
  };
}
