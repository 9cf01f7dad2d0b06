/**
 * `list_changed` from the backends, surfaced to agents that listen (2026-07-28
 * `subscriptions/listen`). While an agent's listen stream is open, the proxy listens upstream to
 * each of that agent's servers with the same filter, and passes every change on through the SDK
 * handler's bus, which delivers it to the open listen streams that asked for that kind. An agent
 * then lists again and sees its own filtered view; a change can reach other listening agents of
 * the isolate too, which costs them one listing and tells them nothing they may not see.
 */
import type { ServerNotifier } from "@modelcontextprotocol/server";
import { type ChangeFilter, listenTo } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";
import { describe } from "./fan-out.ts";
import { serversFor } from "./policy.ts";

/** The listen filters in a body: `subscriptions/listen` requests and what they asked for. */
export function listensIn(body: unknown): ChangeFilter[] {
  const messages = Array.isArray(body) ? body : [body];
  return messages.flatMap((m) => {
    const message = m as { method?: unknown; params?: { notifications?: unknown } } | null;
    if (message?.method !== "subscriptions/listen") return [];
    const asked = message.params?.notifications as Record<string, unknown> | undefined;
    const filter: ChangeFilter = {};
    for (const key of ["toolsListChanged", "resourcesListChanged", "promptsListChanged"] as const) {
      if (asked?.[key] === true) filter[key] = true;
    }
    return Object.keys(filter).length > 0 ? [filter] : [];
  });
}

/** Relays the backends' list changes for `agent` until `signal` aborts. */
export function relayListChanges(
  config: GatewayConfig,
  agent: string,
  filter: ChangeFilter,
  signal: AbortSignal,
  notify: ServerNotifier,
): Promise<unknown> {
  const publish = {
    tools: () => notify.toolsChanged(),
    resources: () => notify.resourcesChanged(),
    prompts: () => notify.promptsChanged(),
  };
  return Promise.allSettled(
    serversFor(config.policy, agent).map(async (id) => {
      const backend = config.backends.get(id);
      if (!backend) return;
      try {
        await listenTo(backend, agent, config.signer, filter, signal, (kind) => publish[kind]());
      } catch (e) {
        if (!signal.aborted) {
          console.warn(
            JSON.stringify({
              event: "backend_listen_failed",
              server: id,
              agent,
              error: describe(e),
            }),
          );
        }
      }
    }),
  );
}
