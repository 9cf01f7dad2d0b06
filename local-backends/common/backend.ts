/**
 * The HTTP shell every Node backend shares: `GET /healthz`, the MCP endpoint at `/mcp`, JSON 404s
 * for anything else. Each request to `/mcp` gets a fresh `McpServer` from the backend's `register`
 * function, so the same tool definitions serve the stateless 2026-07-28 revision and the 2025-era
 * `initialize` clients (`createMcpHandler` picks the era per request).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostHeaderValidation, originValidation, toNodeHandler } from "@modelcontextprotocol/node";
import { type AuthInfo, createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { type ProxyKeys, proxyKeyLookup } from "../../common/assertion.ts";
import { admitProxyRequest } from "../../common/assertion-gate.ts";
import { DEFAULT_MAX_SEEN_ASSERTIONS, SeenAssertions } from "../../common/seen-assertions.ts";

/** What a tool handler may know about the request it serves. */
export interface BackendContext {
  /**
   * The agent the proxy says is calling: the `sub` of the proxy's verified assertion. Undefined
   * only in a backend started without the proxy's keys (tests; `runBackend` always gives them),
   * which then knows no agent at all.
   */
  agent: string | undefined;
}

/** Registers a backend's tools on a per-request server. */
export type RegisterTools = (server: McpServer, ctx: BackendContext) => void;

/** The `/healthz` body's status; "degraded" still answers 200 because the process is serving. */
export type Health = { status: "ok" } | { status: "degraded"; reason: string };

export interface BackendOptions {
  /** Server id as the proxy knows it (`mcp2`), also the MCP `serverInfo.name`. */
  name: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Interface to bind; loopback by default so nothing outside this host can reach the backend. */
  host?: string;
  register: RegisterTools;
  /** Reports the backend's health; defaults to always ok. */
  health?: () => Health | Promise<Health>;
  /**
   * The proxy's public keys. When given, every `/mcp` request must carry the proxy's assertion
   * for this backend (`Authorization: Bearer`, `common/assertion.ts`), used for no request before,
   * and the agent comes from it; anything else is refused with 401. `runBackend` always gives them.
   */
  proxyKeys?: ProxyKeys;
  /**
   * Used assertions remembered at once (`common/seen-assertions.ts`); at the cap, unseen ones get 503
   * until the oldest expire. Default 250,000.
   */
  maxSeenAssertions?: number;
  /**
   * `Host` and `Origin` hostnames accepted on `/mcp` (DNS-rebinding protection, see the
   * @modelcontextprotocol/node README). Defaults to the loopback names.
   */
  allowedHostnames?: string[];
}

export interface RunningBackend {
  name: string;
  host: string;
  /** The bound port (the real one when 0 was asked for). */
  port: number;
  /** Base URL, e.g. `http://127.0.0.1:9005`; the MCP endpoint is `${url}/mcp`. */
  url: string;
  /** Stops accepting connections, ends in-flight exchanges, resolves when the socket is closed. */
  close: () => Promise<void>;
}

const SERVER_VERSION = "0.1.0";
const LOOPBACK_HOSTNAMES = ["localhost", "127.0.0.1", "[::1]"];
// Long-lived SSE responses would otherwise hold close() open forever.
const CLOSE_GRACE_MS = 3000;

/** Starts a backend's HTTP server and resolves once it is listening. */
export async function startBackend(options: BackendOptions): Promise<RunningBackend> {
  const { name, register } = options;
  const host = options.host ?? "127.0.0.1";
  const health = options.health ?? (() => ({ status: "ok" }) as const);
  const allowed = options.allowedHostnames ?? LOOPBACK_HOSTNAMES;
  const log = (message: string, error?: unknown) => logError(name, message, error);

  const keys = options.proxyKeys && proxyKeyLookup(options.proxyKeys);
  const seen = new SeenAssertions(options.maxSeenAssertions ?? DEFAULT_MAX_SEEN_ASSERTIONS);
  const mcp = createMcpHandler(
    ({ authInfo }) => {
      const server = new McpServer({ name, version: SERVER_VERSION });
      register(server, { agent: authInfo?.clientId });
      return server;
    },
    { onerror: (error) => log("mcp", error) },
  );
  const serveMcp = toNodeHandler(mcp, { onerror: (error) => log("mcp adapter", error) });
  const validateHost = hostHeaderValidation(allowed);
  const validateOrigin = originValidation(allowed);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path === "/healthz") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return sendJson(res, 405, { error: "method_not_allowed" }, { Allow: "GET, HEAD" });
      }
      return sendJson(res, 200, { ...(await health()), server: name });
    }
    if (path === "/mcp") {
      // The guards answer 403 themselves when they refuse.
      if (!validateHost(req, res) || !validateOrigin(req, res)) return;
      if (keys) {
        const admitted = await admitProxyRequest(req.headers.authorization, keys, name, seen);
        if (!admitted.ok) {
          const { status, body, headers, detail } = admitted.refusal;
          log(`refused ${req.method} /mcp: ${detail}`);
          return sendJson(res, status, body, headers);
        }
        // toNodeHandler hands `req.auth` to the server factory as `authInfo`.
        (req as IncomingMessage & { auth?: AuthInfo }).auth = {
          token: "",
          clientId: admitted.agent,
          scopes: [],
          extra: { assertionId: admitted.id },
        };
      }
      return serveMcp(req, res);
    }
    sendJson(res, 404, { error: "not_found", message: `No route for ${path}; MCP is at /mcp` });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      log(`${req.method} ${req.url} failed`, error);
      if (!res.headersSent) sendJson(res, 500, { error: "internal_error" });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(new Error(`${name} cannot listen on ${host}:${options.port}: ${error.code ?? error}`));
    });
    server.listen(options.port, host, () => resolve());
  });
  server.on("error", (error) => log("server", error));

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;

  return {
    name,
    host,
    port,
    url: `http://${urlHost}:${port}`,
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        force.unref();
        await mcp.close();
        server.closeIdleConnections();
        await closed;
        clearTimeout(force);
      })();
      return closing;
    },
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/** Writes one line to stderr, prefixed with the backend's name. */
export function logError(name: string, message: string, error?: unknown): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : error;
  console.error(`[${name}] ${message}${detail === undefined ? "" : `: ${String(detail)}`}`);
}
