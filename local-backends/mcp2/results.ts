/**
 * `run_docker`'s answers as MCP tool results: text a model can read, and for a command that ran the
 * same facts as `structuredContent`. Anything that ran and failed, and anything refused, is a
 * result with `isError: true`, never a JSON-RPC error (MCP spec, "Tools" → "Error Handling").
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { Execution } from "./docker-cli.ts";

/** The `structuredContent` of a command that ran. */
export const EXECUTION_SCHEMA = z.object({
  argv: z.array(z.string()).describe("What ran: docker, then the arguments mcp2 passed"),
  exitCode: z.number().int().nullable().describe("null when the command was killed"),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  ending: z.enum(["exited", "timed-out", "aborted"]),
  truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
  answeredBy: z
    .literal("mcp2")
    .optional()
    .describe(
      "Set when mcp2 answered itself (info, version) from what concerns you, instead of the engine",
    ),
});

/** A command refused before anything ran. */
export function refused(reason: string): CallToolResult {
  return {
    content: [{ type: "text", text: `Refused, nothing was run: ${reason}` }],
    isError: true,
  };
}

/** A command that could not run, for a reason outside the command itself. */
export function failed(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/** A command that ran: exit code, duration, both streams. */
export function executionResult(
  execution: Execution,
  options: { timeoutSeconds: number; removedContainer: boolean; answeredByMcp2?: boolean },
): CallToolResult {
  const seconds = (execution.durationMs / 1000).toFixed(2);
  const removed = options.removedContainer ? "; its container was killed and removed" : "";
  const status =
    execution.ending === "timed-out"
      ? `timed out after ${options.timeoutSeconds} s: the command was killed${removed}`
      : execution.ending === "aborted"
        ? `cancelled by the caller after ${seconds} s: the command was killed${removed}`
        : `exit code ${execution.exitCode} after ${seconds} s${options.answeredByMcp2 ? ", answered by mcp2" : ""}`;
  const stream = (name: string, text: string) => (text === "" ? [] : [`--- ${name} ---`, text]);
  const text = [
    status,
    ...stream("stdout", execution.stdout.text),
    ...stream("stderr", execution.stderr.text),
  ].join("\n");
  const ending = execution.ending === "not-started" ? "exited" : execution.ending;
  return {
    content: [{ type: "text", text }],
    structuredContent: {
      argv: ["docker", ...execution.argv],
      exitCode: execution.exitCode,
      stdout: execution.stdout.text,
      stderr: execution.stderr.text,
      durationMs: execution.durationMs,
      ending,
      truncated: { stdout: execution.stdout.truncated, stderr: execution.stderr.truncated },
      ...(options.answeredByMcp2 ? { answeredBy: "mcp2" as const } : {}),
    } satisfies z.infer<typeof EXECUTION_SCHEMA>,
    isError: execution.exitCode !== 0,
  };
}
