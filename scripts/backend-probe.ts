/**
 * The launcher's look at each extra backend (`EXTRA_BACKENDS`) once the system is up: someone
 * else's server, so the launcher neither starts nor waits for it, but says in the banner whether
 * it answers MCP. One handshake with the SDK client, the way the proxy first meets a backend
 * (`server/discover`, falling back to `initialize`), with a short timeout.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { ExtraBackendSpec } from "../workers/proxy/src/core/config.ts";

/** What the handshake found: the server's name, version and protocol, or why there was none. */
export type Probe =
  | { ok: true; name: string; version: string; protocolVersion: string }
  | { ok: false; reason: string };

export interface ProbeOptions {
  timeoutMs: number;
  /** The proxy's assertion for a backend with `identity: "assertion"`, which refuses callers without one. */
  assertion?: (backend: string) => Promise<string>;
}

/** Connects to `backend` as the proxy would, and hangs up. Never throws. */
export async function probeBackend(
  backend: ExtraBackendSpec,
  options: ProbeOptions,
): Promise<Probe> {
  const headers: Record<string, string> = {};
  const client = new Client(
    { name: "mcpcp-launcher", version: "1.0.0" },
    { versionNegotiation: { mode: "auto" } },
  );
  const transport = new StreamableHTTPClientTransport(backend.url, { requestInit: { headers } });
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    if (backend.identity === "assertion" && options.assertion) {
      headers.authorization = `Bearer ${await options.assertion(backend.id)}`;
    }
    await client.connect(transport, { timeout: options.timeoutMs, signal });
    const server = client.getServerVersion();
    return {
      ok: true,
      name: server?.name ?? "(no name)",
      version: server?.version ?? "(no version)",
      protocolVersion: client.getNegotiatedProtocolVersion() ?? "(unknown)",
    };
  } catch (error) {
    if (signal.aborted) return { ok: false, reason: `no answer within ${options.timeoutMs} ms` };
    return { ok: false, reason: reasonOf(error) };
  } finally {
    // A backend with sessions gave the launcher one; it is not needed again.
    if (transport.sessionId) await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

/**
 * The words that say what went wrong: the innermost cause (fetch reports a refused connection as
 * "fetch failed", caused by "connect ECONNREFUSED 127.0.0.1:8000"), with the HTTP status if any.
 */
export function reasonOf(error: unknown): string {
  let innermost: unknown = error;
  let status: number | undefined;
  for (let depth = 0; innermost instanceof Error && depth < 8; depth++) {
    const own = (innermost as { status?: unknown }).status;
    if (typeof own === "number") status ??= own;
    if (!(innermost.cause instanceof Error)) break;
    innermost = innermost.cause;
  }
  const words = innermost instanceof Error ? innermost.message : String(innermost);
  return status === undefined || words.includes(`HTTP ${status}`)
    ? words
    : `HTTP ${status}: ${words}`;
}

/** The banner's line for one extra backend. */
export function probeLine(backend: ExtraBackendSpec, probe: Probe): string {
  const where = `  ${backend.id.padEnd(6)} ${backend.url.href}  (EXTRA_BACKENDS)`;
  if (probe.ok) {
    return `${where}  reachable: ${probe.name} ${probe.version}, protocol ${probe.protocolVersion}`;
  }
  // Someone else's server: the system runs without it, and its tools are missing meanwhile.
  return `${where}  UNREACHABLE: ${probe.reason} (npm start does not run it; agents get none of its tools until it answers)`;
}
