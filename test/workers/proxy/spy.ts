/**
 * A counting relay in front of a real backend, so tests can prove what did or did not reach it:
 * every request to `/mcp` is counted and forwarded unchanged; `GET /__count` reads the count.
 */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface Spy {
  url: string;
  close: () => Promise<void>;
}

/** Starts a relay on a free loopback port in front of `target` (a base URL such as http://127.0.0.1:1234). */
export async function startSpy(target: string): Promise<Spy> {
  let count = 0;
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    if (req.url === "/__count") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ count }));
      return;
    }
    count++;
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
