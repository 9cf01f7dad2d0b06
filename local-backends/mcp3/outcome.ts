/**
 * From what a sandboxed run left behind to what the caller reads. Pure: the runner (`runner.ts`)
 * collects bytes and facts; this module decides why the program stopped and words the MCP tool
 * result, a text a model can act on plus the same facts as `structuredContent`.
 */
import { constants } from "node:os";
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { SandboxLimits } from "./config.ts";
import { cpuLimit } from "./sandbox-argv.ts";

/** Why mcp3 itself ended a run early. */
export type KillReason = "timeout" | "output_limit" | "cancelled";

/** What the runner observed, before interpretation. */
export interface RawOutcome {
  /** The program's exit code as bwrap reported it; undefined when bwrap reported none. */
  exitCode: number | undefined;
  stdout: Buffer;
  stderr: Buffer;
  /** Bytes the program wrote beyond what was kept, per stream (0: nothing was cut). */
  stdoutDropped: number;
  stderrDropped: number;
  /** Which stream crossed its cap first, when one did. */
  overflowed: "stdout" | "stderr" | undefined;
  killed: KillReason | undefined;
  durationMs: number;
  /** The sandbox could not be started at all (spawn failed), with the reason. */
  spawnError: string | undefined;
}

export type StopReason =
  | KillReason
  | "cpu_limit"
  | "memory_limit"
  | "file_size_limit"
  | "signal"
  | "sandbox_failure";

/** A finished run, interpreted. */
export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  stopReason: StopReason | null;
  /** One sentence on why the program stopped early, or null when it ran to its end. */
  stopMessage: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
  timeoutSeconds: number;
}

/**
 * The longest prefix of `buf` of at most `max` bytes that does not split a UTF-8 sequence, so the
 * kept output never ends in a replacement character that the program did not write.
 */
export function utf8Prefix(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut sequence...
  while (end > 0 && end > max - 3 && ((buf[end] as number) & 0xc0) === 0x80) end -= 1;
  return buf.subarray(0, end);
}

/** Decodes kept output and appends a visible marker when bytes were dropped. */
export function shownOutput(kept: Buffer, dropped: number, stream: string, cap: number): string {
  const text = new TextDecoder("utf-8").decode(kept);
  if (dropped === 0) return text;
  const newline = text === "" || text.endsWith("\n") ? "" : "\n";
  return `${text}${newline}[… ${stream} truncated: ${dropped} more bytes not shown, the limit is ${cap} bytes]`;
}

const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, number]) => [number as number, name]),
);

/** bwrap reports a program killed by signal N as exit code 128 + N, like a shell. */
export function signalOf(exitCode: number | undefined): string | null {
  if (exitCode === undefined || exitCode <= 128) return null;
  return SIGNAL_NAMES.get(exitCode - 128) ?? null;
}

/** The last non-empty line of a stream (where Python prints an uncaught exception). */
function lastLine(text: string): string {
  const lines = text.trimEnd().split("\n");
  return lines[lines.length - 1] ?? "";
}

const MIB = 1024 * 1024;

function mib(bytes: number): string {
  return `${Math.round((bytes / MIB) * 10) / 10} MiB`;
}

function seconds(n: number): string {
  return `${Number.isInteger(n) ? n : n.toFixed(1)} s`;
}

