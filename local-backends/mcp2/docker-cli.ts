/**
 * Runs the docker CLI with an argv: `spawn` without a shell, stdin closed, output capped, a
 * wall-clock limit after which the CLI is killed. The only place mcp2 starts a process.
 */
import { spawn } from "node:child_process";
import { CappedOutput, type CappedText } from "./output.ts";

export interface Execution {
  /** The argv after the CLI's name. */
  argv: string[];
  /** The CLI's exit code; null when it was killed or never started. */
  exitCode: number | null;
  stdout: CappedText;
  stderr: CappedText;
  durationMs: number;
  /** How it ended: on its own, killed at the time limit, killed because the caller went away. */
  ending: "exited" | "timed-out" | "aborted" | "not-started";
  /** Why the CLI could not be started (`not-started`), e.g. ENOENT. */
  startError?: string;
}

export interface ExecOptions {
  /** The CLI, e.g. `docker`. */
  cli: string;
  /** The CLI's whole environment (nothing else of mcp2's leaks into it). */
  env: Record<string, string>;
  timeoutMs: number;
  /** Bytes kept per stream. */
  outputLimit: number;
  /** Aborts (kills the CLI) when the MCP request is cancelled. */
  signal?: AbortSignal;
}

/** Runs `cli argv…` and resolves when it has exited (never rejects). */
export function execCli(argv: string[], options: ExecOptions): Promise<Execution> {
  const started = performance.now();
  const stdout = new CappedOutput(options.outputLimit);
  const stderr = new CappedOutput(options.outputLimit);
  const finish = (
    ending: Execution["ending"],
    exitCode: number | null,
    startError?: string,
  ): Execution => ({
    argv,
    exitCode,
    stdout: stdout.result(),
    stderr: stderr.result(),
    durationMs: Math.round(performance.now() - started),
    ending,
    ...(startError === undefined ? {} : { startError }),
  });

  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      resolve(finish("aborted", null));
      return;
    }
    const child = spawn(options.cli, argv, {
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      env: options.env,
    });
    let ending: Execution["ending"] = "exited";
    const kill = (why: Execution["ending"]) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      ending = why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill("timed-out"), options.timeoutMs);
    const onAbort = () => kill("aborted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // A failed spawn can report both "error" and "close"; the first one answers.
    let settled = false;
    const settle = (execution: () => Execution) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(execution());
    };

    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.once("error", (error: NodeJS.ErrnoException) => {
      settle(() => finish("not-started", null, error.code ?? error.message));
    });
    // "close", not "exit": both pipes are drained by then.
    child.once("close", (code) => {
      settle(() => finish(ending, ending === "exited" ? code : null));
    });
  });
}
