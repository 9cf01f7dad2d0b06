/** Entry point: `node local-backends/mcp2/server.ts` (port from MCP2_PORT, default 9005). */
import { runBackend } from "../common/run.ts";
import { mcp2 } from "./backend.ts";

await runBackend(mcp2);
