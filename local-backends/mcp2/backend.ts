/**
 * mcp2 runs real Docker commands (`run_docker`, DESIGN.md). That tool is registered once it
 * works; until then mcp2 offers only the shared `echo`.
 */
import { registerEcho } from "../../common/echo.ts";
import type { BackendDefinition } from "../common/run.ts";

/** mcp2's identity, default port and tools. */
export const mcp2: BackendDefinition = {
  name: "mcp2",
  portVariable: "MCP2_PORT",
  defaultPort: 9005,
  register: (server) => {
    registerEcho(server);
  },
};
