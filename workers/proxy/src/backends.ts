/**
 * Talking to the MCP servers behind the gateway.
 *
 * The SDK's client learns each backend's era (its `server/discover` result, or "legacy"); the
 * verdict is kept per isolate. A backend known to serve 2026-07-28 is then asked directly, one
 * stateless POST per request (`direct.ts`), with no client object. Any other backend gets one
 * SDK `Client` per agent request (Workers forbid sharing I/O objects across requests), and a
 * stateful backend's session is kept per (backend, agent) in `upstream-sessions.ts`. Either way,
 * after the first request a backend call costs exactly one HTTP round trip.
 */
import {
  Client,
  type DiscoverResult,
  ProtocolError,
  ProtocolErrorCode,
  SdkHttpError,
  SERVER_INFO_META_KEY,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import type { AssertionSigner } from "../../../common/assertion.ts";
import { AGENT_HEADER } from "../../../common/identity.ts";
import type { BackendSpec } from "./config.ts";
import {
  directRequest,
  HEADER_MISMATCH,
  MODERN_REVISION,
  type Relay,
  sendableDirectly,
} from "./direct.ts";
import { isJsonObject } from "./json-object.ts";
import { uniqueIds } from "./unique-ids.ts";

const CLIENT_INFO = { name: "mcpcp-proxy", version: "0.1.0" };

type EraVerdict = { kind: "modern"; discover: DiscoverResult } | { kind: "legacy" };

// Per isolate. A stale entry costs one failed call, after which it is dropped and re-probed.
const verdicts = new Map<string, EraVerdict>();

/** Per-call limits: the gateway's timeout and the agent's cancellation. */
export interface CallLimits {
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Keeps work going after the agent's request has ended (`ctx.waitUntil`). When an agent
   * cancels, the client's `notifications/cancelled` to a session backend must still be delivered.
   */
  defer?: (work: Promise<unknown>) => void;
}

/**
 * Closes a client once its work is done. After a cancellation the SDK has just sent
 * `notifications/cancelled`; closing at once would abort that very request, so the close waits a
 * moment, outside the agent's (already finished) request. A 2026-era client is not closed at all:
 * each of its requests was one POST, answered and read to the end, so it holds nothing open, and
 * closing it only builds the SDK's "connection closed" errors (with stack traces) for nobody. That
 * was about a fifth of the proxy's CPU per call in the benchmark (BENCHMARKS.md).
 */
async function release(client: Client, limits: CallLimits): Promise<void> {
  if (limits.signal?.aborted && limits.defer) {
    limits.defer(
      new Promise((resolve) => setTimeout(resolve, CANCEL_GRACE_MS)).then(() => client.close()),
    );
    return;
  }
  if (client.getProtocolEra() === "modern") return;
  await client.close().catch(() => {});
}

const CANCEL_GRACE_MS = 1_000;

/** Who is calling, in the form the backend trusts; the agent's own token is never among them. */
async function identityHeaders(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
): Promise<Record<string, string>> {
  if (backend.identity === "binding") return { [AGENT_HEADER]: agent };
  if (backend.identity === "none") return {};
  return { authorization: `Bearer ${await signer.sign(agent, backend.id)}` };
}

export type { Relay } from "./direct.ts";

/**
 * One JSON-RPC request to a backend, resolved with its result. `relay` receives the progress
 * and log messages the backend sends while it works.
 */
export type Ask = (
  method: string,
  params: Record<string, unknown>,
  relay?: Relay,
) => Promise<Record<string, unknown>>;

/**
 * Runs `use` with a way to ask `backend` things on behalf of `agent`. Connection and request
 * failures reject; the caller decides how they reach the agent.
 */
export async function withBackend<T>(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
  limits: CallLimits,
  use: (ask: Ask) => Promise<T>,
): Promise<T> {
  if (!answersDirectly(backend)) {
    return withClient(backend, agent, signer, limits, (client) =>
      use(async (method, params, relay) =>
        asOurs(await askThrough(client, limits)(method, params, relay)),
      ),
    );
  }
  const identity = await identityHeaders(backend, agent, signer);
  const throughClient: Ask = (method, params, relay) =>
    withClient(backend, agent, signer, limits, (client) =>
      askThrough(client, limits)(method, params, relay),
    );
  return use(async (method, params, relay) => {
    if (!sendableDirectly(method, params))
      return asOurs(await throughClient(method, params, relay));
    try {
      return asOurs(
        await directRequest(backend, identity, method, params, {
          timeoutMs: limits.timeoutMs,
          ...(limits.signal ? { signal: limits.signal } : {}),
          ...(relay ? { relay } : {}),
          clientInfo: CLIENT_INFO,
        }),
      );
    } catch (e) {
      // The backend wants more than plain headers (`Mcp-Param-*`): the SDK client knows how.
      if (e instanceof ProtocolError && e.code === HEADER_MISMATCH) {
        return asOurs(await throughClient(method, params, relay));
      }
      // Anything but a JSON-RPC answer may mean the backend changed or died: ask the SDK next time.
      if (!(e instanceof ProtocolError) && !limits.signal?.aborted) verdicts.delete(backend.id);
      throw e;
    }
  });
}

/**
 * A backend's result as the gateway passes it on: without the backend's own `serverInfo`, which
 * would tell the agent it reached the backend rather than the gateway.
 */
function asOurs(result: Record<string, unknown>): Record<string, unknown> {
  const meta = result._meta;
  if (!isJsonObject(meta) || !(SERVER_INFO_META_KEY in meta)) return result;
  const { [SERVER_INFO_META_KEY]: _, ...rest } = meta;
  const { _meta: __, ...body } = result;
  return Object.keys(rest).length > 0 ? { ...body, _meta: rest } : body;
}

/**
 * Whether `backend` is known to serve 2026-07-28, which `direct.ts` can ask. That revision has no
 * sessions, so a session store only ever matters for a backend found to be legacy.
 */
function answersDirectly(backend: BackendSpec): boolean {
  if (!backend.direct) return false;
  const verdict = verdicts.get(backend.id);
  return verdict?.kind === "modern" && verdict.discover.supportedVersions.includes(MODERN_REVISION);
}

/** An `Ask` that goes through an SDK client (`tools/call` through `callTool`, for its checks). */
function askThrough(client: Client, limits: CallLimits): Ask {
  return (method, params, relay) => {
    if (relay) {
      client.setNotificationHandler("notifications/message", (n) => relay.log(n.params));
    }
    const options = {
      timeout: limits.timeoutMs,
      ...(limits.signal ? { signal: limits.signal } : {}),
      // A backend that keeps reporting progress is working, not hung.
      ...(relay?.progress ? { onprogress: relay.progress, resetTimeoutOnProgress: true } : {}),
    };
    const request =
      method === "tools/call"
        ? client.callTool(params as never, options)
        : client.request({ method, params } as never, options);
    return request as Promise<Record<string, unknown>>;
  };
}

/**
 * Opens a client to `backend` on behalf of `agent`, runs `use`, and closes it. Connection and
 * request failures reject.
 */
async function withClient<T>(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
  limits: CallLimits,
  use: (client: Client) => Promise<T>,
): Promise<T> {
  const headers = await identityHeaders(backend, agent, signer);
  const options = {
    timeout: limits.timeoutMs,
    ...(limits.signal ? { signal: limits.signal } : {}),
  };
  const sessions = backend.sessions?.(agent);
  const verdict = verdicts.get(backend.id);

  if (sessions && verdict?.kind === "legacy") {
    const session = await sessions.get();
    if (session) {
      const client = new Client(CLIENT_INFO);
      const transport = new StreamableHTTPClientTransport(backend.url, {
        fetch: backend.fetch,
        requestInit: { headers },
        sessionId: session.sessionId,
        protocolVersion: session.protocolVersion,
      });
      try {
        // With a session id, the client skips the handshake: this costs no round trip.
        await client.connect(transport, { ...options, prior: { kind: "legacy" } });
        uniqueIds(transport);
        return await use(client);
      } catch (e) {
        // 404: the backend forgot the session (restart, expiry). Start a new one below.
        if (!(e instanceof SdkHttpError && e.status === 404)) throw e;
        await sessions.forget(session.sessionId);
      } finally {
        await release(client, limits);
      }
    }
  }

  const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: "auto" } });
  const transport = new StreamableHTTPClientTransport(backend.url, {
    fetch: backend.fetch,
    requestInit: { headers },
  });
  try {
    await client.connect(transport, verdict ? { ...options, prior: verdict } : options);
    if (!verdict) {
      const discover = client.getDiscoverResult();
      verdicts.set(backend.id, discover ? { kind: "modern", discover } : { kind: "legacy" });
    }
    // A backend that gave us a session keeps it for this agent's next calls.
    if (sessions && transport.sessionId && transport.protocolVersion) {
      await sessions.set({
        sessionId: transport.sessionId,
        protocolVersion: transport.protocolVersion,
      });
    }
    return await use(client);
  } catch (e) {
    // A JSON-RPC error is the backend answering; anything else may mean it changed or died.
    if (!(e instanceof ProtocolError)) verdicts.delete(backend.id);
    throw e;
  } finally {
    // Closing the client ends its HTTP exchanges; it does not end the upstream session.
    await release(client, limits);
  }
}

