/**
 * `list_changed` from the backends, surfaced to agents that listen (2026-07-28
 * `subscriptions/listen`). While an agent's listen stream is open, the proxy listens upstream to
 * each of that agent's servers with the same filter, and passes every change on through the SDK
 * handler's bus, which delivers it to the open listen streams that asked for that kind. An agent
 * then lists again and sees its own filtered view; a change can reach other listening agents of
 * the isolate too, which costs them one listing and tells them nothing they may not see.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { BackendSpec, GatewayConfig } from "../core/config.ts";
import type { ChangeFilter } from "../core/envelope.ts";
import { log } from "../core/log.ts";
import { serversFor } from "../core/policy.ts";
import { describe } from "../errors.ts";
import { eraVerdicts } from "../state/era-verdicts.ts";
import { type BackendCaller, fetchFor } from "./caller.ts";
import { CLIENT_INFO, withClient } from "./sdk-client.ts";

/** Where changes are published: the SDK handler's notifier. */
export interface ChangeNotifier {
  toolsChanged: () => unknown;
  resourcesChanged: () => unknown;
  promptsChanged: () => unknown;
}

/**
 * Listens to `backend` for list changes on behalf of the caller until `signal` aborts, calling
 * `changed` for each. Only 2026-07-28 backends can be listened to this way; a 2025-era backend
 * announces changes only on its own sessions' streams, and is skipped.
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
  const client = new Client(CLIENT_INFO);
  const transport = new StreamableHTTPClientTransport(backend.url, {
    fetch: fetchFor(backend, caller),
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
