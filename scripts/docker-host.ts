/**
 * Where mcp2's Docker engine is, for whatever starts mcp2 on this machine (the launcher, the
 * benchmark): DOCKER_HOST when set, else the private engine `npm test` (and `npm run setup:host`)
 * start on their own socket, else the Docker CLI's default.
 */
import { existsSync } from "node:fs";

export const PRIVATE_DOCKER_SOCKET = "/run/mcpcp-docker.sock";

/** The environment to add to mcp2's so that it reaches the engine. */
export function dockerHost(): Record<string, string> {
  if (process.env.DOCKER_HOST) return {};
  return existsSync(PRIVATE_DOCKER_SOCKET)
    ? { DOCKER_HOST: `unix://${PRIVATE_DOCKER_SOCKET}` }
    : {};
}
