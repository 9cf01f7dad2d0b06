/**
 * Entry point: `node local-backends/mcp3/server.ts` (port from MCP3_PORT, default 9006). A bad
 * `MCP3_*` variable stops it here, naming the variable; an unusable sandbox does not (fail closed:
 * mcp3 serves, reports degraded health and refuses to run code).
 */
import { logError } from "../common/backend.ts";
import { runBackend } from "../common/run.ts";
import { mcp3 } from "./backend.ts";
import { parseMcp3Config } from "./config.ts";

const parsed = parseMcp3Config(process.env);
if (parsed.ok) {
  // Probe the sandbox now, not on the first request.
  void mcp3.health?.();
  await runBackend(mcp3);
} else {
  logError("mcp3", "cannot start", parsed.error);
  process.exitCode = 1;
}
