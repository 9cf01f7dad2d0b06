/**
 * mcp3 runs Python in a sandbox (`run_python_code`, docs/design.md, "Tools"). Besides the shared
 * `echo` it offers `run_python_code`, which refuses to run anything while the sandbox is
 * unavailable; /healthz then says "degraded" with the reason.
 */
import { registerEcho } from "../../common/echo.ts";
import { logError } from "../common/backend.ts";
import type { BackendDefinition } from "../common/run.ts";
import { type Mcp3Config, parseMcp3Config } from "./config.ts";
import { createPythonSandbox } from "./sandbox.ts";
import { registerRunPythonCode } from "./tool.ts";

const IDENTITY = { name: "mcp3", portVariable: "MCP3_PORT", defaultPort: 9006 };

/** mcp3 with `config`; the sandbox probe starts now. */
export function createMcp3(config: Mcp3Config): BackendDefinition {
  const sandbox = createPythonSandbox(config, (line) => logError("mcp3", line));
  return {
    ...IDENTITY,
    register: (server, ctx) => {
      registerEcho(server);
      registerRunPythonCode(server, sandbox, config, ctx.agent);
    },
    health: () => sandbox.health(),
  };
}

let fromEnv: BackendDefinition | undefined;

/** mcp3 configured from `MCP3_*`, built (and probed) on first use. */
function mcp3FromEnv(): BackendDefinition {
  if (!fromEnv) {
    const parsed = parseMcp3Config(process.env);
    if (!parsed.ok) throw new Error(parsed.error);
    fromEnv = createMcp3(parsed.config);
  }
  return fromEnv;
}

/**
 * mcp3's identity, default port and tools, configured from the environment. Built lazily so that
 * importing this module starts nothing; `server.ts` validates the configuration before this.
 */
export const mcp3: BackendDefinition = {
  ...IDENTITY,
  register: (server, ctx) => mcp3FromEnv().register(server, ctx),
  health: () => mcp3FromEnv().health?.() ?? { status: "ok" },
};
