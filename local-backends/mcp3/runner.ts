/**
 * Runs one program in the sandbox and reports what happened, uninterpreted (`outcome.ts` decides
 * what it means). This module owns the processes: it spawns the command `sandbox-argv.ts` built,
 * hands bwrap the program, caps the output, and kills the whole sandbox at the wall-clock limit,
 * when the output overflows, or when the call is cancelled.
 *
 * Containment does not depend on process groups: the program is PID 1 of a fresh PID namespace,
 * and when it dies the kernel kills every process in that namespace, `setsid()` or not. So a kill
 * is SIGKILL to the program; bwrap's monitor then reaps it and exits, and its exit means the
 * namespace is empty. Should the monitor not exit, its process group is killed too, and the
 * program follows through PR_SET_PDEATHSIG (`--die-with-parent`).
 */
import { spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import type { KillReason, RawOutcome } from "./outcome.ts";
import { utf8Prefix } from "./outcome.ts";
import { type Command, SANDBOX } from "./sandbox-argv.ts";

export interface RunRequest {
  code: string;
  timeoutSeconds: number;
  /** Bytes kept of stdout and of stderr, each; more kills the run. */
  maxOutputBytes: number;
  signal?: AbortSignal;
}

// What bwrap's own processes see; the program sees only what bwrap --setenv gives it.
const SPAWN_ENV = { PATH: "/usr/bin:/bin" };
// After bwrap's monitor exits, how long to wait for pipes to close and the namespace to empty.
const SETTLE_MS = 2000;
// How long bwrap's monitor gets to reap a killed program before its own group is killed.
const MONITOR_GRACE_MS = 500;

/** A stream's bytes: the first `cap` (plus a little, to cut at a character boundary) are kept. */
class Capture {
  private chunks: Buffer[] = [];
  private kept = 0;
  private readonly cap: number;
  total = 0;

  constructor(cap: number) {
    this.cap = cap;
  }

  /** Adds a chunk; true when the stream has now written more than its cap. */
  add(chunk: Buffer): boolean {
    this.total += chunk.length;
    const room = this.cap + 4 - this.kept;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.chunks.push(part);
      this.kept += part.length;
    }
    return this.total > this.cap;
  }

  result(): { kept: Buffer; dropped: number } {
    const kept = utf8Prefix(Buffer.concat(this.chunks), this.cap);
    return { kept, dropped: this.total - kept.length };
  }
}

const O_CLOEXEC = 0o2000000;
let devNull: number | undefined;

/**
 * The child's descriptors. Node marks its own descriptors close-on-exec, but one inherited from
 * mcp3's parent without that flag would pass through setpriv and bwrap into the program; each such
 * descriptor is overwritten with /dev/null in the child (the probe checks that this holds).
 */
function childStdio(): ("ignore" | "pipe" | number)[] {
  const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe", "pipe", "pipe"];
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd < stdio.length) continue;
    let flags: string | undefined;
    try {
      flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
    } catch {
      continue; // closed meanwhile (the directory listing's own descriptor, for one)
    }
    if (flags === undefined || (Number.parseInt(flags, 8) & O_CLOEXEC) !== 0) continue;
    devNull ??= openSync("/dev/null", "r");
    while (stdio.length < fd) stdio.push("ignore");
    stdio[fd] = devNull;
  }
  return stdio;
}

