/**
 * A tiny local HTTP forwarder that adds `Authorization: Bearer <token>` to every request, for the
 * conformance harness: the suite's CLI has no option for an Authorization header, and the gateway
 * refuses any request without an agent token.
 *
 * It stands in for the agent's credentials only. Everything else passes through as the CLI sent
 * it: method, path and query, every header with its case and order (`Host`, `Origin`,
 * `Last-Event-ID`, `Mcp-Session-Id`, `MCP-Protocol-Version` included, so the DNS-rebinding
 * scenario's forged `Host` reaches the target unchanged), the body, and the answer (status,
 * headers, body), streamed both ways chunk by chunk without buffering, so SSE streams, their
 * early closes and `GET` resumptions behave as they would without it. An Authorization header the
 * CLI sent itself (it sends none) is replaced, never doubled.
 */
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface TokenForwarder {
  /** The target URL's path and query, on the forwarder's own `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

/** Starts a forwarder on a free loopback port that sends everything to `target`'s host. */
export async function startTokenForwarder(target: URL, token: string): Promise<TokenForwarder> {
  if (target.protocol !== "http:") throw new Error(`The forwarder speaks http only: ${target}`);
  const agent = new Agent({ keepAlive: true });

  const server = createServer((req, res) => {
    // rawHeaders keeps names as sent, in order, duplicates included: [name, value, name, value…]
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i] as string;
      if (name.toLowerCase() !== "authorization") headers.push(name, req.rawHeaders[i + 1] ?? "");
    }
    headers.push("Authorization", `Bearer ${token}`);

    const upstream = request({
      agent,
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      // An array of raw headers is sent as is: Node adds no Host of its own.
      headers,
      setHost: false,
    });
    upstream.on("response", (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      res.flushHeaders();
      answer.pipe(res);
      answer.on("error", () => res.destroy());
    });
    upstream.on("error", (error) => {
      if (res.headersSent) res.destroy();
      else
        res.writeHead(502, { "content-type": "text/plain" }).end(`forwarder: ${error.message}\n`);
    });
    // The CLI closed its side (say, cancelled an SSE reader): close ours, as it would have.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}${target.search}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
