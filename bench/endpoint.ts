/**
 * Where a benchmark request goes and what it carries: the proxy with its token, or a backend with
 * what the proxy itself would send it (a signed assertion, fresh for every request).
 */
import type { JWK } from "jose";
import { createAssertionSigner } from "../common/assertion.ts";

/** The agent the benchmark's own policy grants every server. */
export const BENCH_AGENT = "bench";

export interface Endpoint {
  /** The MCP endpoint, e.g. `http://127.0.0.1:41234/mcp`. */
  url: URL;
  /** Headers every request carries besides the MCP ones: the proxy's token, or what the proxy
   * itself would send the backend (its signed assertion). */
  headers: Record<string, string>;
  /**
   * Renews the credentials in `headers`. A backend takes each proxy assertion once (it remembers
   * every `jti` until it expires), so an endpoint with assertions is renewed before every request.
   */
  refresh?: () => Promise<void>;
  /** `count` fresh `authorization` values, one per request, for a load generator to send in turn. */
  assertions?: (count: number) => Promise<string[]>;
}

/** Backend endpoints carrying what the proxy sends: its assertions, when there is a signing key. */
export async function directEndpoint(
  url: URL,
  backend: string,
  signingKey: string | undefined,
  agent = BENCH_AGENT,
): Promise<Endpoint> {
  const endpoint: Endpoint = { url, headers: {} };
  if (signingKey) {
    const signer = await createAssertionSigner(JSON.parse(signingKey) as JWK);
    const fresh = async () => `Bearer ${await signer.sign(agent, backend)}`;
    endpoint.refresh = async () => {
      endpoint.headers = { authorization: await fresh() };
    };
    endpoint.assertions = async (count) => {
      const values: string[] = [];
      for (let i = 0; i < count; i++) values.push(await fresh());
      return values;
    };
    await endpoint.refresh();
  }
  return endpoint;
}
