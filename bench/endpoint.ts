/**
 * Where a benchmark request goes and what it carries: the proxy with its token, or a backend with
 * what the proxy itself would send it (the agent header and a signed assertion).
 */
import type { JWK } from "jose";
import { createAssertionSigner } from "../common/assertion.ts";
import { AGENT_HEADER } from "../common/identity.ts";

/** The agent the benchmark's own policy grants every server. */
export const BENCH_AGENT = "bench";

export interface Endpoint {
  /** The MCP endpoint, e.g. `http://127.0.0.1:41234/mcp`. */
  url: URL;
  /** Headers every request carries besides the MCP ones: the proxy's token, or what the proxy
   * itself would send the backend (identity header, signed assertion). */
  headers: Record<string, string>;
  /** Renews short-lived credentials in `headers` (the proxy's assertions live 60 s). */
  refresh?: () => Promise<void>;
}

/** Backend endpoints carrying what the proxy sends: the agent header and, if keyed, assertions. */
export async function directEndpoint(
  url: URL,
  backend: string,
  signingKey: string | undefined,
  agent = BENCH_AGENT,
): Promise<Endpoint> {
  const endpoint: Endpoint = { url, headers: { [AGENT_HEADER]: agent } };
  if (signingKey && backend !== "mcp1") {
    const signer = await createAssertionSigner(JSON.parse(signingKey) as JWK);
    endpoint.refresh = async () => {
      endpoint.headers = {
        [AGENT_HEADER]: agent,
        authorization: `Bearer ${await signer.sign(agent, backend)}`,
      };
    };
    await endpoint.refresh();
  }
  return endpoint;
}
