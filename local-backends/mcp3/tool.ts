/**
 * The `run_python_code` tool (docs/design.md, "Tools"): its schema and description. The work is
 * done by the sandbox service (`sandbox.ts`); this only wires arguments to it.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { Mcp3Config } from "./config.ts";
import type { PythonSandbox } from "./sandbox.ts";

function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

/** The tool's input schema; `timeout_seconds` is bounded by the server's maximum. */
export function runPythonCodeSchema(config: Mcp3Config) {
  return z.object({
    code: z.string().min(1).describe("A complete Python 3 program; print() what you want back."),
    timeout_seconds: z
      .number()
      .positive()
      .max(config.maxTimeoutSeconds)
      .optional()
      .describe(
        `Wall-clock limit in seconds (default ${config.defaultTimeoutSeconds}, ` +
          `at most ${config.maxTimeoutSeconds}).`,
      ),
  });
}

/** Registers `run_python_code(code, timeout_seconds?)` on `server`. */
export function registerRunPythonCode(
  server: McpServer,
  sandbox: PythonSandbox,
  config: Mcp3Config,
  agent: string | undefined,
): void {
  const { limits } = config;
  server.registerTool(
    "run_python_code",
    {
      title: "Run Python code",
      description:
        "Run a Python 3 program (standard library only, no pip packages) in an isolated " +
        "sandbox and return its stdout, stderr, exit code and duration. The sandbox has no " +
        "network and none of the host's files; the working directory is empty and discarded " +
        "after the run, and stdin is empty. The site module is not loaded: use sys.exit(), not " +
        "exit(). Limits: " +
        `${config.defaultTimeoutSeconds} s wall clock by default, ` +
        `${mib(limits.memoryBytes)} MiB of memory per process, ` +
        `${limits.maxProcesses} processes/threads, files up to ${mib(limits.fileSizeBytes)} MiB, ` +
        `${limits.maxOutputBytes} bytes of output per stream. A program that fails or hits a ` +
        "limit returns isError with its traceback or the limit it hit. " +
        `At most ${config.concurrencyPerAgent} of your programs run at once; more wait their turn.`,
      inputSchema: runPythonCodeSchema(config),
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
    async ({ code, timeout_seconds }, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      const wall = timeout_seconds ?? config.defaultTimeoutSeconds;
      const stopHeartbeat =
        progressToken === undefined
          ? () => {}
          : heartbeat(wall, (progress, message) =>
              ctx.mcpReq
                .notify({
                  method: "notifications/progress",
                  params: { progressToken, progress, total: wall, message },
                })
                .catch(() => {}),
            );
      try {
        return await sandbox.run(code, {
          signal: ctx.mcpReq.signal,
          ...(timeout_seconds === undefined ? {} : { timeoutSeconds: timeout_seconds }),
          ...(agent === undefined ? {} : { agent }),
        });
      } finally {
        stopHeartbeat();
      }
    },
  );
}

/** How often a running program reports that it is still running. */
const HEARTBEAT_MS = 1_000;

/**
 * Progress for a caller that asked for it: once at the start, then every second, in seconds of
 * the wall-clock budget. Long programs show they are alive, and a client can reset its timeout on
 * each report instead of giving up on a program that is merely slow.
 */
function heartbeat(
  wallSeconds: number,
  report: (seconds: number, message: string) => void,
): () => void {
  const began = Date.now();
  report(0, "started");
  const timer = setInterval(() => {
    const seconds = Math.min(Math.round((Date.now() - began) / 1000), wallSeconds);
    report(seconds, `running for ${seconds} s of at most ${wallSeconds} s`);
  }, HEARTBEAT_MS);
  return () => clearInterval(timer);
}
