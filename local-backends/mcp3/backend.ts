/**
 * mcp3 runs Python in a sandbox (`run_python_code`, DESIGN.md). That tool is registered once it
 * works; until then mcp3 offers only the shared `echo`.
 */
import { registerEcho } from "../../common/echo.ts";
import type { BackendDefinition } from "../common/run.ts";

/** mcp3's identity, default port and tools. */
export const mcp3: BackendDefinition = {
  name: "mcp3",
  portVariable: "MCP3_PORT",
  defaultPort: 9006,
  register: (server) => {
    registerEcho(server);
  },
};
