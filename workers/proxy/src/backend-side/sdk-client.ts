/**
 * Backend requests through the SDK's client: the owner of MCP's client side for every backend the
 * direct requests (`direct.ts`) do not serve, and of learning each backend's era.
 *
 * One `Client` per agent request (Workers forbid sharing I/O objects across requests). A stateful
 * backend's session is kept per (backend, agent) in `state/upstream-sessions.ts` and resumed
 * without a handshake, so after the first request a call costs exactly one HTTP round trip.
 */
import {
  Client,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import { type Answerable, QUESTION_CAPABILITY } from "../core/agent-session.ts";
import type { BackendSpec } from "../core/config.ts";
import { isJsonObject } from "../core/json.ts";
import { GatewayError } from "../errors.ts";
import { eraVerdicts } from "../state/era-verdicts.ts";
import { type BackendCaller, type CallLimits, fetchFor, sessionsFor } from "./caller.ts";
import type { Relay } from "./direct.ts";
import { uniqueIds } from "./unique-ids.ts";

export const CLIENT_INFO = { name: "mcpcp-proxy", version: "0.1.0" };

/**
 * One JSON-RPC request to a backend, resolved with its result. `relay` receives the progress
 * and log messages the backend sends while it works.
 */
export type Ask = (
  method: string,
  params: Record<string, unknown>,
  relay?: Relay,
) => Promise<Record<string, unknown>>;

// The longest a client's close waits for its cancellations to be delivered.
const CANCEL_GRACE_MS = 1_000;

/**
 * The `notifications/cancelled` that `transport` is sending. In the 2025 eras the SDK client
 * gives up on a request (the agent cancelled it, or its deadline passed) by sending one, without
 * waiting for it to go out (a 2026-era client closes the request's stream instead, and sends
 * none). Closing the client aborts every exchange still open, that POST among them: so `release`
 * waits for these first.
 */
function cancellationsOf(transport: StreamableHTTPClientTransport): Promise<unknown>[] {
  const sending: Promise<unknown>[] = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const sent = send(message, options);
    if ((message as { method?: unknown }).method === "notifications/cancelled") {
      sending.push(sent.catch(() => {}));
    }
    return sent;
  };
  return sending;
}

/**
 * Closes a client once its work is done. A client that has just sent `notifications/cancelled` is
 * closed once the backend has taken them (at most `CANCEL_GRACE_MS` later), outside the agent's
 * request when it can be: the agent's answer waits for nothing of it. A 2026-era client is not
 * closed at all: each of its requests was one POST, answered and read to the end or aborted, so
 * it holds nothing open, and closing it only builds the SDK's "connection closed" errors (with
 * stack traces) for nobody. That was about a fifth of the proxy's CPU per call in the benchmark
 * (BENCHMARKS.md).
 */
async function release(
  client: Client,
  cancellations: Promise<unknown>[],
  limits: CallLimits,
): Promise<void> {
  if (cancellations.length > 0) {
    const closed = settledWithin(cancellations, CANCEL_GRACE_MS)
      .then(() => client.close())
      .catch(() => {});
    if (limits.defer) limits.defer(closed);
    else await closed;
    return;
  }
  if (client.getProtocolEra() === "modern") return;
  await client.close().catch(() => {});
}