/** The paginated list methods a backend may offer. */
export type ListMethod =
  | "tools/list"
  | "resources/list"
  | "resources/templates/list"
  | "prompts/list";

/**
 * Every item of a backend's list, following cursors. Sent as a plain request rather than through
 * `client.listTools()`: a resumed session has not seen the server's capabilities, and the SDK
 * would answer an empty list instead of asking. A server without the feature (-32601) has none.
 */
export async function listAll<T>(ask: Ask, method: ListMethod, key: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    let result: Record<string, unknown>;
    try {
      result = await ask(method, cursor === undefined ? {} : { cursor });
    } catch (e) {
      if (e instanceof ProtocolError && e.code === ProtocolErrorCode.MethodNotFound) return items;
      throw e;
    }
    items.push(...((result[key] as T[] | undefined) ?? []));
    cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
    if (cursor === undefined) break;
  }
  return items;
}

// A backend that pages its lists endlessly is cut off here.
const MAX_LIST_PAGES = 20;

/** What a listener wants to hear about (the 2026-07-28 `subscriptions/listen` filter). */
export interface ChangeFilter {
  toolsListChanged?: boolean;
  resourcesListChanged?: boolean;
  promptsListChanged?: boolean;
}

/**
 * Listens to `backend` for list changes on behalf of `agent` until `signal` aborts, calling
 * `changed` for each. Only 2026-07-28 backends can be listened to this way; a 2025-era backend
 * announces changes only on its own sessions' streams, and is skipped.
 */
