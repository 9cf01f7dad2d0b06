/**
 * mcp2 runs real Docker commands (`run_docker`, docs/design.md, "Tools") for agents it must assume
 * are hostile. This file only wires: configuration, the engine, and the tools on each per-request
 * server.
 */
import { registerEcho } from "../../common/echo.ts";
import type { BackendDefinition } from "../common/run.ts";
import { DEFAULT_CONFIG, type Mcp2Config } from "./config.ts";
import { DockerEngine } from "./engine.ts";
import { registerRunDocker } from "./run-docker.ts";

/**
 * mcp2 with `config`: its definition for `runBackend`/`startBackend`, and its engine, which reads
 * `DOCKER_HOST` and the CLI's other variables from `env`.
 */
export function createMcp2(
  config: Mcp2Config = DEFAULT_CONFIG,
  env: NodeJS.ProcessEnv = process.env,
): { definition: BackendDefinition; engine: DockerEngine } {
  const engine = new DockerEngine(config, env);
  const deps = { config, engine, starting: new Map<string, number>() };
  return {
    engine,
    definition: {
      name: "mcp2",
      portVariable: "MCP2_PORT",
      defaultPort: 9005,
      register: (server, ctx) => {
        registerEcho(server);
        registerRunDocker(server, ctx, deps);
      },
      // Degraded, not down: echo still works, and run_docker explains what is missing.
      health: () => engine.health(),
    },
  };
}

/** mcp2 with the default configuration (tests); the entry script reads the environment. */
export const mcp2: BackendDefinition = createMcp2().definition;
