/**
 * `list_changed` from the backends, surfaced to agents that listen (2026-07-28
 * `subscriptions/listen`). While an agent's listen stream is open, the proxy listens upstream to
 * each of that agent's servers with the same filter, and passes every change on through the SDK
 * handler's bus, which delivers it to the open listen streams that asked for that kind. An agent
 * then lists again and sees its own filtered view; a change can reach other listening agents of
 * the isolate too, which costs them one listing and tells them nothing they may not see.
 *
 * Each upstream listen is one plain POST whose SSE stream is read here, not the SDK client's
 * `listen()`: in workerd, every SDK listen that was closed left its client, transport and stream
 * pipeline reachable for good (about 13 KB of heap per upstream listen, never collected; measured
 * with bench/streams.ts), so an agent opening and closing listen streams grew the isolate without
 * bound. Closing the stream is how a 2026-07-28 client cancels its listen over HTTP, so nothing
 * else is sent when it ends.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
} from "@modelcontextprotocol/server";
import type { BackendSpec, GatewayConfig } from "../core/config.ts";
import type { ChangeFilter } from "../core/envelope.ts";
import { isJsonObject } from "../core/json.ts";
import { log } from "../core/log.ts";
import { serversFor } from "../core/policy.ts";
import { describe } from "../errors.ts";
import { eraVerdicts } from "../state/era-verdicts.ts";
import { type BackendCaller, fetchFor } from "./caller.ts";
import { MODERN_REVISION } from "./direct.ts";
import { CLIENT_INFO, withClient } from "./sdk-client.ts";

/** Where changes are published: the SDK handler's notifier. */
export interface ChangeNotifier {
  toolsChanged: () => unknown;
  resourcesChanged: () => unknown;
  promptsChanged: () => unknown;
}

/** The JSON-RPC id of every upstream listen: each is its own exchange. */
const LISTEN_ID = "mcpcp-listen";

const CHANGES: Record<string, "tools" | "resources" | "prompts"> = {
  "notifications/tools/list_changed": "tools",
  "notifications/resources/list_changed": "resources",
  "notifications/prompts/list_changed": "prompts",
};

/**
 * Listens to `backend` for list changes on behalf of the caller until `signal` aborts, calling
 * `changed` for each: one upstream listen, whose stream is closed when `signal` aborts (in the
 * 2026-07-28 revision, closing a request's stream is its cancellation). Only 2026-07-28 backends
 * can be listened to this way; a 2025-era backend announces changes only on its own sessions'
 * streams, and is skipped. Resolves once the upstream stream has ended.
 */
async function listenTo(
  backend: BackendSpec,
  caller: BackendCaller,
  filter: ChangeFilter,
  signal: AbortSignal,
  changed: (kind: "tools" | "resources" | "prompts") => void,
): Promise<void> {
  if (!eraVerdicts.get(backend.id)) {
    // Learn the backend's era first: one probe, cached like any other call's.
    await withClient(backend, caller, { timeoutMs: 5_000, signal }, async () => {});
  }
  const verdict = eraVerdicts.get(backend.id);
  if (verdict?.kind !== "modern" || signal.aborted) return;
  const response = await fetchFor(backend, caller)(backend.url, {
    signal,
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN_REVISION,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: LISTEN_ID,
      method: "subscriptions/listen",
      params: {
        notifications: filter,
        _meta: {
          [PROTOCOL_VERSION_META_KEY]: MODERN_REVISION,
          [CLIENT_INFO_META_KEY]: CLIENT_INFO,
          [CLIENT_CAPABILITIES_META_KEY]: {},
        },
      },
    }),
  });
  const type = response.headers.get("content-type") ?? "";
  if (!response.ok || !response.body || !type.startsWith("text/event-stream")) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`No listen stream from ${backend.id}: HTTP ${response.status}, ${type}`);
  }
  const reader = response.body.getReader();
  const stop = () => void reader.cancel().catch(() => {});
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const kind = CHANGES[methodOf(buffer.slice(0, end)) ?? ""];
        buffer = buffer.slice(end + 2);
        if (kind) changed(kind);
      }
    }
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

/** The JSON-RPC method of the message in one SSE event, if it has one. */
function methodOf(event: string): string | undefined {
  const data = event
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
    .join("\n");
  if (!data) return undefined;
  try {
    const message: unknown = JSON.parse(data);
    return isJsonObject(message) && typeof message.method === "string" ? message.method : undefined;
  } catch {
    return undefined;
  }
}

/** Relays the backends' list changes for the caller until `signal` aborts. */
export function relayListChanges(
  config: GatewayConfig,
  caller: BackendCaller,
  filter: ChangeFilter,
  signal: AbortSignal,
  notify: ChangeNotifier,
): Promise<unknown> {
  const publish = {
    tools: () => notify.toolsChanged(),
    resources: () => notify.resourcesChanged(),
    prompts: () => notify.promptsChanged(),
  };
  return Promise.allSettled(
    serversFor(config.policy, caller.agent).map(async (id) => {
      const backend = config.backends.get(id);
      if (!backend) return;
      try {
        await listenTo(backend, caller, filter, signal, (kind) => publish[kind]());
      } catch (e) {
        if (!signal.aborted) {
          log("warn", "backend_listen_failed", {
            server: id,
            agent: caller.agent,
            error: describe(e),
          });
        }
      }
    }),
  );
}