export async function listenTo(
  backend: BackendSpec,
  agent: string,
  signer: AssertionSigner,
  filter: ChangeFilter,
  signal: AbortSignal,
  changed: (kind: "tools" | "resources" | "prompts") => void,
): Promise<void> {
  if (!verdicts.has(backend.id)) {
    // Learn the backend's era first: one probe, cached like any other call's.
    await withClient(backend, agent, signer, { timeoutMs: 5_000, signal }, async () => {});
  }
  const verdict = verdicts.get(backend.id);
  if (verdict?.kind !== "modern" || signal.aborted) return;
  const client = new Client(CLIENT_INFO);
  const transport = new StreamableHTTPClientTransport(backend.url, {
    fetch: backend.fetch,
    requestInit: { headers: await identityHeaders(backend, agent, signer) },
  });
  await client.connect(transport, { prior: verdict, signal });
  client.setNotificationHandler("notifications/tools/list_changed", () => changed("tools"));
  client.setNotificationHandler("notifications/resources/list_changed", () => changed("resources"));
  client.setNotificationHandler("notifications/prompts/list_changed", () => changed("prompts"));
  const subscription = await client.listen(filter, { signal });
  const stop = () => {
    void subscription.close().finally(() => client.close().catch(() => {}));
  };
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
}

/** Forgets every era verdict (tests, and a backend known to have changed). */
export function forgetBackendVerdicts(): void {
  verdicts.clear();
}
