/**
 * Asking the MCP servers behind the gateway: the one entry point for every backend request.
 *
 * A backend's first request goes through the SDK's client, which learns its era
 * (`sdk-client.ts`). A backend known to serve 2026-07-28 is then asked directly, one stateless
 * POST per request (`direct.ts`), unless `DIRECT=off`; anything the direct path does not carry
 * goes through the SDK client. Either way, after the first request a backend call costs exactly
 * one HTTP round trip.
 */
import {
  ProtocolError,
  ProtocolErrorCode,
  SERVER_INFO_META_KEY,
} from "@modelcontextprotocol/client";
import type { BackendSpec } from "../core/config.ts";
import { isJsonObject } from "../core/json.ts";
import { GatewayError } from "../errors.ts";
import { eraVerdicts } from "../state/era-verdicts.ts";
import { type BackendCaller, type CallLimits, fetchFor } from "./caller.ts";
import { directRequest, HEADER_MISMATCH, MODERN_REVISION, sendableDirectly } from "./direct.ts";
import { type Ask, askThrough, CLIENT_INFO, declaredTo, withClient } from "./sdk-client.ts";

export type { Ask } from "./sdk-client.ts";

/**
 * Runs `use` with a way to ask `backend` things on behalf of the caller. Connection and request
 * failures reject: a JSON-RPC error as `ProtocolError` (the backend answered), a request left
 * unanswered past `limits.timeoutMs` as a `backend_timeout` `GatewayError` (it has been cancelled
 * at the backend by then), anything else as an `Error` (the backend did not answer at all); the
 * caller decides how they reach the agent.
 */
export async function withBackend<T>(
  backend: BackendSpec,
  caller: BackendCaller,
  limits: CallLimits,
  use: (ask: Ask) => Promise<T>,
): Promise<T> {
  if (!answersDirectly(backend)) {
    return withClient(backend, caller, limits, (client, declared) =>
      use(async (method, params, relay) =>
        asOurs(await askThrough(client, limits, backend.id, declared)(method, params, relay)),
      ),
    );
  }
  const direct = { id: backend.id, url: backend.url, fetch: fetchFor(backend, caller) };
  const declared = declaredTo(caller, { kind: "modern" });
  const throughClient: Ask = (method, params, relay) =>
    withClient(backend, caller, limits, (client, declared) =>
      askThrough(client, limits, backend.id, declared)(method, params, relay),
    );
  return use(async (method, params, relay) => {
    if (!sendableDirectly(method, params)) {
      return asOurs(await throughClient(method, params, relay));
    }
    try {
      return asOurs(
        await directRequest(direct, method, params, {
          timeoutMs: limits.timeoutMs,
          ...(limits.signal ? { signal: limits.signal } : {}),
          ...(relay ? { relay } : {}),
          ...(declared ? { clientCapabilities: { ...declared } } : {}),
          clientInfo: CLIENT_INFO,
        }),
      );
    } catch (e) {
      // The backend wants more than plain headers (`Mcp-Param-*`): the SDK client knows how.
      if (e instanceof ProtocolError && e.code === HEADER_MISMATCH) {
        return asOurs(await throughClient(method, params, relay));
      }
      // Anything but a JSON-RPC answer may mean the backend changed or died: ask the SDK next
      // time. A request that ran past its deadline says neither: the era stays known.
      const answered = e instanceof ProtocolError || e instanceof GatewayError;
      if (!answered && !limits.signal?.aborted) eraVerdicts.forget(backend.id);
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
  const verdict = eraVerdicts.get(backend.id);
  return verdict?.kind === "modern" && verdict.discover.supportedVersions.includes(MODERN_REVISION);
}

/** The paginated list methods a backend may offer. */
export type ListMethod =
  | "tools/list"
  | "resources/list"
  | "resources/templates/list"
  | "prompts/list";

// A backend that pages its lists endlessly is cut off here.
const MAX_LIST_PAGES = 20;

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
