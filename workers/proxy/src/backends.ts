/**
 * Talking to the MCP servers behind the gateway, with the SDK's client.
 *
 * One `Client` per backend per agent request: requests are independent (Streamable HTTP,
 * stateless), and Workers forbid sharing I/O objects across requests. The era verdict of each
 * backend (its `server/discover` result, or "legacy") is kept per isolate, so after the first
 * request a backend call costs exactly one HTTP round trip.
 */
import {
  Client,
  type DiscoverResult,
  ProtocolError,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import type { AssertionSigner } from "../../../common/assertion.ts";
import { AGENT_HEADER } from "../../../common/identity.ts";
import type { BackendSpec } from "./config.ts";

const CLIENT_INFO = { name: "mcpcp-proxy", version: "0.1.0" };

type EraVerdict = { kind: "modern"; discover: DiscoverResult } | { kind: "legacy" };

// Per isolate. A stale entry costs one failed call, after which it is dropped and re-probed.
const verdicts = new Map<string, EraVerdict>();

/** Per-call limits: the gateway's timeout and the agent's cancellation. */
export interface CallLimits {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Who is calling, in the form the backend trusts; the agent's own token is never among them. */
async function identityHeaders(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
): Promise<Record<string, string>> {
  if (backend.identity === "binding") return { [AGENT_HEADER]: agent };
  return { authorization: `Bearer ${await signer.sign(agent, backend.id)}` };
}

/**
 * Opens a client to `backend` on behalf of `agent`, runs `use`, and closes it. Connection and
 * request failures reject; the caller decides how they reach the agent.
 */
export async function withBackend<T>(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
  limits: CallLimits,
  use: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client(CLIENT_INFO, {
    versionNegotiation: { mode: "auto" },
  });
  const transport = new StreamableHTTPClientTransport(backend.url, {
    fetch: backend.fetch,
    requestInit: { headers: await identityHeaders(backend, agent, signer) },
  });
  const options = {
    timeout: limits.timeoutMs,
    ...(limits.signal ? { signal: limits.signal } : {}),
  };
  const prior = verdicts.get(backend.id);
  try {
    await client.connect(transport, prior ? { ...options, prior } : options);
    if (!prior) {
      const discover = client.getDiscoverResult();
      verdicts.set(backend.id, discover ? { kind: "modern", discover } : { kind: "legacy" });
    }
    return await use(client);
  } catch (e) {
    // A JSON-RPC error is the backend answering; anything else may mean it changed or died.
    if (!(e instanceof ProtocolError)) verdicts.delete(backend.id);
    throw e;
  } finally {
    await client.close().catch(() => {});
  }
}

/** Forgets every era verdict (tests, and a backend known to have changed). */
export function forgetBackendVerdicts(): void {
  verdicts.clear();
}