/** Decides why a run stopped and what the caller is told. */
export function interpret(
  raw: RawOutcome,
  limits: SandboxLimits,
  timeoutSeconds: number,
): RunResult {
  const cap = limits.maxOutputBytes;
  const stdout = shownOutput(raw.stdout, raw.stdoutDropped, "stdout", cap);
  const stderr = shownOutput(raw.stderr, raw.stderrDropped, "stderr", cap);
  const signal = signalOf(raw.exitCode);
  const failure = lastLine(stderr);
  const stop = ((): [StopReason, string] | null => {
    if (raw.spawnError !== undefined) {
      return ["sandbox_failure", `The sandbox could not be started: ${raw.spawnError}.`];
    }
    switch (raw.killed) {
      case "timeout":
        return [
          "timeout",
          `Stopped: time limit. The program was still running after ${seconds(timeoutSeconds)} ` +
            "(wall clock) and was killed with everything it started.",
        ];
      case "output_limit":
        return [
          "output_limit",
          `Stopped: output limit. The program wrote more than ${cap} bytes to ` +
            `${raw.overflowed ?? "its output"} and was killed; write less, or summarise.`,
        ];
      case "cancelled":
        return ["cancelled", "Stopped: the call was cancelled and the program was killed."];
    }
    if (raw.exitCode === undefined) {
      return ["sandbox_failure", "The sandbox failed before the program could run."];
    }
    // The program is PID 1 of its namespace, so the soft limit's SIGXCPU is ignored and the hard
    // limit's SIGKILL ends it; mcp3's own kills are accounted for above.
    if (signal === "SIGXCPU" || signal === "SIGKILL") {
      return [
        "cpu_limit",
        `Stopped: CPU limit. The program used up its ${cpuLimit(timeoutSeconds).hard} s of CPU ` +
          `time (its threads count together) and was killed (${signal}).`,
      ];
    }
    if (signal !== null) return ["signal", `Stopped: the program was killed by ${signal}.`];
    // An uncaught exception is the program's own failure; these two are the limits' doing.
    if (raw.exitCode !== 0 && /^MemoryError\b/.test(failure)) {
      return [
        "memory_limit",
        `Stopped: memory limit. A process could not grow past ${mib(limits.memoryBytes)} ` +
          "of address space (MemoryError).",
      ];
    }
    if (raw.exitCode !== 0 && /\[Errno 27\]/.test(failure)) {
      // Errno 27 is EFBIG: RLIMIT_FSIZE (Python ignores SIGXFSZ and gets the error instead).
      return [
        "file_size_limit",
        `Stopped: file size limit. A file may not grow past ${mib(limits.fileSizeBytes)}, and ` +
          `/tmp and the working directory hold ${mib(limits.tmpfsBytes)} each.`,
      ];
    }
    return null;
  })();
  return {
    ok: stop === null && raw.exitCode === 0,
    exitCode: raw.exitCode ?? null,
    signal,
    stopReason: stop?.[0] ?? null,
    stopMessage: stop?.[1] ?? null,
    stdout,
    stderr,
    stdoutTruncated: raw.stdoutDropped > 0,
    stderrTruncated: raw.stderrDropped > 0,
    durationMs: Math.round(raw.durationMs),
    timeoutSeconds,
  };
}

/** The MCP tool result: a failing or stopped program is `isError: true`, with its output. */
export function toToolResult(result: RunResult): CallToolResult {
  const after = `after ${(result.durationMs / 1000).toFixed(2)} s.`;
  const status =
    result.exitCode === null
      ? `No exit code ${after}`
      : `Exit code ${result.exitCode}${result.signal ? ` (${result.signal})` : ""} ${after}`;
  const sections = [result.stopMessage, status].filter((line) => line !== null);
  if (result.stdout !== "") sections.push(`stdout:\n${result.stdout}`);
  if (result.stderr !== "") sections.push(`stderr:\n${result.stderr}`);
  if (result.stdout === "" && result.stderr === "") sections.push("(no output)");
  return {
    content: [{ type: "text", text: sections.join("\n") }],
    structuredContent: {
      exit_code: result.exitCode,
      signal: result.signal,
      stop_reason: result.stopReason,
      stdout: result.stdout,
      stderr: result.stderr,
      stdout_truncated: result.stdoutTruncated,
      stderr_truncated: result.stderrTruncated,
      duration_ms: result.durationMs,
      timeout_seconds: result.timeoutSeconds,
    },
    ...(result.ok ? {} : { isError: true }),
  };
}

/** A refusal before anything ran (sandbox unavailable, queue full, program too large). */
export function refusal(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}
