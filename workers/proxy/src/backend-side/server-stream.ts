/**
 * A 2025 agent's `GET /mcp` stream: what its backends say outside any call, relayed while the
 * stream is open.
 *
 * A 2025 backend says some things on the standalone GET stream of the client's session, not on
 * a call's stream: `notifications/resources/updated` for a subscribed resource, `list_changed`,
 * log messages, and questions it asks outside a call (`roots/list`, say). For a sessionful agent
 * (`core/agent-session.ts`) the gateway opens that GET stream on the agent's upstream session of
 * each of its networked 2025 backends (making the session first if there is none), and passes on
 * what comes: resource URIs under the server's prefix (`server+uri`), questions under an id that
 * seals where the answer goes, as on a call's stream. A backend without a GET stream (405) or
 * without sessions is skipped; one that fails is logged and skipped. Everything upstream closes
 * when the agent's stream does.
 */
import { createParser } from "eventsource-parser";
import {
  type Answerable,
  isQuestion,
  QUESTION_PREFIX,
  questionBinding,
  routeText,
} from "../core/agent-session.ts";
import type { BackendSpec, GatewayConfig } from "../core/config.ts";
import { isJsonObject } from "../core/json.ts";
import { log } from "../core/log.ts";
import { prefixUri } from "../core/names.ts";
import { serversFor } from "../core/policy.ts";
import { seal } from "../core/seal.ts";
import { describe } from "../errors.ts";
import { eraVerdicts } from "../state/era-verdicts.ts";
import { type BackendCaller, fetchFor, sessionsFor } from "./caller.ts";
import { withClient } from "./sdk-client.ts";

/** A caller whose session says what it can answer: its upstream sessions are those it declared. */
type SessionCaller = BackendCaller & { answerable: Answerable };

/** Relayed notifications: their method, and how the message changes on the way. */
const RELAYED: Record<string, (server: string, params: Record<string, unknown>) => unknown> = {
  "notifications/resources/updated": (server, params) =>
    typeof params.uri === "string" ? { ...params, uri: prefixUri(server, params.uri) } : undefined,
  "notifications/tools/list_changed": (_server, params) => params,
  "notifications/resources/list_changed": (_server, params) => params,
  "notifications/prompts/list_changed": (_server, params) => params,
  "notifications/message": (_server, params) => params,
};

/**
 * Relays each of the agent's 2025 backends' GET streams to `send` until `signal` aborts. `ready`
 * settles once each upstream stream is open (or known not to be), so that what a backend says
 * after the agent has its stream reaches it; `done` once every upstream stream has ended.
 */
export function relayServerStreams(
  config: GatewayConfig,
  caller: SessionCaller,
  signal: AbortSignal,
  send: (message: Record<string, unknown>) => void,
): { ready: Promise<void>; done: Promise<void> } {
  const backends = serversFor(config.policy, caller.agent)
    .map((id) => config.backends.get(id))
    .filter((backend): backend is BackendSpec => backend?.route === "network");
  const opened: Promise<void>[] = [];
  const done = Promise.all(
    backends.map((backend) => {
      let open!: () => void;
      opened.push(
        new Promise<void>((resolve) => {
          open = resolve;
        }),
      );
      return relayOne(config, backend, caller, signal, send, open)
        .catch((e: unknown) => {
          if (signal.aborted) return;
          log("warn", "server_stream_failed", {
            server: backend.id,
            agent: caller.agent,
            error: describe(e),
          });
        })
        .finally(open);
    }),
  ).then(() => {});
  return { ready: Promise.all(opened).then(() => {}), done };
}

async function relayOne(
  config: GatewayConfig,
  backend: BackendSpec,
  caller: SessionCaller,
  signal: AbortSignal,
  send: (message: Record<string, unknown>) => void,
  open: () => void,
): Promise<void> {
  const sessions = sessionsFor(backend, caller, caller.answerable);
  if (!sessions) return;
  let session = await sessions.get();
  if (!session && eraVerdicts.get(backend.id)?.kind !== "modern") {
    // The agent has not called this backend yet: its session begins now, as a call would begin it.
    await withClient(
      backend,
      caller,
      { timeoutMs: config.backendTimeoutMs, signal },
      async () => {},
    );
    session = await sessions.get();
  }
  if (!session || signal.aborted) return;
  const response = await fetchFor(backend, caller)(backend.url.href, {
    method: "GET",
    headers: {
      accept: "text/event-stream",
      "mcp-session-id": session.sessionId,
      "mcp-protocol-version": session.protocolVersion,
    },
    signal,
  });
  const type = response.headers.get("content-type") ?? "";
  if (!response.ok || !response.body || !type.startsWith("text/event-stream")) {
    // 405: the backend has no GET stream; 404: it forgot the session (the next call renews it).
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) await sessions.forget(session.sessionId);
    return;
  }
  open();
  const route = { server: backend.id, session: session.sessionId };
  const version = session.protocolVersion;
  const parser = createParser({
    onEvent: (event) => {
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      relayed(config, caller, message, { ...route, protocolVersion: version }).then(
        (out) => out && send(out),
        () => {},
      );
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => void reader.cancel().catch(() => {});
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

/** A backend's message as the agent gets it on its GET stream; undefined when it goes no further. */
async function relayed(
  config: GatewayConfig,
  caller: SessionCaller,
  message: unknown,
  route: { server: string; session: string; protocolVersion: string },
): Promise<Record<string, unknown> | undefined> {
  if (!isJsonObject(message) || typeof message.method !== "string") return undefined;
  const params = isJsonObject(message.params) ? message.params : {};
  const { id, method } = message;
  if (id === undefined) {
    const change = RELAYED[method]?.(route.server, params);
    return change === undefined ? undefined : { jsonrpc: "2.0", method, params: change };
  }
  if (!isQuestion(method) || (typeof id !== "string" && typeof id !== "number")) {
    return undefined;
  }
  const sealed = await seal(
    config.sealKey,
    questionBinding(caller.agent),
    routeText({ ...route, id }),
  );
  return { jsonrpc: "2.0", id: `${QUESTION_PREFIX}${sealed}`, method, params };
}
