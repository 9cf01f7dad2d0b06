/** Entry point: `node local-backends/mcp3/server.ts` (port from MCP3_PORT, default 9006). */
import { runBackend } from "../common/run.ts";
import { mcp3 } from "./backend.ts";

await runBackend(mcp3);