/** Resolves once every one of `work` has settled, or after `ms`, whichever is first. */
function settledWithin(work: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([Promise.allSettled(work).then(() => {}), late]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/**
 * `e` as the gateway reports it: the SDK's timeout, when the deadline passed rather than the agent
 * going away (the SDK reports both as `RequestTimeout`), is a `backend_timeout`. By then the SDK
 * has cancelled the request upstream.
 */
function deadlineOf(e: unknown, backend: BackendSpec, limits: CallLimits): unknown {
  if (e instanceof SdkError && e.code === SdkErrorCode.RequestTimeout && !limits.signal?.aborted) {
    return new GatewayError({
      kind: "backend_timeout",
      server: backend.id,
      timeoutMs: limits.timeoutMs,
    });
  }
  return e;
}

/**
 * An `Ask` that goes through an SDK client (`tools/call` through `callTool`, for its checks) to
 * the backend `server`. Where the relay can put questions to the agent, the backend's questions
 * go to it (`relayQuestions`), and the call's deadline is the gateway's own (`AgentWait`).
 */
export function askThrough(
  client: Client,
  limits: CallLimits,
  server: string,
  answerable?: Answerable,
): Ask {
  return (method, params, relay) => {
    const asking = relay?.ask && answerable && limits.answerTimeoutMs;
    const wait = asking ? new AgentWait(server, limits) : undefined;
    if (relay) {
      client.setNotificationHandler("notifications/message", (n) => {
        wait?.heard();
        relay.log(n.params);
      });
      if (wait && answerable) relayQuestions(client, server, answerable, relay, wait);
    }
    const progress = relay?.progress;
    const signal = wait ? wait.signalWith(limits.signal) : limits.signal;
    const options = {
      // A 2026-07-28 backend's `input_required` comes back as it is: the operation decides
      // whether the agent can take it (`operations/tools.ts`), never the gateway's own client.
      allowInputRequired: true,
      // With questions, the SDK's timeout only bounds the whole; the deadline is `wait`'s.
      timeout: wait ? wait.outerMs : limits.timeoutMs,
      ...(signal ? { signal } : {}),
      // A backend that keeps reporting progress is working, not hung.
      ...(progress
        ? {
            onprogress: (p: Parameters<typeof progress>[0]) => {
              wait?.heard();
              progress(p);
            },
            resetTimeoutOnProgress: true,
          }
        : {}),
    };
    const request =
      method === "tools/call"
        ? client.callTool(params as never, options)
        : client.request({ method, params } as never, options);
    return (request as Promise<Record<string, unknown>>)
      .catch((e: unknown) => {
        // The SDK reports its aborted request in its own words: the deadline's are ours.
        if (wait?.expired) throw wait.expired;
        throw client.getProtocolEra() === "modern" ? (answerIn(e) ?? e) : e;
      })
      .finally(() => wait?.clear());
  };
}

/**
 * Puts the backend's questions to the agent through `relay.ask`, for each capability the client
 * declared (the agent's own: `withClient`); the SDK client answers any other with its error at
 * once. The agent's answer goes to the backend on a request of its own (`questions.ts`), so the
 * handler never answers: its promise stays pending until the client closes.
 */
function relayQuestions(
  client: Client,
  server: string,
  declared: Answerable,
  relay: Relay,
  wait: AgentWait,
): void {
  const ask = relay.ask;
  if (!ask) return;
  for (const [method, capability] of Object.entries(QUESTION_CAPABILITY)) {
    if (!(capability in declared)) continue;
    client.setRequestHandler(method as "roots/list", (request, sdk) => {
      const transport = client.transport as StreamableHTTPClientTransport | undefined;
      const session = transport?.sessionId;
      const protocolVersion = transport?.protocolVersion;
      if (session === undefined || protocolVersion === undefined) {
        // A backend without sessions has nowhere to take the answer.
        throw new ProtocolError(-32_603, `${server} asked the agent outside a session`);
      }
      wait.asked();
      ask(
        { method, params: (request.params ?? {}) as Record<string, unknown> },
        { server, session, protocolVersion, id: sdk.mcpReq.id },
      );
      return new Promise<never>(() => {});
    });
  }
}

/**
 * The deadline of a call whose backend may ask the agent: `timeoutMs` of silence from the
 * backend, restarted by anything it says, and `answerTimeoutMs` once its last word was a question
 * (the agent is the one to answer). Passing it aborts the request, which cancels it upstream
 * (`notifications/cancelled`), with a `backend_timeout` failure.
 */
class AgentWait {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly server: string;
  private readonly limits: CallLimits;

  constructor(server: string, limits: CallLimits) {
    this.server = server;
    this.limits = limits;
    this.arm(limits.timeoutMs);
  }

  /** The SDK's own bound on the whole request, beyond any wait this allows. */
  get outerMs(): number {
    return Math.max(this.limits.timeoutMs, this.limits.answerTimeoutMs ?? 0) * 2;
  }

  signalWith(signal: AbortSignal | undefined): AbortSignal {
    return signal ? AbortSignal.any([signal, this.controller.signal]) : this.controller.signal;
  }

  heard(): void {
    this.arm(this.limits.timeoutMs);
  }

  asked(): void {
    this.arm(this.limits.answerTimeoutMs ?? this.limits.timeoutMs);
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** The failure the call ended with, once the deadline has passed. */
  expired: GatewayError | undefined;

  private arm(ms: number): void {
    this.clear();
    this.timer = setTimeout(() => {
      this.expired = new GatewayError({
        kind: "backend_timeout",
        server: this.server,
        timeoutMs: ms,
      });
      this.controller.abort(this.expired);
    }, ms);
  }
}

/**
 * The JSON-RPC error a 2026-07-28 backend sent with an HTTP error other than 400 (an SDK server
 * answers a method it lacks with 404 and a -32601 body). The SDK client reads the body only of a
 * 400 and reports the rest as an `SdkHttpError` holding the text; read as the backend's answer,
 * it keeps the backend known and answers the agent as a direct request would (`direct.ts`).
 * Only for the modern era: a 2025-era 404 is a forgotten session, which `withClient` handles.
 */
function answerIn(e: unknown): ProtocolError | undefined {
  if (!(e instanceof SdkHttpError) || !isJsonObject(e.data) || typeof e.data.text !== "string") {
    return undefined;
  }
  let body: unknown;
  try {
    body = JSON.parse(e.data.text);
  } catch {
    return undefined;
  }
  const error = isJsonObject(body) ? body.error : undefined;
  if (!isJsonObject(error) || typeof error.code !== "number") return undefined;
  const message = typeof error.message === "string" ? error.message : "Backend error";
  return new ProtocolError(error.code, message, error.data);
}

/**
 * What the gateway's client declares to a backend: what the agent can answer, when the agent
 * and the backend share an era (a 2025 session's questions are relayed, a 2026-07-28 agent's
 * `input_required` passed through); otherwise nothing, so the backend asks nothing the gateway
 * could not carry, and says so at once. Before the backend's era is known, the agent's.
 */
export function declaredTo(
  caller: BackendCaller,
  verdict: { kind: "legacy" | "modern" } | undefined,
): Answerable | undefined {
  if (caller.answerable) return verdict?.kind === "modern" ? undefined : caller.answerable;
  if (caller.inputCapabilities)
    return verdict?.kind === "legacy" ? undefined : caller.inputCapabilities;
  return undefined;
}

function clientOptions(declared: Answerable | undefined): {
  capabilities?: Record<string, unknown>;
} {
  return declared ? { capabilities: { ...declared } } : {};
}

/**
 * Opens a client to `backend` on behalf of the caller, runs `use`, and closes it. Connection and
 * request failures reject, a deadline passed as a `backend_timeout` `GatewayError`. The first
 * contact with a backend records its era.
 */
export async function withClient<T>(
  backend: BackendSpec,
  caller: BackendCaller,
  limits: CallLimits,
  use: (client: Client, declared: Answerable | undefined) => Promise<T>,
): Promise<T> {
  const fetch = fetchFor(backend, caller);
  const options = {
    timeout: limits.timeoutMs,
    ...(limits.signal ? { signal: limits.signal } : {}),
  };
  const verdict = eraVerdicts.get(backend.id);
  const declared = declaredTo(caller, verdict);
  const sessions = sessionsFor(backend, caller, declared);

  if (sessions && verdict?.kind === "legacy") {
    const session = await sessions.get();
    if (session) {
      const client = new Client(CLIENT_INFO, clientOptions(declared));
      const transport = new StreamableHTTPClientTransport(backend.url, {
        fetch,
        sessionId: session.sessionId,
        protocolVersion: session.protocolVersion,
      });
      const cancellations = cancellationsOf(transport);
      try {
        // With a session id, the client skips the handshake: this costs no round trip.
        await client.connect(transport, { ...options, prior: { kind: "legacy" } });
        uniqueIds(transport);
        return await use(client, declared);
      } catch (e) {
        // 404: the backend forgot the session (restart, expiry). Start a new one below.
        if (!(e instanceof SdkHttpError && e.status === 404)) throw deadlineOf(e, backend, limits);
        await sessions.forget(session.sessionId);
      } finally {
        await release(client, cancellations, limits);
      }
    }
  }

  const client = new Client(CLIENT_INFO, {
    ...clientOptions(declared),
    versionNegotiation: { mode: "auto" },
  });
  const transport = new StreamableHTTPClientTransport(backend.url, { fetch });
  const cancellations = cancellationsOf(transport);
  try {
    await client.connect(transport, verdict ? { ...options, prior: verdict } : options);
    if (!verdict) {
      const discover = client.getDiscoverResult();
      const capabilities = client.getServerCapabilities();
      eraVerdicts.set(
        backend.id,
        discover
          ? { kind: "modern", discover }
          : { kind: "legacy", ...(capabilities ? { capabilities } : {}) },
      );
    }
    // A backend that gave us a session keeps it for this agent's next calls.
    if (sessions && transport.sessionId && transport.protocolVersion) {
      await sessions.set({
        sessionId: transport.sessionId,
        protocolVersion: transport.protocolVersion,
      });
    }
    return await use(client, declared);
  } catch (e) {
    // A JSON-RPC error is the backend answering, a gateway error the gateway deciding on that
    // answer or on the deadline; anything else may mean the backend changed or died.
    const error = deadlineOf(e, backend, limits);
    if (!(error instanceof ProtocolError || error instanceof GatewayError)) {
      eraVerdicts.forget(backend.id);
    }
    throw error;
  } finally {
    // Closing the client ends its HTTP exchanges; it does not end the upstream session.
    await release(client, cancellations, limits);
  }
}

/**
 * Makes sure this isolate has heard from each of `backends` (its era and capabilities), opening a
 * client to each it has not; one that cannot be reached within the deadline stays unheard.
 */
export async function hearFrom(
  backends: BackendSpec[],
  caller: BackendCaller,
  limits: CallLimits,
): Promise<void> {
  const unheard = backends.filter((backend) => eraVerdicts.get(backend.id) === undefined);
  await Promise.all(
    unheard.map((backend) => withClient(backend, caller, limits, async () => {}).catch(() => {})),
  );
}
