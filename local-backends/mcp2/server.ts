/**
 * Entry point: `node local-backends/mcp2/server.ts` (port from MCP2_PORT, default 9005). Reads and
 * checks mcp2's configuration first: a bad variable stops it here, named, before anything listens.
 */
import { logError } from "../common/backend.ts";
import { runBackend } from "../common/run.ts";
import { createMcp2 } from "./backend.ts";
import { parseConfig } from "./config.ts";

const parsed = parseConfig(process.env);
if (!parsed.ok) {
  for (const error of parsed.errors) logError("mcp2", `configuration: ${error}`);
  process.exit(1);
}
const { config } = parsed;
const { definition, engine } = createMcp2(config);
console.log(
  `[mcp2] run_docker on ${engine.where}: images ${config.allowedImages.join(", ")}; ` +
    `--network ${config.network}, --memory ${config.memory}, --cpus ${config.cpus}, ` +
    `--pids-limit ${config.pidsLimit}; ${config.timeoutSeconds} s per command, ` +
    `${config.detachedTimeoutSeconds} s per detached container`,
);
const running = await runBackend(definition);
if (running) engine.startReaper();