/** Whether a process is gone or a zombie (its namespace, if it was an init, is then empty). */
async function gone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name: the first is the state.
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** SIGKILL to a process, or to a process group when `pid` is negative. */
function killProcess(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs `request.code` with `command` (from `sandboxCommand`) and resolves once all is gone. */
export function runSandboxed(command: Command, request: RunRequest): Promise<RawOutcome> {
  const began = performance.now();
  const stdout = new Capture(request.maxOutputBytes);
  const stderr = new Capture(request.maxOutputBytes);
  let status = "";
  let killed: KillReason | undefined;
  let overflowed: "stdout" | "stderr" | undefined;
  let spawnError: string | undefined;
  let programPid: number | undefined;
  let monitorExited = false;

  const child = spawn(command.command, command.args, {
    env: SPAWN_ENV,
    cwd: "/",
    // Its own process group, so one kill reaches bwrap's monitor whatever it became via exec.
    detached: true,
    // stdin empty; stdout, stderr; then SANDBOX.codeFd (3) and SANDBOX.statusFd (4) for bwrap.
    stdio: childStdio(),
  });

  let escalation: NodeJS.Timeout | undefined;
  const killMonitor = () => {
    if (!monitorExited && child.pid !== undefined) killProcess(-child.pid);
  };
  const kill = (reason: KillReason) => {
    if (killed !== undefined || monitorExited) return;
    killed = reason;
    if (programPid === undefined) return killMonitor();
    killProcess(programPid);
    escalation = setTimeout(killMonitor, MONITOR_GRACE_MS);
  };

  const timer = setTimeout(() => kill("timeout"), request.timeoutSeconds * 1000);
  const onAbort = () => kill("cancelled");
  request.signal?.addEventListener("abort", onAbort, { once: true });
  if (request.signal?.aborted) onAbort();

  const out = child.stdout as Readable;
  const err = child.stderr as Readable;
  const codeIn = child.stdio[SANDBOX.codeFd] as Writable;
  const statusOut = child.stdio[SANDBOX.statusFd] as Readable;
  const watch = (stream: Readable, capture: Capture, name: "stdout" | "stderr") => {
    stream.on("data", (chunk: Buffer) => {
      if (capture.add(chunk) && overflowed === undefined) {
        overflowed = name;
        kill("output_limit");
      }
    });
  };
  watch(out, stdout, "stdout");
  watch(err, stderr, "stderr");
  statusOut.setEncoding("utf8");
  statusOut.on("data", (chunk: string) => {
    if (status.length < 4096) status += chunk;
    const pid = /"child-pid":\s*(\d+)/.exec(status);
    if (programPid === undefined && pid?.[1]) {
      programPid = Number(pid[1]);
      // A kill before the PID was known went to the monitor; make sure the program goes too.
      if (killed !== undefined && !monitorExited) killProcess(programPid);
    }
  });
  // EPIPE when bwrap died before reading the program: the exit status tells the story.
  codeIn.on("error", () => {});
  codeIn.end(Buffer.from(request.code, "utf8"));

  return new Promise((resolve) => {
    let settled = false;
    const finish = async () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(escalation);
      request.signal?.removeEventListener("abort", onAbort);
      // Normally the monitor has reaped the program already; if the monitor was killed, wait
      // for PR_SET_PDEATHSIG to take the namespace down (the program becomes a zombie only once
      // every other process of its namespace is gone).
      const deadline = Date.now() + SETTLE_MS;
      while (programPid !== undefined && !(await gone(programPid)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const exit = /"exit-code":\s*(\d+)/.exec(status);
      const so = stdout.result();
      const se = stderr.result();
      resolve({
        exitCode: exit?.[1] === undefined ? undefined : Number(exit[1]),
        stdout: so.kept,
        stderr: se.kept,
        stdoutDropped: so.dropped,
        stderrDropped: se.dropped,
        overflowed,
        killed,
        durationMs: performance.now() - began,
        spawnError,
      });
    };
    child.once("error", (error: NodeJS.ErrnoException) => {
      spawnError = `${command.command}: ${error.code ?? error.message}`;
      if (child.pid === undefined) void finish();
    });
    child.once("exit", () => {
      monitorExited = true;
      // Nothing outside the namespace holds the pipes, so they close at once; never hang on them.
      setTimeout(() => {
        for (const stream of [out, err, statusOut]) stream.destroy();
        void finish();
      }, SETTLE_MS).unref();
    });
    child.once("close", () => void finish());
  });
}
