/**
 * What every test backend in this folder does the same way: listen on a free loopback port, tell
 * a test what happened at `GET /__state`, and close without waiting for idle connections.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface TestServer {
  /** `http://127.0.0.1:<port>`, without a path. */
  url: string;
  close: () => Promise<void>;
}

/** Starts `http` on a free loopback port. `close` runs `before` first (the MCP side's own close). */
export async function listenOnLoopback(
  http: Server,
  before: () => Promise<unknown> = async () => {},
): Promise<TestServer> {
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await before();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Answers `GET /__state` with `state` as JSON; true when the request was that. */
export function answeredState(req: IncomingMessage, res: ServerResponse, state: unknown): boolean {
  if (new URL(req.url ?? "/", "http://localhost").pathname !== "/__state") return false;
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(state));
  return true;
}
