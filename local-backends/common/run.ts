/**
 * Process entry for a backend: configuration from the environment, a startup line on stdout, and a
 * clean exit on SIGTERM/SIGINT (the launcher stops its children that way).
 */
import { readFileSync } from "node:fs";
import { type ProxyKeys, parseProxyKeys } from "../../common/assertion.ts";
import { type BackendOptions, logError, type RunningBackend, startBackend } from "./backend.ts";

/** A backend as its entry script describes it; the port comes from `portVariable` at start. */
export interface BackendDefinition extends Omit<BackendOptions, "port" | "host"> {
  /** Environment variable holding the port, e.g. `MCP2_PORT`. */
  portVariable: string;
  defaultPort: number;
}

/** Reads a TCP port from `env[variable]`, failing with a message that names the variable. */
export function portFromEnv(
  variable: string,
  fallback: number,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const raw = env[variable];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${variable} must be a port number (0-65535), got "${raw}"`);
  }
  return port;
}

/**
 * The proxy's public keys a backend verifies assertions with: `PROXY_JWKS` (a URL, such as the
 * deployed proxy's `/.well-known/jwks.json`, or the JWKS itself as JSON), else the dev key file
 * `keys/proxy-jwks.json` that `npm run keys` and the launcher write.
 */
export function proxyKeysFromEnv(env: NodeJS.ProcessEnv = process.env): ProxyKeys {
  const raw = env.PROXY_JWKS?.trim();
  if (raw) {
    const parsed = parseProxyKeys(raw);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.keys;
  }
  const file = new URL("../../keys/proxy-jwks.json", import.meta.url);
  const parsed = parseProxyKeys(readFileSync(file, "utf8"));
  if (!parsed.ok) throw new Error(`${parsed.error} (read keys/proxy-jwks.json)`);
  return parsed.keys;
}

/** Starts `definition` with its env configuration and stops it on SIGTERM/SIGINT with exit 0. */
export async function runBackend(
  definition: BackendDefinition,
): Promise<RunningBackend | undefined> {
  const { portVariable, defaultPort, ...options } = definition;
  let backend: RunningBackend;
  try {
    const port = portFromEnv(portVariable, defaultPort);
    backend = await startBackend({
      ...options,
      port,
      host: process.env.HOST || "127.0.0.1",
      proxyKeys: proxyKeysFromEnv(),
    });
  } catch (error) {
    logError(definition.name, "cannot start", error instanceof Error ? error.message : error);
    process.exitCode = 1;
    return undefined;
  }

  // A stray rejection from one request must not take the whole server down with it.
  process.on("unhandledRejection", (reason) => logError(definition.name, "unhandled", reason));

  const stop = (signal: NodeJS.Signals) => {
    console.log(`[${definition.name}] ${signal}: stopping`);
    // A second signal means the user is done waiting.
    process.once(signal, () => process.exit(1));
    backend.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logError(definition.name, "close failed", error);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  console.log(`[${definition.name}] MCP at ${backend.url}/mcp, health at ${backend.url}/healthz`);
  return backend;
}
